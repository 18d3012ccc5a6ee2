import { expect } from 'chai';
import { ControllerFlags } from '../../lib/cli/controller-flags.ts';
import { ApproveFlags, parseFlags, StatefulSetName, StatusFlags, UndoFlags } from '../../lib/cli/flags.ts';

// What commander hands over for `sts-pilot controller` with no flags: strings, as typed.
const controllerDefaults = {
  labelKey: 'sts-pilot.io/hook',
  workers: '4',
  hookTimeout: '60',
  hookRetryMax: '30',
  gateCheckInterval: '10',
  probeAddress: '0.0.0.0:8080',
  logLevel: 'info',
  leaderElect: true,
  leaderElectionId: 'sts-pilot',
  leaseDuration: '15',
  renewDeadline: '10',
};

describe('cli: flags are parsed with zod, errors name the flag and what it takes', () => {
  it('fills defaults', () => {
    expect(parseFlags(StatusFlags, {})).to.deep.equal({ labelKey: 'sts-pilot.io/hook', allNamespaces: false, watch: false, gate: false, budgetNamespace: 'sts-pilot-system', output: 'text' });
  });

  for (const [what, schema, raw, argName, message] of [
    ['-n with -A', StatusFlags, { namespace: 'db', allNamespaces: true }, undefined, '-n/--namespace and -A/--all-namespaces exclude each other'],
    ['a bad label key', StatusFlags, { labelKey: 'bad key!' }, undefined, '--label-key must be a label key, e.g. sts-pilot.io/hook'],
    ['a bad namespace', StatusFlags, { namespace: 'DB' }, undefined, '--namespace must be a namespace name'],
    ['a bad pod', ApproveFlags, { pod: 'x y' }, undefined, '--pod must be a pod name'],
    ['an unknown flag', ApproveFlags, { podd: 'web-1' }, undefined, 'unknown flag --podd'],
    ['--override without a reason', ApproveFlags, { override: true }, undefined, '--reason is required with --override'],
    ['--reason without --override', ApproveFlags, { reason: 'because' }, undefined, '--reason is only for --override'],
    ['a bad name argument', StatefulSetName, 'Web_1', 'NAME', 'NAME must be a StatefulSet name'],
    ['a revision that is no number', UndoFlags, { toRevision: 'two' }, undefined, '--to-revision must be a revision number (1 or more)'],
  ] as const) {
    it(`refuses ${what}`, () => {
      expect(() => parseFlags(schema, raw, argName)).to.throw(message);
    });
  }

  it('controller: the defaults parse to numbers', () => {
    const f = parseFlags(ControllerFlags, controllerDefaults);
    expect(f).to.include({ workers: 4, hookTimeout: 60, leaseDuration: 15, renewDeadline: 10, logLevel: 'info' });
    expect(f.namespace).to.equal(undefined);
  });

  for (const [flags, message] of [
    [{ workers: 'abc' }, '--workers must be a whole number'],
    [{ workers: '4.5' }, '--workers must be a whole number'],
    [{ workers: '-1' }, '--workers must be a whole number'],
    [{ workers: '0' }, '--workers must be between 1 and 64'],
    [{ hookTimeout: '1e3' }, '--hook-timeout must be a whole number of seconds'],
    [{ hookTimeout: '9999' }, '--hook-timeout must be between 1 and 3600 seconds'],
    [{ logLevel: 'loud' }, '--log-level must be one of fatal, error, warn, info, debug, trace'],
    [{ probeAddress: '8080' }, '--probe-address must be host:port, e.g. 0.0.0.0:8080'],
    [{ namespace: 'a,B' }, '--namespace must be a namespace name'],
    [{ namespace: 'a,a' }, '--namespace must not name a namespace twice'],
    [{ namespace: ',' }, '--namespace must name at least one namespace'],
    [{ httpHookAllow: '10.0.0.0/33' }, '--http-hook-allow must list host names, *.domains, IP addresses or CIDRs: 10.0.0.0/33: the prefix length must be 0 to 32'],
    [{ httpHookAllow: 'a_b' }, '--http-hook-allow must list host names, *.domains, IP addresses or CIDRs: a_b'],
    [{ leaseDuration: '10', renewDeadline: '10' }, '--renew-deadline must be shorter than --lease-duration'],
    [{ defaultWindow: 'nights' }, '--default-window must be maintenance windows like "Mon-Fri 01:00-05:00 Europe/Berlin"'],
    [{ disablePolicies: 'window,naps' }, '--disable-policies must list policies by name: window, step-delay, after, hold-timeout, halt, override'],
  ] as const) {
    it(`controller: ${JSON.stringify(flags)} says "${message}"`, () => {
      expect(() => parseFlags(ControllerFlags, { ...controllerDefaults, ...flags })).to.throw(message);
    });
  }

  it('controller: a default window and policies switched off by name', () => {
    const f = parseFlags(ControllerFlags, { ...controllerDefaults, defaultWindow: 'Mon-Fri 01:00-05:00 Europe/Berlin', disablePolicies: 'after, override' });
    expect(f.defaultWindow).to.equal('Mon-Fri 01:00-05:00 Europe/Berlin');
    expect(f.disablePolicies).to.deep.equal(['after', 'override']);
  });

  it('controller: several namespaces, comma-separated; an allowlist of hosts and CIDRs', () => {
    const f = parseFlags(ControllerFlags, { ...controllerDefaults, namespace: 'a, b', httpHookAllow: 'hooks.db.svc,*.example.org,10.0.0.0/8,::1' });
    expect(f.namespace).to.deep.equal(['a', 'b']);
    expect(f.httpHookAllow?.map((e) => e.kind)).to.deep.equal(['host', 'suffix', 'cidr', 'cidr']);
  });
});
