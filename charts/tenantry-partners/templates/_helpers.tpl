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
