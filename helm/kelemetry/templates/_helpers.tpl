{{/* Names and labels shared by every object of the release. */}}

{{- define "kelemetry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kelemetry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kelemetry.labels" -}}
{{ include "kelemetry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kelemetry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kelemetry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The headless Service through which nodes reach each other. */}}
{{- define "kelemetry.peersService" -}}
{{- printf "%s-peers" (include "kelemetry.fullname" .) -}}
{{- end -}}

{{/* Peer address of pod ordinal N: <sts>-N.<peers>.<ns>.svc:<port>. */}}
{{- define "kelemetry.peerAddr" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%d.%s.%s.svc:%d" (include "kelemetry.fullname" $) (index . 1) (include "kelemetry.peersService" $) $.Release.Namespace (int $.Values.ports.peer) -}}
{{- end -}}

{{/* --join: the first three pods (ordinal 0 bootstraps a fresh ring). */}}
{{- define "kelemetry.join" -}}
{{- $addrs := list -}}
{{- range $i := until (int (min 3 .Values.replicaCount)) -}}
{{- $addrs = append $addrs (include "kelemetry.peerAddr" (list $ $i)) -}}
{{- end -}}
{{- join "," $addrs -}}
{{- end -}}

{{/* Seconds of a Go-style duration such as 30m or 1h (for the grace period). */}}
{{- define "kelemetry.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "h" $d -}}{{ mul (trimSuffix "h" $d | int) 3600 }}
{{- else if hasSuffix "m" $d -}}{{ mul (trimSuffix "m" $d | int) 60 }}
{{- else -}}{{ trimSuffix "s" $d | int }}
{{- end -}}
{{- end -}}

{{/* The token Secrets configured, by surface (webhook, query, admin), as YAML. */}}
{{- define "kelemetry.authSecrets" -}}
{{- $out := dict -}}
{{- range $surface, $secret := dict "webhook" .Values.auth.webhookTokenSecret "query" .Values.auth.queryTokenSecret "admin" .Values.auth.adminTokenSecret -}}
{{- if $secret -}}{{- $_ := set $out $surface $secret -}}{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
