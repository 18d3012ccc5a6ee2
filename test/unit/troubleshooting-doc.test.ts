import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * docs/troubleshooting.md quotes the messages people meet, each on a line of
 * its own: a blockquote whose only content is a code span, e.g.
 *
 *   > `waiting for pod <pod> to be Ready`
 *
 * Angle brackets mark what the code fills in. Everything between them must
 * appear, word for word, in the sources that emit it (lib/, hooks/, cmd/, the
 * chart's templates), so the guide cannot drift from the code: change a
 * message and this test names the line of the guide to change with it.
 */

const root = new URL('../../', import.meta.url).pathname;
const GUIDE = join(root, 'docs/troubleshooting.md');

const QUOTED = /^> (`+)(.+?)\1\s*$/;
const PLACEHOLDER = /<[^<>\n]+>/g;

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, ext));
    else if (ext.test(name)) out.push(p);
  }
  return out;
}

/**
 * The sources as one text in which a message reads as it is emitted: string
 * literals split over lines and joined with `+` (TypeScript, and the CEL of the
 * admission policies) are joined again, escaped quotes unescaped, and every run
 * of white space is one space (YAML folds the policies' lines into spaces).
 */
export function normalisedSources(paths: string[]): string {
  return paths
    .map((p) => readFileSync(p, 'utf8'))
    .join('\n')
    .replace(/(['"`])[ \t]*\+[ \t]*\r?\n?[ \t]*['"`]/g, '')
    .replace(/\\(["'`])/g, '$1')
    .replace(/\s+/g, ' ');
}

/** The literal parts of a quoted message: the text between its placeholders, white space collapsed. */
export function literalParts(message: string): string[] {
  return message
    .split(PLACEHOLDER)
    .map((p) => p.replace(/\s+/g, ' '))
    .filter((p) => p.trim() !== '');
}

function quotedMessages(markdown: string): { line: number; message: string }[] {
  const out: { line: number; message: string }[] = [];
  markdown.split('\n').forEach((text, i) => {
    const m = QUOTED.exec(text);
    if (m) out.push({ line: i + 1, message: m[2] as string });
  });
  return out;
}

describe('docs/troubleshooting.md: every quoted message is one the code emits', () => {
  const guide = readFileSync(GUIDE, 'utf8');
  const messages = quotedMessages(guide);
  const sourcePaths = [
    ...files(join(root, 'lib'), /\.ts$/),
    ...files(join(root, 'hooks'), /\.ts$/),
    ...files(join(root, 'cmd'), /\.ts$/),
    ...files(join(root, 'charts/sts-pilot/templates'), /\.(yaml|tpl)$/),
  ];
  const sources = normalisedSources(sourcePaths);

  it('quotes the messages in the agreed form (a blockquote of one code span), and many of them', () => {
    expect(messages.length, 'no quoted message found: has the form changed?').to.be.at.least(60);
  });

  it('finds the literal text of each quoted message in lib/, hooks/, cmd/ or the chart', () => {
    const missing: string[] = [];
    for (const { line, message } of messages) {
      for (const part of literalParts(message)) {
        if (!sources.includes(part)) missing.push(`docs/troubleshooting.md:${line}: ${JSON.stringify(part)} (in: ${message.slice(0, 120)})`);
      }
    }
    expect(missing, `text not found in ${sourcePaths.length} source files:\n${missing.join('\n')}`).to.deep.equal([]);
  });

  it('quotes each message with enough literal text to mean something', () => {
    const vague = messages.filter(({ message }) => literalParts(message).join('').replace(/\s+/g, '').length < 6);
    expect(vague.map((v) => `docs/troubleshooting.md:${v.line}: ${v.message}`)).to.deep.equal([]);
  });

  it('the check itself: a changed word fails, split literals and placeholders do not', () => {
    const cel = normalisedSources([join(root, 'charts/sts-pilot/templates/admission-gate.yaml')]);
    // Written over two CEL string literals joined by `+` on the next line.
    expect(cel).to.include('would move without the approval of their sts-pilot hook, and the MutatingAdmissionPolicy sts-pilot-hold-partition');
    expect(literalParts('waiting for pod <pod> to be Ready')).to.deep.equal(['waiting for pod ', ' to be Ready']);
    expect(sources.includes(' to be Readyy')).to.equal(false);
  });
});
