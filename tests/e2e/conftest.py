"""The e2e tests use the integration fixtures (real control plane and operator) plus a real Prometheus."""

from tests.integration.conftest import cluster, operator, operator_kubeconfig, other_partner, partner  # noqa: F401
