#!/usr/bin/env bash
# The chart with the operator image on a kind cluster: one job of .github/workflows/ci.yaml per
# supported Kubernetes minor. Needs kubectl and helm on PATH, a kind cluster as the current context,
# and the image (IMAGE=repository:tag) loaded into its nodes. Each step fails the job:
#   1. helm install: both operator pods Running and Ready on their nodes, `helm test` passes
#   2. a Tenant made by a partner (as its GitOps ServiceAccount) gets its namespace, labelled for
#      Pod Security `restricted`
#   3. the admission webhook (served by the leader through the Service) refuses a second partner's
#      Tenant with a slug that is taken
#   4. Pod Security Admission enforces `restricted` in the tenant's namespace: a privileged pod is
#      refused, a restricted one accepted (server-side dry runs)
#   5. leader fail-over: the leader pod is killed (no grace), the standby takes the Lease, labels
#      itself leader, and the webhook and reconcile work through it
set -euo pipefail

IMAGE=${IMAGE:?IMAGE=repository:tag of the image loaded into kind}
NS=tenantry-system
OPERATOR=(-n "$NS" -l "app.kubernetes.io/name=tenantry,app.kubernetes.io/component=operator")
A=partner-acme-it
B=partner-sued-cloud
as_partner() { local ns=$1; shift; kubectl --as="system:serviceaccount:$ns:tenantry-gitops" "$@"; }
step() { echo "::endgroup::"; echo "::group::$*"; }
fail() { echo "::error::$*"; exit 1; }
echo "::group::start"

tenant() {  # tenant NAME: a minimal Tenant on the platform's "business" plan
  cat <<EOF
apiVersion: tenantry.dev/v1alpha1
kind: Tenant
metadata: {name: $1}
spec:
  company: E2E $1 GmbH
  contact: {name: Erika Musterfrau, email: erika@$1.example, phone: "+49 30 1234567"}
  plan: {featureSet: business, seats: 10, price: {monthly: 100, currency: EUR}}
  admins: [erika@$1.example]
EOF
}

leader() { kubectl -n "$NS" get lease tenantry-leader -o jsonpath='{.spec.holderIdentity}'; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 2
  done
}

step "1. helm install, pods running, helm test"
kubectl version
helm version
helm install tenantry charts/tenantry --namespace "$NS" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set operator.platformDomain=platform.example --set replicas=2 \
  --set 'partners[0].id=acme-it' --set 'partners[1].id=sued-cloud' \
  --wait --timeout 5m
kubectl -n "$NS" rollout status deployment/tenantry --timeout=5m
kubectl wait "${OPERATOR[@]}" --for=condition=Ready pod --timeout=5m
kubectl get "${OPERATOR[@]}" pods -o wide
running=$(kubectl get "${OPERATOR[@]}" pods --field-selector=status.phase=Running -o name | wc -l)
[[ $running == 2 ]] || fail "expected 2 operator pods Running, found $running"
wait_for 180 "a leader" test -n "$(leader)"
echo "leader: $(leader)"
wait_for 120 "the leader's role label" \
  test "$(kubectl -n "$NS" get pod "$(leader)" -o jsonpath='{.metadata.labels.tenantry\.dev/role}')" = leader
helm test tenantry --namespace "$NS" --logs --timeout 5m

step "2. a partner's Tenant gets its namespace, Pod Security restricted"
kubectl apply -f examples/tenants/platform/featuresets.yaml -f examples/tenants/platform/branding.yaml
tenant e2e-one | as_partner "$A" apply -n "$A" -f -
kubectl -n "$A" wait tenant/e2e-one --for=condition=NamespaceReady --timeout=3m
kubectl get namespace tenant-e2e-one --show-labels
[[ $(kubectl get namespace tenant-e2e-one -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') \
  == restricted ]] || fail "tenant-e2e-one is not labelled pod-security.kubernetes.io/enforce=restricted"

step "3. the admission webhook refuses a taken slug"
if out=$(tenant e2e-one | as_partner "$B" apply -n "$B" -f - 2>&1); then
  fail "a second partner could create Tenant e2e-one (the webhook let it through): $out"
fi
echo "$out"
grep -q 'admission webhook' <<<"$out" || fail "refused, but not by the admission webhook: $out"
grep -q "$A" <<<"$out" && fail "the refusal names the partner holding the slug: $out"

step "4. Pod Security Admission enforces restricted in the tenant namespace"
if out=$(kubectl -n tenant-e2e-one run privileged --image="$IMAGE" --restart=Never --privileged \
           --dry-run=server -o name 2>&1); then
  fail "a privileged pod was admitted to tenant-e2e-one: $out"
fi
echo "$out"
grep -q 'violates PodSecurity' <<<"$out" || fail "refused, but not by Pod Security: $out"
kubectl -n tenant-e2e-one apply --dry-run=server -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: restricted}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: app
      image: $IMAGE
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
EOF

step "5. leader fail-over"
old=$(leader)
kubectl -n "$NS" delete pod "$old" --grace-period=0 --force --wait=false
wait_for 180 "a new leader" bash -c "h=\$(kubectl -n $NS get lease tenantry-leader -o jsonpath='{.spec.holderIdentity}'); \
  test -n \"\$h\" && test \"\$h\" != $old"
new=$(leader)
echo "leader: $old -> $new"
wait_for 120 "the new leader's role label" \
  test "$(kubectl -n "$NS" get pod "$new" -o jsonpath='{.metadata.labels.tenantry\.dev/role}')" = leader
kubectl -n "$NS" rollout status deployment/tenantry --timeout=5m
# The webhook answers through the new leader, and the new leader reconciles.
if out=$(tenant e2e-one | as_partner "$B" apply -n "$B" -f - 2>&1); then
  fail "after the fail-over a second partner could create Tenant e2e-one: $out"
fi
grep -q 'admission webhook' <<<"$out" || fail "after the fail-over, refused but not by the webhook: $out"
tenant e2e-two | as_partner "$B" apply -n "$B" -f -
kubectl -n "$B" wait tenant/e2e-two --for=condition=NamespaceReady --timeout=3m
echo "::endgroup::"
echo "kind e2e: every step passed"
