import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** An application fetched from Maven Central by one of the fetch-*.sh scripts: its jars and the Java to run them with. */
export interface JarDist {
  version: string;
  /** Directory of the jars (the classpath is `<libs>/*`). */
  libs: string;
  javaHome: string;
  /** The Java the tools (nodetool) run on, when the script says (else javaHome). */
  toolsJavaHome: string;
}

/**
 * Runs a fetch script (downloads on a cache miss) once per process, and reads
 * what it prints: `version=`, `java_home=` (and optionally `tools_java_home=`) lines, the jars' directory last.
 * Fails with the script's own words; a failure is not remembered.
 */
export function jarDist(script: string): () => Promise<JarDist> {
  const name = script.split('/').at(-1) ?? script;
  let memo: Promise<JarDist> | undefined;
  return () => {
    memo ??= (async () => {
      const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        process.stderr.write(d);
      });
      const [code] = (await once(child, 'close')) as [number | null];
      if (code !== 0) throw new Error(`${name} exited ${code}:\n${err.trim()}`);
      const lines = out.trim().split('\n');
      const kv = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
      const libs = lines.at(-1) ?? '';
      const version = kv('version');
      const javaHome = kv('java_home');
      if (!version || !javaHome || !libs.startsWith('/')) throw new Error(`${name} printed something unexpected:\n${out}`);
      return { version, libs, javaHome, toolsJavaHome: kv('tools_java_home') || javaHome };
    })();
    memo.catch(() => (memo = undefined));
    return memo;
  };
}
