import { expect } from 'chai';
import { judgeGate } from '../../lib/kube/gate-check.ts';

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
