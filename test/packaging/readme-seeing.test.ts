// README's "Seeing mTLS" section: present, with the status page screenshot it links (a real PNG,
// small enough for a README), and with `check` and `describe` output whose table headers are the
// ones the CLI prints today (its own constants, so a renamed column fails here).
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CHECK_LISTENER_HEADERS } from '../../src/cli/check.js';
import { DESCRIBE_HEADERS } from '../../src/cli/describe.js';

const ROOT = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
const MAX_IMAGE_BYTES = 60_000;

/** The text of `## heading` up to the next `## ` heading; undefined when there is none. */
function section(text: string, heading: string): string | undefined {
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) return undefined;
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The fenced block that starts with the shell line `$ <command>…`. */
function output(text: string, command: string): string | undefined {
  return [...text.matchAll(/```\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .find((block) => block.startsWith(`$ ${command}`));
}

/** A header row as `table()` lays it out: the cells in order, separated by spaces. */
function headerLine(cells: readonly string[]): RegExp {
  const escaped = cells.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^ *${escaped.join(' {2,}')}$`, 'm');
}

const seeing = section(readme, 'Seeing mTLS');

describe('README: Seeing mTLS', () => {
  it('has the section, linking docs/observability.md and examples/status-page.mjs', () => {
    expect(seeing, 'README has no "## Seeing mTLS" section').toBeDefined();
    expect(seeing).toContain('(docs/observability.md)');
    expect(seeing).toContain('(examples/status-page.mjs)');
    statSync(new URL('docs/observability.md', ROOT));
    statSync(new URL('examples/status-page.mjs', ROOT));
  });

  it('links a screenshot that exists, is a PNG and weighs at most 60 kB', () => {
    const images = [...(seeing ?? '').matchAll(/!\[[^\]]+\]\(([^)]+)\)/g)].map((m) => m[1] as string);
    expect(images).toHaveLength(1);
    const [image] = images as [string];
    expect(image).toMatch(/^docs\/[\w-]+\.png$/);
    const bytes = readFileSync(fileURLToPath(new URL(image, ROOT)));
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(bytes.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
    // The IHDR chunk: a small screenshot, not a full-page capture.
    expect(bytes.readUInt32BE(16)).toBeLessThanOrEqual(1200);
    expect(bytes.readUInt32BE(20)).toBeLessThanOrEqual(900);
  });

  it("shows `sidecarless check` output with check's listener header", () => {
    const check = output(seeing ?? '', 'sidecarless check ');
    expect(check, 'no ```$ sidecarless check …``` block in the section').toBeDefined();
    expect(check).toMatch(headerLine(CHECK_LISTENER_HEADERS));
    expect(check).toMatch(/^mode: (STRICT|PERMISSIVE|DISABLE): /m);
  });

  it("shows `sidecarless describe` output with each of describe's table headers", () => {
    const text = output(seeing ?? '', 'sidecarless describe ');
    expect(text, 'no ```$ sidecarless describe …``` block in the section').toBeDefined();
    for (const [table, cells] of Object.entries(DESCRIBE_HEADERS)) {
      expect(text, `the ${table} table`).toMatch(headerLine(cells));
    }
  });
});
