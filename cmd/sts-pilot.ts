#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { hostname } from 'node:os';
import { z } from 'zod';
import { hooks } from '../hooks/index.ts';
import { registerCliCommands } from './commands/index.ts';
import { registerPilotCommand } from './pilot-command.ts';
import { Controller } from '../lib/controller/index.ts';
import { LeaderElector } from '../lib/leader.ts';
import { loadKubeConfig } from '../lib/kube/config.ts';
import { checkAdmissionGate } from '../lib/kube/gate-check.ts';
import { createLogger } from '../lib/log.ts';
import { createMetrics } from '../lib/metrics.ts';
import { DEFAULT_LABEL_KEY } from '../lib/names.ts';
import { serveProbes } from '../lib/serve.ts';
import { readFileSync } from 'node:fs';

const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

const ControllerFlags = z.strictObject({
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  labelKey: z.string().regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, 'must be a label key'),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name').optional(),
  workers: z.coerce.number().int().min(1).max(64),
  hookTimeout: z.coerce.number().int().min(1).max(3600),
  hookRetryMax: z.coerce.number().int().min(1).max(3600),
  probeAddress: z.string().regex(/^([^:]*):([0-9]{1,5})$/, 'must be host:port'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
  leaderElect: z.boolean(),
  leaderElectionNamespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name').optional(),
  leaderElectionId: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Lease name'),
  leaseDuration: z.coerce.number().int().min(2).max(600),
  renewDeadline: z.coerce.number().int().min(1).max(599),
}).refine((f) => f.renewDeadline < f.leaseDuration, { message: '--renew-deadline must be shorter than --lease-duration', path: ['renewDeadline'] });

const program = new Command('sts-pilot')
  .description('Application-aware StatefulSet rollouts: holds the partition and asks a hook before each pod moves')
  .showHelpAfterError();

program
  .command('controller')
  .description('run the rollout controller')
  .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
  .option('--context <name>', 'kubeconfig context')
  .option('--label-key <key>', 'label that subscribes a StatefulSet; its value names the hook', DEFAULT_LABEL_KEY)
  .option('--namespace <ns>', 'watch one namespace only (default: all)')
  .option('--workers <n>', 'StatefulSets reconciled in parallel', '4')
  .option('--hook-timeout <seconds>', 'deadline of one hook call', '60')
  .option('--hook-retry-max <seconds>', 'longest wait before asking a hook that holds again (backoff cap)', '30')
  .option('--probe-address <host:port>', 'address of /healthz, /readyz and /metrics', '0.0.0.0:8080')
  .option('--log-level <level>', 'log level', 'info')
  .option('--no-leader-elect', 'act without a Lease (only one replica may run)')
  .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: $POD_NAMESPACE, --namespace, or default)')
  .option('--leader-election-id <name>', 'name of the Lease', 'sts-pilot')
  .option('--lease-duration <seconds>', 'how long a silent leader keeps the Lease', '15')
  .option('--renew-deadline <seconds>', 'a leader that could not renew this long stops writing (< lease duration)', '10')
  .action(async (raw: unknown) => {
    const parsed = ControllerFlags.safeParse(raw);
    if (!parsed.success) throw new InvalidArgumentError(z.prettifyError(parsed.error));
    const f = parsed.data;
    const log = createLogger({ level: f.logLevel });
    const metrics = createMetrics();
    const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
    const kc = loadKubeConfig(f.kubeconfig, f.context, `sts-pilot/${PACKAGE_VERSION} controller (${identity})`);
    let elector: LeaderElector | undefined;
    let stopping = false;
    const controller = new Controller({
      kc,
      hooks,
      log,
      metrics,
      labelKey: f.labelKey,
      namespace: f.namespace,
      workers: f.workers,
      hookTimeoutMs: f.hookTimeout * 1000,
      retryMaxMs: f.hookRetryMax * 1000,
      isLeader: () => elector?.isLeader() ?? true,
    });
    if (f.leaderElect) {
      elector = new LeaderElector({
        kc,
        namespace: f.leaderElectionNamespace ?? process.env.POD_NAMESPACE ?? f.namespace ?? 'default',
        name: f.leaderElectionId,
        identity,
        log,
        leaseDurationMs: f.leaseDuration * 1000,
        renewDeadlineMs: f.renewDeadline * 1000,
        retryPeriodMs: Math.max(250, Math.min(2000, (f.leaseDuration * 1000) / 6)),
        onStartedLeading: () => {
          metrics.leader.set(1);
          controller.enqueueAll();
        },
        // Like controller-runtime: a replica that lost the lease exits and comes back as a candidate.
        onStoppedLeading: () => {
          metrics.leader.set(0);
          controller.leadershipLost();
          if (!stopping) process.exit(1);
        },
      });
    }
    const [, host, port] = /^([^:]*):(\d+)$/.exec(f.probeAddress) as RegExpExecArray;
    const server = await serveProbes({ host: host || '0.0.0.0', port: Number(port), registry: metrics.registry, ready: () => controller.ready });
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 20_000);
      force.unref();
      await controller.stop();
      await elector?.stop();
      server.close();
      log.info('stopped');
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    await controller.start();
    if (elector) elector.start();
    else metrics.leader.set(1);
    // Once, in the background: whether the API server keeps the partition shut too.
    void checkAdmissionGate(kc, f.labelKey, log).then((r) => metrics.admissionGate.set(r.enforced ? 1 : 0));
  });

registerCliCommands(program);
registerPilotCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`sts-pilot: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
