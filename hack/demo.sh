#!/usr/bin/env bash
# `make demo`: CRDs + the example tenants repository on the local control plane, then the operator
# in the foreground. Ctrl-C stops the operator; `make cluster-down` removes the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local  # the kubeconfigs written below live here, even when the cluster lives elsewhere
# Always the local control plane `make cluster` started (.local/kubeconfig, or the one inside
# TENANTRY_CLUSTER_DIR), never whatever cluster the shell's KUBECONFIG points at.
KUBECONFIG=$(.venv/bin/python -c 'from tenantry.devtools.cluster import default_cluster; print(default_cluster().kubeconfig)')
export KUBECONFIG
PORT=${TENANTRY_METRICS_PORT:-8080}
PORTAL_PORT=${TENANTRY_PORTAL_PORT:-8088}
PROMETHEUS_PORT=${TENANTRY_DEMO_PROMETHEUS_PORT:-9090}
SMTP_PORT=${TENANTRY_DEMO_SMTP_PORT:-2525}
# Every port the demo serves on must be free: a helper that cannot bind would quit, and the demo
# would point at it all the same.
for port in "$PORT" "$PORTAL_PORT" "$PROMETHEUS_PORT" "$SMTP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "make demo: port $port is in use by another program: stop it, or choose other ports with" \
      "TENANTRY_METRICS_PORT, TENANTRY_PORTAL_PORT, TENANTRY_DEMO_PROMETHEUS_PORT and TENANTRY_DEMO_SMTP_PORT" >&2
    exit 1
  fi
done
# A helper started in the background is up once its port answers; one that quit says why.
wait_for_port() {  # name pid port log
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "make demo: $1 quit while starting; the end of $4:" >&2
      tail -n 20 "$4" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "make demo: $1 did not answer on port $3 within a minute; see $4" >&2
  exit 1
}

kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
# Namespaces first (platform and partners), then what lives in them, as a GitOps tool would.
kubectl apply -f examples/tenants/platform/00-namespace.yaml -f examples/tenants/partners/ >/dev/null
# The chart's RBAC and its partners (namespace, GitOps ServiceAccount, Role); the operator runs
# as the chart's own ServiceAccount, with exactly the rights a Helm install gives it.
OPERATOR_KUBECONFIG=$(.venv/bin/python -m tenantry.devtools.chart --kubeconfig "$KUBECONFIG" \
  --partners acme-it,nordlicht-digital,sued-cloud --out "$PWD/.local/operator.kubeconfig")
# What the platform sets per partner (a partner cannot edit its namespace): its commission rate and target.
kubectl annotate namespace partner-acme-it tenantry.dev/commission-rate=0.25 tenantry.dev/quarterly-target=15000 \
  tenantry.dev/email-from-domains=acme-it.example --overwrite >/dev/null
kubectl apply -R -f examples/tenants/platform/ -f examples/tenants/tenants/
# Sample usage and 35 days of sample history for the portal, clearly not real: status.usage of
# each example tenant, and a Prometheus (Debian package) whose backfilled series carry
# source="sample-history"; it scrapes the operator from now on.
.venv/bin/python -m tenantry.devtools.samplehistory --tenants examples/tenants/tenants --report-usage
rm -rf .local/prometheus && mkdir -p .local/prometheus
.venv/bin/python -m tenantry.devtools.samplehistory --tenants examples/tenants/tenants --out .local/prometheus/data
cat > .local/prometheus/prometheus.yml <<PROMETHEUS
global: {scrape_interval: 15s, evaluation_interval: 15s}
rule_files: [$PWD/charts/tenantry/rules/tenantry-rules.yaml]
scrape_configs: [{job_name: tenantry, static_configs: [{targets: ["127.0.0.1:${PORT}"]}]}]
PROMETHEUS
children=()
trap 'kill "${children[@]}" 2>/dev/null || true' EXIT
prometheus --config.file=.local/prometheus/prometheus.yml --storage.tsdb.path=.local/prometheus/data \
  --storage.tsdb.retention.time=90d --web.listen-address=127.0.0.1:${PROMETHEUS_PORT} \
  >.local/prometheus/prometheus.log 2>&1 &
children+=($!)
wait_for_port Prometheus $! "$PROMETHEUS_PORT" .local/prometheus/prometheus.log
# A local mail catcher (aiosmtpd) as the SMTP relay: the welcome e-mails land in .local/mail/ as .eml files.
mkdir -p .local/mail  # kept across runs: a tenant welcomed once is not welcomed again
.venv/bin/python -m tenantry.devtools.mailcatcher --port "$SMTP_PORT" --folder .local/mail >.local/mailcatcher.log 2>&1 &
children+=($!)
wait_for_port "the mail catcher" $! "$SMTP_PORT" .local/mailcatcher.log
# The partner portal, as the chart's portal ServiceAccount (read-only, TokenReview, SubjectAccessReview).
PORTAL_KUBECONFIG=$PWD/.local/portal.kubeconfig
.venv/bin/python - "$KUBECONFIG" "$PORTAL_KUBECONFIG" <<'PYTHON'
import sys
from pathlib import Path
from tenantry.devtools import chart
chart.service_account_kubeconfig(Path(sys.argv[1]), "tenantry-system", "tenantry-portal", Path(sys.argv[2]))
PYTHON
KUBECONFIG=$PORTAL_KUBECONFIG TENANTRY_PORTAL_PORT=$PORTAL_PORT TENANTRY_PORTAL_ADDRESS=127.0.0.1 \
  TENANTRY_PORTAL_SECURE_COOKIE=false TENANTRY_PORTAL_PROMETHEUS_URL=http://127.0.0.1:${PROMETHEUS_PORT} \
  TENANTRY_PLATFORM_DOMAIN=${TENANTRY_PLATFORM_DOMAIN:-platform.example} \
  .venv/bin/python -m tenantry.portal >.local/portal.log 2>&1 &
children+=($!)
wait_for_port "the portal" $! "$PORTAL_PORT" .local/portal.log

cat <<INFO | tee .local/demo.txt

  tenantry demo: 3 partners, 14 tenants (one on trial), 4 deals, 3 plans on a local Kubernetes $(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v1\.[0-9.]*\)".*/\1/p' | tail -1)
  The operator starts below (metrics on http://127.0.0.1:${PORT}/metrics). In another terminal:

    export KUBECONFIG=${KUBECONFIG}
    kubectl get tenantry -A                      # every Tenant, Branding and FeatureSet
    kubectl get tenants -A                       # Partner, State, Plan, Seats, Ready, URL
    kubectl wait --for=condition=Ready tenant/mustermann -n partner-acme-it
    kubectl describe tenant kanzlei-weber -n partner-acme-it     # Suspended: conditions, events
    kubectl get deals -n partner-acme-it         # the sales pipeline (kubectl get tenants -o wide: Trial-Ends)
    kubectl get ns -l tenantry.dev/partner=acme-it --show-labels
    kubectl auth can-i create tenants -n partner-nordlicht-digital \\
      --as=system:serviceaccount:partner-acme-it:tenantry-gitops    # no: partners are kept apart
    kubectl get quota,limitrange,networkpolicy,rolebinding -n tenant-mustermann
    kubectl explain tenant.spec.plan
    kubectl patch tenant mustermann -n partner-acme-it --type=merge -p '{"spec":{"plan":{"seats":800}}}'
    kubectl get quota tenantry-quota -n tenant-mustermann -o jsonpath='{.spec.hard}'
    curl -s 127.0.0.1:${PORT}/metrics | grep tenantry_

  The partner portal: http://127.0.0.1:${PORTAL_PORT}/login  (sample usage and history, not real data)
  Log in as partner acme-it with its GitOps ServiceAccount's token:
    kubectl create token tenantry-gitops -n partner-acme-it
  Prometheus (scrapes the operator; 35 days of sample history): http://127.0.0.1:${PROMETHEUS_PORT}
  Welcome e-mails (to each new Active tenant's contact and admins) are caught, not delivered:
    ls $PWD/.local/mail/        # one .eml per message: open it in any mail program
    .venv/bin/tenantry status mustermann   # the go-live checklist, WelcomeSent among it
    kubectl annotate tenant mustermann -n partner-acme-it tenantry.dev/resend-welcome=\$(date +%s)   # once more

  Ctrl-C stops the operator; 'make cluster-down' removes the control plane.
  (These lines are kept in .local/demo.txt: the operator's log below scrolls them away.)

INFO
export TENANTRY_PLATFORM_DOMAIN=${TENANTRY_PLATFORM_DOMAIN:-platform.example}
export TENANTRY_METRICS_PORT=$PORT TENANTRY_METRICS_ADDRESS=127.0.0.1
export TENANTRY_SMTP_HOST=127.0.0.1 TENANTRY_SMTP_PORT=$SMTP_PORT TENANTRY_SMTP_TLS=none \
  TENANTRY_SMTP_FROM=welcome@${TENANTRY_PLATFORM_DOMAIN}
# The demo's "once more" resends at once (the default waits 10 minutes after the last sending).
export TENANTRY_WELCOME_RESEND_COOLDOWN_SECONDS=${TENANTRY_WELCOME_RESEND_COOLDOWN_SECONDS:-5}
KUBECONFIG=$OPERATOR_KUBECONFIG .venv/bin/python -m tenantry
