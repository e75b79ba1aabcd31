{{/*
Shared names, labels and the pieces two templates must agree on (the policy file, the
certificates). Kept here so a name is spelled in one place.
*/}}

{{- define "openclaw-admission.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "openclaw-admission.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "openclaw-admission.serviceAccountName" -}}
{{- default (include "openclaw-admission.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "openclaw-admission.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "secret" -}}
{{- required "certificates.secret.name is required when certificates.mode=secret" .Values.certificates.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "openclaw-admission.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the webhook's pods. */}}
{{- define "openclaw-admission.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openclaw-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "openclaw-admission.labels" -}}
{{ include "openclaw-admission.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: admission-webhook
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels that select the scheduled scan's pods: never the webhook's (its Service, PDB and
NetworkPolicy select by those). */}}
{{- define "openclaw-admission.scanSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-scan" (include "openclaw-admission.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "openclaw-admission.scanLabels" -}}
{{ include "openclaw-admission.scanSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: scheduled-scan
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The webhook pod's labels: selector labels, component, and podLabels. */}}
{{- define "openclaw-admission.podLabels" -}}
{{- $labels := include "openclaw-admission.selectorLabels" . | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/component" "admission-webhook" -}}
{{- $labels = merge $labels (.Values.podLabels | default dict) -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "openclaw-admission.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The policy file. agentSelectors and catchAll come from the top-level values, which also build
the webhook entries, so the API server and the engine select the same pods.
*/}}
{{- define "openclaw-admission.policy" -}}
{{- $policy := deepCopy (.Values.policy | default dict) -}}
{{- range $key := list "agentSelectors" "catchAll" -}}
{{- if hasKey $policy $key -}}
{{- fail (printf "policy.%s: set the top-level value %s instead; it also builds the webhook entries" $key $key) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.agentSelectors -}}
{{- fail "agentSelectors: at least one selector is needed to find agent pods" -}}
{{- end -}}
{{- $_ := set $policy "agentSelectors" .Values.agentSelectors -}}
{{- $_ := set $policy "catchAll" .Values.catchAll -}}
{{- toYaml $policy -}}
{{- end -}}

{{/*
Refuses to render when the webhook's own pod would match an agent selector: the webhook must
never judge (and so never block) its own pods. Checks selectors made of matchLabels only.
*/}}
{{- define "openclaw-admission.assertNotAnAgent" -}}
{{- $pod := include "openclaw-admission.podLabels" . | fromYaml -}}
{{- range $i, $sel := .Values.agentSelectors -}}
{{- if and $sel.matchLabels (not $sel.matchExpressions) -}}
{{- $all := true -}}
{{- range $k, $v := $sel.matchLabels -}}
{{- if ne (toString (get $pod $k)) (toString $v) -}}
{{- $all = false -}}
{{- end -}}
{{- end -}}
{{- if $all -}}
{{- fail (printf "podLabels: the webhook's own pod would match agentSelectors[%d]; it must not judge itself" $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
namespaceSelector shared by every webhook entry: kube-system and the release namespace are never
sent to the webhook, so the control plane and the webhook itself keep working while it is down.
*/}}
{{- define "openclaw-admission.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml (concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq) | nindent 6 }}
{{- end -}}

{{/*
objectSelector of the catch-all entry: pods that an agent selector of one label already sends to
its own entry are left out, so they are not judged twice. Selectors with more than one label
cannot be negated in one selector; their pods are judged twice, which is harmless.
*/}}
{{- define "openclaw-admission.catchAllObjectSelector" -}}
{{- $exclude := dict -}}
{{- range .Values.agentSelectors -}}
{{- if and .matchLabels (eq (len .matchLabels) 1) (not .matchExpressions) -}}
{{- range $k, $v := .matchLabels -}}
{{- $_ := set $exclude $k (append (get $exclude $k | default list) $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $exclude -}}
matchExpressions:
{{- range $k := keys $exclude | sortAlpha }}
  - key: {{ $k }}
    operator: NotIn
    values: {{ get $exclude $k | uniq | toJson }}
{{- end -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
The TLS material as YAML (ca, crt, key, caBundle), computed once per render: the Secret and both
webhook configurations must carry the same CA, so they live in one template that includes this
once. generate: an existing Secret is kept across upgrades (lookup); `helm template` has no
cluster, so it generates fresh material each run.
*/}}
{{- define "openclaw-admission.tls" -}}
{{- $mode := .Values.certificates.mode -}}
{{- if eq $mode "generate" -}}
{{- $name := include "openclaw-admission.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if and $existing $existing.data (index $existing.data "ca.crt") (index $existing.data "tls.crt") (index $existing.data "tls.key") -}}
ca: {{ index $existing.data "ca.crt" | b64dec | quote }}
crt: {{ index $existing.data "tls.crt" | b64dec | quote }}
key: {{ index $existing.data "tls.key" | b64dec | quote }}
{{- else -}}
{{- $svc := include "openclaw-admission.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $days := int .Values.certificates.generate.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns $days $ca -}}
ca: {{ $ca.Cert | quote }}
crt: {{ $cert.Cert | quote }}
key: {{ $cert.Key | quote }}
{{- end -}}
{{- else if eq $mode "secret" -}}
{{- $_ := include "openclaw-admission.tlsSecretName" . -}}
caBundle: {{ required "certificates.secret.caBundle (base64 PEM of the CA) is required when certificates.mode=secret" .Values.certificates.secret.caBundle | quote }}
{{- else if eq $mode "certManager" -}}
{}
{{- else -}}
{{- fail (printf "certificates.mode: %q; allowed: certManager, secret, generate" $mode) -}}
{{- end -}}
{{- end -}}

{{/*
clientConfig of a webhook entry; path is /validate or /mutate. The Service by default; a URL when
webhook.url is set (a webhook outside the cluster, and the url form in webhook-config/).
*/}}
{{- define "openclaw-admission.clientConfig" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
{{- $caBundle := index . 2 -}}
{{- if $root.Values.webhook.url -}}
url: {{ printf "%s%s" (trimSuffix "/" $root.Values.webhook.url) $path }}
{{- else -}}
service:
  name: {{ include "openclaw-admission.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ $path }}
  port: {{ $root.Values.service.port }}
{{- end }}
{{- if $caBundle }}
# The CA that signed the serving certificate; the API server trusts nothing else for this call.
caBundle: {{ $caBundle }}
{{- end }}
{{- end -}}

{{/* Annotations of the webhook configurations: CA injection in certManager mode. */}}
{{- define "openclaw-admission.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "certManager" -}}
annotations:
  # cert-manager's cainjector writes the serving Certificate's CA into every caBundle here.
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "openclaw-admission.tlsSecretName" .) }}
{{- end -}}
{{- end -}}

{{/*
One agent selector (matchLabels and matchExpressions, ANDed) as a CEL expression over a label
map named `l`, for matchConditions. Keys and values are written as JSON strings, which CEL reads
as string literals.
*/}}
{{- define "openclaw-admission.celSelector" -}}
{{- $parts := list -}}
{{- range $k, $v := .matchLabels -}}
{{- $parts = append $parts (printf "(%s in l && l[%s] == %s)" (toJson $k) (toJson $k) (toJson $v)) -}}
{{- end -}}
{{- range .matchExpressions -}}
{{- $k := toJson .key -}}
{{- $vals := toJson (.values | default list) -}}
{{- if eq .operator "In" -}}
{{- $parts = append $parts (printf "(%s in l && l[%s] in %s)" $k $k $vals) -}}
{{- else if eq .operator "NotIn" -}}
{{- $parts = append $parts (printf "(!(%s in l) || !(l[%s] in %s))" $k $k $vals) -}}
{{- else if eq .operator "Exists" -}}
{{- $parts = append $parts (printf "(%s in l)" $k) -}}
{{- else if eq .operator "DoesNotExist" -}}
{{- $parts = append $parts (printf "!(%s in l)" $k) -}}
{{- else -}}
{{- fail (printf "agentSelectors: unknown operator %q (In, NotIn, Exists, DoesNotExist)" .operator) -}}
{{- end -}}
{{- end -}}
{{- if $parts -}}{{ join " && " $parts }}{{- else -}}true{{- end -}}
{{- end -}}

{{/*
CEL over a workload under review: `[<map>].exists(m, ...)` binds the pod template's labels
(or annotations) to a name. Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
ReplicationControllers keep their template at spec.template; CronJobs at
spec.jobTemplate.spec.template. A missing map reads as empty. Argument: (list field var), var
being `object` or `oldObject`.
*/}}
{{- define "openclaw-admission.celTemplateField" -}}
{{- $f := index . 0 -}}
{{- $o := index . 1 -}}
has({{ $o }}.spec.jobTemplate) ? (has({{ $o }}.spec.jobTemplate.spec) && has({{ $o }}.spec.jobTemplate.spec.template) && has({{ $o }}.spec.jobTemplate.spec.template.metadata) && has({{ $o }}.spec.jobTemplate.spec.template.metadata.{{ $f }}) ? {{ $o }}.spec.jobTemplate.spec.template.metadata.{{ $f }} : {}) : (has({{ $o }}.spec.template) && has({{ $o }}.spec.template.metadata) && has({{ $o }}.spec.template.metadata.{{ $f }}) ? {{ $o }}.spec.template.metadata.{{ $f }} : {})
{{- end -}}

{{/* Any of agentSelectors over a label map named `l`. */}}
{{- define "openclaw-admission.celAnySelector" -}}
{{- $any := list -}}
{{- range .Values.agentSelectors -}}
{{- $any = append $any (printf "(%s)" (include "openclaw-admission.celSelector" .)) -}}
{{- end -}}
{{- join " || " $any | default "false" -}}
{{- end -}}

{{/* The template's labels in `var` (`object` or `oldObject`) match one of agentSelectors. Argument: (list $ var). */}}
{{- define "openclaw-admission.celAgentTemplateIn" -}}
{{- $o := index . 1 -}}
{{ $o }} != null && has({{ $o }}.spec) && [{{ include "openclaw-admission.celTemplateField" (list "labels" $o) }}].exists(l, {{ include "openclaw-admission.celAnySelector" (index . 0) }})
{{- end -}}

{{/* The template's labels match one of agentSelectors. */}}
{{- define "openclaw-admission.celAgentTemplate" -}}
{{ include "openclaw-admission.celAgentTemplateIn" (list . "object") }}
{{- end -}}

{{/*
The new or the old template is an agent's: an UPDATE that takes the agent labels off a template
is sent too, so the webhook can refuse it (relabel-requires-approval). On CREATE oldObject is null.
*/}}
{{- define "openclaw-admission.celAgentTemplateNowOrBefore" -}}
({{ include "openclaw-admission.celAgentTemplateIn" (list . "object") }}) || ({{ include "openclaw-admission.celAgentTemplateIn" (list . "oldObject") }})
{{- end -}}

{{/*
The pod in `var` is an agent: its labels match one of agentSelectors (a Pod always has
metadata), or, with policy.agentSandbox.allAgents (the default), its controller owner is an
agent-sandbox Sandbox (the Pod the Sandbox controller made), narrowed by agentSandbox.selector on
the Pod's labels. Argument: (list $ var).
*/}}
{{- define "openclaw-admission.celAgentPodIn" -}}
{{- $ := index . 0 -}}
{{- $o := index . 1 -}}
{{- $labels := printf "[has(%s.metadata.labels) ? %s.metadata.labels : {}]" $o $o -}}
{{- $s := dig "agentSandbox" dict ($.Values.policy | default dict) -}}
{{- $all := true -}}
{{- if hasKey $s "allAgents" -}}{{- $all = $s.allAgents -}}{{- end -}}
{{ $o }} != null && has({{ $o }}.metadata) && ({{ $labels }}.exists(l, {{ include "openclaw-admission.celAnySelector" $ }})
{{- if $all }} || (has({{ $o }}.metadata.ownerReferences) && {{ $o }}.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && r.kind == 'Sandbox' && r.apiVersion.startsWith('agents.x-k8s.io/'))
{{- if $s.selector }} && {{ $labels }}.exists(l, {{ include "openclaw-admission.celSelector" $s.selector }}){{ end -}}
){{- end -}})
{{- end -}}

{{/* The pod's own labels match one of agentSelectors. */}}
{{- define "openclaw-admission.celAgentPod" -}}
{{ include "openclaw-admission.celAgentPodIn" (list . "object") }}
{{- end -}}

{{/*
The new or the old pod is an agent: `kubectl label pod agent app-` is sent too (its new object
matches no selector), so the webhook can refuse it (relabel-requires-approval).
*/}}
{{- define "openclaw-admission.celAgentPodNowOrBefore" -}}
({{ include "openclaw-admission.celAgentPodIn" (list . "object") }}) || ({{ include "openclaw-admission.celAgentPodIn" (list . "oldObject") }})
{{- end -}}

{{/* The template asks for an exemption (the policy's exemptionAnnotation). */}}
{{- define "openclaw-admission.celExemptionAsked" -}}
{{- $key := .Values.policy.exemptionAnnotation | default "openclaw.io/exempt" -}}
object != null && has(object.spec) && [{{ include "openclaw-admission.celTemplateField" (list "annotations" "object") }}].exists(a, {{ toJson $key }} in a)
{{- end -}}

{{/*
The Secret whose ca.crt is the client CA the webhook trusts (clientAuth.enabled): one of your
own (clientAuth.caSecret), else the chart's <fullname>-apiserver-client, which also holds the
API server's client certificate (tls.crt, tls.key).
*/}}
{{- define "openclaw-admission.clientCaSecretName" -}}
{{- if .Values.clientAuth.caSecret -}}
{{- .Values.clientAuth.caSecret -}}
{{- else if eq .Values.certificates.mode "secret" -}}
{{- fail "clientAuth.caSecret (a Secret whose ca.crt is your client CA) is required with clientAuth.enabled and certificates.mode=secret" -}}
{{- else -}}
{{- printf "%s-apiserver-client" (include "openclaw-admission.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
generate mode with client authentication: a client CA and the API server's client certificate
as YAML (ca, crt, key). An existing Secret is kept across upgrades (lookup), so the API server's
copy stays valid; `helm template` has no cluster and makes fresh material each run.
*/}}
{{- define "openclaw-admission.clientAuthMaterial" -}}
{{- $name := printf "%s-apiserver-client" (include "openclaw-admission.fullname" .) -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if and $existing $existing.data (index $existing.data "ca.crt") (index $existing.data "tls.crt") (index $existing.data "tls.key") -}}
ca: {{ index $existing.data "ca.crt" | b64dec | quote }}
crt: {{ index $existing.data "tls.crt" | b64dec | quote }}
key: {{ index $existing.data "tls.key" | b64dec | quote }}
{{- else -}}
{{- $days := int .Values.certificates.generate.validityDays -}}
{{- $cn := .Values.clientAuth.clientCertName -}}
{{- $ca := genCA (printf "%s-client-ca" (include "openclaw-admission.fullname" .)) $days -}}
{{- $cert := genSignedCert $cn nil (list $cn) $days $ca -}}
ca: {{ $ca.Cert | quote }}
crt: {{ $cert.Cert | quote }}
key: {{ $cert.Key | quote }}
{{- end -}}
{{- end -}}

{{/*
The name the API server's webhook kubeconfig must give the user whose client certificate it
presents here: the webhook's host as its clientConfig reaches it (host[:port] of webhook.url,
or the Service's DNS name, with the port when it is not 443).
*/}}
{{- define "openclaw-admission.clientAuthUserName" -}}
{{- if .Values.webhook.url -}}
{{- trimPrefix "https://" (trimSuffix "/" .Values.webhook.url) -}}
{{- else -}}
{{- $host := printf "%s.%s.svc" (include "openclaw-admission.fullname" .) .Release.Namespace -}}
{{- if eq (int .Values.service.port) 443 -}}
{{- $host -}}
{{- else -}}
{{- printf "%s:%d" $host (int .Values.service.port) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels of the pod template of the agent-sandbox object in `var` (Sandbox and SandboxTemplate keep it at spec.podTemplate). Argument: the variable name. */}}
{{- define "openclaw-admission.celSandboxLabels" -}}
{{ . }} != null && has({{ . }}.spec) && has({{ . }}.spec.podTemplate) && has({{ . }}.spec.podTemplate.metadata) && has({{ . }}.spec.podTemplate.metadata.labels) ? {{ . }}.spec.podTemplate.metadata.labels : {}
{{- end -}}

{{/*
A Sandbox or SandboxTemplate asks for an exemption (the policy's exemptionAnnotation on its pod
template): an approver's request gets the signed stamp, which the controller's Sandboxes and
Pods carry.
*/}}
{{- define "openclaw-admission.celSandboxExemptionAsked" -}}
{{- $key := .Values.policy.exemptionAnnotation | default "openclaw.io/exempt" -}}
object != null && has(object.spec) && has(object.spec.podTemplate) && has(object.spec.podTemplate.metadata) && has(object.spec.podTemplate.metadata.annotations) && {{ toJson $key }} in object.spec.podTemplate.metadata.annotations
{{- end -}}

{{/*
Which agent-sandbox requests are sent (policy.agentSandbox): with allAgents (the default) every
Sandbox and SandboxTemplate, narrowed by its selector on the pod template's labels, and every
SandboxClaim and SandboxWarmPool; without it, only the Sandboxes and templates whose pod template
labels an agent selector matches, now or before an UPDATE.
*/}}
{{- define "openclaw-admission.celSandbox" -}}
{{- $s := dig "agentSandbox" dict (.Values.policy | default dict) -}}
{{- $all := true -}}
{{- if hasKey $s "allAgents" -}}{{- $all = $s.allAgents -}}{{- end -}}
{{- $agent := printf "[%s].exists(l, %s) || [%s].exists(l, %s)" (include "openclaw-admission.celSandboxLabels" "object") (include "openclaw-admission.celAnySelector" .) (include "openclaw-admission.celSandboxLabels" "oldObject") (include "openclaw-admission.celAnySelector" .) -}}
{{- if and $all (not $s.selector) -}}
request.kind.kind in ['Sandbox', 'SandboxTemplate', 'SandboxClaim', 'SandboxWarmPool']
{{- else if $all -}}
request.kind.kind in ['SandboxClaim', 'SandboxWarmPool'] || (request.kind.kind in ['Sandbox', 'SandboxTemplate'] && ([{{ include "openclaw-admission.celSandboxLabels" "object" }}].exists(l, {{ include "openclaw-admission.celSelector" $s.selector }}) || {{ $agent }}))
{{- else -}}
request.kind.kind in ['Sandbox', 'SandboxTemplate'] && ({{ $agent }})
{{- end -}}
{{- end -}}
