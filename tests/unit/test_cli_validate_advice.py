"""What `tenantry validate` tells a partner for the mistakes people make by hand (a partner's
walk-through of the CLI, 3 Dec): the fix, in the words of the field's type, not the schema's.

Tested here (the example repository with one file changed, no cluster):
- a misspelt field (the API server would drop it without a word after merge: `delitionPolicy:
  Delete` would keep a cancelled customer's data) is a finding naming the field probably meant,
  at every depth; a name like no field lists the fields there; thousands of unknown keys give a
  bounded number of findings, and so does any one document; metadata is left to its own checks
  (the API server's ObjectMeta)
- a number with three digits after a dot (`seats: 1.000`, one seat to kubectl) says that the dot
  is a decimal point, with both readings to write
- a wrong type says what YAML read and what the field takes, with the fix that suits the field:
  quotes for text, none for a number or true/false; an empty value after `primary: #C8102E` says
  that # starts a comment; a field with allowed values gets only the finding that names them
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantry.cli.validate import FINDINGS_PER_DOCUMENT, validate
from tests.unit.test_cli_files import ACME, TENANT, repo  # noqa: F401 (the fixture)
from tests.unit.test_cli_validate import write

GOOD = TENANT.format(name="gut", namespace="partner-acme-it")


def _said(repo: Path, text: str) -> dict[str, str]:  # noqa: F811 (the fixture)
    write(repo, ACME + "/gut.yaml", text)
    return {f.field: f.message for f in validate([repo]) if f.file.endswith("gut.yaml")}


@pytest.mark.parametrize(("text", "field", "words"), [
    (GOOD + "  delitionPolicy: Delete\n", "spec.delitionPolicy", 'unknown field "delitionPolicy": did you mean '
                                                               '"deletionPolicy"?'),
    (GOOD + "  domain: [ki.gut.de]\n", "spec.domain", 'did you mean "domains"?'),
    (GOOD.replace("seats: 5", "seats: 5, Seats: 6"), "spec.plan.Seats", 'did you mean "seats"?'),
    (GOOD + "  features: {chat: {enabeld: true}}\n", "spec.features.chat.enabeld", 'did you mean "enabled"?'),
    (GOOD + "  contact2: x\n", "spec.contact2", 'did you mean "contact"?'),
    (GOOD.replace("spec:", "specs: {}\nspec:"), "specs", 'did you mean "spec"?'),
    (GOOD + "  zzz: 1\n", "spec.zzz", 'unknown field "zzz": the API server would drop it; the fields here are '
                                      "company, industry"),
])
def test_a_misspelt_field_names_the_one_probably_meant(repo: Path, text: str, field: str,  # noqa: F811
                                                        words: str) -> None:
    said = _said(repo, text)
    assert words in said.get(field, ""), said


def test_thousands_of_unknown_fields_give_a_bounded_number_of_findings(repo: Path) -> None:  # noqa: F811
    said = _said(repo, GOOD + "".join(f"  x{i}: 1\n" for i in range(5000)))
    assert len(said) == 21 and said["spec"] == "and 4980 more unknown fields", len(said)


def test_one_document_gives_a_bounded_number_of_findings(repo: Path) -> None:  # noqa: F811
    """6,500 features with 19 unknown keys each (a megabyte): 150,000 findings, 23 MB in the pull
    request's log, before the cap per document."""
    features = ", ".join(f"f{i}: {{" + ", ".join(f"k{j}: 1" for j in range(19)) + "}" for i in range(6500))
    write(repo, ACME + "/gut.yaml", GOOD + f"  features: {{{features}}}\n")
    mine = [f for f in validate([repo]) if f.file.endswith("gut.yaml")]
    assert len(mine) == FINDINGS_PER_DOCUMENT + 1
    assert any(f.field == "(document)" and f.message.startswith(f"more than {FINDINGS_PER_DOCUMENT} findings")
               for f in mine)


def test_metadata_is_not_judged_by_the_crds_few_fields(repo: Path) -> None:  # noqa: F811
    assert _said(repo, GOOD.replace("metadata: {", "metadata: {labels: {a: b}, ")) == {}


@pytest.mark.parametrize(("value", "words"), [
    ("1.000", "the unquoted value 1.000 is the number 1: in YAML a dot is the decimal point, never a thousands "
              "separator; write 1000 or 1"),
    ("2.500", "is the number 2.5: in YAML a dot is the decimal point, never a thousands separator; write 2500 or 2.5"),
])
def test_a_dot_before_three_digits_is_told_to_be_a_decimal_point(repo: Path, value: str,  # noqa: F811
                                                                  words: str) -> None:
    said = _said(repo, GOOD.replace("seats: 5", f"seats: {value}"))
    assert list(said) == ["spec.plan.seats"] and words in said["spec.plan.seats"], said


@pytest.mark.parametrize("monthly", ["1.50", "0.500", "12.5"])
def test_numbers_with_other_decimals_are_left_to_the_field(repo: Path, monthly: str) -> None:  # noqa: F811
    """0.500 is no thousand: a thousands separator never follows a 0 alone (its advice would have
    been 0500, an octal 320 to kubectl and to tenantry)."""
    said = _said(repo, GOOD.replace("seats: 5}", f"seats: 5, price: {{monthly: {monthly}}}}}"))
    assert said == {}


@pytest.mark.parametrize(("change", "field", "words"), [
    (("company: Test GmbH", "company: 1234"), "spec.company",
     "1234 is a number, and the field takes text: put it in quotes"),
    (("company: Test GmbH", "company: true"), "spec.company", "true is a boolean, and the field takes text: put it"),
    (("seats: 5", 'seats: "85"'), "spec.plan.seats",
     '"85" is text, and the field takes a whole number: write the number alone, without quotes'),
    (("seats: 5", "seats: 2.5"), "spec.plan.seats", "2.5 is not a whole number"),
    (("seats: 5}", "seats: 5, price: {monthly: '10'}}"), "spec.plan.price.monthly",
     '"10" is text, and the field takes a number: write the number alone'),
    (("seats: 5}", "seats: 5, price: {monthly: '12,50'}}"), "spec.plan.price.monthly",
     '"12,50" is text, and the field takes a number: write 12.5 (a dot is the decimal point)'),
    (("seats: 5}", "seats: 5, price: {monthly: '1,500'}}"), "spec.plan.price.monthly",
     '"1,500" is text, and the field takes a number: write 1500, or 1.5 if the separator is a decimal point'),
    (("seats: 5", "seats: '1.000'"), "spec.plan.seats",
     '"1.000" is text, and the field takes a whole number: write 1000 (no thousands separators)'),
    (("company: Test GmbH", "company: Test\n  features: {chat: {enabled: 'true'}}"), "spec.features.chat.enabled",
     '"true" is text, and the field takes true or false: write true or false, without quotes'),
    (("company: Test GmbH", "company: [Test]"), "spec.company", "the value is a list, and the field takes text"),
    (("plan: {featureSet: business, seats: 5}", "plan: business"), "spec.plan",
     '"business" is text, and the field takes a mapping (key: value lines indented beneath it)'),
])
def test_a_wrong_type_gets_the_fix_that_suits_the_field(repo: Path, change: tuple[str, str], field: str,  # noqa: F811
                                                        words: str) -> None:
    said = _said(repo, GOOD.replace(*change))
    assert words in said.get(field, ""), said


def test_a_colour_after_a_hash_is_a_comment_and_the_finding_says_so(repo: Path) -> None:  # noqa: F811
    branding = ("apiVersion: tenantry.dev/v1alpha1\nkind: Branding\nmetadata: {name: gut, namespace: partner-acme-it}\n"
                "spec:\n  displayName: Gut\n  colours:\n    primary: #C8102E\n")
    said = _said(repo, branding)
    assert said["spec.colours.primary"] == ('no value is written here, and the field takes text (an unquoted # starts '
                                            'a comment: write a colour as "#C8102E", in quotes)'), said


def test_a_field_with_allowed_values_names_them_once(repo: Path) -> None:  # noqa: F811
    write(repo, ACME + "/gut.yaml", GOOD + "  deletionPolicy: 12\n")
    mine = [f.message for f in validate([repo]) if f.file.endswith("gut.yaml")]
    assert mine == ["12 is not one of ['Retain', 'Delete']"]
