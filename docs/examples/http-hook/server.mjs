#!/usr/bin/env node
// An sts-pilot http hook server in plain Node (no dependencies): the example of
// docs/hooks-http.md, run by test/integration/http-hook-example.test.ts against
// a real control plane. Requests: docs/http-hook.schema.json.
//
//   PORT=8080 HOLD_FILE=/tmp/hold DRAINED_FILE=/tmp/drained node server.mjs
//
// - PodUpdateTransition: approved (204) while HOLD_FILE does not exist; held
//   (409) with the file's first line as the reason while it does.
// - PodRemoval, call "removal": approved only for pods whose name is a line of
//   DRAINED_FILE (stands for "my data has moved off this node").
// - PodRemoval, "removed" / "withdrawn": acknowledged (nothing to clean up here).
// - Anything it does not understand: 400. A hook answers only what it can judge;
//   sts-pilot holds on anything but 2xx, so an unknown question is never approved.
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';

const port = Number(process.env.PORT ?? 8080);
const holdFile = process.env.HOLD_FILE ?? '/tmp/hold';
const drainedFile = process.env.DRAINED_FILE ?? '/tmp/drained';
const lines = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean) : []);

function decide(q) {
  if (q?.apiVersion !== 'sts-pilot.io/v1alpha1') return [400, `unknown apiVersion ${q?.apiVersion}`];
  const sts = `${q.statefulSet?.metadata?.namespace}/${q.statefulSet?.metadata?.name}`;
  if (q.kind === 'PodUpdateTransition') {
    if (existsSync(holdFile)) return [409, lines(holdFile)[0] ?? `held by ${holdFile}`];
    return [204, `${sts}: ${q.next?.metadata?.name ?? '(final call)'} may move`];
  }
  if (q.kind === 'PodRemoval') {
    const pod = q.pod?.metadata?.name;
    if (q.call !== 'removal') return [204, `${sts}: ${pod} ${q.call}`];
    return lines(drainedFile).includes(pod) ? [204, `${sts}: ${pod} may leave`] : [409, `${pod} is not drained yet`];
  }
  return [400, `unknown kind ${q.kind}`];
}

const server = createServer((req, res) => {
  if (req.method !== 'POST') return res.writeHead(405).end();
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    let answer;
    try {
      answer = decide(JSON.parse(body));
    } catch (err) {
      answer = [400, `not JSON: ${err.message}`];
    }
    const [status, why] = answer;
    console.log(JSON.stringify({ status, why }));
    // A 204 carries no body; the reason of a hold is the start of the body.
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 204 ? undefined : why);
  });
});
server.listen(port, process.env.HOST ?? '0.0.0.0', () => console.log(JSON.stringify({ listening: server.address().port })));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
