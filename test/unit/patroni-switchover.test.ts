import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { patroniHook, pollDelayMs } from '../../hooks/patroni/index.ts';
import { Options } from '../../hooks/patroni/options.ts';
import type { HookContext, RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';

// The confirmation of a switchover is polled: how many requests it costs while
// Patroni takes its time to show the new leader (a stand-in of the REST API
// whose /cluster shows the candidate leading only after a number of reads).

const SYS = '7714727590757414429';

describe('patroni hook: confirming a switchover is bounded', () => {
  it('backs off from 250 ms to 2 s', () => {
    expect([0, 1, 2, 3, 4, 10, 100].map(pollDelayMs)).to.deep.equal([250, 500, 1000, 2000, 2000, 2000, 2000]);
  });

  let server: Server;
  let port = 0;
  let switchedAfterReads = 0;
  let switchoverAsked = false;
  let readsSinceSwitchover = 0;
  const requests: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '';
      requests.push(`${req.method} ${url}`);
      const done = switchoverAsked && readsSinceSwitchover >= switchedAfterReads;
      const leader = done ? 'db-1' : 'db-0';
      const member = (name: string) => ({
        name,
        role: name === leader ? 'leader' : 'replica',
        state: name === leader ? 'running' : 'streaming',
        api_url: `http://127.0.0.1:${port}/${name}/patroni`,
        ...(name === leader ? {} : { lag: 0 }),
      });
      if (req.method === 'POST' && url === '/switchover') {
        switchoverAsked = true;
        return void res.writeHead(200).end('Successfully switched over');
      }
      if (url === '/cluster') {
        if (switchoverAsked) readsSinceSwitchover++;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ scope: 'pg', members: ['db-0', 'db-1', 'db-2'].map(member) }));
      }
      const m = /^\/(db-\d)\/patroni$/.exec(url);
      if (m) {
        const name = m[1] as string;
        const self = { state: 'running', role: name === leader ? 'primary' : 'replica', database_system_identifier: SYS, patroni: { version: '4.1.5', scope: 'pg', name }, xlog: { received_location: 100, replayed_location: 100, paused: false } };
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(self));
      }
      res.writeHead(404).end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('one GET /cluster per confirmation poll, not a read of every member; then a fresh full read approves', async function () {
    this.timeout(20_000);
    switchedAfterReads = 6;
    const sts: V1StatefulSet = { metadata: { name: 'db', namespace: 'ns', uid: 'sts-uid' }, spec: { replicas: 3, serviceName: 'db', selector: {}, template: {} }, status: { updateRevision: 'new' } as V1StatefulSet['status'] };
    const options = Options.parse({ url: `http://127.0.0.1:${port}`, port: String(port), timeout: '2', 'switchover-timeout': '15' });
    const ctx = { statefulSet: sts, options, signal: AbortSignal.timeout(18_000), log: createLogger({ level: 'silent' }), secrets: async () => ({}), egress: loopbackEgress, pilots: staticPilotReader([]) } as unknown as HookContext<unknown>;
    const pod = (name: string): V1Pod => ({ metadata: { name, uid: `${name}-uid`, labels: { 'controller-revision-hash': name === 'db-1' ? 'new' : 'old' } }, status: { podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] } });
    await (patroniHook as RolloutHook).podUpdateTransition(pod('db-1'), pod('db-0'), ctx);
    const at = requests.indexOf('POST /switchover');
    expect(at, requests.join(', ')).to.be.greaterThan(-1);
    const confirming = requests.slice(at + 1, at + 1 + switchedAfterReads);
    expect(confirming, 'the polls until /cluster shows db-1 leading').to.deep.equal(Array(switchedAfterReads).fill('GET /cluster'));
    expect(requests.slice(at + 1).filter((r) => r.endsWith('/patroni')).length, 'members read once, for the approval').to.equal(3);
  });
});
