import type { Logger } from './log.ts';
import { describeError } from './errors.ts';

// Node ends the process on a rejected promise that nobody awaited. In the
// controller and the pilot that is the wrong trade: such a promise is a side
// path (a client library's socket, a fire-and-forget close), never a decision
// (every decision is awaited and re-derived from the cluster on the next
// reconcile), and ending the pilot kills the database it wraps without its
// drain. So a stray rejection is logged with its stack and counted, and the
// process keeps running (controller-runtime recovers a reconciler's panic the
// same way). An uncaught *exception* still ends the process, since its state
// may be half-changed, but its last log line says why first.

/** Installs the handlers once per process; `onRejection` counts (a metric). */
export function guardProcess(log: Logger, onRejection: () => void = () => {}): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => {
    onRejection();
    log.error({ err: describeError(reason, 500), stack: stackOf(reason) }, 'a promise was rejected with nobody waiting for it; kept running');
  });
  process.on('uncaughtException', (err) => {
    log.fatal({ err: describeError(err, 500), stack: stackOf(err) }, 'uncaught exception; exiting');
    process.exit(70); // EX_SOFTWARE: the container restarts, and the controller starts from the cluster again
  });
}

let installed = false;

const stackOf = (x: unknown): string | undefined => (x instanceof Error ? x.stack?.split('\n').slice(0, 8).join('\n') : undefined);
