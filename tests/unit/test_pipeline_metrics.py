"""The pipeline metrics (tenantry.metrics.pipeline), without a cluster.

Tested here: expected MRR summed by partner, stage and currency (EUR and USD apart); deals counted
by stage with every stage present for a partner that has deals; an unknown stage never becomes a
label; the collector's exposition parses back with Prometheus' own parser.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.metrics.pipeline import DealFacts, PipelineCollector, pipeline_sums

DEALS = [DealFacts("acme", "Demo", 400.0, "EUR"), DealFacts("acme", "Demo", 600.0, "EUR"),
         DealFacts("acme", "Demo", 100.0, "USD"), DealFacts("beta", "Negotiation", 2000.0, "EUR"),
         DealFacts("acme", "Lost", 999.0, "EUR")]


def test_sums_by_partner_stage_and_currency() -> None:
    mrr, count = pipeline_sums(DEALS)
    assert mrr == {("acme", "Demo", "EUR"): 1000.0, ("acme", "Demo", "USD"): 100.0,
                   ("beta", "Negotiation", "EUR"): 2000.0}
    assert count[("acme", "Demo")] == 3 and count[("acme", "Discovery")] == 0
    assert count[("beta", "Negotiation")] == 1 and ("acme", "Lost") not in count


def test_collector_exposition_parses_back() -> None:
    collector = PipelineCollector()
    collector.source = lambda: DEALS
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("tenantry_partner_pipeline_mrr", (("currency", "EUR"), ("partner", "acme"), ("stage", "Demo")))] \
        == 1000.0
    assert samples[("tenantry_partner_pipeline_deals", (("partner", "beta"), ("stage", "Demo")))] == 0.0


def test_made_up_currencies_cannot_flood_the_labels() -> None:
    flood = [DealFacts("acme", "Demo", 1.0, f"Q{chr(65 + i // 26)}{chr(65 + i % 26)}") for i in range(200)]
    mrr, _ = pipeline_sums(flood)
    assert len(mrr) == 6  # five currencies and "other"
    assert mrr[("acme", "Demo", "other")] == 195.0
