// docs/observability.md lists every channel of the `channels` export with its payload type, and no
// channel the export lacks; each payload type it names is exported by the package.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  channels,
  createLocalCa,
  createMtlsDispatcher,
  createMtlsServer,
  STATUS_PAGE_CSP,
  statusHandler,
} from '../../src/index.js';
import { ISTIO_METRICS, REQUEST_LABELS, TCP_LABELS } from '../../src/metrics/index.js';

const page = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
const index = readFileSync(new URL('../../src/index.ts', import.meta.url), 'utf8');
const rows = [...page.matchAll(/^\| `(sidecarless:[a-z-]+:[a-z-]+)` \| `(\w+)` \| (.+) \|$/gm)].map((m) => ({
  name: m[1] as string,
  payload: m[2] as string,
  when: m[3] as string,
}));

describe('docs/observability.md', () => {
  it('lists every channel of the export, and nothing else', () => {
    expect(rows.map((r) => r.name).sort()).toEqual(Object.values(channels).sort());
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
  });

  it('names each channel by its key in the export', () => {
    for (const [key, name] of Object.entries(channels)) {
      const row = rows.find((r) => r.name === name);
      expect(row?.when, name).toContain(`(\`channels.${key}\`)`);
    }
  });

  it('names payload types the package exports', () => {
    for (const { name, payload } of rows) {
      expect(index, `${name}: ${payload}`).toMatch(new RegExp(`\\b(type )?${payload}\\b`));
    }
  });

  it('follows sidecarless:<side>:<event>', () => {
    for (const name of Object.values(channels))
      expect(name).toMatch(/^sidecarless:(server|authz|client|identity):[a-z-]+$/);
  });
});

/** The text of `## heading` up to the next `## ` heading. */
function section(heading: string): string {
  const start = page.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`docs/observability.md has no "## ${heading}" section`);
  const end = page.indexOf('\n## ', start + 1);
  return page.slice(start, end < 0 ? undefined : end);
}

/** The first cells of a section's table rows: `| \`field\` | … |`. */
function tableFields(text: string): string[] {
  return [...text.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1] as string);
}

describe('docs/observability.md: the status document', () => {
  it("documents every field of statusHandler's JSON, as a real handler serves it", async () => {
    const ca = createLocalCa({ trustDomain: 'cluster.local' });
    const identity = ca.identity('/ns/demo/sa/boards');
    const server = createMtlsServer(
      { identity, authorize: { 'GET /items': 'spiffe://cluster.local/ns/demo/sa/app-ui' } },
      (_req, res) => res.end('ok'),
    );
    const dispatcher = createMtlsDispatcher({ identity, destinations: { '*': { expect: '*' } } });
    const handler = statusHandler({
      servers: [server],
      clients: { ui: dispatcher },
      sources: { boards: identity },
    });
    try {
      await identity.ready();
      const json = JSON.parse(JSON.stringify(handler.report()));
      const text = section('The status document');
      const fields = tableFields(text);
      for (const key of Object.keys(json)) expect(fields, `top level: ${key}`).toContain(key);
      for (const key of Object.keys(json.servers[0])) expect(fields, `servers[]: ${key}`).toContain(key);
      for (const key of Object.keys(json.sources[0])) expect(fields, `sources[]: ${key}`).toContain(key);
      for (const key of Object.keys(json.clients[0]))
        expect(text, `clients[]: ${key}`).toContain(`\`${key}\``);
      for (const key of Object.keys(json.servers[0].rules))
        expect(text, `rules: ${key}`).toContain(`\`${key}\``);
    } finally {
      handler.close();
      await dispatcher.close();
      await identity.close();
      await ca.close();
    }
  });

  it('documents the edge fields, the CSP and who is answered', () => {
    const edges = section('Edges');
    for (const key of [
      'source',
      'destination',
      'peer',
      'requests',
      'mtlsRequests',
      'mtlsShare',
      'refusals',
      'lastRefusal',
      'lastSeen',
      'tlsVersion',
      'keyExchange',
    ])
      expect(edges, key).toContain(`\`${key}\``);
    const text = section('The status document');
    expect(text).toContain('`direction');
    for (const directive of STATUS_PAGE_CSP.split('; ').filter((d) => !d.startsWith('style-src')))
      expect(text, directive).toContain(directive);
    expect(text).toContain("style-src 'sha256-");
    expect(text).toContain('behindAuthorization: true');
    expect(text).toContain('`127.0.0.0/8`, `::1`');
  });
});

describe('docs/observability.md: sidecarless/metrics', () => {
  it('lists every counter and every label the subpath exports', () => {
    const text = section('Metrics');
    const counters = tableFields(text);
    for (const name of Object.values(ISTIO_METRICS)) expect(counters, name).toContain(name);
    for (const label of new Set([...REQUEST_LABELS, ...TCP_LABELS])) expect(counters, label).toContain(label);
    expect(text).toContain('**Not counted**');
  });
});
