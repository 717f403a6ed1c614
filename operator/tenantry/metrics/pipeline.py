"""The partners' sales pipeline as metrics, read from the Deals in memory at each scrape.

Deals are few (tens per partner) and change rarely, so they are summed when Prometheus asks,
not kept as pre-rendered lines like the tenants' series. With shards, each replica exports the
partners of the shards it holds, as it does for their tenants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tenantry.api.deal import STAGES

MAX_CURRENCIES = 5  # per partner, in the pipeline metrics


@dataclass(frozen=True)
class DealFacts:
    partner: str
    stage: str
    monthly: float
    currency: str


def pipeline_sums(deals: Iterable[DealFacts]) -> tuple[dict[tuple[str, str, str], float], dict[tuple[str, str], int]]:
    """(expected MRR by partner, stage and currency; deals by partner and stage, every stage present)."""
    mrr: dict[tuple[str, str, str], float] = {}
    count: dict[tuple[str, str], int] = {}
    currencies: dict[str, set[str]] = {}
    for deal in deals:
        if deal.stage not in STAGES:
            continue  # not one the CRD accepts: never an unbounded label
        for stage in STAGES:
            count.setdefault((deal.partner, stage), 0)
        count[(deal.partner, deal.stage)] += 1
        # A partner's currencies are few; any beyond the first MAX_CURRENCIES seen go under "other",
        # so a flood of made-up codes cannot make thousands of series.
        seen = currencies.setdefault(deal.partner, set())
        if deal.currency not in seen and len(seen) >= MAX_CURRENCIES:
            currency = "other"
        else:
            seen.add(deal.currency)
            currency = deal.currency
        key = (deal.partner, deal.stage, currency)
        mrr[key] = mrr.get(key, 0.0) + deal.monthly
    return mrr, count


class PipelineCollector(Collector):
    """Registered once; `source` is set by the running operator (empty until then)."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[DealFacts]] = lambda: ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        mrr, count = pipeline_sums(self.source())
        expected = GaugeMetricFamily("tenantry_partner_pipeline_mrr", "Expected monthly revenue of open deals.",
                                     labels=["partner", "stage", "currency"])
        for (partner, stage, currency), value in sorted(mrr.items()):
            expected.add_metric([partner, stage, currency], value)
        deals = GaugeMetricFamily("tenantry_partner_pipeline_deals", "Open deals by stage.",
                                  labels=["partner", "stage"])
        for (partner, stage), value in sorted(count.items()):
            deals.add_metric([partner, stage], value)
        yield expected
        yield deals


PIPELINE = PipelineCollector()
REGISTRY.register(PIPELINE)
