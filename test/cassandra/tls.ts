// A throwaway CA and a node certificate signed by it, made with the JDK's own
// keytool (the Java Cassandra runs on): a PKCS12 keystore for
// client_encryption_options, and the CA in PEM for the driver, as an operator
// who runs Cassandra with keytool-made stores would have them.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CassandraPki {
  dir: string;
  /** the node's PKCS12 keystore: its key and the chain up to the CA */
  keystore: string;
  password: string;
  /** the CA that signed the node's certificate, PEM */
  ca: string;
  /** another CA, which signed nothing here: "not trusted" */
  otherCa: string;
  remove(): void;
}

/** `subjectAltNames`: keytool's SAN list, e.g. "ip:127.0.0.1,dns:cass.test". */
export async function makeCassandraPki(javaHome: string, subjectAltNames: string): Promise<CassandraPki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-cassandra-pki-'));
  const f = (n: string) => path.join(dir, n);
  const password = 'sts-pilot-test';
  const keytool = async (...args: string[]) => {
    try {
      await run(path.join(javaHome, 'bin', 'keytool'), [...args, '-storetype', 'PKCS12', '-storepass', password], { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`keytool ${args[0]}: ${(e.stderr || e.stdout || e.message).trim()}`);
    }
  };
  const ca = (alias: string, cn: string) => keytool('-genkeypair', '-alias', alias, '-keyalg', 'RSA', '-keysize', '2048', '-validity', '2', '-dname', `CN=${cn}`, '-ext', 'bc:c', '-keystore', f(`${alias}.p12`));
  try {
    await Promise.all([
      ca('ca', 'sts-pilot test CA'),
      ca('other', 'another CA'),
      keytool('-genkeypair', '-alias', 'node', '-keyalg', 'RSA', '-keysize', '2048', '-validity', '2', '-dname', 'CN=cassandra-node', '-keystore', f('node.p12')),
    ]);
    await Promise.all([
      keytool('-exportcert', '-rfc', '-alias', 'ca', '-keystore', f('ca.p12'), '-file', f('ca.pem')),
      keytool('-exportcert', '-rfc', '-alias', 'other', '-keystore', f('other.p12'), '-file', f('other.pem')),
      keytool('-certreq', '-alias', 'node', '-keystore', f('node.p12'), '-file', f('node.csr')),
    ]);
    await keytool('-gencert', '-rfc', '-alias', 'ca', '-keystore', f('ca.p12'), '-infile', f('node.csr'), '-outfile', f('node.pem'), '-validity', '2', '-ext', `SAN=${subjectAltNames}`, '-ext', 'EKU=serverAuth');
    // The CA first (trusted), then the signed reply replaces the node's self-signed certificate with the chain.
    await keytool('-importcert', '-noprompt', '-alias', 'ca', '-file', f('ca.pem'), '-keystore', f('node.p12'));
    await keytool('-importcert', '-alias', 'node', '-file', f('node.pem'), '-keystore', f('node.p12'));
    return {
      dir,
      keystore: f('node.p12'),
      password,
      ca: fs.readFileSync(f('ca.pem'), 'utf8'),
      otherCa: fs.readFileSync(f('other.pem'), 'utf8'),
      remove: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
