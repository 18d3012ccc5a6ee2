import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

export type LeaseFault =
  /** Forward everything. */
  | { kind: 'none' }
  /** Hold each Lease request this long before forwarding it. */
  | { kind: 'delay-request'; ms: number }
  /** Forward each Lease request at once, hold its answer this long. */
  | { kind: 'delay-response'; ms: number }
  /** Never answer a Lease request (the client's own deadline must end it). */
  | { kind: 'drop' };

/**
 * A plain-HTTP proxy on loopback in front of kube-apiserver, for one controller
 * replica: everything passes through (watches stream), but requests for Leases
 * can be delayed, their answers held back, or swallowed. What a slow or lossy
 * network does to leader election, made on demand.
 */
export class LeaseProxy {
  fault: LeaseFault = { kind: 'none' };
  /** Lease requests seen, with what was done to them. */
  readonly leaseRequests: { at: number; method: string; fault: string }[] = [];
  private server: Server | undefined;
  private readonly upstream: URL;

  constructor(upstream: string) {
    this.upstream = new URL(upstream);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    return this;
  }

  stop(): void {
    this.server?.closeAllConnections();
    this.server?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const lease = (req.url ?? '').includes('/leases');
    const fault = lease ? this.fault : { kind: 'none' as const };
    if (lease) this.leaseRequests.push({ at: Date.now(), method: req.method ?? '', fault: fault.kind });
    if (fault.kind === 'drop') {
      req.resume();
      return; // no answer, ever: the client gives up on its own
    }
    if (fault.kind === 'delay-request') await new Promise((r) => setTimeout(r, fault.ms));
    const up = httpsRequest(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.upstream.host },
        rejectUnauthorized: false,
      },
      (answer) => {
        const send = (): void => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        };
        if (fault.kind === 'delay-response') setTimeout(send, fault.ms);
        else send();
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }
}
