"""Which namespace `tenantry report` and `status --partner X` take as partner X's when the
credentials are the partner's own (they may not list namespaces), without a cluster: a FakeClient
stands in for lightkube's Client (the Tenants and Namespaces it holds, and what RBAC refuses).

Tested here:
- a readable namespace that is empty, or holds only unreconciled Tenants, is not taken as the
  partner's unless it carries tenantry.dev/partner=X (and is no tenant's namespace) or is partner-X
- when the namespace itself cannot be read: only partner-X, or a namespace whose Tenants' status
  names partner X
- otherwise the error says where it looked and why each was passed over, and suggests -n
"""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.core_v1 import Namespace

from tenantry.cli import views


def _error(code: int) -> ApiError:
    return ApiError(status=Status(code=code, message="refused" if code == 403 else "not found"))


class FakeClient:
    """Stands in for lightkube's Client: Tenants by namespace, Namespaces' labels (None: the
    credentials may not get that namespace), and namespaces whose Tenants may not be listed."""

    def __init__(self, tenants: dict[str, list[dict[str, Any]]], labels: dict[str, dict[str, str] | None],
                 refused: frozenset[str] = frozenset()) -> None:
        self.tenants, self.labels, self.refused = tenants, labels, refused
        self.namespace = "default"

    def list(self, kind: Any, namespace: str | None = None, labels: Any = None, fields: Any = None) -> list[Any]:
        if kind is Namespace or namespace == "*" or namespace in self.refused:
            raise _error(403)  # a partner's own token lists neither namespaces nor every namespace's Tenants
        return [type("T", (), {"to_dict": lambda self, b=b: b})() for b in self.tenants.get(namespace or "", [])]

    def get(self, kind: Any, name: str) -> Any:
        assert kind is Namespace
        if name not in self.labels:
            raise _error(404)
        if self.labels[name] is None:
            raise _error(403)
        return Namespace.from_dict({"metadata": {"name": name, "labels": self.labels[name]}})


def tenant(namespace: str, name: str, partner: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"company": name},
            "status": {"partner": partner} if partner else {}}


def names(found: list[dict[str, Any]]) -> list[str]:
    return [b["metadata"]["name"] for b in found]


def test_an_empty_or_unreconciled_namespace_is_not_taken_as_the_partners() -> None:
    client = FakeClient({"scratch": [], "staging": [tenant("staging", "fresh")],
                         "partner-acme": [tenant("partner-acme", "mustermann", "acme")]},
                        {"scratch": {}, "staging": {"tenantry.dev/partner": "beta"}, "partner-acme": None})
    found = views._tenants(client, "acme", None, own=["scratch", "staging"])  # type: ignore[arg-type]
    assert names(found) == ["mustermann"]


def test_a_namespace_labelled_as_the_partners_is_taken_whatever_its_name() -> None:
    client = FakeClient({"acme-prod": [], "tenant-x": []},
                        {"acme-prod": {"tenantry.dev/partner": "acme"},
                         "tenant-x": {"tenantry.dev/partner": "acme", "tenantry.dev/tenant": "x"}},
                        refused=frozenset({"partner-acme"}))
    assert views._tenants(client, "acme", None, own=["tenant-x", "acme-prod"]) == []  # type: ignore[arg-type]
    with pytest.raises(views.ScopeProblem):  # a tenant's namespace is not the partner's
        views._tenants(client, "acme", None, own=["tenant-x"])  # type: ignore[arg-type]


def test_without_reading_namespaces_only_the_name_or_the_tenants_status_count() -> None:
    client = FakeClient({"acme-prod": [tenant("acme-prod", "mustermann", "acme")], "mine": [tenant("mine", "new")]},
                        {"acme-prod": None, "mine": None})
    assert names(views._tenants(client, "acme", None, own=["mine", "acme-prod"])) == ["mustermann"]  # type: ignore[arg-type]


def test_nothing_found_says_where_it_looked_and_suggests_n() -> None:
    client = FakeClient({"scratch": [], "mine": [tenant("mine", "new")]}, {"scratch": {}, "mine": None},
                        refused=frozenset({"partner-acme"}))
    with pytest.raises(views.ScopeProblem) as problem:
        views._tenants(client, "acme", None, own=["scratch", "mine"])  # type: ignore[arg-type]
    message = str(problem.value)
    assert "scratch (not labelled tenantry.dev/partner=acme)" in message
    assert "mine (no Tenant whose status names partner 'acme'" in message
    assert "partner-acme (refused)" in message and "-n <namespace>" in message


def test_without_partner_the_first_readable_namespace_is_taken_as_before() -> None:
    client = FakeClient({"scratch": []}, {"scratch": {}})
    assert views._tenants(client, None, None, own=["scratch"]) == []  # type: ignore[arg-type]
