#!/usr/bin/env node
import { Command } from 'commander';
import { hostname } from 'node:os';
import { hooks } from '../hooks/index.ts';
import { registerCliCommands } from './commands/index.ts';
import { registerPilotCommand } from './pilot-command.ts';
import { ControllerFlags } from '../lib/cli/controller-flags.ts';
import { parseFlags } from '../lib/cli/flags.ts';
import { Controller, type StatefulSetLookup } from '../lib/controller/index.ts';
import { SecretCache } from '../lib/controller/secrets.ts';
import { createEgress } from '../lib/egress.ts';
import { LeaderElector } from '../lib/leader.ts';
import { apiServerAddresses } from '../lib/kube/api-address.ts';
import { loadKubeConfig } from '../lib/kube/config.ts';
import { GATE_MODES } from '../lib/kube/gate-mode.ts';
import { GateMonitor, gateDetail } from '../lib/kube/gate-monitor.ts';
import { guardProcess } from '../lib/process-guard.ts';
import { createLogger } from '../lib/log.ts';
import { createMetrics } from '../lib/metrics.ts';
import { DEFAULT_LABEL_KEY } from '../lib/names.ts';
import { serveProbes } from '../lib/serve.ts';
import { urlPolicy } from '../lib/url-policy.ts';
import { VERSION } from '../lib/version.ts';

// Run as a kubectl plugin (bin/kubectl-sts_pilot), usage lines say "kubectl sts-pilot".
const program = new Command(process.env.STS_PILOT_PROGRAM === 'kubectl sts-pilot' ? 'kubectl sts-pilot' : 'sts-pilot')
  .description('Application-aware StatefulSet rollouts: holds the partition and asks a hook before each pod moves')
  .version(`sts-pilot ${VERSION}`, '-V, --version', 'print the version and exit')
  .showHelpAfterError();

program
  .command('controller')
  .description('run the rollout controller')
  .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
  .option('--context <name>', 'kubeconfig context')
  .option('--label-key <key>', 'label that subscribes a StatefulSet; its value names the hook', DEFAULT_LABEL_KEY)
  .option('--namespace <ns,...>', 'watch these namespaces only, comma-separated (default: all)')
  .option('--workers <n>', 'StatefulSets reconciled in parallel (per namespace)', '4')
  .option('--hook-timeout <seconds>', 'deadline of one hook call', '60')
  .option('--hook-retry-max <seconds>', 'longest wait before asking a hook that holds again (backoff cap)', '30')
  .option('--hook-allow <hosts,...>', 'hosts (name, *.domain), IPs and CIDRs hooks may call (default: any but link-local, loopback and the API server)')
  .option('--http-hook-allow <hosts,...>', 'former name of --hook-allow (both lists are joined)')
  .option('--hook-allow-loopback', 'let hooks call loopback addresses (127.0.0.0/8, ::1): single-host setups and tests', false)
  .option('--probe-address <host:port>', 'address of /healthz, /readyz and /metrics', '0.0.0.0:8080')
  .option('--log-level <level>', 'log level: fatal, error, warn, info, debug, trace', 'info')
  .option('--no-leader-elect', 'act without a Lease (only one replica may run)')
  .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: $POD_NAMESPACE, the first --namespace, or default)')
  .option('--leader-election-id <name>', 'name of the Lease', 'sts-pilot')
  .option('--lease-duration <seconds>', 'how long a silent leader keeps the Lease', '15')
  .option('--renew-deadline <seconds>', 'a leader that could not renew this long stops writing (< lease duration)', '10')
  .option('--default-window <windows>', 'maintenance windows for StatefulSets without sts-pilot.io/window, e.g. "Mon-Fri 01:00-05:00 Europe/Berlin"')
  .option('--gate-check-interval <seconds>', 'how often the admission gate is checked again (policies, bindings) after the check at start', '10')
  .option('--disable-policies <names,...>', 'rollout policies to switch off: window, step-delay, after, hold-timeout, halt, override')
  .action(async (raw: unknown) => {
    const f = parseFlags(ControllerFlags, raw);
    const log = createLogger({ level: f.logLevel });
    log.info({ version: VERSION, node: process.version, pid: process.pid }, `sts-pilot ${VERSION} controller starting`);
    const metrics = createMetrics();
    guardProcess(log, () => metrics.strayRejections.inc());
    const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
    const kc = loadKubeConfig(f.kubeconfig, f.context, `sts-pilot/${VERSION} controller (${identity})`);
    // No hook may call the API server itself, nor link-local addresses; loopback only where the installer says so.
    const apiServer = await apiServerAddresses(kc);
    const policy = urlPolicy([...(f.hookAllow ?? []), ...(f.httpHookAllow ?? [])], apiServer, { allowLoopback: f.hookAllowLoopback });
    log.info(
      { allow: policy.allow.length > 0 ? policy.allow : '(any)', refused: ['link-local', ...(f.hookAllowLoopback ? [] : ['loopback']), ...apiServer.map((a) => `${a.ip}:${a.port}`)] },
      'hook addresses',
    );
    if (f.httpHookAllow) log.warn('--http-hook-allow is the former name of --hook-allow, and applies to every hook now');
    const egress = createEgress(policy);
    // One cache of the Secrets hooks may read, for every controller of this process.
    const secrets = new SecretCache({ kc, log, metrics, namespaces: f.namespace });
    const registry = hooks;
    let elector: LeaderElector | undefined;
    let stopping = false;
    // Checked all along (below): without the gate, an override's user cannot be trusted.
    let gateEnforced = false;
    // The controller's own namespace: its leader Lease and the disruption budgets' Leases live there.
    const ownNamespace = f.leaderElectionNamespace ?? process.env.POD_NAMESPACE ?? f.namespace?.[0] ?? 'default';
    // One controller per watched namespace (or one for all): each has its own caches
    // and queue, so a namespace-scoped install never lists anything cluster-wide.
    const controllers = (f.namespace ?? [undefined]).map(
      (namespace) =>
        new Controller({
          kc,
          hooks: registry,
          secrets,
          egress,
          log,
          metrics,
          labelKey: f.labelKey,
          namespace,
          workers: f.workers,
          hookTimeoutMs: f.hookTimeout * 1000,
          retryMaxMs: f.hookRetryMax * 1000,
          isLeader: () => elector?.isLeader() ?? true,
          ...(f.defaultWindow !== undefined ? { defaultWindow: f.defaultWindow } : {}),
          disabledPolicies: f.disablePolicies ?? [],
          gateEnforced: () => gateEnforced,
          // Budget Leases beside the leader Lease; a holder of any watched namespace is judged from its own controller's caches.
          budget: { namespace: ownNamespace, lookup: (ns, name) => lookupAll(ns, name) },
        }),
    );
    const lookupAll: StatefulSetLookup = (ns, name) => {
      for (const c of controllers) {
        const found = c.lookup(ns, name);
        if (found !== 'unknown') return found;
      }
      return 'unknown';
    };
    if (f.leaderElect) {
      elector = new LeaderElector({
        kc,
        namespace: ownNamespace,
        name: f.leaderElectionId,
        identity,
        log,
        leaseDurationMs: f.leaseDuration * 1000,
        renewDeadlineMs: f.renewDeadline * 1000,
        retryPeriodMs: Math.max(250, Math.min(2000, (f.leaseDuration * 1000) / 6)),
        onStartedLeading: () => {
          metrics.leader.set(1);
          for (const c of controllers) c.enqueueAll();
        },
        // Like controller-runtime: a replica that lost the lease exits and comes back as a candidate.
        onStoppedLeading: () => {
          metrics.leader.set(0);
          for (const c of controllers) c.leadershipLost();
          if (!stopping) process.exit(1);
        },
      });
    }
    const [, host, port] = /^([^:]*):(\d+)$/.exec(f.probeAddress) as RegExpExecArray;
    const gate = new GateMonitor({
      kc,
      labelKey: f.labelKey,
      log,
      intervalMs: f.gateCheckInterval * 1000,
      onReport: (r, m) => {
        gateEnforced = r.enforced && r.override.enforced;
        // Which gate this cluster runs and could run (docs/install.md, "Kubernetes versions").
        for (const g of GATE_MODES) {
          metrics.admissionGateMode.set({ mode: g }, g === m.mode ? 1 : 0);
          metrics.admissionGateCapable.set({ mode: g }, g === m.capable ? 1 : 0);
        }
        metrics.admissionGate.set(r.enforced ? 1 : 0);
        metrics.admissionGateScaleDown.set(r.scaleDown.enforced ? 1 : 0);
        metrics.admissionGateChecked.set(Date.now() / 1000);
      },
    });
    const server = await serveProbes({
      host: host || '0.0.0.0',
      port: Number(port),
      registry: metrics.registry,
      ready: () => controllers.every((c) => c.ready),
      detail: () => gateDetail(gate.report),
    });
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 20_000);
      force.unref();
      await Promise.all(controllers.map((c) => c.stop()));
      // Hook calls are over: the connections hooks keep between calls (Kafka's) are closed, not dropped.
      await Promise.all([...registry.values()].map((h) => h.close?.().catch(() => {})));
      await secrets.stop();
      await elector?.stop();
      gate.stop();
      server.close();
      log.info('stopped');
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    await Promise.all(controllers.map((c) => c.start()));
    if (elector) elector.start();
    else metrics.leader.set(1);
    // In the background, at start and all along: whether the API server keeps the gate shut too.
    gate.start();
  });

registerCliCommands(program);
registerPilotCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`sts-pilot: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
