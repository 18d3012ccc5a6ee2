import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { loadYaml } from '@kubernetes/client-node';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WaitFlags, parseFlags, StatusFlags } from '../../lib/cli/flags.ts';
import { rolloutHealth, stsHealth } from '../../lib/cli/health.ts';
import { judge } from '../../lib/cli/wait.ts';

const LABEL = 'sts-pilot.io/hook';
const gitops = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'charts', 'sts-pilot', 'files', 'gitops');

interface Opts {
  hook?: string | null;
  annotations?: Record<string, string>;
  status?: Record<string, unknown>;
  generation?: number;
  partition?: number;
  strategy?: string;
  record?: Record<string, unknown>;
}

/** A 3-pod StatefulSet whose rollout to "b" finished, changed by `o`. */
function sts(o: Opts = {}): V1StatefulSet {
  const annotations = { ...(o.record ? { 'sts-pilot.io/status': JSON.stringify(o.record) } : {}), ...o.annotations };
  return {
    metadata: { name: 'web', namespace: 'db', generation: o.generation ?? 4, labels: o.hook === null ? {} : { [LABEL]: o.hook ?? 'manual' }, annotations },
    spec: {
      replicas: 3,
      selector: {},
      serviceName: 'web',
      template: {},
      updateStrategy: o.strategy === 'OnDelete' ? { type: 'OnDelete' } : { type: 'RollingUpdate', rollingUpdate: { partition: o.partition ?? 3 } },
    },
    status: { observedGeneration: 4, replicas: 3, readyReplicas: 3, availableReplicas: 3, updatedReplicas: 3, currentRevision: 'b', updateRevision: 'b', ...o.status },
  };
}

const pod = (i: number, rev = 'b', ready = true): V1Pod => ({
  metadata: { name: `web-${i}`, uid: `u${i}`, labels: { 'controller-revision-hash': rev } },
  status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const pods = [pod(0), pod(1), pod(2)];
const rolling = { updatedReplicas: 1, currentRevision: 'a', updateRevision: 'b' };

describe('rollout health (lib/cli/health.ts): the verdict of wait, Argo CD and Flux', () => {
  it('a finished rollout with the partition back at replicas is Healthy', () => {
    expect(stsHealth(sts(), LABEL)).to.deep.equal({ health: 'Healthy', reason: 'done', message: 'all 3 pods run b' });
  });

  it('held at partition = replicas with a new revision is Progressing, where kubectl and Argo CD say done', () => {
    const s = sts({ status: { updatedReplicas: 0, currentRevision: 'a', updateRevision: 'b' }, record: { state: 'Rolling', message: 'manual holds pod web-2: waiting' } });
    expect(stsHealth(s, LABEL)).to.deep.equal({ health: 'Progressing', reason: 'rolling', message: '0/3 pods at the update revision b, partition 3: manual holds pod web-2: waiting' });
    // The same object without the label: Argo CD's own arithmetic, partitioned roll out "complete".
    expect(stsHealth(sts({ hook: null, status: { updatedReplicas: 0, currentRevision: 'a', updateRevision: 'b' } }), LABEL).health).to.equal('Healthy');
  });

  it('every pod updated but the final hook call owed (partition 0, or a rollout mark) is Progressing', () => {
    expect(stsHealth(sts({ partition: 0 }), LABEL).health).to.equal('Progressing');
    expect(stsHealth(sts({ record: { rollout: { revision: 'b', partition: 0 } } }), LABEL).health).to.equal('Progressing');
    expect(stsHealth(sts({ strategy: 'OnDelete', record: { rollout: { revision: 'b', partition: 0 } } }), LABEL).health).to.equal('Progressing');
    expect(stsHealth(sts({ strategy: 'OnDelete', status: { currentRevision: 'a' } }), LABEL).health, 'OnDelete never advances currentRevision').to.equal('Healthy');
  });

  it('a spec not observed yet, a scale-down requested, or a pod not available is Progressing', () => {
    expect(stsHealth(sts({ generation: 5 }), LABEL).reason).to.equal('observing');
    expect(stsHealth(sts({ annotations: { 'sts-pilot.io/requested-replicas': '2' } }), LABEL).health).to.equal('Progressing');
    expect(stsHealth(sts({ status: { availableReplicas: 2 } }), LABEL).health).to.equal('Progressing');
  });

  it('paused by a person is Suspended; paused by a policy (a halt) is Degraded; a bad paused value is Degraded', () => {
    expect(stsHealth(sts({ status: rolling, annotations: { 'sts-pilot.io/paused': 'true' } }), LABEL).health).to.equal('Suspended');
    const halt = sts({ status: rolling, annotations: { 'sts-pilot.io/paused': 'true' }, record: { state: 'Paused', message: 'policy halt: the hook failed 3 times in a row' } });
    expect(stsHealth(halt, LABEL)).to.deep.equal({ health: 'Degraded', reason: 'halted', message: 'halted: policy halt: the hook failed 3 times in a row' });
    expect(stsHealth(sts({ status: rolling, annotations: { 'sts-pilot.io/paused': 'yes' } }), LABEL).reason).to.equal('held');
    // Resumed after a halt: the old record no longer counts.
    expect(stsHealth(sts({ status: rolling, record: { state: 'Paused', message: 'policy halt: x' } }), LABEL).health).to.equal('Progressing');
    // Paused with nothing to roll: nothing is waiting.
    expect(stsHealth(sts({ annotations: { 'sts-pilot.io/paused': 'true' } }), LABEL).health).to.equal('Healthy');
  });

  it('a recorded hold that needs a person is Degraded; a garbled record is ignored', () => {
    expect(stsHealth(sts({ status: rolling, record: { state: 'Held', message: 'unknown hook "x"' } }), LABEL)).to.include({ health: 'Degraded', reason: 'held' });
    expect(stsHealth(sts({ status: rolling, annotations: { 'sts-pilot.io/status': '{not json' } }), LABEL).health).to.equal('Progressing');
  });

  it('with the pods: done only when every pod runs the update revision and is Ready', () => {
    expect(rolloutHealth(sts(), pods, LABEL).health).to.equal('Healthy');
    expect(rolloutHealth(sts(), [pod(0), pod(1)], LABEL).message).to.equal('pod web-2 is missing');
    expect(rolloutHealth(sts(), [pod(0), pod(1, 'a'), pod(2)], LABEL).message).to.equal('pod web-1 runs a, not b');
    expect(rolloutHealth(sts(), [pod(0, 'b', false), pod(1), pod(2)], LABEL).message).to.equal('pod web-0 is not Ready');
  });
});

describe('wait (lib/cli/wait.ts): done, failed, or not yet', () => {
  it('waits through a rollout, with a line per new situation, and is done at the end', () => {
    const s1 = sts({ status: rolling, partition: 2, record: { state: 'Rolling', message: 'manual holds pod web-1: 12 shards left' } });
    const a = judge({}, s1, pods, LABEL);
    expect(a.verdict.kind).to.equal('wait');
    expect(a.next).to.include({ target: 'b', from: 'a' });
    expect(a.line).to.match(/^Progressing: 1\/3 pods/);
    const s2 = sts({ status: rolling, partition: 2, record: { state: 'Rolling', message: 'manual holds pod web-1: 11 shards left' } });
    expect(judge(a.next, s2, pods, LABEL).line, 'only a number changed').to.equal(undefined);
    const done = judge(a.next, sts(), pods, LABEL);
    expect(done.verdict.kind).to.equal('done');
  });

  it('does not end on the last rollout before the spec is observed', () => {
    expect(judge({}, sts({ generation: 5 }), pods, LABEL).verdict.kind).to.equal('wait');
  });

  it('fails on a halt, a pause, a rollback, a newer template, a deletion or a StatefulSet it does not manage', () => {
    const t = { target: 'b', from: 'a' };
    const fail = (s: V1StatefulSet | undefined): string => {
      const v = judge(t, s, pods, LABEL).verdict;
      return v.kind === 'fail' ? v.reason : `not a failure: ${v.kind}`;
    };
    expect(fail(sts({ status: rolling, annotations: { 'sts-pilot.io/paused': 'true' }, record: { state: 'Paused', message: 'policy hold-timeout: held 2h' } }))).to.equal('halted: policy hold-timeout: held 2h');
    expect(fail(sts({ status: rolling, annotations: { 'sts-pilot.io/paused': 'true' } }))).to.match(/^paused .*; resume with: sts-pilot resume web -n db$/);
    expect(fail(sts({ status: { updateRevision: 'a', currentRevision: 'a', updatedReplicas: 2 } }))).to.equal('rolled back: the template went back to revision a; the rollout to b was abandoned');
    expect(fail(sts({ status: { updateRevision: 'c', updatedReplicas: 0 } }))).to.equal('the template changed again: the rollout to b was replaced by one to c');
    expect(fail(undefined)).to.equal('the StatefulSet was deleted');
    expect(fail(sts({ hook: null }))).to.match(/^not managed by sts-pilot \(no label sts-pilot.io\/hook\)/);
  });
});

describe('wait and status flags', () => {
  it('parses --timeout and -o, and says what they take', () => {
    expect(parseFlags(WaitFlags, { timeout: '10m' }).timeout).to.equal(600_000);
    expect(parseFlags(WaitFlags, {}).timeout).to.equal(0);
    expect(() => parseFlags(WaitFlags, { timeout: 'soon' })).to.throw(/--timeout must be 0 \(no limit\) or a duration such as 300/);
    expect(() => parseFlags(WaitFlags, { selector: 'app=$(x)' })).to.throw(/--selector must be a label selector/);
    expect(parseFlags(StatusFlags, { output: 'yaml' }).output).to.equal('yaml');
    expect(() => parseFlags(StatusFlags, { output: 'xml' })).to.throw(/--output must be one of text, json, yaml/);
    expect(() => parseFlags(StatusFlags, { output: 'json', watch: true })).to.throw(/--output is text only with --watch/);
  });
});

describe('the shipped GitOps files (charts/sts-pilot/files/gitops)', () => {
  const lua = readFileSync(join(gitops, 'argocd-statefulset-health.lua'), 'utf8');
  it('the argocd-cm fragment and the argo-cd chart values carry the Lua script as it is', () => {
    const cm = loadYaml<{ data: Record<string, string> }>(readFileSync(join(gitops, 'argocd-cm.yaml'), 'utf8'));
    const values = loadYaml<{ configs: { cm: Record<string, string> } }>(readFileSync(join(gitops, 'argocd-values.yaml'), 'utf8'));
    for (const keys of [cm.data, values.configs.cm]) {
      expect(keys['resource.customizations.health.apps_StatefulSet']).to.equal(lua);
      expect(keys['resource.customizations.useOpenLibs.apps_StatefulSet']).to.equal('true');
      expect(keys['resource.customizations.ignoreDifferences.apps_StatefulSet']).to.include('.spec.updateStrategy.rollingUpdate.partition');
    }
    expect(cm.data['resource.customizations.ignoreDifferences.apps_StatefulSet']).to.equal(values.configs.cm['resource.customizations.ignoreDifferences.apps_StatefulSet']);
  });

  it('the Flux expressions are for apps/v1 StatefulSet, with current and failed', () => {
    const f = loadYaml<{ healthCheckExprs: Record<string, string>[] }>(readFileSync(join(gitops, 'flux-healthcheckexprs.yaml'), 'utf8'));
    expect(f.healthCheckExprs).to.have.length(1);
    expect(f.healthCheckExprs[0]).to.include.keys('apiVersion', 'kind', 'current', 'failed');
    expect(f.healthCheckExprs[0]).to.include({ apiVersion: 'apps/v1', kind: 'StatefulSet' });
  });
});
