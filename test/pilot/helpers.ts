import { ApiextensionsV1Api, CustomObjectsApi, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_NAME, pilotCrd } from '../../lib/pilot/crd.ts';
import { statusCode } from '../../lib/errors.ts';
import type { Cluster } from '../integration/harness.ts';
import { waitUntil } from '../integration/harness.ts';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * `sts-pilot pilot` as a real process: cmd/sts-pilot.ts once it registers the
 * command, until then test/pilot/cli.ts (the same command on its own).
 */
export const pilotEntry = (): string =>
  readFileSync(join(root, 'cmd', 'sts-pilot.ts'), 'utf8').includes('registerPilotCommand') ? 'cmd/sts-pilot.ts' : 'test/pilot/cli.ts';

let installed: Promise<void> | undefined;

/** Install the Pilot CRD once per run (idempotent across runs on an existing cluster) and wait until it is served. */
export function installPilotCrd(c: Cluster): Promise<void> {
  installed ??= (async () => {
    const ext = c.kc.makeApiClient(ApiextensionsV1Api);
    try {
      await ext.createCustomResourceDefinition({ body: pilotCrd() as unknown as V1CustomResourceDefinition });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    await waitUntil('the Pilot CRD to be Established', 30_000, async () => {
      const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
      return crd.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True');
    });
    // Established can precede the first successful list by a moment.
    const api = c.kc.makeApiClient(CustomObjectsApi);
    await waitUntil('Pilots to be served', 30_000, async () => {
      await api.listClusterCustomObject({ group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots' });
      return true;
    });
  })();
  installed.catch(() => (installed = undefined));
  return installed;
}

/** Whether this machine can run a process as PID 1 of a new PID namespace (root, util-linux unshare). */
export function canUnshare(): Promise<boolean> {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/unshare')) return Promise.resolve(false);
  return new Promise((resolve) => {
    const p = spawn('/usr/bin/unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('exit', (code) => resolve(code === 0));
  });
}
