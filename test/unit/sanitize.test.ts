import { expect } from 'chai';
import { secretAnswer } from '../../lib/controller/secrets.ts';
import { APP_TEXT_MAX, oneLine, shortLine } from '../../lib/sanitize.ts';

describe('sanitize: an application answer becomes one short, clean line', () => {
  for (const [what, input, expected] of [
    ['whitespace collapses to one line', 'shard\n\tfailed\r\n  again', 'shard failed again'],
    ['terminal escapes and other controls go', 'red\u001b[31m!\u0007\u0000 done\u0085', 'red [31m! done'],
    ['bidi overrides and zero-width marks go', 'ok\u202eevil\u2066x\u200b', 'ok evil x'],
    ['userinfo in a URL is hidden', 'see http://elastic:s3cret@es.example:9200/_cluster', 'see http://***@es.example:9200/_cluster'],
    ['a bare user@ in a URL is hidden too', 'redirect to https://admin@10.0.0.1/', 'redirect to https://***@10.0.0.1/'],
    ['Basic and Bearer tokens are hidden', 'got Authorization: Basic ZWxhc3RpYzpzM2NyZXQ= and Bearer abc.def.ghi', 'got Authorization: *** *** and Bearer ***'],
    ['password=, "token": and api_key= values are hidden', 'password=hunter2 {"token": "t0k3n"} api_key=abc', 'password=*** {"token": "***"} api_key=***'],
    ['ordinary words stay', 'index [logs] has 0 replicas; health yellow', 'index [logs] has 0 replicas; health yellow'],
    ['option names that contain a secret word stay', 'sasl-secret: must be set; credentials-secret: es', 'sasl-secret: must be set; credentials-secret: es'],
  ] as const) {
    it(what, () => expect(shortLine(input)).to.equal(expected));
  }

  it(`is at most ${APP_TEXT_MAX} characters, marked when cut, never cutting a surrogate pair`, () => {
    const long = shortLine('x'.repeat(1000));
    expect(long).to.have.length(APP_TEXT_MAX);
    expect(long.endsWith('…')).to.equal(true);
    const emoji = shortLine('😀'.repeat(300), 10);
    expect(Array.from(emoji)).to.have.length(10);
    expect(emoji).to.not.match(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(shortLine('abc', 3)).to.equal('abc');
  });
});

describe('sanitize: the last guard on a whole hold reason', () => {
  it('keeps the words, drops controls and userinfo, caps the length', () => {
    expect(oneLine('elasticsearch holds pod es-1:\n password=x at http://u:p@h/', 1000)).to.equal('elasticsearch holds pod es-1: password=x at http://***@h/');
    expect(oneLine('y'.repeat(2000), 1000)).to.have.length(1000);
  });
});

describe('secrets: a hook reads only Secrets labelled sts-pilot.io/credentials=true', () => {
  const secret = (labels: Record<string, string> | undefined) => ({
    metadata: { name: 'es-creds', namespace: 'search', ...(labels ? { labels } : {}) },
    data: { username: Buffer.from('elastic').toString('base64'), password: Buffer.from('pw\n').toString('base64') },
  });

  it('a labelled Secret: its values, decoded', () => {
    expect(secretAnswer(secret({ 'sts-pilot.io/credentials': 'true' }), 'search', 'es-creds')).to.deep.equal({ ok: true, values: { username: 'elastic', password: 'pw\n' } });
  });

  for (const [what, s] of [
    ['an unlabelled Secret', secret(undefined)],
    ['a Secret labelled with another value', secret({ 'sts-pilot.io/credentials': 'false' })],
    ['a Secret that does not exist', undefined],
  ] as const) {
    it(`${what}: refused with how to allow it, and the same words whether it exists or not`, () => {
      const r = secretAnswer(s, 'search', 'es-creds');
      expect(r.ok).to.equal(false);
      expect(r.ok ? '' : r.why).to.equal(
        'Secret search/es-creds is not one hooks may read: only Secrets labelled sts-pilot.io/credentials=true are (whoever may edit that Secret labels it: kubectl label secret -n search es-creds sts-pilot.io/credentials=true)',
      );
    });
  }
});
