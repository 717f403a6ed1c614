"""`tenantry new tenant`: writes a valid tenant file and the next steps, or nothing with clear errors.

Tested here: flags only; prompting for what is missing (answered through a fake terminal input);
invalid values leave no file behind; an existing file is not overwritten without --force.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tenantry.cli.main import main, parser
from tenantry.cli.new import collect
from tenantry.cli.validate import validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
FLAGS = ["--partner", "acme-it", "--slug", "kaffee", "--company", "Kaffeerösterei Braun KG",
         "--contact-name", "Lena Braun", "--contact-email", "lena@kaffee-braun.de", "--plan", "starter",
         "--seats", "9", "--price", "120", "--domain", "ki.kaffee-braun.de", "--no-input"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "repo")
    return tmp_path / "repo"


def test_writes_a_valid_tenant_and_the_next_steps(repo: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["new", "tenant", "--repo", str(repo), "--platform-domain", "ki.example", *FLAGS]) == 0
    path = repo / "tenants" / "acme-it" / "kaffee.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["metadata"] == {"name": "kaffee", "namespace": "partner-acme-it"}
    assert doc["spec"]["plan"] == {"featureSet": "starter", "seats": 9, "price": {"monthly": 120.0, "currency": "EUR"}}
    assert doc["spec"]["admins"] == ["lena@kaffee-braun.de"]
    assert validate([repo]) == []
    out = capsys.readouterr().out
    assert "ki.kaffee-braun.de. CNAME kaffee.ki.example." in out and "_tenantry-challenge.ki.kaffee-braun.de" in out


def test_asks_for_what_is_missing() -> None:
    args = parser().parse_args(["new", "tenant", "--partner", "acme-it", "--slug", "x"])
    answers = iter(["Firma X GmbH", "Max", "max@x.de", "business", "25", "", "", ""])
    values, missing = collect(args, lambda prompt: next(answers))
    assert missing == [] and values["company"] == "Firma X GmbH" and values["seats"] == "25"


def test_invalid_values_write_nothing(repo: Path, capsys: pytest.CaptureFixture) -> None:
    flags = [*FLAGS]
    flags[flags.index("--seats") + 1] = "0"
    assert main(["new", "tenant", "--repo", str(repo), *flags]) == 1
    assert not (repo / "tenants" / "acme-it" / "kaffee.yaml").exists()
    assert "spec.plan.seats" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "typed", "words"), [
    ("--seats", "ten", "--seats: 'ten' is not a whole number (e.g. 25)"),
    ("--price", "1,50", "--price: '1,50' is not a number: use a dot for decimals (1.50)"),
    ("--price", "nan", "--price: 'nan' is not a number"),
])
def test_a_typed_number_that_is_none_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture, flag: str,
                                                     typed: str, words: str) -> None:
    """It was an internal error (ValueError, exit 70)."""
    flags = [*FLAGS]
    flags[flags.index(flag) + 1] = typed
    assert main(["new", "tenant", "--repo", str(repo), *flags]) == 2
    assert words in capsys.readouterr().err
    assert not (repo / "tenants" / "acme-it" / "kaffee.yaml").exists()


def test_a_wrong_number_is_asked_again_in_a_terminal(capsys: pytest.CaptureFixture) -> None:
    args = parser().parse_args(["new", "tenant", "--partner", "acme-it", "--slug", "x"])
    answers = iter(["Firma X GmbH", "Max", "max@x.de", "business", "zehn", "10", "9,90", "9.90", "", ""])
    values, missing = collect(args, lambda prompt: next(answers))
    assert missing == [] and (values["seats"], values["price"]) == ("10", "9.90")
    err = capsys.readouterr().err
    assert "'zehn' is not a whole number" in err and "'9,90' is not a number" in err


@pytest.mark.parametrize(("flag", "typed"), [("--phone", "0521987654"), ("--contact-name", "Y"),
                                              ("--company", "1e3"), ("--contact-name", "no")])
def test_what_it_writes_kubectl_and_validate_read_as_text(repo: Path, flag: str, typed: str) -> None:
    """Unquoted, 0521987654 is a number to kubectl and Y a boolean: its own check refused what it
    wrote, and nothing was written."""
    assert main(["new", "tenant", "--repo", str(repo), "--platform-domain", "ki.example", *FLAGS, flag, typed]) == 0
    text = (repo / "tenants" / "acme-it" / "kaffee.yaml").read_text()
    assert f'"{typed}"' in text
    assert validate([repo]) == []


def test_without_a_platform_domain_no_made_up_names(repo: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENANTRY_PLATFORM_DOMAIN", raising=False)
    assert main(["new", "tenant", "--repo", str(repo), *FLAGS]) == 0
    out = capsys.readouterr().out
    assert "CNAME kaffee.<your platform domain>." in out and "platform.example" not in out
    assert "pass --platform-domain, or set TENANTRY_PLATFORM_DOMAIN" in out


def test_missing_flags_without_a_terminal_and_no_overwrite(repo: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["new", "tenant", "--repo", str(repo), "--partner", "acme-it", "--no-input"]) == 2
    assert "--slug" in capsys.readouterr().err
    assert main(["new", "tenant", "--repo", str(repo), *FLAGS]) == 0
    assert main(["new", "tenant", "--repo", str(repo), *FLAGS]) == 2
    assert "--force" in capsys.readouterr().err


def test_force_with_invalid_values_keeps_the_existing_file(repo: Path) -> None:
    assert main(["new", "tenant", "--repo", str(repo), *FLAGS]) == 0
    path = repo / "tenants" / "acme-it" / "kaffee.yaml"
    before = path.read_text()
    flags = [*FLAGS]
    flags[flags.index("--seats") + 1] = "0"
    assert main(["new", "tenant", "--repo", str(repo), "--force", *flags]) == 1
    assert path.read_text() == before


def _moved_platform(repo: Path, namespace: str) -> None:
    """The example repository with the platform's plans and Brandings in another namespace."""
    for path in (repo / "platform").glob("*.yaml"):
        path.write_text(path.read_text().replace("tenantry-system", namespace))


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_platform_namespace_of_its_own_is_taken_as_validate_takes_it(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        how: str) -> None:
    """A platform that runs the operator elsewhere than tenantry-system: its plans are found (every
    tenant was refused with "no FeatureSet ... in the platform namespace 'tenantry-system'")."""
    _moved_platform(repo, "saas-platform")
    monkeypatch.delenv("TENANTRY_PLATFORM_NAMESPACE", raising=False)
    flag = ["--platform-namespace", "saas-platform"] if how == "flag" else []
    if how == "environment":
        monkeypatch.setenv("TENANTRY_PLATFORM_NAMESPACE", "saas-platform")
    assert main(["new", "tenant", "--repo", str(repo), *flag, *FLAGS]) == 0
    assert main(["validate", str(repo), *flag]) == 0


def test_a_custom_domain_under_the_platform_domain_writes_nothing(repo: Path, capsys: pytest.CaptureFixture) -> None:
    flags = [*FLAGS[:FLAGS.index("--domain")], "--domain", "shop.ki.example", "--no-input"]
    assert main(["new", "tenant", "--repo", str(repo), "--platform-domain", "ki.example", *flags]) == 1
    assert "spec.domains[0]" in capsys.readouterr().err
    assert not (repo / "tenants" / "acme-it" / "kaffee.yaml").exists()
