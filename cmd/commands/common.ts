import { AppsV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1StatefulSet } from '@kubernetes/client-node';
import { type Command, InvalidArgumentError } from 'commander';
import { hooks } from '../../hooks/index.ts';
import { CliError } from '../../lib/cli/kube.ts';
import { hookProblemOf } from '../../lib/cli/model.ts';
import { describeError, statusCode } from '../../lib/errors.ts';
import { DEFAULT_LABEL_KEY, FIELD_MANAGER } from '../../lib/names.ts';

/** The flags every people-facing command shares, spelled like kubectl's. */
export function kubeFlags(cmd: Command, o: { namespaceHelp?: string } = {}): Command {
  return cmd
    .option('-n, --namespace <ns>', o.namespaceHelp ?? 'namespace (default: the kubeconfig context\'s, else "default")')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('--label-key <key>', 'label that subscribes a StatefulSet (as given to the controller)', DEFAULT_LABEL_KEY);
}

/** The controller's own verdict on a StatefulSet's hook, so the CLI predicts what it does. */
export const hookProblem = (labelKey: string) => (sts: V1StatefulSet) => hookProblemOf(hooks, sts, labelKey);

/**
 * Refusals and API failures end the command with one readable line on stderr and
 * exit code 1; usage errors go on to commander (exit 2, with the help hint).
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      console.error(`sts-pilot: ${err instanceof CliError ? err.message : describeError(err)}`);
      process.exitCode = 1;
    }
  };
}

/**
 * Read, decide, write a merge patch guarded by the resourceVersion that was read;
 * if someone wrote in between, read and decide again. A decision is never applied
 * to an object it was not made on.
 */
export async function guardedPatch<T extends { sts: V1StatefulSet }, R>(
  kc: KubeConfig,
  read: () => Promise<T>,
  decide: (read: T) => { patch: Record<string, unknown> | undefined; result: R },
): Promise<R> {
  const apps = kc.makeApiClient(AppsV1Api);
  for (let attempt = 1; ; attempt++) {
    const got = await read();
    const { sts } = got;
    const { patch, result } = decide(got);
    if (!patch) return result;
    try {
      await apps.patchNamespacedStatefulSet(
        { name: sts.metadata?.name ?? '', namespace: sts.metadata?.namespace ?? '', body: patch, fieldManager: `${FIELD_MANAGER}-cli` },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return result;
    } catch (err) {
      if (statusCode(err) !== 409 || attempt >= 5) throw err;
    }
  }
}
