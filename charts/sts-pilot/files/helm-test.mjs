// `helm test` (templates/tests/test-install.yaml), run by node in the controller's own image:
// asks the controller, through its metrics Service, whether it is ready and whether
// the admission gate in force is the one the values asked for. Exit 0: it is; 1: it
// is not (the reason on stderr, which `helm test --logs` prints). Plain Node, no packages.
// Env: STS_PILOT_URL (the Service), EXPECT_GATE ("enforced" or "off"), EXPECT_MODE
// (admission.mode: "auto", a mode, or empty where the chart has no such value), TIMEOUT_SECONDS.
const url = process.env.STS_PILOT_URL;
const expectGate = process.env.EXPECT_GATE;
const expectMode = process.env.EXPECT_MODE ?? '';
const deadline = Date.now() + Number(process.env.TIMEOUT_SECONDS ?? '60') * 1000;
if (!url || !['enforced', 'off'].includes(expectGate ?? '')) {
  console.error('STS_PILOT_URL and EXPECT_GATE (enforced|off) must be set');
  process.exit(2);
}

async function get(path) {
  const res = await fetch(url + path, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

/** The value of a sample of /metrics (a gauge without labels, or with `labels` exactly). */
function sample(metrics, name, labels = '') {
  const re = new RegExp(`^${name}${labels ? `\\{${labels.replace(/[{}"=]/g, '\\$&')}\\}` : ''} (\\S+)$`, 'm');
  const m = re.exec(metrics);
  return m ? Number(m[1]) : undefined;
}

function check(ready, metrics) {
  const problems = [];
  if (ready.status !== 200) problems.push(`/readyz answers ${ready.status}: ${ready.body.trim()}`);
  // The gate check runs at start, then every --gate-check-interval: 0 or 1 once it has run.
  const gate = sample(metrics, 'sts_pilot_admission_gate');
  if (/admission gate: not checked yet/.test(ready.body)) problems.push('the controller has not checked the admission gate yet');
  else if (expectGate === 'enforced' && gate !== 1) problems.push(`the values install the admission gate, but the controller finds it not enforced: ${(/admission gate: .*/.exec(ready.body) ?? ['(no word on /readyz)'])[0]}`);
  else if (expectGate === 'off' && gate !== 0) problems.push(`admission.gate=false, but the controller finds a gate enforced (sts_pilot_admission_gate ${gate}): another install's policies?`);
  // admission.mode, where the controller exports which gate is in force.
  if (expectMode && expectMode !== 'auto' && expectGate === 'enforced' && /^sts_pilot_admission_gate_mode\{/m.test(metrics)) {
    if (sample(metrics, 'sts_pilot_admission_gate_mode', `mode="${expectMode}"`) !== 1) {
      const inForce = (/^sts_pilot_admission_gate_mode\{mode="([^"]+)"\} 1$/m.exec(metrics) ?? [])[1] ?? 'unknown';
      problems.push(`admission.mode=${expectMode}, but the gate in force is ${inForce}`);
    }
  }
  return problems;
}

let problems = ['no answer yet'];
while (Date.now() < deadline) {
  try {
    problems = check(await get('/readyz'), (await get('/metrics')).body);
  } catch (err) {
    problems = [`${url}: ${err.cause?.message ?? err.message}`];
  }
  if (problems.length === 0) {
    console.log(`sts-pilot controller ready at ${url}; admission gate ${expectGate}${expectMode && expectMode !== 'auto' ? ` (${expectMode})` : ''}, as the values asked`);
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 2000));
}
console.error(`sts-pilot is not installed as the values asked:\n- ${problems.join('\n- ')}`);
process.exit(1);
