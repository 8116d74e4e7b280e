{{/* The prefix of every object's name: "pacer" unless nameOverride. */}}
{{- define "pacer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. The kustomize tree has the same ones, with managed-by: kustomize. */}}
{{- define "pacer.labels" -}}
app.kubernetes.io/name: pacer
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The manager's pod labels, its selector. */}}
{{- define "pacer.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: pacer
{{- end -}}

{{- define "pacer.serviceAccountName" -}}
{{ include "pacer.name" . }}-controller-manager
{{- end -}}

{{- define "pacer.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* The manager's subject in bindings. */}}
{{- define "pacer.subject" -}}
- kind: ServiceAccount
  name: {{ include "pacer.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
