import type { EventRecorder } from '../events.ts';
import { hookOptionAnnotations } from '../hook.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { PilotManager } from '../pilot/manager.ts';
import { WorkQueue } from '../workqueue.ts';
import type { Caches } from './caches.ts';

interface ProvisionerParts {
  manager: PilotManager;
  caches: Caches;
  events: EventRecorder;
  log: Logger;
  labelKey: string;
  isLeader: () => boolean;
  metrics?: Pick<Metrics, 'addWorkQueue'>;
}

/**
 * One Pilot per pod of every subscribed StatefulSet, on a queue of its own: a
 * slow or failing Pilot write never delays a guard or a step. A failure is an
 * Event on the StatefulSet (and sts_pilot_api_errors_total{operation="create_pilot"}),
 * retried with backoff.
 */
export class PilotProvisioner {
  private readonly queue: WorkQueue;
  private readonly o: ProvisionerParts;

  constructor(o: ProvisionerParts) {
    this.o = o;
    this.queue = new WorkQueue({
      workers: 2,
      baseDelayMs: 2000,
      maxDelayMs: 5 * 60_000,
      handler: (k) => this.provision(k),
      onError: (k, err) => o.log.warn({ statefulSet: k, err: String(err) }, 'Pilot provisioning failed; retrying with backoff'),
      ...(o.metrics ? { observer: o.metrics.addWorkQueue('pilots', { stats: (now) => this.queue.stats(now) }) } : {}),
    });
  }

  add(key: string): void {
    this.queue.add(key);
  }

  async stop(): Promise<void> {
    await this.queue.shutdown();
  }

  private async provision(key: string): Promise<void> {
    if (!this.o.isLeader()) return;
    const slash = key.indexOf('/');
    const sts = this.o.caches.statefulSet(key.slice(0, slash), key.slice(slash + 1));
    if (!sts) return;
    const app = sts.metadata?.labels?.[this.o.labelKey] ?? '';
    const result = await this.o.manager.ensurePilots(sts, this.o.caches.podsOf(sts), app, hookOptionAnnotations(sts.metadata?.annotations, app));
    if (result.failed.length === 0) {
      this.queue.forget(key);
      return;
    }
    const what = result.failed.map((f) => `${f.pod}: ${f.error}`).join('; ');
    await this.o.events.emit(sts, 'Warning', 'PilotNotCreated', `could not create the Pilot of ${result.failed.length} pod(s): ${what}`.slice(0, 1000));
    this.queue.addRateLimited(key);
  }
}
