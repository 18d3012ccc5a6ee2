{{/*
Names are fixed, not derived from the release name: the CRD, the admission
policies and the ClusterRoles are cluster-wide, and the controller finds the
gate by these names. One install per cluster.
*/}}

{{- define "sts-pilot.labels" -}}
app.kubernetes.io/name: sts-pilot
app.kubernetes.io/part-of: sts-pilot
{{- end }}

{{- define "sts-pilot.controllerLabels" -}}
app.kubernetes.io/name: sts-pilot
app.kubernetes.io/component: controller
{{- end }}

{{/* The user the controller authenticates as: what the admission policies let through. */}}
{{- define "sts-pilot.controllerUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:sts-pilot-controller
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
