#!/usr/bin/env bash
# `make demo`: CRDs + the example tenants repository on the local control plane, then the operator
# in the foreground. Ctrl-C stops the operator; `make cluster-down` removes the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
# Always the local control plane, never whatever cluster the shell's KUBECONFIG points at.
export KUBECONFIG=$PWD/.local/kubeconfig
PORT=${TENANTRY_METRICS_PORT:-8080}

kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
# Namespaces first (platform and partners), then what lives in them, as a GitOps tool would.
kubectl apply -f examples/tenants/platform/00-namespace.yaml -f examples/tenants/partners/ >/dev/null
# The chart's RBAC and its partners (namespace, GitOps ServiceAccount, Role); the operator runs
# as the chart's own ServiceAccount, with exactly the rights a Helm install gives it.
OPERATOR_KUBECONFIG=$(.venv/bin/python -m tenantry.devtools.chart --kubeconfig "$KUBECONFIG" \
  --partners acme-it,nordlicht-digital,sued-cloud --out "$PWD/.local/operator.kubeconfig")
kubectl apply -R -f examples/tenants/platform/ -f examples/tenants/tenants/

cat <<INFO

  tenantry demo: 3 partners, 13 tenants, 3 plans on a local Kubernetes $(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v1\.[0-9.]*\)".*/\1/p' | tail -1)
  The operator starts below (metrics on http://127.0.0.1:${PORT}/metrics). In another terminal:

    export KUBECONFIG=${KUBECONFIG}
    kubectl get tenantry -A                      # every Tenant, Branding and FeatureSet
    kubectl get tenants -A                       # Partner, State, Plan, Seats, Ready, URL
    kubectl wait --for=condition=Ready tenant/mustermann -n partner-acme-it
    kubectl describe tenant kanzlei-weber -n partner-acme-it     # Suspended: conditions, events
    kubectl get ns -l tenantry.dev/partner=acme-it --show-labels
    kubectl auth can-i create tenants -n partner-nordlicht-digital \\
      --as=system:serviceaccount:partner-acme-it:tenantry-gitops    # no: partners are kept apart
    kubectl get quota,limitrange,networkpolicy,rolebinding -n tenant-mustermann
    kubectl explain tenant.spec.plan
    kubectl patch tenant mustermann -n partner-acme-it --type=merge -p '{"spec":{"plan":{"seats":800}}}'
    kubectl get quota tenantry-quota -n tenant-mustermann -o jsonpath='{.spec.hard}'
    curl -s 127.0.0.1:${PORT}/metrics | grep tenantry_

  Ctrl-C stops the operator; 'make cluster-down' removes the control plane.

INFO
export TENANTRY_PLATFORM_DOMAIN=${TENANTRY_PLATFORM_DOMAIN:-platform.example}
export TENANTRY_METRICS_PORT=$PORT TENANTRY_METRICS_ADDRESS=127.0.0.1
KUBECONFIG=$OPERATOR_KUBECONFIG exec .venv/bin/python -m tenantry
