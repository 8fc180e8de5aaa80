{{/*
Helpers of the altinn-proxy chart.

Invariants:
- Secrets reach the pod as files in one projected volume at /etc/altinn-proxy/secrets; the settings
  file points at them. No secret value is ever put in an environment variable or a ConfigMap.
- The settings file is the user's `settings` with the keys the chart owns filled in (listen, data_dir,
  mappings_dir, *_file); values.schema.json keeps users from setting those keys themselves.
*/}}

{{- define "altinn-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "altinn-proxy.fullname" -}}
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

{{- define "altinn-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "altinn-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "altinn-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "altinn-proxy.labels" -}}
helm.sh/chart: {{ include "altinn-proxy.chart" . }}
{{ include "altinn-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: altinn-proxy
{{- end }}

{{- define "altinn-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "altinn-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "altinn-proxy.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where things live inside the pod. */}}
{{- define "altinn-proxy.configDir" -}}/etc/altinn-proxy{{- end }}
{{- define "altinn-proxy.secretsDir" -}}/etc/altinn-proxy/secrets{{- end }}
{{- define "altinn-proxy.mappingsDir" -}}/etc/altinn-proxy/mappings{{- end }}

{{/* Names of the Secrets the pod reads: the existing one, or the chart-created one. */}}
{{- define "altinn-proxy.secretName" -}}
{{- $secret := index .root.Values.secrets .name -}}
{{- default (printf "%s-%s" (include "altinn-proxy.fullname" .root) (kebabcase .name)) $secret.existingSecret }}
{{- end }}

{{- define "altinn-proxy.usesPostgres" -}}
{{- $url := (.Values.settings.store | default dict).url | default "" -}}
{{- if or (hasPrefix "postgresql://" $url) (hasPrefix "postgres://" $url) }}true{{ end }}
{{- end }}

{{- define "altinn-proxy.hasPostgresPassword" -}}
{{- if or .Values.secrets.postgres.existingSecret .Values.secrets.postgres.password }}true{{ end }}
{{- end }}

{{- define "altinn-proxy.hasClientCa" -}}
{{- if or .Values.secrets.clientCa.existingSecret .Values.secrets.clientCa.pem }}true{{ end }}
{{- end }}

{{/*
Refuse configurations that would start pods which cannot work, with the fix in the message.
*/}}
{{- define "altinn-proxy.validate" -}}
{{- $mp := .Values.settings.maskinporten | default dict -}}
{{- if not $mp.client_id }}
{{- fail "settings.maskinporten.client_id is required: the Maskinporten client id of the vendor" }}
{{- end }}
{{- $secret := .Values.secrets.maskinporten -}}
{{- if eq $secret.kind "key" }}
{{- if not $mp.kid }}
{{- fail "settings.maskinporten.kid is required with secrets.maskinporten.kind=key" }}
{{- end }}
{{- if not (or $secret.existingSecret $secret.key) }}
{{- fail "set secrets.maskinporten.existingSecret (or secrets.maskinporten.key) to the Maskinporten private key" }}
{{- end }}
{{- else if not (or $secret.existingSecret (and $secret.certificateBase64 $secret.certificatePassword)) }}
{{- fail "set secrets.maskinporten.existingSecret (or certificateBase64 and certificatePassword) to the PKCS#12 certificate" }}
{{- end }}
{{- if not (or .Values.secrets.credentials.existingSecret .Values.secrets.credentials.content) }}
{{- fail "set secrets.credentials.existingSecret (or secrets.credentials.content) to the legacy credentials file" }}
{{- end }}
{{- $replicas := ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled -}}
{{- if and (gt (int $replicas) 1) (not (include "altinn-proxy.usesPostgres" .)) }}
{{- fail "several replicas must share one store: set settings.store.url to postgresql://... (or run one replica)" }}
{{- end }}
{{- $identity := .Values.settings.identity | default dict -}}
{{- if and .Values.ingress.enabled .Values.ingress.mtls.enabled }}
{{- if not $identity.trusted_proxies }}
{{- fail "ingress.mtls needs settings.identity.trusted_proxies (the ingress controller's pod network), or forwarded certificates are ignored" }}
{{- end }}
{{- if ne (lower ($identity.client_certificate_header | default "")) "ssl-client-cert" }}
{{- fail (printf "ingress.mtls: ingress-nginx forwards the client certificate in the header ssl-client-cert, but settings.identity.client_certificate_header is %q: set it to ssl-client-cert" ($identity.client_certificate_header | default "")) }}
{{- end }}
{{- if not (include "altinn-proxy.hasClientCa" .) }}
{{- fail "ingress.mtls: set secrets.clientCa (existingSecret or pem) to the CAs of the enterprise certificates; without it the proxy cannot use the certificates the ingress forwards" }}
{{- end }}
{{- end }}
{{- $storeUrl := (.Values.settings.store | default dict).url | default "" -}}
{{- if regexMatch "^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@" $storeUrl }}
{{- fail "settings.store.url contains a password, which would land in a ConfigMap: remove it from the URL and put it in secrets.postgres (existingSecret or password)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (include "altinn-proxy.usesPostgres" .) (not .Values.networkPolicy.egress.postgres.to) }}
{{- fail "networkPolicy.egress.postgres.to is empty, so the NetworkPolicy blocks PostgreSQL and no pod becomes ready: list the PostgreSQL server's peers (namespaceSelector/podSelector/ipBlock), or set networkPolicy.enabled=false" }}
{{- end }}
{{- if and .Values.persistence.enabled (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) (not (has "ReadWriteMany" .Values.persistence.accessModes)) }}
{{- fail "persistence with several replicas (or autoscaling) would share one ReadWriteOnce claim: several replicas keep their state in PostgreSQL, so set persistence.enabled=false (or use a ReadWriteMany claim)" }}
{{- end }}
{{- $timeouts := .Values.settings.timeouts | default dict -}}
{{- $needed := addf ($timeouts.drain_delay | default 0) ($timeouts.drain | default 25) -}}
{{- if and (not (kindIs "invalid" .Values.terminationGracePeriodSeconds)) (le (float64 .Values.terminationGracePeriodSeconds) $needed) }}
{{- fail (printf "terminationGracePeriodSeconds must exceed timeouts.drain_delay + timeouts.drain (%v s)" $needed) }}
{{- end }}
{{- end }}

{{/* drain_delay + drain + margin, or the explicit value (validated above). */}}
{{- define "altinn-proxy.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- $timeouts := .Values.settings.timeouts | default dict -}}
{{- $needed := addf ($timeouts.drain_delay | default 0) ($timeouts.drain | default 25) -}}
{{- add (ceil $needed | int) .Values.terminationGraceMarginSeconds }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/*
The settings file: the user's `settings` plus the keys the chart owns.
*/}}
{{- define "altinn-proxy.settings" -}}
{{- $settings := deepCopy .Values.settings -}}
{{- $secrets := include "altinn-proxy.secretsDir" . -}}
{{- $listen := $settings.listen | default dict -}}
{{- $_ := set $listen "host" "0.0.0.0" -}}
{{- $_ := set $listen "port" 8080 -}}
{{- $_ := set $listen "metrics_host" "0.0.0.0" -}}
{{- $_ := set $listen "metrics_port" 9464 -}}
{{- $_ := set $settings "listen" $listen -}}
{{- $_ := set $settings "data_dir" "/data" -}}
{{- if .Values.mappings.fromChart }}
{{- $_ := set $settings "mappings_dir" (include "altinn-proxy.mappingsDir" .) -}}
{{- end }}
{{- $mp := $settings.maskinporten | default dict -}}
{{- if eq .Values.secrets.maskinporten.kind "key" }}
{{- $_ := set $mp "key_file" (printf "%s/maskinporten/key" $secrets) -}}
{{- else }}
{{- $_ := set $mp "certificate_file" (printf "%s/maskinporten/certificate.p12" $secrets) -}}
{{- $_ := set $mp "certificate_password_file" (printf "%s/maskinporten/certificate-password" $secrets) -}}
{{- $_ := unset $mp "kid" -}}
{{- end }}
{{- $_ := set $settings "maskinporten" $mp -}}
{{- $identity := $settings.identity | default dict -}}
{{- $_ := set $identity "credentials_file" (printf "%s/credentials/credentials.yaml" $secrets) -}}
{{- if include "altinn-proxy.hasClientCa" . }}
{{- $_ := set $identity "client_ca_file" (printf "%s/client-ca/ca.pem" $secrets) -}}
{{- end }}
{{- $_ := set $settings "identity" $identity -}}
{{- if include "altinn-proxy.hasPostgresPassword" . }}
{{- $store := $settings.store | default dict -}}
{{- $_ := set $store "password_file" (printf "%s/postgres/password" $secrets) -}}
{{- $_ := set $settings "store" $store -}}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/*
The label matchers that select this release's metrics in PromQL (the ServiceMonitor's job is the
Service's name).
*/}}
{{- define "altinn-proxy.metricsSelector" -}}
namespace="{{ .Release.Namespace }}",job="{{ include "altinn-proxy.fullname" . }}"
{{- end }}
