"""Prometheus metrics of the operator (served on /metrics)."""
