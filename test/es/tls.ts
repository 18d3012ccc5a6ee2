// A throwaway CA and a certificate for 127.0.0.1/localhost signed by it, made
// with openssl, for tests of a cluster with security on.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestPki {
  ca: string;
  cert: string;
  key: string;
  /** another CA, which signed nothing here: "not trusted" */
  otherCa: string;
}

export function makePki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-pki-'));
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  try {
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=sts-pilot test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=another CA', '-keyout', f('other.key'), '-out', f('other.crt'));
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=es-node', '-keyout', f('node.key'), '-out', f('node.csr'));
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    ossl('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('node.crt'));
    // PKCS#8: what Elasticsearch's PEM reader wants for an unencrypted key.
    ossl('pkcs8', '-topk8', '-nocrypt', '-in', f('node.key'), '-out', f('node8.key'));
    return { ca: fs.readFileSync(f('ca.crt'), 'utf8'), cert: fs.readFileSync(f('node.crt'), 'utf8'), key: fs.readFileSync(f('node8.key'), 'utf8'), otherCa: fs.readFileSync(f('other.crt'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
