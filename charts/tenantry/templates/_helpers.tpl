{{/* Names and labels shared by the templates. */}}

{{- define "tenantry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name when it already contains the chart name. */}}
{{- define "tenantry.fullname" -}}
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

{{- define "tenantry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tenantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tenantry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tenantry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tenantry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tenantry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tenantry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the meter Deployments run: config.metering.namespace, else the release namespace. */}}
{{- define "tenantry.meterNamespace" -}}
{{- default .Release.Namespace .Values.config.metering.namespace -}}
{{- end -}}

{{/* The operator configuration file: the `config` values, with the chart's defaults filled in. */}}
{{- define "tenantry.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $metering := get $config "metering" -}}
{{- $_ := set $metering "image" (default (include "tenantry.image" .) $metering.image) -}}
{{- $_ := set $metering "namespace" (include "tenantry.meterNamespace" .) -}}
{{- $webhook := .Values.webhook -}}
{{- $_ := set $config "webhook" (dict
      "enabled" $webhook.enabled
      "listen" (printf "0.0.0.0:%d" (int $webhook.port))
      "service" (dict "name" (printf "%s-webhook" (include "tenantry.fullname" .)) "namespace" .Release.Namespace "port" 443)
      "namespace" .Release.Namespace
      "certificate" (dict "secretName" (printf "%s-webhook-tls" (include "tenantry.fullname" .))
                          "issuer" (ternary "CertManager" "Operator" $webhook.certManager.enabled))
      "exemptUsers" $webhook.exemptUsers
      "exemptGroups" $webhook.exemptGroups
      "disabledRules" $webhook.disabledRules) -}}
{{- toYaml $config -}}
{{- end -}}
