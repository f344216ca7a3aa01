// docs/doors.md is the door table in prose: every row of src/server/doors.ts appears there with
// its protocols and handling, and the page lists no door the table lacks.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOORS } from '../../src/server/doors.js';

const page = readFileSync(new URL('../../docs/doors.md', import.meta.url), 'utf8');
const documented = [
  ...page.matchAll(/^\| (server|session|socket) \| `([^`]+)` \| ([^|]+) \| (\w+) \|/gm),
].map((m) => `${m[1]} ${m[2]} ${(m[3] as string).trim()} ${m[4]}`);

describe('docs/doors.md', () => {
  it('lists every door of the table, with its protocols and handling, and nothing else', () => {
    expect(documented.sort()).toEqual(
      DOORS.map((d) => `${d.emitter} ${d.event} ${d.protocols.join(', ')} ${d.handling}`).sort(),
    );
  });

  it('has one row per emitter and event', () => {
    const keys = DOORS.map((d) => `${d.emitter} ${d.event}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
