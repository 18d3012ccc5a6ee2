// The pods of a step as the kafka hook's decisions see them.

/**
 * What the pod and its Pilot say about the Kafka process in it. `running`
 * undefined: nothing says (no container status, no Pilot status).
 */
export interface ProcessState {
  running: boolean | undefined;
  /** When the process's container started (ms since the epoch), if known. */
  since?: number;
  /** Where `running` comes from, for reasons: "its Pilot reports phase Running". */
  source: string;
}

/** A pod of the rollout, as the decisions see it. */
export interface BrokerRef {
  pod: string;
  /** node.id of the Kafka process in the pod. */
  id: number;
  ready: boolean;
  /** No pod below this one is left to update: it is the last step of a RollingUpdate. */
  last: boolean;
  /** Whether the Kafka process runs (for a pod that is not Ready: still starting, or broken?). */
  process?: ProcessState;
}
