// Reading Istio YAML: multi-document text, kubectl List exports, files and folders (a ConfigMap
// mount's ..data copies skipped), and typed errors naming the file and line.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fromIstio, parseIstioYaml, readIstioFiles, resolveMode } from '../../src/istio/index.js';
import { expectCode } from '../helpers/expect-code.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sidecarless-istio-'));
  dirs.push(d);
  return d;
}

const STRICT =
  'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: demo }\nspec: { mtls: { mode: STRICT } }\n';
const DENY_ALL =
  'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: deny-all, namespace: demo }\nspec: { action: DENY, rules: [{}] }\n';
const context = { namespace: 'demo', labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' };

describe('parseIstioYaml', () => {
  it('reads every document of a multi-document file, skipping empty ones', () => {
    const docs = parseIstioYaml(`---\n${STRICT}---\n# only a comment\n---\n${DENY_ALL}`, { file: 'p.yaml' });
    expect(docs.documents.map((d) => (d.object as { kind: string }).kind)).toEqual([
      'PeerAuthentication',
      'AuthorizationPolicy',
    ]);
    expect(docs.documents.map((d) => d.source)).toEqual([
      { file: 'p.yaml', index: 0 },
      { file: 'p.yaml', index: 2 },
    ]);
    expect(Object.isFrozen(docs.documents)).toBe(true);
  });

  it('expands a kubectl List into its items', () => {
    const list = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [parseIstioYaml(STRICT).documents[0]?.object],
    });
    const docs = parseIstioYaml(list);
    expect(docs.documents).toHaveLength(1);
    expect(docs.documents[0]?.source).toEqual({ file: null, index: 0, item: 0 });
    expect(resolveMode(docs, context).mode).toBe('STRICT');
  });

  it('refuses a syntax error naming the file, document and line', () => {
    const err = expectCode(
      () => parseIstioYaml(`${STRICT}---\nkind: [unclosed\n`, { file: 'bad.yaml' }),
      'ERR_ISTIO_INVALID',
    );
    expect(err.message).toMatch(/^bad\.yaml: document 2: line \d+/);
    expect(err.detail.file).toBe('bad.yaml');
  });

  it('refuses duplicate keys, alias bombs and documents that are not mappings', () => {
    expectCode(() => parseIstioYaml('kind: A\nkind: B\n'), 'ERR_ISTIO_INVALID');
    // "Billion laughs": each level repeats the previous one nine times.
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, k] of [...'bcdefg'].entries())
      levels.push(`${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`);
    const bomb = expectCode(() => parseIstioYaml(levels.join('\n')), 'ERR_ISTIO_INVALID');
    expect(bomb.message).toMatch(/alias/i);
    expectCode(() => parseIstioYaml('- a\n- b\n'), 'ERR_ISTIO_INVALID');
    // Control: the same shape without the aliases parses.
    expect(parseIstioYaml('a: [x, x]\nb: [y]\n').documents).toHaveLength(1);
  });

  it('refuses text over the size limit', () => {
    expectCode(() => parseIstioYaml(`# ${'x'.repeat(8 * 1024 * 1024)}\n`), 'ERR_ISTIO_INVALID');
  });
});

describe('readIstioFiles', () => {
  it('reads a ConfigMap mount once: ..data and its timestamped folder are skipped', () => {
    const dir = tempDir();
    const stamp = join(dir, '..2026_12_06_10_00_00.000');
    mkdirSync(stamp);
    writeFileSync(join(stamp, 'policies.yaml'), `${STRICT}---\n${DENY_ALL}`);
    symlinkSync('..2026_12_06_10_00_00.000', join(dir, '..data'));
    symlinkSync('..data/policies.yaml', join(dir, 'policies.yaml'));
    writeFileSync(join(dir, 'README.txt'), 'not yaml');
    const docs = readIstioFiles(dir);
    expect(docs.documents).toHaveLength(2);
    expect(docs.documents[0]?.source.file).toBe(join(dir, 'policies.yaml'));
    const { mode } = fromIstio(docs, context);
    expect(mode).toBe('STRICT');
  });

  it('reads files and folders in order, .yaml, .yml and .json', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'b.yml'), DENY_ALL);
    writeFileSync(join(dir, 'a.json'), JSON.stringify(parseIstioYaml(STRICT).documents[0]?.object));
    const extra = join(tempDir(), 'extra.yaml');
    writeFileSync(extra, '');
    const docs = readIstioFiles([dir, extra]);
    expect(docs.documents.map((d) => d.source.file)).toEqual([join(dir, 'a.json'), join(dir, 'b.yml')]);
  });

  it('names the path it cannot read', () => {
    const missing = join(tempDir(), 'nope.yaml');
    const err = expectCode(() => readIstioFiles(missing), 'ERR_FILE_UNREADABLE');
    expect(err.detail.file).toBe(missing);
    expectCode(() => readIstioFiles([]), 'ERR_OPTION_INVALID');
  });

  it('refuses a policy in a file naming the file and the document', () => {
    const file = join(tempDir(), 'jwt.yaml');
    writeFileSync(
      file,
      `${STRICT}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: jwt, namespace: demo }\nspec: { rules: [{ from: [{ source: { requestPrincipals: ["*"] } }] }] }\n`,
    );
    const err = expectCode(() => fromIstio(readIstioFiles(file), context), 'ERR_ISTIO_UNSUPPORTED');
    expect(err.message).toContain(`(${file}, document 2)`);
    expect(err.detail).toMatchObject({
      file,
      index: 1,
      field: 'AuthorizationPolicy/demo/jwt:spec.rules[0].from[0].source.requestPrincipals',
    });
  });
});
