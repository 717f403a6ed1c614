{{/* The labels of every object (component: partner), then commonLabels, which never replace one. */}}
{{- define "tenantry-partners.labels" -}}
{{- $labels := dict
  "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/name" .Chart.Name
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/component" "partner"
  "app.kubernetes.io/part-of" "tenantry"
  "app.kubernetes.io/version" (.Chart.AppVersion | toString)
  "app.kubernetes.io/managed-by" .Release.Service -}}
{{- toYaml (merge $labels (deepCopy (.Values.commonLabels | default dict))) -}}
{{- end -}}

{{/* The platform namespace: tenantry.namespace, else the release namespace. */}}
{{- define "tenantry-partners.platformNamespace" -}}
{{- .Values.tenantry.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* The namespace of a partner (an item of .Values.partners): its own, else "partner-<id>". */}}
{{- define "tenantry-partners.namespace" -}}
{{- .namespace | default (printf "partner-%s" .id) -}}
{{- end -}}

{{/*
Fails unless a partner namespace (list $ <partner id> <namespace>) is one a partner may be given.
Refused: default and the Kubernetes (kube-*) and OpenShift (openshift, openshift-*) system
namespaces, the platform namespace, a name starting with the operator's tenant namespace prefix
(tenantry.tenantNamespacePrefix) and, when Helm can look at the cluster (install, upgrade; not
`helm template`), a namespace labelled as a tenant's (tenantry.dev/tenant) or managed by the
tenantry operator (app.kubernetes.io/managed-by=tenantry). A partner's ServiceAccount gets the
partner role in its namespace, and the namespace gets the partner label the operator trusts.
*/}}
{{- define "tenantry-partners.checkNamespace" -}}
{{- $root := index . 0 -}}
{{- $id := index . 1 -}}
{{- $namespace := index . 2 -}}
{{- $prefix := $root.Values.tenantry.tenantNamespacePrefix -}}
{{- if eq $namespace "default" -}}
{{- fail (printf "partners: partner %q cannot use the namespace \"default\": give it a namespace of its own (default: partner-<id>)" $id) -}}
{{- end -}}
{{- if or (hasPrefix "kube-" $namespace) (eq $namespace "openshift") (hasPrefix "openshift-" $namespace) -}}
{{- fail (printf "partners: partner %q cannot use %q, a system namespace of the cluster" $id $namespace) -}}
{{- end -}}
{{- if eq $namespace (include "tenantry-partners.platformNamespace" $root) -}}
{{- fail (printf "partners: partner %q cannot use the platform namespace %q" $id $namespace) -}}
{{- end -}}
{{- if hasPrefix $prefix $namespace -}}
{{- fail (printf "partners: partner %q cannot use %q: it starts with %q, the prefix of the tenant namespaces the operator creates (tenantry.tenantNamespacePrefix)" $id $namespace $prefix) -}}
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

{{/* Fails when commonLabels has a key under tenantry.dev/: those labels are the operator's (partner, tenant, role). */}}
{{- define "tenantry-partners.checkLabels" -}}
{{- range $key, $_ := .Values.commonLabels | default dict -}}
{{- if hasPrefix "tenantry.dev/" $key -}}
{{- fail (printf "commonLabels: %q: labels under tenantry.dev/ are the operator's and cannot be set here" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
