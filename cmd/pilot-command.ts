import { type Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { HostPort, LogLevel, NamespaceName, parseFlags, wholeNumber } from '../lib/cli/flags.ts';
import { loadKubeConfig } from '../lib/kube/config.ts';
import { guardProcess } from '../lib/process-guard.ts';
import { createLogger } from '../lib/log.ts';
import { actionCommands } from '../lib/pilot/actions.ts';
import { PilotRunner } from '../lib/pilot/runner.ts';
import { elasticsearchProbe } from '../lib/probes/elasticsearch.ts';
import { patroniProbe } from '../lib/probes/patroni.ts';
import { kafkaProbe } from '../lib/probes/kafka.ts';
import { cassandraProbe } from '../lib/probes/cassandra.ts';
import { DEFAULT_CASSANDRA_DATA_DIR } from '../lib/probes/cassandra-disk.ts';

/** The pre-stop of --app cassandra when none is given: nodetool on the image's PATH, over the node's local JMX. */
export const CASSANDRA_PRE_STOP = 'nodetool drain';

const seconds = (min: number, max: number) => wholeNumber(min, max, 'seconds');

const PilotFlags = z.strictObject({
  kubeconfig: z.string().min(1).optional(),
  namespace: z.string({ error: 'is required (or $POD_NAMESPACE)' }).pipe(NamespaceName),
  podName: z.string({ error: 'is required (or $POD_NAME)' }).regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a pod name'),
  podUid: z.string().min(1).optional(),
  revision: z.string().min(1).optional(),
  app: z.enum(['none', 'elasticsearch', 'patroni', 'kafka', 'cassandra'], { error: 'must be none, elasticsearch, patroni, kafka or cassandra' }),
  // http(s) for elasticsearch and patroni, kafka://host:port (a plaintext listener of this pod) for kafka, cql://host:port for cassandra
  appUrl: z.url({ protocol: /^(https?|kafka|cql)$/, error: 'must be an http://, https://, kafka:// or cql:// URL' }).optional(),
  appDataDir: z.string().min(1).optional(),
  appHintsDir: z.string().min(1).optional(),
  appCaFile: z.string().min(1).optional(),
  preStart: z.string().min(1).optional(),
  preStartTimeout: seconds(1, 86_400),
  preStop: z.string().min(1).optional(),
  preStopTimeout: seconds(1, 86_400),
  stopTimeout: seconds(1, 86_400),
  heartbeat: seconds(1, 3600),
  probeInterval: seconds(1, 3600),
  probeTimeout: seconds(1, 600),
  pilotTimeout: seconds(0, 86_400),
  probeAddress: HostPort,
  logLevel: LogLevel,
  action: z.array(z.string()).max(32),
});

/**
 * `sts-pilot pilot [options] -- <command...>`: the in-pod pilot, PID 1 of the
 * application container. The pod's identity comes from the downward API
 * (POD_NAMESPACE, POD_NAME, POD_UID, POD_REVISION), as manifests/ sets it.
 */
export function registerPilotCommand(program: Command): void {
  program
    .command('pilot')
    .description("run an application as PID 1 of its container and report its state into the pod's Pilot")
    .argument('<command...>', 'the application and its arguments, after --')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .addOption(new Option('--namespace <ns>', "the pod's namespace").env('POD_NAMESPACE'))
    .addOption(new Option('--pod-name <name>', "the pod's name, which is its Pilot's").env('POD_NAME'))
    .addOption(new Option('--pod-uid <uid>', "the pod's uid: only a Pilot owned by it is written").env('POD_UID'))
    .addOption(new Option('--revision <hash>', "the pod's controller-revision-hash (default: read from the Pod)").env('POD_REVISION'))
    .addOption(new Option('--app <probe>', 'how to read the application').choices(['none', 'elasticsearch', 'patroni', 'kafka', 'cassandra']).default('none'))
    .addOption(new Option('--app-url <url>', 'URL of the application on this pod (elasticsearch: default http://127.0.0.1:9200, user:password@ for basic auth; patroni: its REST API, default http://127.0.0.1:8008; kafka: default kafka://127.0.0.1:9092; cassandra: its native transport, default cql://127.0.0.1:9042, user:password@ for PasswordAuthenticator)').env('STS_PILOT_APP_URL'))
    .option('--app-data-dir <dir>', `kafka: a log dir of the node; its meta.properties tells the node id. cassandra: its data_file_directories entry (default ${DEFAULT_CASSANDRA_DATA_DIR}); its free space and the node's load are reported`)
    .option('--app-hints-dir <dir>', "cassandra: the node's hints_directory; its hint files are reported per target node (without it, hints are unknown)")
    .option('--app-ca-file <path>', 'PEM CA bundle to trust for an https --app-url')
    .option('--pre-start <command>', 'shell command run before the application starts; failing it fails the pod')
    .option('--pre-start-timeout <seconds>', 'deadline of the pre-start command', '300')
    .option('--pre-stop <command>', `shell command run on SIGTERM, before the application is signalled (cassandra: default '${CASSANDRA_PRE_STOP}', finished before the JVM gets its signal; --pre-stop true for none)`)
    .option('--pre-stop-timeout <seconds>', 'deadline of the pre-stop command', '60')
    .option('--stop-timeout <seconds>', 'from the stop signal sent to the application to SIGKILL', '20')
    .option('--heartbeat <seconds>', 'write the Pilot status at least this often', '20')
    .option('--probe-interval <seconds>', 'read the application this often', '10')
    .option('--probe-timeout <seconds>', 'deadline of one read of the application', '5')
    .option('--pilot-timeout <seconds>', 'start the application after this long even if its Pilot does not exist yet (0: wait for ever)', '120')
    .option('--probe-address <host:port>', 'address of /healthz, /readyz and /metrics', '0.0.0.0:8081')
    .option('--log-level <level>', 'log level', 'info')
    .option('--action <name=command>', "a shell command the controller may request by name through the Pilot's spec.actions (repeatable; --app cassandra: decommission='nodetool decommission'); any other action is refused", (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (command: string[], raw: unknown) => {
      const f = parseFlags(PilotFlags, raw);
      const actions = actionCommands(f.app, f.action);
      if (!actions.ok) throw new InvalidArgumentError(actions.error);
      const log = createLogger({ level: f.logLevel, name: 'sts-pilot-pilot' });
      guardProcess(log);
      const kc = loadKubeConfig(f.kubeconfig);
      const appUrl = f.appUrl ? new URL(f.appUrl) : undefined;
      if (appUrl && (appUrl.protocol === 'kafka:') !== (f.app === 'kafka')) throw new InvalidArgumentError(`--app-url ${appUrl.protocol}// does not go with --app ${f.app}`);
      if (appUrl && (appUrl.protocol === 'cql:') !== (f.app === 'cassandra')) throw new InvalidArgumentError(`--app-url ${appUrl.protocol}// does not go with --app ${f.app}`);
      if (f.appHintsDir && f.app !== 'cassandra') throw new InvalidArgumentError(`--app-hints-dir goes with --app cassandra only`);
      const probe =
        f.app === 'elasticsearch'
          ? elasticsearchProbe({ url: f.appUrl ?? 'http://127.0.0.1:9200', timeoutMs: f.probeTimeout * 1000, ...(f.appCaFile ? { caFile: f.appCaFile } : {}) })
          : f.app === 'patroni'
            ? patroniProbe({ url: f.appUrl ?? 'http://127.0.0.1:8008', timeoutMs: f.probeTimeout * 1000, member: f.podName })
            : f.app === 'kafka'
              ? kafkaProbe({
                  broker: { host: appUrl?.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(appUrl?.port || 9092) },
                  timeoutMs: f.probeTimeout * 1000,
                  ...(f.appDataDir ? { logDir: f.appDataDir } : {}),
                })
              : f.app === 'cassandra'
                ? cassandraProbe({
                    host: appUrl?.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
                    port: Number(appUrl?.port || 9042),
                    // cql://user:password@host:port, as elasticsearch's URL carries basic auth (STS_PILOT_APP_URL from a Secret).
                    ...(appUrl?.username ? { auth: { username: decodeURIComponent(appUrl.username), password: decodeURIComponent(appUrl.password) } } : {}),
                    timeoutMs: f.probeTimeout * 1000,
                    ...(f.appHintsDir ? { hintsDir: f.appHintsDir } : {}),
                    dataDir: f.appDataDir ?? DEFAULT_CASSANDRA_DATA_DIR,
                  })
                : undefined;
      // A Cassandra node stopped without a drain replays its commit log at the next start and may lose the
      // writes of the last commitlog_sync_period if it is killed; the drain flushes every memtable first.
      const preStop = f.preStop ?? (f.app === 'cassandra' ? CASSANDRA_PRE_STOP : undefined);
      const [, host, port] = /^([^:]*):(\d+)$/.exec(f.probeAddress) as RegExpExecArray;
      const runner = new PilotRunner({
        command,
        kc,
        namespace: f.namespace,
        podName: f.podName,
        podUid: f.podUid,
        revision: f.revision,
        probe,
        preStart: f.preStart,
        preStop,
        preStartTimeoutMs: f.preStartTimeout * 1000,
        preStopTimeoutMs: f.preStopTimeout * 1000,
        stopTimeoutMs: f.stopTimeout * 1000,
        heartbeatMs: f.heartbeat * 1000,
        probeIntervalMs: f.probeInterval * 1000,
        probeTimeoutMs: f.probeTimeout * 1000,
        pilotTimeoutMs: f.pilotTimeout * 1000,
        probeHost: host || '0.0.0.0',
        probePort: Number(port),
        actions: actions.commands,
        log,
      });
      const code = await runner.run();
      process.exit(code);
    });
}
