{{/*
The chart's name: nameOverride, else "tenantry" (the label app.kubernetes.io/name).
*/}}
{{- define "tenantry.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The base name of every object: fullnameOverride; else the release name when it already contains the
chart's name, else "<release>-<name>"; at most 63 characters (a DNS label, the longest object name
some kinds allow).
*/}}
{{- define "tenantry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "tenantry.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Chart name and version, as the label helm.sh/chart wants it. */}}
{{- define "tenantry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The labels of every object: (list $ "<component>") or (list $ "<component>" "<name label>").
The standard app.kubernetes.io/ labels (component: operator, webhook, portal, rbac, partner,
monitoring, crds, test), then commonLabels, which never replace a standard one.
*/}}
{{- define "tenantry.labels" -}}
{{- $root := index . 0 -}}
{{- $labels := dict
  "helm.sh/chart" (include "tenantry.chart" $root)
  "app.kubernetes.io/name" (include "tenantry.name" $root)
  "app.kubernetes.io/instance" $root.Release.Name
  "app.kubernetes.io/component" (index . 1)
  "app.kubernetes.io/part-of" "tenantry"
  "app.kubernetes.io/version" ($root.Chart.AppVersion | toString)
  "app.kubernetes.io/managed-by" $root.Release.Service -}}
{{- if gt (len .) 2 }}{{ $_ := set $labels "app.kubernetes.io/name" (index . 2) }}{{ end -}}
{{- include "tenantry.checkLabels" (list "commonLabels" $root.Values.commonLabels) -}}
{{- toYaml (merge $labels (deepCopy ($root.Values.commonLabels | default dict))) -}}
{{- end -}}

{{/*
Fails when labels given in values ((list "<value name>" <map>): commonLabels, podLabels) have a key
under tenantry.dev/: those are the operator's (tenantry.dev/partner on partner namespaces, /tenant,
/role=leader, which the operator's Service selects). values.schema.json refuses them too; this
holds when the schema is skipped.
*/}}
{{- define "tenantry.checkLabels" -}}
{{- $value := index . 0 -}}
{{- range $key, $_ := index . 1 | default dict -}}
{{- if hasPrefix "tenantry.dev/" $key -}}
{{- fail (printf "%s: %q: labels under tenantry.dev/ are the operator's and cannot be set here" $value $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The labels that pick the operator's pods (Deployment selector, Service, NetworkPolicy,
PodDisruptionBudget, anti-affinity): name and instance only. Never change them: a Deployment's
selector cannot change, so `helm upgrade` would fail.
*/}}
{{- define "tenantry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
A pod's labels, (list $ "<component>" "<value name>" <its podLabels>) or, with its own name label,
(list $ "<component>" "<value name>" <its podLabels> "<name label>"): every standard label and
commonLabels, then the pod labels (standard labels, and so the selector's, win).
*/}}
{{- define "tenantry.podLabels" -}}
{{- $root := index . 0 -}}
{{- $podLabels := index . 3 | default dict -}}
{{- $labels := include "tenantry.labels" (concat (list $root (index . 1)) (slice . 4)) | fromYaml -}}
{{- include "tenantry.checkLabels" (list (index . 2) $podLabels) -}}
{{- toYaml (merge $labels (deepCopy $podLabels)) -}}
{{- end -}}

{{/*
A container's resources (requests and limits from values) with every quantity a string: server-side
apply (Helm 4) refuses a bare number such as `cpu: 1`. Numbers from values files reach templates
as floats, so a whole one is written as an integer (268435456, not 2.68435456e+08).
*/}}
{{- define "tenantry.resources" -}}
{{- if not . -}}
resources: {}
{{- else -}}
resources:
  {{- range $section, $amounts := . }}
  {{ $section }}:
    {{- range $resource, $amount := $amounts }}
    {{- if and (kindIs "float64" $amount) (eq $amount (floor $amount)) }}
    {{ $resource }}: {{ int64 $amount | quote }}
    {{- else }}
    {{ $resource }}: {{ $amount | quote }}
    {{- end }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
The scheduling of a pod's spec from (list <values holding affinity, nodeSelector, tolerations,
topologySpreadConstraints> <its selector labels as a map>): the affinity given, else a preference
for replicas on different nodes; a spread constraint without labelSelector gets the selector.
*/}}
{{- define "tenantry.scheduling" -}}
{{- $values := index . 0 -}}
{{- $selector := index . 1 -}}
affinity:
  {{- if $values.affinity }}
  {{- toYaml $values.affinity | nindent 2 }}
  {{- else }}
  # Replicas on different nodes where possible, so a node failure leaves one.
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- toYaml $selector | nindent 12 }}
  {{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
# A constraint without a labelSelector counts these pods.
topologySpreadConstraints:
  {{- range . }}
  {{- $constraint := deepCopy . }}
  {{- if not $constraint.labelSelector }}
  {{- $_ := set $constraint "labelSelector" (dict "matchLabels" $selector) }}
  {{- end }}
  - {{- toYaml $constraint | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
The name of the ServiceAccount the operator runs as: serviceAccount.name, else the fullname. Never
default (every pod of the namespace without a ServiceAccount of its own would get the operator's
rights) nor the portal's (the partner-facing portal would): fails on either.
*/}}
{{- define "tenantry.serviceAccountName" -}}
{{- $name := .Values.serviceAccount.name | default (include "tenantry.fullname" .) -}}
{{- if eq $name "default" -}}
{{- fail "serviceAccount.name: not \"default\": every pod of the namespace without a ServiceAccount of its own runs as it, and would get the operator's cluster-wide rights; name the operator's own (or leave it empty: the fullname)" -}}
{{- end -}}
{{- if eq $name (include "tenantry.portalName" .) -}}
{{- fail (printf "serviceAccount.name: not %q, the partner portal's ServiceAccount: the portal faces partners' browsers and must never hold the operator's rights; name the operator's own (or leave it empty: the fullname)" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* The partner portal's name (its Deployment, Service and ServiceAccount): <fullname>-portal, room left for the suffix. */}}
{{- define "tenantry.portalName" -}}
{{- printf "%s-portal" (include "tenantry.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{/* The operator's image: <repository>@<digest> when a digest is given, else <repository>:<tag or appVersion>. */}}
{{- define "tenantry.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The placeholder image.repository of values.yaml: an image the project does not publish. */}}
{{- define "tenantry.placeholderImage" -}}
registry.example/tenantry/operator
{{- end -}}

{{/* imagePullSecrets of the pods: global.imagePullSecrets (a parent chart's, names or {name}) and imagePullSecrets. */}}
{{- define "tenantry.imagePullSecrets" -}}
{{- $secrets := list -}}
{{- range ((.Values.global | default dict).imagePullSecrets | default list) -}}
{{- $secrets = append $secrets (kindIs "string" . | ternary (dict "name" .) .) -}}
{{- end -}}
{{- range .Values.imagePullSecrets -}}
{{- $secrets = append $secrets . -}}
{{- end -}}
{{- with $secrets | uniq }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The platform domain, which the chart cannot guess: fails with what to set when empty. */}}
{{- define "tenantry.platformDomain" -}}
{{- required "operator.platformDomain is required: the domain every tenant is served under as <slug>.<platformDomain>, e.g. --set operator.platformDomain=saas.example.com" .Values.operator.platformDomain -}}
{{- end -}}

{{/* The name of the Service in front of the operator (metrics and the admission webhook). */}}
{{- define "tenantry.serviceName" -}}
{{- include "tenantry.fullname" . -}}
{{- end -}}

{{/* The Secret that holds the webhook's serving certificate (generated by Helm or by cert-manager). */}}
{{- define "tenantry.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "tenantry.fullname" .) -}}
{{- end -}}

{{/* The namespace of a partner (an item of .Values.partners): its own, else "partner-<id>". */}}
{{- define "tenantry.partnerNamespace" -}}
{{- .namespace | default (printf "partner-%s" .id) -}}
{{- end -}}

{{/*
The prefix of the tenant namespaces the operator creates (tenant-<slug>): OperatorConfig's
namespace_prefix, which no setting changes (tests/unit/test_chart_partners.py keeps them equal).
*/}}
{{- define "tenantry.tenantNamespacePrefix" -}}
tenant-
{{- end -}}

{{/*
Fails unless a partner namespace (list $ <partner id> <namespace>) is one a partner may be given:
not default, not a Kubernetes (kube-*) or OpenShift (openshift, openshift-*) system namespace, not
the release (platform) namespace, not a name with the tenant namespace prefix and, when Helm can
look at the cluster (install, upgrade; not `helm template`), not a namespace labelled as a
tenant's (tenantry.dev/tenant) or managed by the operator (app.kubernetes.io/managed-by=tenantry).
The partner's ServiceAccount gets the partner role there, and the namespace the partner label.
*/}}
{{- define "tenantry.checkPartnerNamespace" -}}
{{- $root := index . 0 -}}
{{- $id := index . 1 -}}
{{- $namespace := index . 2 -}}
{{- $prefix := include "tenantry.tenantNamespacePrefix" $root -}}
{{- if eq $namespace "default" -}}
{{- fail (printf "partners: partner %q cannot use the namespace \"default\": give it a namespace of its own (default: partner-<id>)" $id) -}}
{{- end -}}
{{- if or (hasPrefix "kube-" $namespace) (eq $namespace "openshift") (hasPrefix "openshift-" $namespace) -}}
{{- fail (printf "partners: partner %q cannot use %q, a system namespace of the cluster" $id $namespace) -}}
{{- end -}}
{{- if eq $namespace $root.Release.Namespace -}}
{{- fail (printf "partners: partner %q cannot use the release (platform) namespace %q" $id $namespace) -}}
{{- end -}}
{{- if hasPrefix $prefix $namespace -}}
{{- fail (printf "partners: partner %q cannot use %q: it starts with %q, the prefix of the tenant namespaces the operator creates" $id $namespace $prefix) -}}
{{- end -}}
{{- $live := lookup "v1" "Namespace" "" $namespace | default dict -}}
{{- $labels := (($live.metadata | default dict).labels | default dict) -}}
{{- if hasKey $labels "tenantry.dev/tenant" -}}
{{- fail (printf "partners: partner %q cannot use %q: it is the namespace of tenant %q (labelled tenantry.dev/tenant)" $id $namespace (get $labels "tenantry.dev/tenant")) -}}
{{- end -}}
{{- if eq (get $labels "app.kubernetes.io/managed-by") "tenantry" -}}
{{- fail (printf "partners: partner %q cannot use %q: the tenantry operator manages it (app.kubernetes.io/managed-by=tenantry)" $id $namespace) -}}
{{- end -}}
{{- end -}}

{{/*
The security context of the chart's pods (operator, portal, helm test): podSecurityContext with
the keys set to null left out (on OpenShift: runAsUser, runAsGroup and fsGroup, which its
restricted-v2 SCC assigns from the namespace's range).
*/}}
{{- define "tenantry.podSecurityContext" -}}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The security context of the chart's containers (securityContext). */}}
{{- define "tenantry.containerSecurityContext" -}}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The labels of the `helm test` pod, which the operator's NetworkPolicy lets reach /metrics and the webhook. */}}
{{- define "tenantry.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantry.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end -}}
