{{- define "observatory.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "observatory.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "observatory.labels" -}}
{{ include "observatory.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Rules generated from operator/observatory/rbac.py; see files/rbac.yaml. */}}
{{- define "observatory.rbac" -}}
{{- .Files.Get "files/rbac.yaml" | fromYaml | toJson -}}
{{- end -}}

{{- define "observatory.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.peering.enabled) -}}
{{- fail "replicas > 1 requires peering.enabled=true: without kopf peering every replica would reconcile the same objects" -}}
{{- end -}}
{{- end -}}
