import { expect } from 'chai';
import { judgeGate, judgeScaleDownGate } from '../../lib/kube/gate-check.ts';

const want = { labelKey: 'sts-pilot.io/hook', username: 'system:serviceaccount:sts-pilot-system:sts-pilot-controller' };
const ref = { name: 'sts-pilot-gate', namespace: 'sts-pilot-system' };
const installed = {
  mutating: {},
  validating: {},
  mutatingParamRef: ref,
  validatingParamRef: ref,
  params: { labelKey: want.labelKey, controller: want.username },
};

describe('admission gate check (pure)', () => {
  it('enforced when both policies, both bindings and parameters naming this controller are there', () => {
    expect(judgeGate(installed, want)).to.deep.equal({ enforced: true, problems: [] });
  });
  it('names what is missing or wrong', () => {
    const r = judgeGate({ ...installed, mutating: undefined, validatingParamRef: 'forbidden', params: { labelKey: 'other', controller: 'someone' } }, want);
    expect(r.enforced).to.equal(false);
    expect(r.problems).to.deep.equal([
      'MutatingAdmissionPolicy sts-pilot-hold-partition is not installed',
      'ValidatingAdmissionPolicyBinding sts-pilot-partition-gate could not be read: forbidden',
      'its labelKey is "other", but this controller subscribes StatefulSets by "sts-pilot.io/hook"',
      'its controller is "someone", but this controller authenticates as "system:serviceaccount:sts-pilot-system:sts-pilot-controller" (its own writes would be refused)',
    ]);
  });
  it('bindings that name different parameters', () => {
    expect(judgeGate({ ...installed, validatingParamRef: { name: 'x', namespace: 'y' } }, want).problems).to.deep.equal(['the two bindings name different parameter ConfigMaps']);
  });
});

describe('scale-down gate check (pure)', () => {
  const selector = { matchExpressions: [{ key: want.labelKey, operator: 'Exists' }] };
  const held = {
    holdReplicas: {},
    holdReplicasParamRef: ref,
    scaleGateParamKind: { apiVersion: 'apps/v1', kind: 'StatefulSet' },
    scaleGateParamRef: { selector, parameterNotFoundAction: 'Allow' },
    partitionParamRef: ref,
    params: { labelKey: want.labelKey, controller: want.username },
  };
  it('enforced when both policies are there, the scale gate selects the subscribed StatefulSets of each namespace, and the parameters name this controller', () => {
    expect(judgeScaleDownGate(held, want)).to.deep.equal({ enforced: true, problems: [] });
  });
  it('names what is missing', () => {
    const r = judgeScaleDownGate({ ...held, holdReplicas: undefined, scaleGateParamRef: 'forbidden', scaleGateParamKind: undefined }, want);
    expect(r.enforced).to.equal(false);
    expect(r.problems).to.deep.equal([
      'MutatingAdmissionPolicy sts-pilot-hold-replicas is not installed',
      'ValidatingAdmissionPolicy sts-pilot-scale-gate is not installed',
      'ValidatingAdmissionPolicyBinding sts-pilot-scale-gate could not be read: forbidden',
    ]);
  });
  it('a scale gate that selects by another label key, by name, or in one namespace only', () => {
    const other = judgeScaleDownGate({ ...held, scaleGateParamRef: { selector: { matchExpressions: [{ key: 'example.com/hook', operator: 'Exists' }] } } }, want);
    expect(other.problems).to.deep.equal([
      'the binding sts-pilot-scale-gate must select the StatefulSets labelled "sts-pilot.io/hook" (paramRef.selector: that key Exists, nothing else), but it selects {"matchExpressions":[{"key":"example.com/hook","operator":"Exists"}]}',
    ]);
    const narrower = judgeScaleDownGate({ ...held, scaleGateParamRef: { selector: { ...selector, matchLabels: { tier: 'hot' } } } }, want);
    expect(narrower.enforced, 'a narrower selector leaves subscribed StatefulSets out').to.equal(false);
    const byName = judgeScaleDownGate({ ...held, scaleGateParamRef: { name: 'web' } }, want);
    expect(byName.problems[0]).to.match(/but it selects the one named "web"/);
    const oneNamespace = judgeScaleDownGate({ ...held, scaleGateParamRef: { selector, namespace: 'apps' } }, want);
    expect(oneNamespace.problems).to.deep.equal([
      'the binding sts-pilot-scale-gate looks for StatefulSets in namespace apps only, not in the namespace of each request (paramRef.namespace must be empty)',
    ]);
  });
  it('a scale gate with other parameters, or none', () => {
    expect(judgeScaleDownGate({ ...held, scaleGateParamKind: { apiVersion: 'v1', kind: 'ConfigMap' } }, want).problems).to.deep.equal([
      'ValidatingAdmissionPolicy sts-pilot-scale-gate must take apps/v1 StatefulSets as parameters, not v1 ConfigMap',
    ]);
    expect(judgeScaleDownGate({ ...held, scaleGateParamKind: null }, want).problems).to.deep.equal([
      'ValidatingAdmissionPolicy sts-pilot-scale-gate must take apps/v1 StatefulSets as parameters, not none',
    ]);
  });
  it('hold-replicas on another ConfigMap than the partition, or parameters naming someone else', () => {
    expect(judgeScaleDownGate({ ...held, holdReplicasParamRef: { name: 'x', namespace: 'y' } }, want).problems).to.deep.equal([
      'the binding sts-pilot-hold-replicas names another parameter ConfigMap than sts-pilot-hold-partition',
    ]);
    expect(judgeScaleDownGate({ ...held, params: { labelKey: want.labelKey, controller: 'someone' } }, want).problems).to.deep.equal([
      'its controller is "someone", but this controller authenticates as "system:serviceaccount:sts-pilot-system:sts-pilot-controller" (its own writes would be refused)',
    ]);
  });
  it('says nothing about the partition: a scale-down gate without the partition gate, and the other way round', () => {
    expect(judgeScaleDownGate({ ...held, partitionParamRef: undefined }, want).enforced).to.equal(true);
    expect(judgeGate(installed, want).enforced).to.equal(true);
    expect(judgeScaleDownGate({ ...held, holdReplicasParamRef: undefined }, want).enforced).to.equal(false);
  });
});
