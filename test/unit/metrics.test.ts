import { expect } from 'chai';
import { createMetrics, objectLabels } from '../../lib/metrics.ts';
import { WorkQueue } from '../../lib/workqueue.ts';

const lines = async (m: ReturnType<typeof createMetrics>, prefix: string): Promise<string[]> =>
  (await m.registry.metrics()).split('\n').filter((l) => l.startsWith(prefix));

describe('metrics: labels and who exports what', () => {
  it('names a StatefulSet by namespace and statefulset, as kube-state-metrics does', () => {
    expect(objectLabels('db/web')).to.deep.equal({ namespace: 'db', statefulset: 'web' });
  });

  it('per-object series: only what the sources yield (a follower yields none)', async () => {
    const m = createMetrics();
    let leader = true;
    m.setStepWaitSource(() => (leader ? [['db/web', 12]] : []));
    m.addPilotHeartbeatSource(() => (leader ? [{ namespace: 'db', pilot: 'web-0', statefulSet: 'web', at: 5000 }] : []));
    m.addStatefulSetSource(() => (leader ? [{ namespace: 'db', statefulset: 'web', hook: 'http' }] : []));
    expect(await lines(m, 'sts_pilot_step_wait_seconds{')).to.deep.equal(['sts_pilot_step_wait_seconds{namespace="db",statefulset="web"} 12']);
    expect(await lines(m, 'sts_pilot_pilot_heartbeat_timestamp_seconds{')).to.deep.equal([
      'sts_pilot_pilot_heartbeat_timestamp_seconds{namespace="db",pilot="web-0",statefulset="web"} 5',
    ]);
    expect(await lines(m, 'sts_pilot_statefulset_info{')).to.deep.equal(['sts_pilot_statefulset_info{namespace="db",statefulset="web",hook="http"} 1']);
    expect(await lines(m, 'sts_pilot_rollouts_in_progress ')).to.deep.equal(['sts_pilot_rollouts_in_progress 1']);
    leader = false;
    for (const f of ['sts_pilot_step_wait_seconds{', 'sts_pilot_pilot_heartbeat_timestamp_seconds{', 'sts_pilot_statefulset_info{']) {
      expect(await lines(m, f), f).to.deep.equal([]);
    }
    expect(await lines(m, 'sts_pilot_rollouts_in_progress ')).to.deep.equal(['sts_pilot_rollouts_in_progress 0']);
  });

  it('work queues of one name (one per watched namespace) are summed into one series', async () => {
    const m = createMetrics();
    // workers: 0, so every add waits in the queue.
    const queues = [0, 1].map(() => {
      const q: WorkQueue = new WorkQueue({ workers: 0, handler: async () => {}, observer: m.addWorkQueue('statefulsets', { stats: (now) => q.stats(now) }) });
      return q;
    });
    queues[0]?.add('a');
    queues[1]?.add('b');
    queues[1]?.add('c');
    queues[1]?.add('c');
    expect(await lines(m, 'sts_pilot_workqueue_depth{')).to.deep.equal(['sts_pilot_workqueue_depth{name="statefulsets"} 3']);
    expect(await lines(m, 'sts_pilot_workqueue_adds_total{')).to.deep.equal(['sts_pilot_workqueue_adds_total{name="statefulsets"} 3']);
    expect(await lines(m, 'sts_pilot_workqueue_longest_running_processor_seconds{')).to.deep.equal(['sts_pilot_workqueue_longest_running_processor_seconds{name="statefulsets"} 0']);
    for (const q of queues) await q.shutdown();
  });
});
