import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout, written synchronously: the controller may be killed or
 * exit at any instant, and its last lines are the ones that explain why.
 * Credentials never reach a log line, whatever a caller passes.
 */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
    name: opts.name ?? 'sts-pilot',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['password', '*.password', 'apiKey', '*.apiKey', 'token', '*.token', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
    },
    pino.destination({ fd: 1, sync: true }),
  );
}

/**
 * ms since the epoch with sub-ms precision, for the `trace` marks logged at debug
 * level along a rollout step (pod event, reconcile, plan, approval, partition patch
 * sent and answered): bench/trace-step.ts puts them beside kube-apiserver's audit
 * log, whose timestamps have microseconds; pino's `time` has milliseconds.
 */
export const traceNow = (): number => performance.timeOrigin + performance.now();
