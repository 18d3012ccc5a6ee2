import { expect } from 'chai';
import { describeGateMode, type GateModeRead, judgeGateMode } from '../../lib/kube/gate-mode.ts';

const read = (served: Partial<GateModeRead['served']>, installed: Partial<GateModeRead['installed']>): GateModeRead => ({
  served: { mutatingV1: false, mutatingV1beta1: false, validating: false, ...served },
  installed: { mutatingV1: false, mutatingV1beta1: false, validating: false, ...installed },
});

describe('gate mode: which admission gate a cluster runs and could run', () => {
  // One row per Kubernetes version of the matrix, as its API server answers with the gate the chart picks.
  for (const [version, served, installed, mode] of [
    ['1.37', { mutatingV1: true, validating: true }, { mutatingV1: true }, 'mutating-v1'],
    ['1.35 with the beta on', { mutatingV1beta1: true, validating: true }, { mutatingV1beta1: true }, 'mutating-v1beta1'],
    ['1.33', { validating: true }, { validating: true }, 'validating-only'],
    ['1.30', { validating: true }, { validating: true }, 'validating-only'],
  ] as const) {
    it(`${version}: ${mode}, nothing to fix`, () => {
      const r = judgeGateMode(read(served, installed));
      expect(r).to.deep.equal({ mode, capable: mode, problems: [] });
    });
  }

  it('the weaker gate installed where a stronger one is served: says which manifest to install', () => {
    const r = judgeGateMode(read({ mutatingV1beta1: true, validating: true }, { validating: true }));
    expect(r.mode).to.equal('validating-only');
    expect(r.capable).to.equal('mutating-v1beta1');
    expect(r.problems.join()).to.include('install manifests/admission-gate-v1beta1.yaml');
  });

  it('nothing installed: mode none, and the manifest to install', () => {
    const r = judgeGateMode(read({ validating: true }, {}));
    expect(r.mode).to.equal('none');
    expect(r.problems.join()).to.include('manifests/admission-gate-validating.yaml');
    expect(describeGateMode(r)).to.match(/mode none: .*guard/);
  });

  it('a read that failed is a problem, never a mode: it is not counted as installed', () => {
    const r = judgeGateMode(read({ mutatingV1: true, validating: true }, { mutatingV1: 'forbidden: cannot get', validating: true }));
    expect(r.mode).to.equal('validating-only');
    expect(r.problems.some((p) => p.includes('forbidden: cannot get'))).to.equal(true);
  });

  it('both gates installed: the mutating one is what holds a write', () => {
    expect(judgeGateMode(read({ mutatingV1: true, validating: true }, { mutatingV1: true, validating: true })).mode).to.equal('mutating-v1');
  });
});
