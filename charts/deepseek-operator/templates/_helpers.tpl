{{/* Names, labels and the checks every template relies on. */}}

{{- define "deepseek-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: object names are prefixed with it; 63 characters is the limit of a label value. */}}
{{- define "deepseek-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "deepseek-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that never change for an object: what selectors use. */}}
{{- define "deepseek-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deepseek-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of every object. Call with (dict "context" $ "component" "<component>").
*/}}
{{- define "deepseek-operator.labels" -}}
{{ include "deepseek-operator.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: deepseek-operator
helm.sh/chart: {{ include "deepseek-operator.chart" .context }}
{{- end -}}

{{- define "deepseek-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "deepseek-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false: the name of an existing ServiceAccount" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest when a digest pins the image (as the operator does for inference images), else repository:tag. */}}
{{- define "deepseek-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "deepseek-operator.peeringName" -}}
{{- default (include "deepseek-operator.fullname" .) .Values.peering.name -}}
{{- end -}}

{{/* "true" when more than one replica runs, i.e. kopf peering decides which one acts. */}}
{{- define "deepseek-operator.peering" -}}
{{- if gt (int .Values.replicas) 1 -}}true{{- end -}}
{{- end -}}

{{/* Cross-field rules the schema cannot state with a clear message; every object template includes this. */}}
{{- define "deepseek-operator.validate" -}}
{{- if and .Values.rbac.namespaced (not .Values.watchNamespaces) -}}
{{- fail "rbac.namespaced=true needs watchNamespaces: list the namespaces the operator watches (it gets a Role in each)" -}}
{{- end -}}
{{- if eq (int .Values.metrics.port) 8080 -}}
{{- fail "metrics.port must not be 8080: the operator serves its liveness endpoint there" -}}
{{- end -}}
{{- end -}}

{{- define "deepseek-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "deepseek-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
