// docs/observability.md lists every channel of the `channels` export with its payload type, and no
// channel the export lacks; each payload type it names is exported by the package.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { channels } from '../../src/index.js';

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
