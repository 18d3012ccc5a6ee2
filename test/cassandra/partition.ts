// A partition between Cassandra nodes on loopback: iptables rules that drop
// the internode traffic (storage port) between two addresses, both ways, while
// the native port (9042) stays open, so a client still reaches every node.
// Needs root. Every rule added is remembered and heal() deletes each one by its
// exact spec; a failing iptables throws with its own words (never a skip).

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class Partition {
  private readonly rules: string[][] = [];
  private readonly port: number;

  constructor(storagePort = 7000) {
    this.port = storagePort;
  }

  private spec(from: string, to: string): string[] {
    return ['OUTPUT', '-s', from, '-d', to, '-p', 'tcp', '--dport', String(this.port), '-j', 'DROP'];
  }

  private async iptables(args: string[]): Promise<void> {
    try {
      await run('iptables', ['-w', '5', ...args]);
    } catch (err) {
      const e = err as { stderr?: string; message?: string };
      throw new Error(`iptables ${args.join(' ')} failed: ${(e.stderr || e.message || String(err)).trim()}`);
    }
  }

  /** Drops a→b and b→a on the storage port. */
  async cut(a: string, b: string): Promise<void> {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const s = this.spec(from, to);
      await this.iptables(['-A', ...s]);
      this.rules.push(s);
    }
  }

  /** Deletes every rule this instance added (each once); throws the first error after trying all. */
  async heal(): Promise<void> {
    const errors: string[] = [];
    while (this.rules.length > 0) {
      const s = this.rules.pop() as string[];
      await this.iptables(['-D', ...s]).catch((err: Error) => errors.push(err.message));
    }
    if (errors.length > 0) throw new Error(errors.join('; '));
  }

  get active(): number {
    return this.rules.length;
  }
}
