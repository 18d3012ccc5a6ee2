import { dumpYaml } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parseFlags, StatefulSetName, StatusFlags } from '../../lib/cli/flags.ts';
import { CliError, contextNamespace, readStatusItems } from '../../lib/cli/kube.ts';
import { statusReport } from '../../lib/cli/status-report.ts';
import { readBudgets, renderBudgets } from '../../lib/cli/budgets.ts';
import { renderStatus } from '../../lib/cli/render.ts';
import { StatusWatch } from '../../lib/cli/watch.ts';
import { loadKubeConfig } from '../../lib/kube/config.ts';
import { describeGateMode, detectGateMode } from '../../lib/kube/gate-mode.ts';
import { action, hookProblem, kubeFlags } from './common.ts';

export function registerStatus(program: Command): void {
  kubeFlags(
    program
      .command('status')
      .argument('[name]', 'one StatefulSet (shown even without the label, to say why)')
      .description('draw the rollout of each managed StatefulSet: pods, revisions, partition, the next pod, why it is held and for how long'),
  )
    .option('-A, --all-namespaces', 'every namespace')
    .option('-w, --watch', 'keep watching and redraw on every change')
    .option('--gate', 'always say which admission gate the cluster runs (said anyway when it is not the full, mutating one)')
    .option('-o, --output <format>', 'text, or json / yaml: the versioned report for scripts (docs/cli.md)', 'text')
    .option('--budget-namespace <ns>', "where the controller keeps the disruption budgets' Leases (its own namespace)", 'sts-pilot-system')
    .action(
      action(async (rawName: unknown, _opts: unknown, cmd: Command) => {
        const f = parseFlags(StatusFlags, cmd.opts());
        const name = rawName === undefined ? undefined : parseFlags(StatefulSetName, rawName, 'NAME');
        const kc = loadKubeConfig(f.kubeconfig, f.context);
        const namespace = f.allNamespaces ? undefined : (f.namespace ?? contextNamespace(kc));
        const where = namespace ? `namespace ${namespace}` : 'any namespace';
        const empty = name
          ? `no StatefulSet ${name} in ${where}`
          : `no StatefulSet with label ${f.labelKey} in ${where}`;
        if (f.watch) {
          const watch = new StatusWatch({ kc, namespace, name, labelKey: f.labelKey, hookProblem: hookProblem(f.labelKey), empty, out: process.stdout });
          const stop = (): void => void watch.stop().then(() => process.exit(0));
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          await watch.start();
          return;
        }
        const items = await readStatusItems(kc, { namespace, name, labelKey: f.labelKey, hookProblem: hookProblem(f.labelKey) });
        if (f.output !== 'text') {
          // The report, even empty: a script reads items, never a sentence.
          const report = statusReport(items, f.labelKey, Date.now());
          process.stdout.write(f.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : dumpYaml(report));
          if (name && items.length === 0) throw new CliError(empty);
          return;
        }
        const lines = items.length === 0 ? [empty] : renderStatus(items, { labelKey: f.labelKey, now: Date.now(), ages: true });
        const budgets = renderBudgets(await readBudgets(kc, f.budgetNamespace), { namespace, now: Date.now(), budgetNamespace: f.budgetNamespace });
        // The gate mode (docs/install.md, "Kubernetes versions"): said when it is less than the full gate, or asked for.
        const gate = await detectGateMode(kc);
        const gateLines = f.gate || gate.mode !== 'mutating-v1' || gate.problems.length ? ['', describeGateMode(gate), ...gate.problems.map((p) => `  ${p}`)] : [];
        process.stdout.write(`${[...lines, ...(budgets.length ? ['', ...budgets] : []), ...gateLines].join('\n')}\n`);
      }),
    );
}
