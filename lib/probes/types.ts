import type { ApplicationStatus } from '../pilot/schema.ts';

export type { ApplicationStatus };

/**
 * Reads the state of the application the pilot runs, from inside its pod.
 * `probe` never rejects for an application problem: fields it could not learn
 * are absent and `error` says why (absent = unknown = block). It rejects only
 * when `signal` aborts.
 */
export interface ApplicationProbe {
  /** Written as `status.application.probe`; tells readers which fields to expect. */
  readonly name: string;
  probe(signal: AbortSignal): Promise<ApplicationStatus>;
}

export type Verdict = { ok: true } | { ok: false; reason: string };
