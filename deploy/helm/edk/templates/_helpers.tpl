{{/* The servers of the split topology: values key, binary, admin API prefix. */}}
{{- define "edk.servers" -}}
kms: edk-kms
as: edk-as
did: edk-did
issuer: edk-issuer
verifier: edk-verifier
platform: edk-platform
{{- end -}}

{{/* The servers that call the KMS over gRPC: the runtime servers and the platform. */}}
{{- define "edk.runtimeServers" -}}
{{- list "as" "did" "issuer" "verifier" "platform" | toJson -}}
{{- end -}}

{{- define "edk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one server's objects: <fullname>-<server>. */}}
{{- define "edk.component" -}}
{{- printf "%s-%s" (include "edk.fullname" .root) .name -}}
{{- end -}}

{{- define "edk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "edk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edk
{{- end -}}

{{/* Selector labels of one server: root and name. */}}
{{- define "edk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edk.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* The labels of one server's pods: root and name. */}}
{{- define "edk.podLabels" -}}
{{ include "edk.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: edk
{{- end -}}

{{- define "edk.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .binary (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* Whether the KMS's gRPC listener uses TLS. */}}
{{- define "edk.kmsTls" -}}
{{- if or .Values.kmsAuth.tls (eq .Values.kmsAuth.mode "mtls") -}}true{{- end -}}
{{- end -}}

{{/* The servers that read the platform's tenant directory (directory.clients, enabled ones, while the platform is), as a JSON list. */}}
{{- define "edk.directoryClients" -}}
{{- $clients := list -}}
{{- if and .Values.platform.enabled (not .Values.allInOne.enabled) -}}
{{- range .Values.directory.clients -}}
{{- if (index $.Values .).enabled -}}
{{- $clients = append $clients . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $clients | toJson -}}
{{- end -}}

{{/* The servers with a `rate_limits` section (their public endpoints are rate-limited). */}}
{{- define "edk.rateLimitedServers" -}}
{{- list "as" "issuer" "verifier" "edk" | toJson -}}
{{- end -}}

{{/* Whether a server (root, name) mounts its service key: it signs service JWTs for the KMS or for the tenant directory. */}}
{{- define "edk.usesServiceKey" -}}
{{- $v := .root.Values -}}
{{- if or (and (ne .name "kms") (eq $v.kmsAuth.mode "serviceJwt")) (has .name (include "edk.directoryClients" .root | fromJsonArray)) -}}true{{- end -}}
{{- end -}}

{{/* The in-chart Redis's URL (redis.internal.enabled). */}}
{{- define "edk.internalRedisUrl" -}}
{{- printf "redis://%s:%v" (include "edk.serviceHost" (dict "root" . "name" "redis")) .Values.redis.port -}}
{{- end -}}

{{/* The `rate_limits` section (root) of the servers that have one, from rateLimits and redis. */}}
{{- define "edk.rateLimits" -}}
{{- $v := .Values -}}
{{- $section := dict "on_backend_error" $v.rateLimits.onBackendError "limits" (deepCopy $v.rateLimits.limits) -}}
{{- with $v.rateLimits.clientIpHeader -}}
{{- $_ := set $section "client_ip_header" . -}}
{{- end -}}
{{- if and $v.redis.enabled $v.redis.internal.enabled -}}
{{- $_ := set $section "redis" (dict "url" (include "edk.internalRedisUrl" .) "key_prefix" $v.redis.keyPrefix) -}}
{{- else if $v.redis.enabled -}}
{{- /* The URL (it may hold a password) comes from the Secret as EDK_RATE_LIMITS__REDIS__URL. */ -}}
{{- $_ := set $section "redis" (dict "key_prefix" $v.redis.keyPrefix) -}}
{{- end -}}
{{- toYaml $section -}}
{{- end -}}

{{/* The external Redis URL's variable (root, name), from the Secret; empty unless the server counts in an external Redis. */}}
{{- define "edk.redisUrlEnv" -}}
{{- $v := .root.Values -}}
{{- if and $v.redis.enabled (not $v.redis.internal.enabled) (has .name (include "edk.rateLimitedServers" .root | fromJsonArray)) -}}
- name: EDK_RATE_LIMITS__REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.existingSecret }}
      key: {{ $v.redis.urlSecretKey }}
{{- end -}}
{{- end -}}

{{/* The `directory` section of a server (root, name) reading the platform's tenant directory. */}}
{{- define "edk.directory" -}}
{{- $v := .root.Values -}}
{{- $platformHost := include "edk.serviceHost" (dict "root" .root "name" "platform") -}}
{{- $tls := include "edk.kmsTls" .root -}}
{{- $section := dict "endpoint" (printf "%s://%s:%v" (ternary "https" "http" (eq $tls "true")) $platformHost $v.platform.grpcPort) "service" .name "audience" $v.directory.audience "key_file" "/var/run/secrets/edk/service/service.jwk" "token_lifetime_secs" (int64 $v.directory.tokenLifetimeSecs) "cache_ttl_secs" (int64 $v.directory.cacheTtlSecs) "timeout_millis" (int64 $v.directory.timeoutMillis) -}}
{{- if $tls -}}
{{- $_ := set $section "server_ca_file" "/var/run/secrets/edk/tls/ca.crt" -}}
{{- $_ := set $section "server_name" $platformHost -}}
{{- end -}}
{{- toYaml $section -}}
{{- end -}}

{{/* The platform's `grpc` section (root): the tenant directory listener and the services it trusts. */}}
{{- define "edk.directoryServer" -}}
{{- $v := .Values -}}
{{- $services := list -}}
{{- range $name := include "edk.directoryClients" . | fromJsonArray -}}
{{- $trusted := index $v.directory.trustedServices $name | default (index $v.kms.trustedServices $name) | default dict -}}
{{- $entry := dict "name" $name "jwks" ($trusted.jwks | default (dict "keys" list)) -}}
{{- if $trusted.tenants -}}{{- $_ := set $entry "tenants" $trusted.tenants -}}{{- end -}}
{{- $services = append $services $entry -}}
{{- end -}}
{{- $section := dict "listen" (printf "0.0.0.0:%v" $v.platform.grpcPort) "audience" $v.directory.audience "max_lifetime_secs" (int64 $v.directory.maxTokenLifetimeSecs) "services" $services -}}
{{- if include "edk.kmsTls" . -}}
{{- $_ := set $section "tls" (dict "cert_file" "/var/run/secrets/edk/tls/tls.crt" "key_file" "/var/run/secrets/edk/tls/tls.key") -}}
{{- end -}}
{{- toYaml $section -}}
{{- end -}}

{{/* Whether the chart issues cert-manager certificates. */}}
{{- define "edk.certificates" -}}
{{- include "edk.kmsTls" . -}}
{{- end -}}

{{/* The cert-manager issuer of the chart's certificates. */}}
{{- define "edk.issuerRef" -}}
{{- if .Values.mtls.selfSignedCA -}}
name: {{ include "edk.fullname" . }}-ca
kind: Issuer
{{- else -}}
name: {{ required "mtls.issuerRef.name is required when mtls.selfSignedCA is false" .Values.mtls.issuerRef.name }}
kind: {{ .Values.mtls.issuerRef.kind }}
{{- end }}
group: cert-manager.io
{{- end -}}

{{/* The in-cluster DNS name of a server's Service. */}}
{{- define "edk.serviceHost" -}}
{{- printf "%s.%s.svc" (include "edk.component" .) .root.Release.Namespace -}}
{{- end -}}

{{/* The secret holding the platform database URL, and its key. */}}
{{- define "edk.databaseSecret" -}}
{{- if .Values.cnpg.enabled -}}
{{ include "edk.fullname" . }}-db-app
{{- else -}}
{{ .Values.secrets.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "edk.databaseSecretKey" -}}
{{- if .Values.cnpg.enabled -}}uri{{- else -}}{{ .Values.database.urlSecretKey }}{{- end -}}
{{- end -}}

{{/* The configuration file of one server (root, name): everything but secrets. */}}
{{- define "edk.config" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $server := index $v .name -}}
{{- $config := dict
    "http" (dict "listen" "0.0.0.0:8080")
    "log" (dict "filter" $v.log.filter "json" $v.log.json)
    "auth" (dict "audience" $v.adminAuth.audience "issuers" $v.adminAuth.issuers)
    "database" (dict "backend" $v.database.backend "max_connections" $v.database.maxConnections "acquire_timeout" $v.database.acquireTimeoutSecs)
-}}
{{- $tls := include "edk.kmsTls" $root -}}
{{- if eq .name "kms" -}}
{{- $keks := list -}}
{{- range $server.softwareKeys.keks -}}
{{- $keks = append $keks (dict "id" . "key_file" (printf "/var/run/secrets/edk/keks/kek-%s" .)) -}}
{{- end -}}
{{- $_ := set $config "kms" (dict "mode" "local" "providers" (list (dict "kind" "software" "id" "software" "current_kek" $server.softwareKeys.currentKek "keks" $keks))) -}}
{{- $auth := dict -}}
{{- if eq $v.kmsAuth.mode "mtls" -}}
{{- $allow := list -}}
{{- range (include "edk.runtimeServers" $root | fromJsonArray) -}}
{{- if (index $v .).enabled -}}
{{- $allow = append $allow (include "edk.serviceHost" (dict "root" $root "name" .)) -}}
{{- end -}}
{{- end -}}
{{- $auth = dict "kind" "mtls" "allow" $allow -}}
{{- /* Certificate identities are host names: the AS, DID server and platform are granted the reserved aliases they use. */ -}}
{{- $actsAs := dict -}}
{{- range $name, $names := (dict "as" (list "as") "did" (list "did") "platform" (list "as" "did")) -}}
{{- if (index $v $name).enabled -}}
{{- $_ := set $actsAs (include "edk.serviceHost" (dict "root" $root "name" $name)) $names -}}
{{- end -}}
{{- end -}}
{{- if $actsAs -}}{{- $_ := set $auth "acts_as" $actsAs -}}{{- end -}}
{{- else -}}
{{- $services := list -}}
{{- range $name := (include "edk.runtimeServers" $root | fromJsonArray) -}}
{{- if (index $v $name).enabled -}}
{{- $trusted := index $server.trustedServices $name | default dict -}}
{{- $entry := dict "name" $name "jwks" ($trusted.jwks | default (dict "keys" list)) -}}
{{- if $trusted.tenants -}}{{- $_ := set $entry "tenants" $trusted.tenants -}}{{- end -}}
{{- /* The platform runs the operator AS and makes the tenants' as.* and did.* keys. */ -}}
{{- if eq $name "platform" -}}{{- $_ := set $entry "acts_as" (list "as" "did") -}}{{- end -}}
{{- $services = append $services $entry -}}
{{- end -}}
{{- end -}}
{{- $auth = dict "kind" "service_jwt" "audience" $v.kmsAuth.audience "max_lifetime_secs" $v.kmsAuth.maxTokenLifetimeSecs "services" $services -}}
{{- end -}}
{{- $grpc := dict "listen" (printf "0.0.0.0:%v" $server.grpcPort) "auth" $auth -}}
{{- /* The platform's audit API reads the tenants' audit chains over gRPC. */ -}}
{{- if $v.platform.enabled -}}
{{- $reader := ternary (include "edk.serviceHost" (dict "root" $root "name" "platform")) "platform" (eq $v.kmsAuth.mode "mtls") -}}
{{- $_ := set $grpc "audit_readers" (list $reader) -}}
{{- end -}}
{{- if $tls -}}
{{- $grpcTls := dict "cert_file" "/var/run/secrets/edk/tls/tls.crt" "key_file" "/var/run/secrets/edk/tls/tls.key" -}}
{{- if eq $v.kmsAuth.mode "mtls" -}}{{- $_ := set $grpcTls "client_ca_file" "/var/run/secrets/edk/tls/ca.crt" -}}{{- end -}}
{{- $_ := set $grpc "tls" $grpcTls -}}
{{- end -}}
{{- $_ := set $config "grpc" $grpc -}}
{{- else -}}
{{- $kmsHost := include "edk.serviceHost" (dict "root" $root "name" "kms") -}}
{{- $remote := dict "mode" "remote" "endpoint" (printf "%s://%s:%v" (ternary "https" "http" (eq $tls "true")) $kmsHost $v.kms.grpcPort) -}}
{{- if $tls -}}
{{- $_ := set $remote "server_ca_file" "/var/run/secrets/edk/tls/ca.crt" -}}
{{- $_ := set $remote "server_name" $kmsHost -}}
{{- end -}}
{{- if eq $v.kmsAuth.mode "mtls" -}}
{{- $_ := set $remote "auth" (dict "kind" "mtls" "cert_file" "/var/run/secrets/edk/tls/tls.crt" "key_file" "/var/run/secrets/edk/tls/tls.key") -}}
{{- else -}}
{{- $_ := set $remote "auth" (dict "kind" "service_jwt" "service" .name "audience" $v.kmsAuth.audience "key_file" "/var/run/secrets/edk/service/service.jwk" "lifetime_secs" $v.kmsAuth.tokenLifetimeSecs) -}}
{{- end -}}
{{- $_ := set $config "kms" $remote -}}
{{- end -}}
{{- if eq .name "platform" -}}
{{- $_ := set $config "platform" (dict "host" $v.ingress.public.host "setup_token_file" "/var/lib/edk-platform/setup-token") -}}
{{- if include "edk.directoryClients" $root | fromJsonArray -}}
{{- $_ := set $config "grpc" (include "edk.directoryServer" $root | fromYaml) -}}
{{- end -}}
{{- end -}}
{{- if has .name (include "edk.directoryClients" $root | fromJsonArray) -}}
{{- $_ := set $config "directory" (include "edk.directory" (dict "root" $root "name" .name) | fromYaml) -}}
{{- end -}}
{{- if has .name (include "edk.rateLimitedServers" $root | fromJsonArray) -}}
{{- $_ := set $config "rate_limits" (include "edk.rateLimits" $root | fromYaml) -}}
{{- end -}}
{{- with include "edk.otlp" $root -}}
{{- $_ := set $config "observability" (fromYaml .) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $config (deepCopy $server.config)) -}}
{{- end -}}

{{/* The `observability` section of every server's configuration when observability.otlp.endpoint is set; empty otherwise. */}}
{{- define "edk.otlp" -}}
{{- $otlp := .Values.observability.otlp -}}
{{- if $otlp.endpoint -}}
{{- toYaml (dict "otlp" (dict "endpoint" $otlp.endpoint "sample_ratio" $otlp.sampleRatio "timeout_ms" (int64 $otlp.timeoutMs) "filter" $otlp.filter)) -}}
{{- end -}}
{{- end -}}

{{/* The export headers' variable (root), from observability.otlp.headersSecret; empty when unset. */}}
{{- define "edk.otlpHeadersEnv" -}}
{{- $otlp := .Values.observability.otlp -}}
{{- if and $otlp.endpoint $otlp.headersSecret.name -}}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ $otlp.headersSecret.name }}
      key: {{ $otlp.headersSecret.key }}
{{- end -}}
{{- end -}}
