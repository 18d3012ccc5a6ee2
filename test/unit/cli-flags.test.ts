import { expect } from 'chai';
import { ApproveFlags, parseFlags, StatefulSetName, StatusFlags } from '../../lib/cli/flags.ts';

describe('cli: flags are parsed with zod, errors name the flag', () => {
  it('fills defaults', () => {
    expect(parseFlags(StatusFlags, {})).to.deep.equal({ labelKey: 'sts-pilot.io/hook', allNamespaces: false, watch: false });
  });

  for (const [what, schema, raw, argName, message] of [
    ['-n with -A', StatusFlags, { namespace: 'db', allNamespaces: true }, undefined, '-n/--namespace and -A/--all-namespaces exclude each other'],
    ['a bad label key', StatusFlags, { labelKey: 'bad key!' }, undefined, '--label-key: must be a label key'],
    ['a bad namespace', StatusFlags, { namespace: 'DB' }, undefined, '--namespace: must be a namespace name'],
    ['a bad pod', ApproveFlags, { pod: 'x y' }, undefined, '--pod: must be a pod name'],
    ['an unknown flag', ApproveFlags, { podd: 'web-1' }, undefined, 'Unrecognized key: "podd"'],
    ['a bad name argument', StatefulSetName, 'Web_1', 'NAME', 'NAME: must be a StatefulSet name'],
  ] as const) {
    it(`refuses ${what}`, () => {
      expect(() => parseFlags(schema, raw, argName)).to.throw(message);
    });
  }
});
