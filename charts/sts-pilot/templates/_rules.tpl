{{/* The alerting rules, shared by the PrometheusRule and the plain rules file of manifests/monitoring/. */}}
{{/* Every alert: a `for:`, a severity, and a runbook_url at its section of docs/observability.md. */}}
{{- define "sts-pilot.rules" -}}
{{- $r := .Values.prometheusRule -}}
{{- $runbook := $r.runbookUrl -}}
groups:
  - name: sts-pilot
    rules:
      # The leader publishes how long each rollout has waited at its current step.
      - alert: StsPilotRolloutHeld
        expr: max by (namespace, statefulset) (sts_pilot_step_wait_seconds) > {{ $r.rolloutHeldSeconds }}
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: {{`'Rollout of {{ $labels.namespace }}/{{ $labels.statefulset }} held at one step for {{ $value | humanizeDuration }}'`}}
          description: {{`'sts-pilot has been waiting at the same step of {{ $labels.namespace }}/{{ $labels.statefulset }} for more than `}}{{ $r.rolloutHeldSeconds }}{{` seconds: a hook holds it or a pod is not Ready. "kubectl sts-pilot status" and the StatefulSet''s Events say why.'`}}
          runbook_url: {{ printf "%s#stspilotrolloutheld" $runbook }}
      # "error" is a hook that failed, not one that holds: a bug or an unexpected answer.
      - alert: StsPilotHookErrors
        expr: sum by (hook) (increase(sts_pilot_hook_calls_total{outcome="error"}[15m])) > {{ $r.hookErrors }}
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: {{`'Hook {{ $labels.hook }} failed {{ $value | humanize }} times in 15 minutes'`}}
          description: {{`'Calls of the {{ $labels.hook }} hook end in errors (not holds); the rollouts that use it stay held. The controller log has each error.'`}}
          runbook_url: {{ printf "%s#stspilothookerrors" $runbook }}
      # No replica holds the Lease (or none runs): no rollout moves, no guard acts.
      - alert: StsPilotNoLeader
        expr: (sum(sts_pilot_leader) or vector(0)) < 1
        for: {{ $r.noLeaderFor }}
        labels:
          severity: critical
        annotations:
          summary: No sts-pilot controller holds the leader Lease
          description: Subscribed StatefulSets keep their partition, but no rollout moves and the guard does not act. Check the sts-pilot-controller Deployment and its Lease.
          runbook_url: {{ printf "%s#stspilotnoleader" $runbook }}
      - alert: StsPilotWatchRestarts
        expr: sum by (resource) (increase(sts_pilot_watch_restarts_total[15m])) > {{ $r.watchRestarts }}
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: {{`'The controller''s watch of {{ $labels.resource }} restarted {{ $value | humanize }} times in 15 minutes'`}}
          description: The API server ends the controller's watches with errors; its cache may lag. Check the API server and the controller's RBAC.
          runbook_url: {{ printf "%s#stspilotwatchrestarts" $runbook }}
      # Only Pilots whose pilot has reported at least once carry a heartbeat; the leader alone exports them.
      - alert: StsPilotPilotHeartbeatMissing
        expr: time() - max by (namespace, pilot, statefulset) (sts_pilot_pilot_heartbeat_timestamp_seconds) > {{ $r.pilotHeartbeatSeconds }}
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: {{`'Pilot {{ $labels.namespace }}/{{ $labels.pilot }} has written no heartbeat for {{ $value | humanizeDuration }}'`}}
          description: {{`'The in-pod pilot of {{ $labels.namespace }}/{{ $labels.pilot }} (StatefulSet {{ $labels.statefulset }}) stopped reporting; hooks that read Pilots (pilot-ready, elasticsearch) hold the rollout. Check the pod.'`}}
          runbook_url: {{ printf "%s#stspilotpilotheartbeatmissing" $runbook }}
      - alert: StsPilotAdmissionGateMissing
        expr: max(sts_pilot_admission_gate) == 0
        for: 15m
        labels:
          severity: info
        annotations:
          summary: The admission policies that keep the partition shut are not enforced
          description: The controller's guard alone protects the partition, and a template changed mid-rollout can move a pod before it acts. Install the admission gate (the chart's admission.gate).
          runbook_url: {{ printf "%s#stspilotadmissiongatemissing" $runbook }}
      # A handler that runs this long is stuck: hook calls have their own deadline and run beside the queue.
      - alert: StsPilotWorkQueueStuck
        expr: max by (name) (sts_pilot_workqueue_longest_running_processor_seconds) > {{ $r.workQueueStuckSeconds }}
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: {{`'A handler of the {{ $labels.name }} work queue has run for {{ $value | humanizeDuration }}'`}}
          description: {{`'One key of the controller''s {{ $labels.name }} queue has been in work for more than `}}{{ $r.workQueueStuckSeconds }}{{` seconds; the keys behind it wait (sts_pilot_workqueue_depth). The controller log of that replica says which.'`}}
          runbook_url: {{ printf "%s#stspilotworkqueuestuck" $runbook }}
{{- end }}
