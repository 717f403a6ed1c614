"""Sample usage history for the demo and the portal tests, clearly labelled as such.

A fresh Prometheus knows minutes, not months; the portal's trends (MRR over 30 days, the seat
forecast, inactivity over 7 days) need history. This writes 35 days of the operator's own series
for given tenants, each sample labelled `source="sample-history"`, and turns them into TSDB blocks
with promtool (`promtool tsdb create-blocks-from openmetrics`), for a Prometheus data folder
before it starts. Live scrapes of the operator then continue the series.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOUR = 3600
SOURCE = 'source="sample-history"'


@dataclass(frozen=True)
class SampleTenant:
    partner: str
    tenant: str
    company: str
    plan: str
    state: str  # the state over the whole history
    currency: str
    mrr_then: float  # 35 days ago ...
    mrr_now: float  # ... and one hour ago, linear in between
    users_then: int
    users_now: int


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _times(now: float, days: int = 35) -> list[float]:
    """Hourly over `days`, and every minute for 20 minutes around 30 days ago (where `offset 30d` looks)."""
    end = now - HOUR
    hourly = [end - i * HOUR for i in range(days * 24, -1, -1)]
    dense = [now - 30 * 24 * HOUR + m * 60 for m in range(-10, 11)]
    return sorted(set(hourly) | set(dense))


def openmetrics(tenants: list[SampleTenant], now: float) -> str:
    """The samples as OpenMetrics text (families in order, samples by time, `# EOF` at the end)."""
    times = _times(now)
    first, last = times[0], times[-1]
    families: dict[str, list[str]] = {"tenantry_tenant_mrr": [], "tenantry_tenant_active_users": [],
                                      "tenantry_tenant_info": []}
    for t in tenants:
        key = f'partner="{_escape(t.partner)}",tenant="{_escape(t.tenant)}",{SOURCE}'
        info = (f'{key},company="{_escape(t.company)}",plan="{_escape(t.plan)}",state="{_escape(t.state)}",'
                f'tier="sample"')
        for when in times:
            share = (when - first) / (last - first)
            families["tenantry_tenant_mrr"].append(
                f'tenantry_tenant_mrr{{{key},currency="{_escape(t.currency)}"}} '
                f"{t.mrr_then + (t.mrr_now - t.mrr_then) * share:.2f} {when:.0f}")
            families["tenantry_tenant_active_users"].append(
                f"tenantry_tenant_active_users{{{key}}} {round(t.users_then + (t.users_now - t.users_then) * share)} "
                f"{when:.0f}")
            families["tenantry_tenant_info"].append(f"tenantry_tenant_info{{{info}}} 1 {when:.0f}")
    # The partner's MRR of Active customers per currency, as the operator exposes it (tenantry_partner_mrr).
    partners: dict[tuple[str, str], list[SampleTenant]] = {}
    for t in tenants:
        partners.setdefault((t.partner, t.currency), []).append(t)
    for (partner, currency), members in partners.items():
        for when in times:
            share = (when - first) / (last - first)
            total = sum(t.mrr_then + (t.mrr_now - t.mrr_then) * share for t in members if t.state == "Active")
            families.setdefault("tenantry_partner_mrr", []).append(
                f'tenantry_partner_mrr{{currency="{_escape(currency)}",partner="{_escape(partner)}",{SOURCE}}} '
                f"{total:.2f} {when:.0f}")
    lines = []
    for name, samples in families.items():
        if samples:
            lines += [f"# HELP {name} Sample history (not real usage).", f"# TYPE {name} gauge", *samples]
    return "\n".join([*lines, "# EOF", ""])


def write_blocks(tenants: list[SampleTenant], data_dir: Path, now: float) -> None:
    """TSDB blocks of the sample history in `data_dir` (a Prometheus that has not started yet)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".om", delete=False) as source:
        source.write(openmetrics(tenants, now))
    try:
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", source.name,
                        str(data_dir)], check=True, capture_output=True, text=True, timeout=300)
    finally:
        Path(source.name).unlink()


def _example_tenants(folder: Path) -> list[tuple[str, dict]]:
    """(partner, Tenant) of every Tenant document under the examples' tenants/ folder."""
    import yaml

    found = []
    for path in sorted(folder.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Tenant":
                found.append((path.parent.name, doc))
    return found


def _shrank(slug: str) -> bool:
    """A made-up but plausible past: revenue and users grew, about one customer in five shrank."""
    return sum(map(ord, slug)) % 5 == 0


def sample_usage(tenant: dict) -> dict:
    """This period's usage of an example tenant (status.usage), derived from its seats and plan."""
    seats = int(tenant["spec"]["plan"]["seats"])
    users = 0 if tenant["spec"].get("state") == "Suspended" else int(seats * (0.5 if _shrank(
        tenant["metadata"]["name"]) else 0.75))
    return {"activeUsers": users, "requests": {"chat": users * 180, "tables": users // 4},
            # Now: the go-live checklist's FirstUsageReported must not predate the tenant.
            "reportedAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def main(argv: list[str] | None = None) -> int:
    """The demo's sample usage and history for its example tenants (python -m tenantry.devtools.samplehistory)."""
    import json
    import time

    parser = argparse.ArgumentParser(prog="python -m tenantry.devtools.samplehistory")
    parser.add_argument("--tenants", type=Path, required=True, help="the examples' tenants/ folder")
    parser.add_argument("--out", type=Path, help="a Prometheus data folder: write the history there")
    parser.add_argument("--report-usage", action="store_true",
                        help="patch each Tenant's status.usage with sample numbers (kubectl, $KUBECONFIG)")
    args = parser.parse_args(argv)
    tenants = _example_tenants(args.tenants)
    if args.report_usage:
        for _, doc in tenants:
            subprocess.run(["kubectl", "patch", "tenant", doc["metadata"]["name"], "-n", doc["metadata"]["namespace"],
                            "--subresource=status", "--type=merge", "-p",
                            json.dumps({"status": {"usage": sample_usage(doc)}})],
                           check=True, capture_output=True, text=True, timeout=60)
        print(f"sample usage (not real) reported for {len(tenants)} tenants")
    if args.out:
        found = []
        for partner, doc in tenants:
            spec = doc["spec"]
            price, seats = spec["plan"].get("price") or {}, int(spec["plan"]["seats"])
            shrank, mrr = _shrank(doc["metadata"]["name"]), float(price.get("monthly", 0.0))
            found.append(SampleTenant(partner, doc["metadata"]["name"], spec["company"], spec["plan"]["featureSet"],
                                      spec.get("state", "Active"), price.get("currency", "EUR"),
                                      mrr * (1.25 if shrank else 0.8), mrr, int(seats * (0.7 if shrank else 0.4)),
                                      sample_usage(doc)["activeUsers"]))
        write_blocks(found, args.out, time.time())
        print(f"sample history (not real) for {len(found)} tenants in {args.out}, labelled {SOURCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
