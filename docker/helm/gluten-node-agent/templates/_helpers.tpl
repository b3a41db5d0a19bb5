{{/* Names, labels and values shared by the templates of the gluten-node-agent chart. */}}

{{- define "gna.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gna.fullname" -}}
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

{{- define "gna.aggregatorName" -}}
{{- printf "%s-aggregator" (include "gna.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource; `component` is passed as (dict "ctx" $ "component" "agent"). */}}
{{- define "gna.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gna.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: gluten-node-agent
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "gna.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gna.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "gna.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "gna.aggregatorImage" -}}
{{- $i := .Values.aggregator.image -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) $i.tag -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "gna.agentServiceAccountName" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (include "gna.fullname" .) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gna.aggregatorServiceAccountName" -}}
{{- if .Values.aggregator.serviceAccount.create -}}
{{- default (include "gna.aggregatorName" .) .Values.aggregator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.aggregator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gna.priorityClassName" -}}
{{- if .Values.priorityClass.create -}}
{{- default (include "gna.fullname" .) .Values.priorityClass.name -}}
{{- else -}}
{{- .Values.priorityClass.name -}}
{{- end -}}
{{- end -}}

{{/* The push token: shared by the aggregator (--auth-token-file) and the agents. */}}
{{- define "gna.pushTokenSecretName" -}}
{{- default (printf "%s-push-token" (include "gna.fullname" .)) .Values.aggregator.tokens.push.existingSecret -}}
{{- end -}}

{{- define "gna.readTokenSecretName" -}}
{{- default (printf "%s-read-token" (include "gna.fullname" .)) .Values.aggregator.tokens.read.existingSecret -}}
{{- end -}}

{{/* Whether the agents push, and whether they send a token. */}}
{{- define "gna.pushUrl" -}}
{{- if .Values.agent.pushUrl -}}
{{- .Values.agent.pushUrl -}}
{{- else if .Values.aggregator.enabled -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "https" "http" .Values.tls.enabled) (include "gna.aggregatorName" .) .Release.Namespace (int .Values.aggregator.port) -}}
{{- end -}}
{{- end -}}

{{- define "gna.pushToken" -}}
{{- $t := .Values.aggregator.tokens.push -}}
{{- if or .Values.aggregator.enabled $t.existingSecret $t.value -}}true{{- end -}}
{{- end -}}

{{/* A token Secret's value: the given one, else the one already in the cluster, else random. */}}
{{- define "gna.tokenValue" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $old := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $old $old.data $old.data.token -}}
{{- $old.data.token | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The agents trust this Secret's ca.crt with TLS on. */}}
{{- define "gna.caSecretName" -}}
{{- if .Values.tls.issuerRef.name -}}
{{- printf "%s-tls" (include "gna.aggregatorName" .) -}}
{{- else -}}
{{- printf "%s-ca" (include "gna.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "gna.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
  {{- if .https }}
  scheme: HTTPS
  {{- end }}
{{ toYaml .probe }}
{{- end -}}

{{- define "gna.usePostgres" -}}
{{- if eq .Values.aggregator.store.type "postgresql" -}}true{{- end -}}
{{- end -}}

{{/* TOML from a values map (Helm's toToml writes every number as a float, which the agent's
integer keys refuse): whole numbers as integers, strings as basic strings (JSON escapes are
TOML's), arrays inline, maps as [tables] (inside arrays: inline tables). Called with
(dict "map" M "prefix" ""). */}}
{{- define "gna.toml" -}}
{{- $prefix := .prefix -}}
{{- range $k, $v := .map -}}
{{- if not (kindIs "map" $v) }}
{{ $k }} = {{ include "gna.tomlValue" $v }}
{{- end -}}
{{- end -}}
{{- range $k, $v := .map -}}
{{- if kindIs "map" $v }}

[{{ if $prefix }}{{ $prefix }}.{{ end }}{{ $k }}]
{{- include "gna.toml" (dict "map" $v "prefix" (ternary (printf "%s.%s" $prefix $k) $k (ne $prefix ""))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gna.tomlValue" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- . -}}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 (int64 .)) (float64 .) -}}{{- int64 . -}}{{- else -}}{{- . -}}{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $e := . -}}{{- if $i }}, {{ end -}}{{- include "gna.tomlValue" $e -}}{{- end -}}]
{{- else if kindIs "map" . -}}
{ {{- range $i, $k := keys . | sortAlpha -}}{{- if $i }}, {{ end -}}{{ $k }} = {{ include "gna.tomlValue" (get $ $k) -}}{{- end -}} }
{{- else -}}
{{- fail (printf "agent.config: a value of kind %s has no TOML form" (kindOf .)) -}}
{{- end -}}
{{- end -}}
