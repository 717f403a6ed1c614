"""The documentation agrees with the code and with the latest benchmark run (no cluster).

Tested here:
- benchmark figures: every number followed by a marker `<!-- bench:KEY -->` equals
  bench/results.json's KEY, rounded as quoted (24.38 may be quoted as 24.4 or 24, never as 24.3),
  converted when the unit differs from the key's (`scrape_s` 0.012 quoted as "12 ms"); a marker may
  also hold an arithmetic expression over keys, e.g. `<!-- bench:onboarding_writes / tenants -->`,
  whose value is compared as quoted (no unit conversion), and max/min/sum/len over a key that holds
  an object. `<!-- bench-pending:KEY -->` is the same once results.json has KEY (a figure the next
  full run adds). And every number with a unit of time, size, rate or ratio (s, ms, minutes, MiB,
  MB, /s, tenants/s, 2.6x, ...) in the README and the docs pages, code blocks included, carries
  either such a marker or `<!-- not-bench: why -->` (a target, an earlier run, a default setting),
  so a figure cannot be quoted without saying where it comes from. The markers are HTML comments:
  invisible on GitHub, next to the figure in the source.
- settings: every TENANTRY_* variable named in the README and docs/*.md exists in the code (read
  by operator/tenantry, hack/ scripts, the Makefile, or a test or benchmark through os.environ),
  and every one the code reads is documented in docs/settings.md.
- links: every relative link (and image) in the README and docs/*.md points at a file that exists,
  and an anchor into a Markdown page at one of its headings (GitHub's slugs).
- metrics: every metric family in docs/metrics.md's tables exists in the code with exactly the
  labels (and type) given, every family the code exposes is in those tables, every tenantry_*
  name mentioned in any docs page is a family (or one of a histogram's series, or listed as
  removed and truly gone); every alert of charts/tenantry/rules/tenantry-rules.yaml is in the alert
  table with its audience and `for:`, and every recording rule named exists.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from tenantry.domain.features import EffectiveFeature
from tenantry.domain.usage import TenantFacts
from tenantry.metrics import operator as operator_metrics
from tenantry.metrics.pipeline import DealFacts, PipelineCollector
from tenantry.metrics.tenants import CONDITION_FAMILY, PARTNER_FAMILIES, TENANT_FAMILIES, TenantExposition

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RESULTS = REPO / "bench" / "results.json"
RULES = REPO / "charts" / "tenantry" / "rules" / "tenantry-rules.yaml"
# Families that were renamed; docs/metrics.md names them as gone, and they must stay gone.
REMOVED_FAMILIES = {"tenantry_tenant_quota_used", "tenantry_tenant_quota_hard"}


def pages() -> list[Path]:
    """The README, every docs page (docs/runbooks/ has its own test in test_rules) and the charts'
    READMEs."""
    return [REPO / "README.md", *sorted(DOCS.glob("*.md")), *sorted((REPO / "charts").glob("*/README.md"))]


def name(page: Path) -> str:
    return str(page.relative_to(REPO))


def _blank(match: re.Match[str]) -> str:
    """The match as spaces, newlines kept (so positions and line numbers stay)."""
    return re.sub(r"[^\n]", " ", match.group(0))


FENCE = re.compile(r"^ *(```|~~~)[^\n]*\n.*?^ *\1 *$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.DOTALL)


def without_fences(text: str) -> str:
    return FENCE.sub(_blank, text)


def prose(text: str) -> str:
    """The text without code blocks and code spans: what a reader reads as sentences."""
    return CODE_SPAN.sub(_blank, without_fences(text))


def line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


# --- benchmark figures --------------------------------------------------------------------------

MARKER = re.compile(r"<!--\s*(bench-pending|not-bench|bench)(?![\w-])(?::?\s*(.*?))?\s*-->", re.DOTALL)
NUMBER = r"(?<![\w.,])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
# Units a benchmark reports: time, size, rate, ratio. "x" and "/s" only attached ("2.6x", "34/s").
# A bare "s" only after a space: "503s" are HTTP answers, not seconds.
SPACED_UNITS = r"ms|µs|us|seconds?|min|minutes?|KiB|MiB|GiB|KB|MB|GB|[A-Za-z]+/s"
UNIT = rf"(?P<unit>x|/s|\s+s|\s*(?:{SPACED_UNITS}))(?![\w/])"
FIGURE = re.compile(NUMBER + UNIT)
# The figure right before a bench marker: a number, maybe a unit, maybe closing emphasis.
QUOTED = re.compile(NUMBER + rf"(?:x|/s|\s+s|\s*(?:{SPACED_UNITS}))?(?![\w/])[*_]*\s*$")

# A unit as the quoted number's dimension and its factor to the dimension's base.
SCALES = {"s": ("time", 1.0), "second": ("time", 1.0), "seconds": ("time", 1.0), "ms": ("time", 1e-3),
          "us": ("time", 1e-6), "µs": ("time", 1e-6), "min": ("time", 60.0), "minute": ("time", 60.0),
          "minutes": ("time", 60.0), "KiB": ("size", 1 / 1024), "MiB": ("size", 1.0), "GiB": ("size", 1024.0),
          "x": ("ratio", 1.0), "/s": ("rate", 1.0)}


def key_scale(key: str) -> tuple[str, float] | None:
    """The unit a results.json key holds, from its name (onboarding_s, scrape_gzip_mib, ...)."""
    if key.endswith("_per_s"):
        return "rate", 1.0
    if key.endswith("_ratio"):
        return "ratio", 1.0
    for token, scale in (("ms", ("time", 1e-3)), ("us", ("time", 1e-6)), ("s", ("time", 1.0)),
                         ("mib", ("size", 1.0))):
        if re.search(rf"(^|_){token}(_|$)", key):
            return scale
    return None


def quoted_scale(unit: str) -> tuple[str, float] | None:
    unit = unit.strip()
    if not unit:
        return None
    if unit.endswith("/s"):
        return SCALES["/s"]
    if unit not in SCALES:
        raise AssertionError(f"unit {unit!r} cannot be compared with a benchmark figure")
    return SCALES[unit]


class Missing(Exception):
    """A key results.json does not have (yet)."""


def evaluate(expression: str, results: dict[str, Any]) -> float:
    """An arithmetic expression over results.json's keys: + - * /, numbers, parentheses, and
    max/min/sum/len of a key that holds an object (its values)."""
    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in results:
                raise Missing(node.id)
            found = results[node.id]
            if isinstance(found, bool) or not isinstance(found, int | float):
                raise AssertionError(f"{node.id} is not a number in results.json: {found!r}")
            return float(found)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            left, right = value(node.left), value(node.right)
            return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right,
                    ast.Div: left / right if right else float("nan")}[type(node.op)]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("max", "min", "sum", "len")
                and len(node.args) == 1 and isinstance(node.args[0], ast.Name) and not node.keywords):
            if node.args[0].id not in results:
                raise Missing(node.args[0].id)
            found = results[node.args[0].id]
            assert isinstance(found, dict), f"{node.args[0].id} holds no object in results.json"
            return float({"max": max, "min": min, "sum": sum, "len": len}[node.func.id](found.values()))
        raise AssertionError(f"not allowed in a bench marker: {ast.dump(node)}")
    return value(ast.parse(expression.strip(), mode="eval"))


def rounded(value: float, decimals: int) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def check_figure(quoted: str, unit: str, expression: str, results: dict[str, Any]) -> str | None:
    """None when the quoted figure is the benchmark's, else what is wrong."""
    actual = evaluate(expression, results)
    if re.fullmatch(r"[a-z_][a-z0-9_]*", expression.strip()):  # one key: convert the unit
        held, shown = key_scale(expression.strip()), quoted_scale(unit)
        if held and shown:
            if held[0] != shown[0]:
                return f"{quoted}{unit} is a {shown[0]}, {expression} holds a {held[0]}"
            actual = actual * held[1] / shown[1]
    digits = quoted.replace(",", "")
    decimals = len(digits.partition(".")[2])
    expected = rounded(actual, decimals)
    if expected != Decimal(digits):
        return f"{quoted}{unit} but {expression.strip()} = {actual:g} (as quoted: {expected})"
    return None


def markers(page: Path) -> Iterator[tuple[int, str, str, str, str]]:
    """(line, kind, argument, the number before, its unit) of every marker on a page."""
    text = prose(page.read_text())
    for match in MARKER.finditer(text):
        before = QUOTED.search(text[max(0, match.start() - 80):match.start()])
        if before is None:
            yield line_of(text, match.start()), match.group(1), match.group(2) or "", "", ""
            continue
        whole = before.group(0).rstrip("*_ \n")
        yield (line_of(text, match.start()), match.group(1), match.group(2) or "", before.group("num"),
               whole[len(before.group("num")):])


def results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text())


@pytest.mark.parametrize("page", pages(), ids=name)
def test_every_benchmark_figure_is_the_latest_runs(page: Path) -> None:
    found = results()
    problems = []
    for line, kind, argument, number, unit in markers(page):
        where = f"{name(page)}:{line}"
        if not number:
            problems.append(f"{where}: <!-- {kind} --> follows no number")
            continue
        if kind == "not-bench":
            continue
        if not argument.strip():
            problems.append(f"{where}: <!-- {kind} --> names no key")
            continue
        try:
            wrong = check_figure(number, unit, argument, found)
        except Missing as key:
            if kind == "bench-pending":
                continue
            problems.append(f"{where}: {key} is not in bench/results.json")
            continue
        if wrong:
            problems.append(f"{where}: {wrong}")
    assert problems == []


def _marker_kind_only(match: re.Match[str]) -> str:
    """A marker with its argument blanked (a reason may hold numbers too), same length."""
    head = f"<!-- {match.group(1)}"
    return head + " " * (len(match.group(0)) - len(head) - 3) + "-->"


@pytest.mark.parametrize("page", pages(), ids=name)
def test_every_figure_with_a_unit_says_where_it_comes_from(page: Path) -> None:
    """Code blocks and spans included: a figure there cannot carry a marker, so it is refused
    (quote benchmark figures in the text, with their marker)."""
    text = MARKER.sub(_marker_kind_only, page.read_text())
    unmarked = []
    for match in FIGURE.finditer(text):
        after = text[match.end():match.end() + 40]
        if not re.match(r"[*_]*<!--\s*(bench-pending|not-bench|bench)(?![\w-])", after):
            unmarked.append(f"{name(page)}:{line_of(text, match.start())}: {match.group(0).strip()!r}")
    assert unmarked == [], ("mark each with <!-- bench:<results.json key> --> or <!-- not-bench: why -->")


def test_the_readme_and_the_performance_page_quote_checked_figures() -> None:
    """The marker rule cannot be met by marking nothing as a benchmark figure."""
    for page in (REPO / "README.md", DOCS / "performance.md"):
        assert any(kind == "bench" for _, kind, *_ in markers(page)), name(page)


def test_the_figure_check_catches_a_wrong_or_stale_number() -> None:
    found = {"onboarding_s": 24.38, "scrape_s": 0.012, "large_rss_mib": 640.6, "tenants": 1000,
             "onboarding_writes": 13000, "lists": {"a": 1, "b": 1}}
    assert check_figure("24.4", " s", "onboarding_s", found) is None
    assert check_figure("24", " s", "onboarding_s", found) is None
    assert check_figure("24.3", " s", "onboarding_s", found)  # stale or mistyped
    assert check_figure("12", " ms", "scrape_s", found) is None
    assert check_figure("1.8", " s", "scrape_s", found)  # the old scrape time
    assert check_figure("12", " MiB", "scrape_s", found)  # a time quoted as a size
    assert check_figure("0.63", " GiB", "large_rss_mib", found) is None
    assert check_figure("13", "", "onboarding_writes / tenants", found) is None
    assert check_figure("1", "", "max(lists)", found) is None
    with pytest.raises(Missing):
        check_figure("3.6", " s", "validate_s", found)
    text = "took **24.4 s**<!-- bench:onboarding_s --> and 1.5 s here"
    assert [m.group(0) for m in FIGURE.finditer(text)] == ["24.4 s", "1.5 s"]
    assert QUOTED.search("took **24.4 s**") is not None


# --- settings ------------------------------------------------------------------------------------

SETTING = re.compile(r"TENANTRY_[A-Z0-9_]*(?:\*|[A-Z0-9])")


def code_settings() -> set[str]:
    """Every TENANTRY_* variable something in this repository reads."""
    found: set[str] = set()
    for path in (REPO / "operator" / "tenantry").rglob("*.py"):
        found |= set(re.findall(r"""["'](TENANTRY_[A-Z0-9_]*[A-Z0-9])["']""", path.read_text()))
    for path in [*(REPO / "hack").glob("*.sh"), REPO / "Makefile"]:
        found |= set(re.findall(r"\$\{?(TENANTRY_[A-Z0-9_]*[A-Z0-9])", path.read_text()))
    for path in [*(REPO / "tests").rglob("*.py"), *(REPO / "bench").glob("*.py")]:
        found |= set(re.findall(r"""(?:environ\.get\(|getenv\(|environ\[)\s*["'](TENANTRY_[A-Z0-9_]*[A-Z0-9])["']""",
                                path.read_text()))
    return found


def test_the_code_reads_the_settings_this_test_expects() -> None:
    """The scan above finds what the settings code reads (guards the scan itself)."""
    found = code_settings()
    assert {"TENANTRY_RESYNC_SECONDS", "TENANTRY_RFC2136_ZONE", "TENANTRY_PORTAL_TITLE", "TENANTRY_SMTP_CA_FILE",
            "TENANTRY_DEBUG", "TENANTRY_KUBE_BIN", "TENANTRY_DEMO_SMTP_PORT", "TENANTRY_CHAOS_SEED"} <= found


@pytest.mark.parametrize("page", pages(), ids=name)
def test_every_documented_setting_exists(page: Path) -> None:
    found = code_settings()
    unknown = set()
    for documented in SETTING.findall(page.read_text()):
        if documented.endswith("*"):
            if not any(n.startswith(documented[:-1]) for n in found):
                unknown.add(documented)
        elif documented not in found:
            unknown.add(documented)
    assert unknown == set()


def test_every_setting_the_code_reads_is_in_settings_md() -> None:
    documented = set(SETTING.findall((DOCS / "settings.md").read_text()))
    assert code_settings() - documented == set()


# --- links ----------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\n]|\n(?!\n))*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", without_fences(page.read_text()), re.MULTILINE):
        base = slug(heading)
        out.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return out


def links(page: Path) -> Iterator[tuple[int, str]]:
    text = prose(page.read_text())
    for match in LINK.finditer(text):
        yield line_of(text, match.start()), match.group(1)


@pytest.mark.parametrize("page", pages(), ids=name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for line, target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        file = (page.parent / path_part).resolve() if path_part else page
        where = f"{name(page)}:{line}: {target}"
        if not file.exists():
            broken.append(f"{where}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{where}: no heading with that anchor in {file.name}")
    assert broken == []


def test_the_link_check_sees_links_and_anchors() -> None:
    assert slug("`make demo`: what to look at") == "make-demo-what-to-look-at"
    assert slug("Pod Security: what is enforced where") == "pod-security-what-is-enforced-where"
    readme = dict((target, line) for line, target in links(REPO / "README.md"))
    assert "docs/performance.md" in readme and "docs/README.md" in readme


# --- metrics -------------------------------------------------------------------------------------

def _tenant_facts() -> TenantFacts:
    """One tenant that has every series: all core features with limits and requests, a DNS
    conflict, a trial end, conditions."""
    features = {f: EffectiveFeature(True, {"limit": 10}) for f in ("chat", "files", "tables", "meetings", "scheduler")}
    return TenantFacts(tenant="m", partner="acme", company="M GmbH", plan="business", state="Active", seats=10,
                       mrr=100.0, currency="EUR", ready=True, active_users=5, requests=dict.fromkeys(features, 1),
                       features=features, quota_used={"cpu": 1.0, "pods": 2.0}, quota_hard={"cpu": 4.0, "pods": 20.0},
                       conditions={"Ready": "True"}, dns_conflict=True, trial_ends=1.8e9)


def code_families() -> dict[str, tuple[str, frozenset[str]]]:
    """Every family the operator exposes: name -> (type, label names)."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    exposition = TenantExposition()
    exposition.put(("acme", "m"), _tenant_facts())
    pipeline = PipelineCollector()
    pipeline.source = lambda: [DealFacts("acme", "Demo", 450.0, "EUR")]
    for family in [*text_string_to_metric_families(exposition.render().decode()), *pipeline.collect()]:
        labels = {label for sample in family.samples for label in sample.labels}
        out[family.name] = (family.type, frozenset(labels))
    for metric in vars(operator_metrics).values():
        if isinstance(metric, MetricWrapperBase):
            exposed = metric._name + ("_total" if metric._type == "counter" else "")
            out[exposed] = (metric._type, frozenset(metric._labelnames))
    return out


def test_the_families_read_from_the_code_are_complete() -> None:
    """Every family the tenant exposition declares got series in the sample above, and every
    metric defined anywhere in the package is one code_families knows."""
    families = code_families()
    declared = {n for n, _ in (*TENANT_FAMILIES, *PARTNER_FAMILIES, CONDITION_FAMILY)}
    assert declared <= set(families)
    defined = set()
    for path in (REPO / "operator" / "tenantry").rglob("*.py"):
        source = path.read_text()
        defined |= set(re.findall(r"(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*\"(tenantry_\w+)\"", source))
        defined |= set(re.findall(r"MetricFamily\(\s*\"(tenantry_\w+)\"", source))
    assert {n.removesuffix("_total") for n in defined} <= {n.removesuffix("_total") for n in families}


def documented_families() -> dict[str, tuple[str | None, frozenset[str]]]:
    """docs/metrics.md's tables of families: name -> (type if a column says it, label names)."""
    out: dict[str, tuple[str | None, frozenset[str]]] = {}
    header: list[str] = []
    for line in (DOCS / "metrics.md").read_text().splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not header:
            header = cells
            continue
        if "family" not in header or set(line) <= set("|-: "):
            continue
        family = re.fullmatch(r"`(tenantry_\w+)`", cells[header.index("family")])
        assert family, line
        kind = cells[header.index("type")] if "type" in header else None
        labels = frozenset(re.findall(r"`(\w+)`", cells[header.index("labels")]))
        assert family.group(1) not in out, f"{family.group(1)} is listed twice"
        out[family.group(1)] = (kind, labels)
    return out


def test_every_documented_family_exists_with_its_labels() -> None:
    code, documented = code_families(), documented_families()
    wrong = {}
    for family, (kind, labels) in documented.items():
        if family not in code:
            wrong[family] = "not in the code"
        elif labels != code[family][1]:
            wrong[family] = f"labels {sorted(labels)}, the code's {sorted(code[family][1])}"
        elif kind is not None and kind != code[family][0]:
            wrong[family] = f"a {kind}, the code's is a {code[family][0]}"
    assert wrong == {}


def test_every_family_the_code_exposes_is_documented() -> None:
    assert set(code_families()) - set(documented_families()) == set()


@pytest.mark.parametrize("page", pages(), ids=name)
def test_every_metric_named_in_the_docs_exists(page: Path) -> None:
    code = code_families()
    series = set(code) | {f"{n}{suffix}" for n, (kind, _) in code.items() if kind == "histogram"
                          for suffix in ("_bucket", "_sum", "_count")}
    text = page.read_text()
    unknown = set()
    for match in re.finditer(r"(?<![\w-])(tenantry_[a-z0-9_]*[a-z0-9])(\*|_\*)?", text):
        mentioned, wildcard = match.group(1), match.group(2)
        if wildcard:
            if not any(n.startswith(mentioned) for n in series):
                unknown.add(mentioned + wildcard)
        elif mentioned not in series and not (page.name == "metrics.md" and mentioned in REMOVED_FAMILIES):
            unknown.add(mentioned)
    assert unknown == set()
    assert REMOVED_FAMILIES.isdisjoint(code), "a family listed as removed is back: update docs/metrics.md"


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_every_alert_is_in_the_alert_table_with_its_audience_and_wait() -> None:
    table = {}
    for line in (DOCS / "metrics.md").read_text().splitlines():
        row = re.match(r"\| `(Tenant\w+)` \| (\w+)[^|]*\|[^|]*\| (\w+) \|$", line)
        if row:
            table[row.group(1)] = (row.group(2), row.group(3))
    alerts = {rule["alert"]: (rule["labels"]["audience"], rule["for"]) for rule in rules() if "alert" in rule}
    assert table == alerts


def test_every_recording_rule_named_exists_and_every_one_is_named() -> None:
    records = {rule["record"] for rule in rules() if "record" in rule}
    named = set()
    for page in pages():
        named |= set(re.findall(r"(?<![\w-])(tenantry:[a-z0-9_:]*[a-z0-9_])(?![\w-])", page.read_text()))
    assert named - records == set()
    assert records - set(re.findall(r"tenantry:[a-z0-9_:]*[a-z0-9_]", (DOCS / "metrics.md").read_text())) == set()
