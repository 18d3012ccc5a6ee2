{{/*
Names are fixed, not derived from the release name: the CRD, the admission
policies and the ClusterRoles are cluster-wide, and the controller finds the
gate by these names. One install per cluster.
*/}}

{{/*
The standard labels, on every object of the chart (docs/install.md, "Labels"):
  include "sts-pilot.labels" (list . "<component>")
The component says which part of sts-pilot the object belongs to. Selectors
never use these (a version or chart label in a selector would change with every
upgrade, and a Deployment's selector cannot change): the Deployment keeps
sts-pilot.controllerLabels, stable from the first release on.
*/}}
{{- define "sts-pilot.labels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: sts-pilot
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/part-of: sts-pilot
app.kubernetes.io/managed-by: {{ $.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sts-pilot.controllerLabels" -}}
app.kubernetes.io/name: sts-pilot
app.kubernetes.io/component: controller
{{- end }}

{{/* The user the controller authenticates as: what the admission policies let through. */}}
{{- define "sts-pilot.controllerUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:sts-pilot-controller
{{- end }}

{{/* The controller's leader Lease: --leader-election-id from extraArgs, else its default. */}}
{{- define "sts-pilot.leaderElectionId" -}}
{{- $id := "sts-pilot" -}}
{{- range .Values.extraArgs -}}
{{- if hasPrefix "--leader-election-id=" (toString .) }}{{ $id = trimPrefix "--leader-election-id=" (toString .) }}{{ end -}}
{{- end -}}
{{ $id }}
{{- end }}

{{- define "sts-pilot.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Fails the render on values that cannot work together. */}}
{{- define "sts-pilot.validate" -}}
{{- if and .Values.rbac.namespaced (not .Values.watchNamespaces) }}
{{- fail "rbac.namespaced=true needs watchNamespaces: a namespace-scoped install can only watch the namespaces it has Roles in" }}
{{- end }}
{{- if ge (int .Values.leaderElection.renewDeadline) (int .Values.leaderElection.leaseDuration) }}
{{- fail "leaderElection.renewDeadline must be shorter than leaderElection.leaseDuration" }}
{{- end }}
{{- end }}

{{/*
Which admission objects keep the gate shut: admission.mode, or with `auto` what
the API server serves. A template rendered for one mode through another
(admission-gate-v1beta1.yaml and admission-gate-validating.yaml render
admission-gate.yaml's objects) passes gateModeOverride in its context.
Offline (`helm template` knows no admission APIs) the Kubernetes version decides:
MutatingAdmissionPolicy v1 from 1.36; below, the beta may be off, so validating-only.
*/}}
{{- define "sts-pilot.gateMode" -}}
{{- $v := .Capabilities.APIVersions -}}
{{- if hasKey . "gateModeOverride" -}}
{{ index . "gateModeOverride" }}
{{- else if ne .Values.admission.mode "auto" -}}
{{ .Values.admission.mode }}
{{- else if $v.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" -}}
mutating-v1
{{- else if $v.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy" -}}
mutating-v1beta1
{{- else if $v.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy" -}}
validating-only
{{- else if semverCompare ">=1.36.0-0" .Capabilities.KubeVersion.Version -}}
mutating-v1
{{- else -}}
validating-only
{{- end -}}
{{- end }}

{{/*
The gate's bindings select the subscribed StatefulSets themselves. The API
server matches an objectSelector against the old and the new object alike, so
a write that adds or removes the label is a subscribed write, and a StatefulSet
that never carried it never reaches a policy of the gate.
*/}}
{{- define "sts-pilot.subscribed" -}}
objectSelector:
  matchExpressions:
    - { key: {{ .Values.labelKey | quote }}, operator: Exists }
{{- end }}

{{/* The namespaces the gate covers: all but those an administrator labelled out. */}}
{{- define "sts-pilot.gateNamespaces" -}}
namespaceSelector:
  matchExpressions:
    - { key: sts-pilot.io/admission-gate, operator: NotIn, values: [disabled] }
{{- end }}
