import type { CoreV1Api, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { EventRecorder } from '../../lib/events.ts';
import { createLogger } from '../../lib/log.ts';

// The Event of a step is written after the step, off its critical path (issue 13, bench/trace-step.ts).

describe('EventRecorder.emitLater: a step Event after the step, not during it', () => {
  const sts: V1StatefulSet = { metadata: { name: 'web', namespace: 'ns', uid: 'u1' } };
  const recorder = () => {
    const created: string[] = [];
    const times: number[] = [];
    const core = {
      createNamespacedEvent: async (r: { body: { reason: string; firstTimestamp: Date } }) => (created.push(r.body.reason), times.push(r.body.firstTimestamp.getTime()), {}),
    } as unknown as CoreV1Api;
    return { created, times, events: new EventRecorder(core, createLogger({ level: 'silent' })) };
  };

  it('writes nothing at once, and the Event once its delay has passed, dated when the step was taken', async () => {
    const { created, times, events } = recorder();
    const before = Date.now();
    events.emitLater(30, sts, 'Normal', 'StepApproved', 'web-1 approved', { dedupe: false });
    const after = Date.now();
    expect(created).to.deep.equal([]);
    await new Promise((r) => setTimeout(r, 80));
    expect(created).to.deep.equal(['StepApproved']);
    expect(times[0]).to.be.within(before, after);
  });

  it('flush() writes every waiting Event now, in order, and only once (shutdown)', async () => {
    const { created, events } = recorder();
    events.emitLater(60_000, sts, 'Normal', 'StepApproved', 'web-1 approved', { dedupe: false });
    events.emitLater(60_000, sts, 'Normal', 'RolloutFinished', 'done', { dedupe: false });
    await events.flush();
    expect(created).to.deep.equal(['StepApproved', 'RolloutFinished']);
    await events.flush();
    expect(created).to.have.length(2);
  });
});
