import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installPilotCrd } from '../pilot/helpers.ts';
import { bySource, chartDir, helmTemplate, root, rulesOf } from '../tools/chart.ts';
import { familyOf, parseExposition, selectorsOf } from '../tools/promql.ts';
import { goTool } from '../tools/tools.ts';
import { type Cluster, cluster, ControllerProcess, createAndSettle, namespace, RecordingHook, setImage, statefulSet, waitUntil } from './harness.ts';

const exec = promisify(execFile);

interface Dashboard {
  uid: string;
  templating: { list: { name: string; type: string }[] };
  panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string; refId: string }[] }[];
}

/** Every PromQL expression the alerts and the dashboard evaluate, with where it is. */
function expressions(rules: string, dashboard: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  let alert = '';
  for (const line of rules.split('\n')) {
    const a = /^\s*- alert: (\S+)/.exec(line);
    if (a?.[1]) alert = a[1];
    const e = /^\s*expr: (.+)$/.exec(line);
    if (e?.[1]) out.push({ where: `alert ${alert}`, expr: e[1] });
  }
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  return out;
}

describe('observability: the alerts (promtool) and the dashboard against what the controller exports', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let promtool: string;
  let rules: string;
  let dir: string;
  const dashboard = JSON.parse(readFileSync(join(chartDir, 'files', 'grafana-dashboard.json'), 'utf8')) as Dashboard;

  before(async function () {
    this.timeout(80 * 60_000); // a first run builds helm, promtool (and the control plane)
    const helm = await goTool('helm', (l) => console.log(`      [helm] ${l}`));
    promtool = await goTool('promtool', (l) => console.log(`      [promtool] ${l}`));
    const rendered = bySource(await helmTemplate(helm, { set: ['prometheusRule.enabled=true'], showOnly: ['templates/prometheusrule.yaml'] }));
    rules = rulesOf(rendered.get('prometheusrule.yaml')?.[0] ?? '');
    dir = mkdtempSync(join(tmpdir(), 'sts-pilot-rules-'));
    writeFileSync(join(dir, 'prometheus-rules.yaml'), rules);
    copyFileSync(join(root, 'test', 'monitoring', 'alerts.test.yaml'), join(dir, 'alerts.test.yaml'));
    c = await cluster();
    await installPilotCrd(c);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('promtool check rules accepts the chart\'s PrometheusRule (seven alerts)', async () => {
    const { stdout } = await exec(promtool, ['check', 'rules', join(dir, 'prometheus-rules.yaml')]);
    expect(stdout).to.match(/SUCCESS: 7 rules found/);
  });

  it('every alert has a for:, a severity and a runbook_url at a section of docs/observability.md', () => {
    const doc = readFileSync(join(root, 'docs', 'observability.md'), 'utf8');
    // GitHub's anchors of the page's headings.
    const anchors = new Set([...doc.matchAll(/^#+ (.+)$/gm)].map((m) => (m[1] ?? '').toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    const blocks = rules.split(/\n(?=\s*- alert: )/).filter((b) => /- alert: /.test(b));
    expect(blocks).to.have.length(7);
    for (const b of blocks) {
      const name = /- alert: (\S+)/.exec(b)?.[1] ?? '';
      expect(b, name).to.match(/\n\s*for: \d+[smh]\n/);
      expect(b, name).to.match(/\n\s*severity: (critical|warning|info)\n/);
      const url = /\n\s*runbook_url: (\S+)/.exec(b)?.[1] ?? '';
      expect(url, name).to.equal(`docs/observability.md#${name.toLowerCase()}`);
      expect(anchors.has(name.toLowerCase()), `a runbook section for ${name}`).to.equal(true);
    }
  });

  it('promtool test rules: each alert fires on the series written for it, at its threshold, and not before', async () => {
    const r = await exec(promtool, ['test', 'rules', join(dir, 'alerts.test.yaml')]).then(
      (x) => ({ code: 0, out: x.stdout + x.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    );
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(/SUCCESS/);
    // Every alert of the rules file has a test.
    const tested = new Set([...readFileSync(join(dir, 'alerts.test.yaml'), 'utf8').matchAll(/alertname: (\S+)/g)].map((m) => m[1]));
    const alerts = [...rules.matchAll(/- alert: (\S+)/g)].map((m) => m[1]);
    expect(alerts.filter((a) => !tested.has(a)), 'alerts without a promtool test').to.deep.equal([]);
  });

  it('the dashboard is well formed: a data source variable, every panel on the 24-column grid, every target with an expression', () => {
    expect(dashboard.uid).to.equal('sts-pilot');
    expect(dashboard.templating.list.map((v) => v.name)).to.include.members(['datasource', 'job', 'namespace', 'statefulset']);
    // A per-object series is read through the variables, so a panel shows what they select.
    for (const p of dashboard.panels)
      for (const t of p.targets ?? [])
        if (/sts_pilot_(step_wait_seconds|pilot_heartbeat_timestamp_seconds)/.test(t.expr)) expect(t.expr, p.title).to.include('namespace=~"$namespace", statefulset=~"$statefulset"');
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).to.be.at.most(24);
      if (p.type !== 'row') expect(p.targets?.length, p.title).to.be.above(0);
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).to.equal(dashboard.panels.length);
  });

  it('every metric and label the alerts and the dashboard read exists on a running controller\'s /metrics', async () => {
    const ns = await namespace(c, 'metrics');
    const ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const hook = await new RecordingHook().start();
    try {
      hook.decide = (call) => call.next === null || call.next.name !== 'web-0'; // a rollout held at its last pod
      await createAndSettle(c, ns, statefulSet('web', { replicas: 2, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
      await setImage(c, ns, 'web', 'example/app:2');
      await waitUntil('the hook to hold web-0', 60_000, async () => hook.calls.some((x) => x.next?.name === 'web-0' && !x.approved));
      // A pilot's heartbeat, as the in-pod pilot writes it.
      const api = c.kc.makeApiClient(CustomObjectsApi);
      await waitUntil('the Pilot of web-1', 30_000, async () =>
        api.getNamespacedCustomObject({ group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots', namespace: ns, name: 'web-1' }),
      );
      await api.patchNamespacedCustomObjectStatus(
        { group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots', namespace: ns, name: 'web-1', body: { status: { phase: 'Running', heartbeatTime: new Date().toISOString() } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const text = await waitUntil('the heartbeat in /metrics', 30_000, async () => {
        const t = await ctrl.metrics();
        return t.includes(`sts_pilot_pilot_heartbeat_timestamp_seconds{namespace="${ns}",pilot="web-1",statefulset="web"}`) && t.includes('sts_pilot_step_wait_seconds{') ? t : undefined;
      });
      const exposed = parseExposition(text);
      const problems: string[] = [];
      for (const { where, expr } of expressions(rules, dashboard)) {
        const { metrics, labels } = selectorsOf(expr);
        if (metrics.length === 0) problems.push(`${where}: reads no metric: ${expr}`);
        const seen = new Set<string>();
        for (const m of metrics) {
          if (!familyOf(m, exposed.families)) problems.push(`${where}: ${m} is not exported`);
          for (const l of exposed.samples.get(m) ?? []) seen.add(l);
        }
        // Labels the scrape adds (job, pod), and `le` of histogram buckets, are not the controller's own;
        // `namespace` is (the StatefulSet's, kept by the ServiceMonitor's honorLabels).
        const own = labels.filter((l) => !['job', 'pod', 'instance'].includes(l));
        const withSamples = metrics.some((m) => exposed.samples.has(m));
        for (const l of own) if (withSamples && !seen.has(l)) problems.push(`${where}: label ${l} is on no sample of ${metrics.join(', ')}`);
      }
      expect(problems).to.deep.equal([]);
      // And these have samples now: a wrong label name above would have shown.
      for (const m of [
        'sts_pilot_step_wait_seconds',
        'sts_pilot_hook_calls_total',
        'sts_pilot_pilot_heartbeat_timestamp_seconds',
        'sts_pilot_statefulset_info',
        'sts_pilot_leader',
        'sts_pilot_build_info',
        'sts_pilot_workqueue_depth',
        'sts_pilot_workqueue_adds_total',
        'sts_pilot_workqueue_queue_duration_seconds_count',
        'sts_pilot_workqueue_work_duration_seconds_count',
        'sts_pilot_workqueue_retries_total',
      ]) {
        expect(exposed.samples.has(m), `${m} has a sample`).to.equal(true);
      }
      expect(text).to.match(/sts_pilot_build_info\{version="\d+\.\d+\.\d+",node="v24\.[0-9.]+"\} 1/);
      expect(text).to.match(/sts_pilot_rollouts_in_progress 1/);
      expect(text).to.include(`sts_pilot_step_wait_seconds{namespace="${ns}",statefulset="web"}`);
      expect(text).to.include(`sts_pilot_statefulset_info{namespace="${ns}",statefulset="web",hook="http"} 1`);
      // The hook holds, so the key went back with backoff: a retry of the statefulsets queue.
      expect(text).to.match(/^sts_pilot_workqueue_retries_total\{name="statefulsets"\} [1-9]/m);
      expect(text).to.match(/^sts_pilot_workqueue_adds_total\{name="pilots"\} [1-9]/m);
    } finally {
      hook.stop();
      await ctrl.kill();
    }
  });
});
