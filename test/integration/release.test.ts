import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// `npm run release` without the image (image/release.sh --no-image): the pieces
// that need no root and take seconds. The image, its archive and its SBOM are
// built, tested and checked for a reproducible digest in .ci/run.

const exec = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const version = pkg.version;
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
// Where the release says it is published: fixed here, so that two runs compare
// (a clone's origin would do the same; this worktree may have none).
const env = { ...process.env, STS_PILOT_SOURCE_URL: 'https://example.invalid/sts-pilot' };
const release = async (out: string): Promise<void> => {
  await exec('bash', [join(root, 'image', 'release.sh'), '--no-image', out], { env, maxBuffer: 16 << 20 });
};

describe('release (image/release.sh --no-image)', function () {
  this.timeout(10 * 60_000); // helm is built once from the Go module proxy on a cold cache
  let tmp: string;
  let out: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'sts-pilot-release-'));
    out = join(tmp, 'release');
    await release(out);
  });
  after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

  it('writes each artifact and a SHA256SUMS of exactly them, which sha256sum -c verifies', async () => {
    const expected = ['SHA256SUMS', 'kubectl-sts_pilot', `kubectl-sts_pilot-${version}.tar.gz`, 'plugin.yaml', `sts-pilot-${version}.tgz`];
    expect(readdirSync(out).sort()).to.deep.equal(expected.sort());
    const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(sums.map((l) => l.split(/\s+/)[1]).sort()).to.deep.equal(expected.filter((f) => f !== 'SHA256SUMS').sort());
    for (const line of sums) {
      const [sum, name] = line.split(/\s+/);
      expect(sha256(join(out, name ?? '')), name).to.equal(sum);
    }
    const { stdout } = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
    expect(stdout).to.match(/kubectl-sts_pilot: OK/);
  });

  it('the single-file CLI runs --version and status --help on plain Node 24 from a directory outside the repo', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'sts-pilot-cli-'));
    try {
      const cli = join(elsewhere, 'kubectl-sts_pilot');
      copyFileSync(join(out, 'kubectl-sts_pilot'), cli);
      // Nothing of the project on the way: no NODE_PATH, no node_modules, a bare PATH
      // whose only node is Node 24 (the shebang's `env node`).
      const bare = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: elsewhere };
      const plain = await exec(process.execPath, [cli, '--version'], { cwd: elsewhere, env: bare });
      expect(plain.stdout.trim()).to.equal(`sts-pilot ${version}`);
      expect(plain.stderr).to.equal('');
      const direct = await exec(cli, ['--version'], { cwd: elsewhere, env: bare });
      expect(direct.stdout.trim()).to.equal(`sts-pilot ${version}`);
      const help = await exec(cli, ['status', '--help'], { cwd: elsewhere, env: bare });
      expect(help.stdout).to.match(/^Usage: kubectl sts-pilot status \[options\] \[name\]/);
      // Named sts-pilot, it is the plain CLI.
      copyFileSync(cli, join(elsewhere, 'sts-pilot'));
      const named = await exec(process.execPath, [join(elsewhere, 'sts-pilot'), 'status', '--help'], { cwd: elsewhere, env: bare });
      expect(named.stdout).to.match(/^Usage: sts-pilot status/);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it("the krew manifest names the archive with its sha256, and the archive holds the same file", async () => {
    const archive = `kubectl-sts_pilot-${version}.tar.gz`;
    const manifest = readFileSync(join(out, 'plugin.yaml'), 'utf8');
    expect(manifest).to.match(/^kind: Plugin$/m);
    expect(manifest).to.match(new RegExp(`^  version: v${version.replaceAll('.', '\\.')}$`, 'm'));
    const shas = [...manifest.matchAll(/^ +sha256: ([0-9a-f]{64})$/gm)].map((m) => m[1]);
    const uris = [...manifest.matchAll(/^ +uri: (\S+)$/gm)].map((m) => m[1]);
    expect(shas).to.have.length(2); // linux, darwin
    for (const s of shas) expect(s).to.equal(sha256(join(out, archive)));
    for (const u of uris) expect(u).to.equal(`https://example.invalid/sts-pilot/releases/download/v${version}/${archive}`);
    expect(manifest).to.match(/^ +bin: kubectl-sts_pilot$/m);
    const x = join(tmp, 'krew');
    await exec('mkdir', ['-p', x]);
    await exec('tar', ['-xzf', join(out, archive), '-C', x]);
    expect(readdirSync(x)).to.include('kubectl-sts_pilot');
    expect(sha256(join(x, 'kubectl-sts_pilot'))).to.equal(sha256(join(out, 'kubectl-sts_pilot')));
  });

  it('the chart package holds the chart at the package version', async () => {
    const { stdout } = await exec('tar', ['-xzOf', join(out, `sts-pilot-${version}.tgz`), 'sts-pilot/Chart.yaml']);
    expect(stdout).to.match(new RegExp(`^version: ${version.replaceAll('.', '\\.')}$`, 'm'));
    expect(stdout).to.match(new RegExp(`^appVersion: "?${version.replaceAll('.', '\\.')}"?$`, 'm'));
  });

  it('refuses to empty a folder that holds anything but an earlier release', async () => {
    const other = join(tmp, 'other');
    await exec('mkdir', ['-p', other]);
    await exec('touch', [join(other, 'keep-me')]);
    const err = await release(other).then(() => null, (e: Error & { stderr?: string }) => e);
    expect(err?.stderr ?? '').to.match(/is not empty and holds no earlier release/);
    expect(readdirSync(other)).to.deep.equal(['keep-me']);
  });

  it('a second run gives the same bytes in every file (SOURCE_DATE_EPOCH from the commit)', async () => {
    const again = join(tmp, 'again');
    await release(again);
    expect(readFileSync(join(again, 'SHA256SUMS'), 'utf8')).to.equal(readFileSync(join(out, 'SHA256SUMS'), 'utf8'));
  });
});
