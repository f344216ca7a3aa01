import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { errorCodes, SidecarlessError } from '../src/errors.js';
import { isSidecarlessError } from '../src/index.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const rows = doc.split('\n').filter((line) => /^\|\s*`ERR_/.test(line));
const cellsOf = (row: string) =>
  row
    .replace(/^\|/, '')
    .replace(/\|\s*$/, '')
    .split(/\s\|\s/)
    .map((c) => c.trim());
const documented = rows.map((row) => /^`(ERR_[A-Z0-9_]+)`$/.exec(cellsOf(row)[0] ?? '')?.[1]);

describe('error codes', () => {
  it('docs/errors.md has exactly one row per code (the same set as ErrorCode)', () => {
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...errorCodes].sort());
  });

  it('every row says what the code means and how to fix it', () => {
    for (const row of rows) {
      const cells = cellsOf(row);
      expect(cells, row).toHaveLength(3);
      for (const cell of cells) expect(cell.length, row).toBeGreaterThan(0);
    }
  });

  it('codes are unique', () => {
    expect(new Set(errorCodes).size).toBe(errorCodes.length);
  });
});

describe('SidecarlessError', () => {
  it('carries code, detail and cause, and is frozen in its detail', () => {
    const cause = new Error('lower');
    const err = new SidecarlessError(
      'ERR_OPTION_INVALID',
      'option "mode" must be STRICT',
      { field: 'mode' },
      { cause },
    );
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('SidecarlessError');
    expect(err.code).toBe('ERR_OPTION_INVALID');
    expect(err.detail).toEqual({ field: 'mode' });
    expect(Object.isFrozen(err.detail)).toBe(true);
    expect(err.cause).toBe(cause);
    expect(isSidecarlessError(err, 'ERR_OPTION_INVALID')).toBe(true);
    expect(isSidecarlessError(err, 'ERR_TIMEOUT')).toBe(false);
    expect(isSidecarlessError(new Error('x'))).toBe(false);
  });

  it('instanceof works for an error built by another copy of the class (brand)', () => {
    const foreign = Object.create(Error.prototype) as Record<PropertyKey, unknown>;
    foreign[Symbol.for('sidecarless.error')] = true;
    expect(foreign instanceof SidecarlessError).toBe(true);
    expect(new TypeError('x') instanceof SidecarlessError).toBe(false);
    expect((null as unknown) instanceof SidecarlessError).toBe(false);
  });

  it('redacts PEM blocks and long base64 runs from messages and details', () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVGhpc0lzTm90QVJlYWxLZXlCdXRMb29rc0xpa2VPbmU\n-----END PRIVATE KEY-----\n';
    const err = new SidecarlessError('ERR_KEY_INVALID', `bad key ${pem}`, { value: pem, field: 'key' });
    const text = `${err.message} ${JSON.stringify(err.detail)} ${inspect(err)}`;
    expect(text).not.toContain('MIGHAgEAMBMGByqGSM49');
    expect(text).not.toContain('VGhpc0lzTm90QVJlYWxLZXlC');
    expect(err.message).toContain('[PEM redacted]');
  });
});
