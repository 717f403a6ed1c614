"""Grafana dashboards as code (grafana-foundation-sdk); the JSON is committed in the chart."""
