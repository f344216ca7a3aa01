import { X509Certificate } from 'node:crypto';
import { SidecarlessError } from '../errors.js';

/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`…), its headers, and its decoded body. */
export interface PemBlock {
  readonly label: string;
  readonly headers: string;
  readonly der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Whether text or bytes hold PEM: an armour line anywhere (explanatory text may come first, as in
 * curl's cacert.pem or OpenSSL's `subject=` lines). Bytes that start with a DER SEQUENCE are DER.
 */
export function looksLikePem(input: string | Uint8Array): boolean {
  if (typeof input === 'string') return input.includes('-----BEGIN ');
  if (input[0] === 0x30) return false;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).includes('-----BEGIN ');
}

/**
 * A hint for a string given where PEM text was expected that looks like a file path: the commonest
 * mistake with certificate options. Never echoes the string.
 */
export function pathHint(text: string): string {
  const looksLikePath =
    text.length < 4096 &&
    !text.includes('\n') &&
    (/^(\.{0,2}\/|~\/|[A-Za-z]:[\\/])/.test(text) || /\.(pem|crt|cer|key|der|p8|jwks?|json)$/i.test(text));
  return looksLikePath
    ? '; this looks like a file path: read the file (fs.readFileSync) or use fileIdentity()'
    : '';
}

/**
 * Splits PEM text into blocks. Text around blocks is allowed (OpenSSL writes `subject=` lines);
 * a block with a mismatched END line or bad base64 is an error, and so is text with no block.
 * Messages never show a block's body.
 */
export function decodePem(text: string, what: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const [, label = '', body = '', endLabel] = match;
    if (label !== endLabel) {
      throw new SidecarlessError('ERR_PEM_INVALID', `${what}: PEM block "${label}" ends with "${endLabel}"`, {
        index: blocks.length,
      });
    }
    // RFC 1421 headers (Proc-Type, DEK-Info) come before a blank line; they mark encrypted keys.
    let headers = '';
    let base64 = body;
    const blank = body.search(/\r?\n\r?\n/);
    if (body.slice(0, blank === -1 ? 0 : blank).includes(':')) {
      headers = body.slice(0, blank);
      base64 = body.slice(blank);
    }
    const compact = base64.replace(/\s+/g, '');
    if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) {
      throw new SidecarlessError('ERR_PEM_INVALID', `${what}: PEM block "${label}" is not valid base64`, {
        index: blocks.length,
      });
    }
    blocks.push({ label, headers, der: Buffer.from(compact, 'base64') });
  }
  if (blocks.length === 0) {
    throw new SidecarlessError('ERR_PEM_INVALID', `${what}: no PEM block found`, {});
  }
  return blocks;
}

/** Encodes DER as one PEM block. */
export function encodePem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Splits concatenated DER certificates (the Workload API's encoding) using OpenSSL's own parser:
 * it reads the first certificate and reports its length, so no ASN.1 is parsed by hand here.
 */
export function splitConcatenatedDer(input: Uint8Array, what: string, limit: number): Buffer[] {
  const all = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < all.length) {
    if (out.length >= limit) {
      throw new SidecarlessError(
        'ERR_CERTIFICATE_INVALID',
        `${what}: more than ${limit} certificates in one input`,
        { index: out.length },
      );
    }
    const rest = all.subarray(offset);
    let raw: Buffer;
    try {
      raw = new X509Certificate(rest).raw;
    } catch {
      throw new SidecarlessError(
        'ERR_CERTIFICATE_INVALID',
        `${what}: certificate ${out.length} is not a valid DER certificate (at byte ${offset})`,
        { index: out.length },
      );
    }
    if (raw.length === 0 || !rest.subarray(0, raw.length).equals(raw)) {
      throw new SidecarlessError(
        'ERR_CERTIFICATE_INVALID',
        `${what}: certificate ${out.length} is not in canonical DER (at byte ${offset})`,
        { index: out.length },
      );
    }
    out.push(Buffer.from(raw));
    offset += raw.length;
  }
  return out;
}
