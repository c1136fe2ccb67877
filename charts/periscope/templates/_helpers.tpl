{{/* Names and labels. */}}
{{- define "periscope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "periscope.fullname" -}}
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

{{- define "periscope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "periscope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "periscope.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "periscope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "periscope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "periscope.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The settings periscope declares (settings.json, generated from host/src/config/settings.rs).
*/}}
{{- define "periscope.settings" -}}
{{- .Files.Get "settings.json" | fromJson | toJson -}}
{{- end -}}

{{/*
The value at a dotted path of .Values (nil when absent). Call with (list $root "a.b").
*/}}
{{- define "periscope.lookup" -}}
{{- $value := (index . 0).Values -}}
{{- range splitList "." (index . 1) -}}
{{- if kindIs "map" $value -}}
{{- $value = index $value . -}}
{{- else -}}
{{- $value = nil -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "value" $value) -}}
{{- end -}}

{{/*
Environment variables of settings set through Periscope's chart keys: rendered when the
value is set, and for strings non-empty (so kinds "" keeps the default, and a limit of 0
is rendered).
*/}}
{{- define "periscope.settingsEnv" -}}
{{- $root := . -}}
{{- range (include "periscope.settings" . | fromJson).settings -}}
{{- if .values_env -}}
{{- $value := (include "periscope.lookup" (list $root .values_env) | fromJson).value -}}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
- name: {{ .env }}
  value: {{ if kindIs "float64" $value }}{{ $value | int64 | quote }}{{ else }}{{ $value | toString | quote }}{{ end }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The kinds watchStreams.kinds enables, resolved like periscope's kinds grammar against the
bundled registry (kinds.json): "" and "all" enable every kind, "off"/"none" none, else
comma-separated kinds and group aliases, letter case and spaces ignored. Anything else
fails, naming the value. Returns {"kinds": [...]} as JSON.
*/}}
{{- define "periscope.enabledKinds" -}}
{{- $catalog := .Files.Get "kinds.json" | fromJson -}}
{{- $expression := .Values.watchStreams.kinds | default "" | toString -}}
{{- $normal := $expression | lower | trim -}}
{{- $tokens := list -}}
{{- range $catalog.kinds -}}{{- $tokens = append $tokens .token -}}{{- end -}}
{{- $wanted := list -}}
{{- if or (eq $normal "") (eq $normal "all") -}}
{{- $wanted = $tokens -}}
{{- else if or (eq $normal "off") (eq $normal "none") -}}
{{- else -}}
{{- range $entry := splitList "," $normal -}}
{{- $entry = trim $entry -}}
{{- if eq $entry "all" -}}
{{- $wanted = concat $wanted $tokens -}}
{{- else if hasKey $catalog.aliases $entry -}}
{{- $wanted = concat $wanted (get $catalog.aliases $entry) -}}
{{- else if has $entry $tokens -}}
{{- $wanted = append $wanted $entry -}}
{{- else if or (eq $entry "off") (eq $entry "none") -}}
{{- fail (printf "watchStreams.kinds = %q: %q cannot be combined with other entries; use it alone to disable every stream" $expression $entry) -}}
{{- else -}}
{{- $names := concat (list "all" "off" "none") (keys $catalog.aliases | sortAlpha) $tokens -}}
{{- $hint := include "periscope.didYouMean" (dict "entry" $entry "names" $names) -}}
{{- fail (printf "watchStreams.kinds = %q: unknown kind %q%s; valid: %s" $expression $entry $hint (join ", " $names)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $enabled := list -}}
{{- range $catalog.kinds -}}
{{- if has .token $wanted -}}{{- $enabled = append $enabled . -}}{{- end -}}
{{- end -}}
{{- toJson (dict "kinds" $enabled) -}}
{{- end -}}

{{/*
" (did you mean \"pods\"?)" for a misspelled entry: the valid name sharing the longest
prefix with it, when that prefix has at least 3 characters; else "".
*/}}
{{- define "periscope.didYouMean" -}}
{{- $entry := .entry -}}
{{- $best := "" -}}
{{- $bestLength := 2 -}}
{{- range $name := .names -}}
{{- $length := 0 -}}
{{- range $i := until (min (len $name) (len $entry) | int) -}}
{{- if eq (substr 0 (add1 $i | int) $name) (substr 0 (add1 $i | int) $entry) -}}{{- $length = add1 $i -}}{{- end -}}
{{- end -}}
{{- if gt $length $bestLength -}}{{- $best = $name -}}{{- $bestLength = $length -}}{{- end -}}
{{- end -}}
{{- if $best -}}{{- printf " (did you mean %q?)" $best -}}{{- end -}}
{{- end -}}

{{/*
config.auth.mode = "jwt" needs a key to verify tokens: secret_file, public_key_files or
jwks_file (in config.auth, or their PERISCOPE_AUTH_* variables in env). Without one the
pod would exit 64 at start-up and crash-loop; this fails at template time instead.
*/}}
{{- define "periscope.checkAuth" -}}
{{- $auth := .Values.config.auth | default dict -}}
{{- if eq (lower (toString ($auth.mode | default ""))) "jwt" -}}
{{- $keys := or $auth.secret_file $auth.public_key_files $auth.jwks_file -}}
{{- range .Values.env -}}
{{- if and (has .name (list "PERISCOPE_AUTH_SECRET_FILE" "PERISCOPE_AUTH_PUBLIC_KEY_FILES" "PERISCOPE_AUTH_JWKS_FILE")) .value -}}{{- $keys = true -}}{{- end -}}
{{- end -}}
{{- if not $keys -}}
{{- fail "config.auth.mode = \"jwt\" needs a key to verify tokens: set config.auth.secret_file (HS256/384/512), or config.auth.public_key_files or config.auth.jwks_file (RS*, PS*, ES*, EdDSA), at a file of the Secret named by auth.existingSecret (mounted at /etc/periscope/auth)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Seconds of a humantime duration such as "10s", "1m30s" or "1h 5m", rounded up; fails on
a unit it does not know (periscope itself reports the exact problem at start-up).
*/}}
{{- define "periscope.seconds" -}}
{{- $text := . | toString | lower -}}
{{- $ms := 0 -}}
{{- range regexFindAll "[0-9]+ *[a-z]+" $text -1 -}}
{{- $n := regexFind "^[0-9]+" . | int64 -}}
{{- $unit := regexFind "[a-z]+$" . -}}
{{- if has $unit (list "ms" "msec" "millis") -}}{{- $ms = add $ms $n -}}
{{- else if has $unit (list "s" "sec" "secs" "second" "seconds") -}}{{- $ms = add $ms (mul $n 1000) -}}
{{- else if has $unit (list "m" "min" "mins" "minute" "minutes") -}}{{- $ms = add $ms (mul $n 60000) -}}
{{- else if has $unit (list "h" "hr" "hrs" "hour" "hours") -}}{{- $ms = add $ms (mul $n 3600000) -}}
{{- else -}}{{- fail (printf "config.server.shutdown_grace = %q: unit %q not understood by the chart; write seconds, minutes or hours such as \"30s\"" $text $unit) -}}
{{- end -}}
{{- end -}}
{{- div (add $ms 999) 1000 -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: longer than config.server.shutdown_grace, so streams are
closed with `shutdown` before the kubelet kills the pod.
*/}}
{{- define "periscope.terminationGrace" -}}
{{- $grace := .Values.config.server.shutdown_grace -}}
{{- if kindIs "invalid" $grace -}}
{{- range (include "periscope.settings" . | fromJson).settings -}}
{{- if eq .key "server.shutdown_grace" -}}{{- $grace = .default -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $graceSeconds := include "periscope.seconds" $grace | int64 -}}
{{- $set := .Values.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $set -}}
{{- add $graceSeconds 10 -}}
{{- else if le (int64 $set) $graceSeconds -}}
{{- fail (printf "terminationGracePeriodSeconds = %v must be longer than config.server.shutdown_grace (%s = %ds), or streams are killed before they close" $set $grace $graceSeconds) -}}
{{- else -}}
{{- int64 $set -}}
{{- end -}}
{{- end -}}

{{/* The HTTP port: the port of config.server.listen. */}}
{{- define "periscope.port" -}}
{{- regexFind "[0-9]+$" (.Values.config.server.listen | toString) | default "8080" -}}
{{- end -}}

{{/* A TOML value: strings, booleans, whole numbers and lists of strings (the schema allows no other). */}}
{{- define "periscope.toml" -}}
{{- if kindIs "string" . -}}{{- toJson . -}}
{{- else if kindIs "bool" . -}}{{- . -}}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}{{- int64 . -}}
{{- else if kindIs "slice" . -}}[{{- range $i, $item := . -}}{{ if $i }}, {{ end }}{{ toJson (toString $item) }}{{- end -}}]
{{- else -}}{{- fail (printf "cannot render %v as TOML" .) -}}
{{- end -}}
{{- end -}}
