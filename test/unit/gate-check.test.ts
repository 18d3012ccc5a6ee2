import { expect } from 'chai';
import { type GateRead, judgeGate, judgeOverride, judgeScaleDownGate, judgeValidatingOnly } from '../../lib/kube/gate-check.ts';
import { gateDetail, gateNotices, judgedMode, modeChanged } from '../../lib/kube/gate-monitor.ts';
import type { GateModeReport } from '../../lib/kube/gate-mode.ts';

const want = { labelKey: 'sts-pilot.io/hook', username: 'system:serviceaccount:sts-pilot-system:sts-pilot-controller' };
const selector = { matchExpressions: [{ key: want.labelKey, operator: 'Exists' }] };
const bound = { objectSelector: selector };
const opens = { 'opens-the-gate': `oldObject == null || !(has(oldObject.metadata.labels) && '${want.labelKey}' in oldObject.metadata.labels)` };
const controller = { 'not-the-controller': `request.userInfo.username != '${want.username}'` };
const override = `'${want.labelKey}' in oldObject.metadata.labels`;

/** As manifests/admission-gate.yaml installs it, rendered for `want`. */
const installed = (): GateRead => ({
  mutating: {
    'sts-pilot-hold-partition': { conditions: { ...opens } },
    'sts-pilot-hold-replicas': { conditions: { ...controller } },
    'sts-pilot-stamp-override': { conditions: { 'sets-an-override': override } },
  },
  validating: {
    'sts-pilot-template-gate': { conditions: { ...opens } },
    'sts-pilot-partition-gate': { conditions: { ...controller } },
    'sts-pilot-override-audit': { conditions: { 'touches-the-override': override } },
  },
  mutatingBindings: { 'sts-pilot-hold-partition': bound, 'sts-pilot-hold-replicas': bound, 'sts-pilot-stamp-override': bound },
  validatingBindings: { 'sts-pilot-template-gate': bound, 'sts-pilot-partition-gate': bound, 'sts-pilot-override-audit': bound },
  scaleGateParamKind: { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  scaleGateParamRef: { selector, parameterNotFoundAction: 'Allow' },
});

describe('admission gate check (pure)', () => {
  it('enforced when the policies and bindings are there, select this label key and let this controller through', () => {
    expect(judgeGate(installed(), want)).to.deep.equal({ enforced: true, problems: [] });
    expect(judgeScaleDownGate(installed(), want)).to.deep.equal({ enforced: true, problems: [] });
    expect(judgeOverride(installed(), want)).to.deep.equal({ enforced: true, problems: [] });
  });

  it('names what is missing or cannot be read', () => {
    const r = installed();
    delete r.mutating['sts-pilot-hold-partition'];
    r.validatingBindings['sts-pilot-partition-gate'] = 'forbidden';
    const v = judgeGate(r, want);
    expect(v.enforced).to.equal(false);
    expect(v.problems).to.deep.equal([
      'MutatingAdmissionPolicy sts-pilot-hold-partition is not installed',
      'ValidatingAdmissionPolicyBinding sts-pilot-partition-gate could not be read: forbidden',
    ]);
  });

  it('a binding that selects every StatefulSet, or another label key, is not the gate of this controller', () => {
    const r = installed();
    r.mutatingBindings['sts-pilot-hold-partition'] = { objectSelector: undefined };
    r.validatingBindings['sts-pilot-template-gate'] = { objectSelector: { matchExpressions: [{ key: 'other/hook', operator: 'Exists' }] } };
    expect(judgeGate(r, want).problems).to.deep.equal([
      'the binding sts-pilot-hold-partition must select the StatefulSets labelled "sts-pilot.io/hook" (matchResources.objectSelector: that key Exists, nothing else), but it selects every StatefulSet',
      'the binding sts-pilot-template-gate must select the StatefulSets labelled "sts-pilot.io/hook" (matchResources.objectSelector: that key Exists, nothing else), but it selects {"matchExpressions":[{"key":"other/hook","operator":"Exists"}]}',
    ]);
  });

  it('policies rendered for another controller or label key', () => {
    const r = installed();
    r.validating['sts-pilot-partition-gate'] = { conditions: { 'not-the-controller': "request.userInfo.username != 'system:serviceaccount:elsewhere:sts-pilot-controller'" } };
    r.mutating['sts-pilot-hold-partition'] = { conditions: { 'opens-the-gate': "'other/hook' in oldObject.metadata.labels" } };
    r.mutating['sts-pilot-hold-replicas'] = { conditions: {} };
    expect(judgeGate(r, want).problems).to.deep.equal([
      'MutatingAdmissionPolicy sts-pilot-hold-partition does not tell a subscription by the label "sts-pilot.io/hook" (match condition opens-the-gate)',
      'ValidatingAdmissionPolicy sts-pilot-partition-gate lets through the writes of "system:serviceaccount:elsewhere:sts-pilot-controller", but this controller authenticates as "system:serviceaccount:sts-pilot-system:sts-pilot-controller" (its own writes would be refused)',
    ]);
    expect(judgeScaleDownGate(r, want).problems).to.deep.equal([
      'MutatingAdmissionPolicy sts-pilot-hold-replicas lets through the writes of nobody it names, but this controller authenticates as "system:serviceaccount:sts-pilot-system:sts-pilot-controller" (its own writes would be refused)',
    ]);
  });
});

describe('scale-down gate check (pure)', () => {
  it('names what is missing', () => {
    const r = { ...installed(), scaleGateParamRef: 'forbidden', scaleGateParamKind: undefined };
    delete r.mutating['sts-pilot-hold-replicas'];
    expect(judgeScaleDownGate(r, want).problems).to.deep.equal([
      'MutatingAdmissionPolicy sts-pilot-hold-replicas is not installed',
      'ValidatingAdmissionPolicy sts-pilot-scale-gate is not installed',
      'ValidatingAdmissionPolicyBinding sts-pilot-scale-gate could not be read: forbidden',
    ]);
  });
  it('the scale gate must take StatefulSets as parameters, selected by this label key in the namespace of each request', () => {
    expect(judgeScaleDownGate({ ...installed(), scaleGateParamKind: { apiVersion: 'v1', kind: 'ConfigMap' } }, want).problems).to.deep.equal([
      'ValidatingAdmissionPolicy sts-pilot-scale-gate must take apps/v1 StatefulSets as parameters, not v1 ConfigMap',
    ]);
    expect(judgeScaleDownGate({ ...installed(), scaleGateParamRef: { name: 'x', namespace: 'y' } }, want).problems).to.deep.equal([
      'the binding sts-pilot-scale-gate must select the StatefulSets labelled "sts-pilot.io/hook" (paramRef.selector: that key Exists, nothing else), but it selects the one named "x"',
      'the binding sts-pilot-scale-gate looks for StatefulSets in namespace y only, not in the namespace of each request (paramRef.namespace must be empty)',
    ]);
  });
});

/** As manifests/admission-gate-validating.yaml installs it (no MutatingAdmissionPolicy), rendered for `want`. */
const validatingOnly = (): GateRead => ({
  mutating: {},
  mutatingBindings: {},
  validating: {
    'sts-pilot-write-gate': { conditions: { ...controller }, variables: { opensTheGate: `oldObject == null ? 'creating it' : !(has(oldObject.metadata.labels) && '${want.labelKey}' in oldObject.metadata.labels) ? 'subscribing it' : ''` } },
    'sts-pilot-partition-gate': { conditions: { ...controller } },
    'sts-pilot-override-audit': { conditions: { 'touches-the-override': override } },
  },
  validatingBindings: { 'sts-pilot-write-gate': bound, 'sts-pilot-partition-gate': bound, 'sts-pilot-override-audit': bound },
  scaleGateParamKind: { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  scaleGateParamRef: { selector, parameterNotFoundAction: 'Allow' },
});

describe('admission gate check, validating-only (pure)', () => {
  it('enforced by sts-pilot-write-gate and sts-pilot-partition-gate; scale-down by the write gate and the scale gate; overrides never (nothing stamps them)', () => {
    const v = judgeValidatingOnly(validatingOnly(), want);
    expect({ enforced: v.enforced, problems: v.problems }).to.deep.equal({ enforced: true, problems: [] });
    expect(v.scaleDown).to.deep.equal({ enforced: true, problems: [] });
    expect(v.override.enforced).to.equal(false);
    expect(v.override.problems[0]).to.match(/no MutatingAdmissionPolicy to stamp sts-pilot.io\/override-by/);
  });
  it('the write gate missing, rendered for another label key or another controller: not enforced, and why', () => {
    const r = validatingOnly();
    delete r.validatingBindings['sts-pilot-write-gate'];
    expect(judgeValidatingOnly(r, want).problems).to.deep.equal(['ValidatingAdmissionPolicyBinding sts-pilot-write-gate is not installed']);
    expect(judgeValidatingOnly(r, want).scaleDown.problems).to.deep.equal(['ValidatingAdmissionPolicyBinding sts-pilot-write-gate is not installed']);
    const o = validatingOnly();
    o.validating['sts-pilot-write-gate'] = { conditions: { 'not-the-controller': "request.userInfo.username != 'someone'" }, variables: { opensTheGate: "'other/hook' in oldObject.metadata.labels" } };
    expect(judgeValidatingOnly(o, want).problems).to.deep.equal([
      `ValidatingAdmissionPolicy sts-pilot-write-gate lets through the writes of "someone", but this controller authenticates as "${want.username}" (its own writes would be refused)`,
      'ValidatingAdmissionPolicy sts-pilot-write-gate does not tell a subscription by the label "sts-pilot.io/hook" (variable opensTheGate)',
    ]);
  });
  it('the mutating gate\'s judge does not take the validating-only objects for it', () => {
    expect(judgeGate(validatingOnly(), want).enforced).to.equal(false);
  });
});

describe('gate monitor (pure)', () => {
  it('judges the mode installed, else the strongest served, else the full gate', () => {
    expect(judgedMode({ mode: 'validating-only', capable: 'mutating-v1', problems: [] })).to.equal('validating-only');
    expect(judgedMode({ mode: 'none', capable: 'mutating-v1beta1', problems: [] })).to.equal('mutating-v1beta1');
    expect(judgedMode({ mode: 'none', capable: 'none', problems: [] })).to.equal('mutating-v1');
  });
  it('says the mode at the first check and when it changes', () => {
    const m: GateModeReport = { mode: 'validating-only', capable: 'validating-only', problems: [] };
    expect(modeChanged(undefined, m)).to.equal(true);
    expect(modeChanged(m, { ...m })).to.equal(false);
    expect(modeChanged(m, { ...m, mode: 'none' })).to.equal(true);
    expect(modeChanged(m, { ...m, problems: ['x'] })).to.equal(true);
  });
  const report = (enforced: boolean, problems: string[] = []) => ({
    enforced,
    problems,
    scaleDown: { enforced: true, problems: [] },
    override: { enforced: true, problems: [] },
  });
  it('says every part at the first check, then only what changed', () => {
    expect(gateNotices(undefined, report(true)).map((n) => n.msg.split(':')[0])).to.deep.equal([
      'admission gate installed',
      'admission gate holds scale-downs',
      'override policies installed',
    ]);
    expect(gateNotices(report(true), report(true))).to.deep.equal([]);
    const lost = gateNotices(report(true), report(false, ['x is not installed']));
    expect(lost).to.have.length(1);
    expect(lost[0]?.msg).to.match(/^admission gate no longer enforced/);
    expect(lost[0]?.problems).to.deep.equal(['x is not installed']);
    expect(gateNotices(report(false, ['x is not installed']), report(false, ['x is not installed']))).to.deep.equal([]);
    expect(gateNotices(report(false, ['x']), report(false, ['y']))[0]?.msg).to.match(/^admission gate not enforced/);
    expect(gateNotices(report(false, ['x']), report(true))[0]?.msg).to.match(/^admission gate enforced again/);
  });
  it('the /readyz line', () => {
    expect(gateDetail(undefined)).to.equal('admission gate: not checked yet');
    expect(gateDetail(report(true))).to.equal('admission gate: enforced');
    expect(gateDetail(report(false, ['a', 'b']))).to.equal('admission gate: NOT enforced: a; b');
  });
});
