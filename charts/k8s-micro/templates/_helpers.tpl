{{/* Names, labels and image references shared by the k8s-micro templates. */}}

{{- define "k8s-micro.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "k8s-micro.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "k8s-micro.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "k8s-micro.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k8s-micro.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "k8s-micro.labels" -}}
helm.sh/chart: {{ include "k8s-micro.chart" . }}
{{ include "k8s-micro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: k8s-micro
{{- end }}

{{- define "k8s-micro.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "k8s-micro.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image of one process: include "k8s-micro.image" (dict "root" $ "process" "ingestor") */}}
{{- define "k8s-micro.image" -}}
{{- $img := index .root.Values.image .process }}
{{- $tag := $img.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) $img.repository $tag }}
{{- else }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}
{{- end }}

{{/* Where the config and the secrets are mounted in both containers. */}}
{{- define "k8s-micro.configPath" -}}/etc/k8s-micro/config.yaml{{- end }}
{{- define "k8s-micro.secretsDir" -}}/etc/k8s-micro/secrets{{- end }}

{{/* Downward-API pod identity, read by both processes as pod.name / pod.namespace / pod.ip. */}}
{{- define "k8s-micro.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end }}

{{- define "k8s-micro.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Label matchers that pick this release's series in alerts: the scrape (PodMonitor or the prometheus.io
annotations with the usual kubernetes_sd relabelling) adds namespace and pod. */}}
{{- define "k8s-micro.metricsSelector" -}}
{{- .Values.metrics.prometheusRule.selector | default (printf "namespace=%q, pod=~%q" .Release.Namespace (printf "%s-.*" (include "k8s-micro.fullname" .))) }}
{{- end }}
