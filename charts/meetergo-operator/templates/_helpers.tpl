{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "meetergo-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name
(plus the chart name unless the release name already contains it). Kept to 50
characters so that suffixes such as "-metrics" and "-headless" fit in 63.
*/}}
{{- define "meetergo-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "meetergo-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods. Never change them: selectors are immutable. */}}
{{- define "meetergo-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meetergo-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "meetergo-operator.labels" -}}
helm.sh/chart: {{ include "meetergo-operator.chart" . }}
{{ include "meetergo-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "meetergo-operator.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meetergo-operator
{{- end }}

{{- define "meetergo-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meetergo-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "meetergo-operator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "meetergo-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "meetergo-operator.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Consistency checks the schema cannot express. (values.schema.json checks the
rest, including the ones between values: an http:// receiver.publicURL needs
receiver.allowInsecureHTTP, httpRoute.enabled needs parentRefs, a
ServiceMonitor needs metrics.enabled, replicaCount > 1 needs
leaderElection.enabled.) `helm lint` reports a failure here only
as [INFO]; `helm template`, install and upgrade stop on it.
*/}}
{{- define "meetergo-operator.validate" -}}
{{- $ports := list (int .Values.receiver.port) (int .Values.health.port) }}
{{- if .Values.metrics.enabled }}{{ $ports = append $ports (int .Values.metrics.port) }}{{ end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail (printf "receiver.port, health.port and metrics.port must differ (got %v)" $ports) }}
{{- end }}
{{- /* The schema refuses this too; this says it in words, and holds with --skip-schema-validation. */}}
{{- if and (gt (int .Values.replicaCount) 1) (not (dig "enabled" false (.Values.leaderElection | default dict))) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: several replicas need leader election (set leaderElection.enabled=true, the default, or replicaCount=1); without it every replica reconciles and they register the same MeetergoWebhook several times at meetergo, using up the company's six webhooks" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}

{{/* The manager's command line, as a YAML list. */}}
{{- define "meetergo-operator.args" -}}
{{- $v := .Values }}
{{- $args := list }}
{{- if $v.leaderElection.enabled }}
{{- $args = append $args "--leader-elect" }}
{{- $args = append $args (printf "--leader-elect-lease-duration=%s" $v.leaderElection.leaseDuration) }}
{{- $args = append $args (printf "--leader-elect-renew-deadline=%s" $v.leaderElection.renewDeadline) }}
{{- $args = append $args (printf "--leader-elect-retry-period=%s" $v.leaderElection.retryPeriod) }}
{{- end }}
{{- $args = append $args (printf "--health-probe-bind-address=:%d" (int $v.health.port)) }}
{{- if $v.metrics.enabled }}
{{- $args = append $args (printf "--metrics-bind-address=:%d" (int $v.metrics.port)) }}
{{- $args = append $args (printf "--metrics-secure=%t" $v.metrics.secure) }}
{{- else }}
{{- $args = append $args "--metrics-bind-address=0" }}
{{- end }}
{{- $args = append $args (printf "--receiver-bind-address=:%d" (int $v.receiver.port)) }}
{{- with $v.receiver.publicURL }}
{{- $args = append $args (printf "--receiver-public-url=%s" .) }}
{{- end }}
{{- if $v.receiver.allowInsecureHTTP }}
{{- $args = append $args "--allow-insecure-http" }}
{{- end }}
{{- $args = append $args (printf "--token-grace-period=%s" $v.receiver.tokenGracePeriod) }}
{{- $args = append $args (printf "--dedup-window=%s" $v.receiver.dedupWindow) }}
{{- $args = append $args (printf "--data-dir=%s" $v.persistence.mountPath) }}
{{- $args = append $args (printf "--receiver-store-max-bytes=%d" (int64 $v.receiver.storeMaxBytes)) }}
{{- with $v.meetergo.apiURL }}
{{- $args = append $args (printf "--meetergo-api-url=%s" .) }}
{{- end }}
{{- $args = append $args (printf "--meetergo-requests-per-minute=%d" (int $v.meetergo.requestsPerMinute)) }}
{{- $args = append $args (printf "--meetergo-burst=%d" (int $v.meetergo.burst)) }}
{{- $args = append $args (printf "--webhook-limit=%d" (int $v.meetergo.webhookLimit)) }}
{{- $args = append $args (printf "--concurrency=%d" (int $v.controller.concurrency)) }}
{{- $args = append $args (printf "--resync-period=%s" $v.controller.resyncPeriod) }}
{{- $args = append $args (printf "--quota-poll-interval=%s" $v.controller.quotaPollInterval) }}
{{- $args = append $args (printf "--token-key-secret=%s" $v.controller.tokenKeySecret) }}
{{- $args = append $args (printf "--zap-log-level=%v" $v.logging.level) }}
{{- $args = append $args (printf "--zap-encoder=%s" $v.logging.encoder) }}
{{- range $v.extraArgs }}
{{- $args = append $args . }}
{{- end }}
{{- toYaml $args }}
{{- end }}
