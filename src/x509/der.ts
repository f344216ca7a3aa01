// A small DER reader and writer: what the server path needs of X.509 (reading certificates,
// writing one empty CRL) without loading an ASN.1 library at import (bench/README.md, "Import
// cost"). Strict DER: one-byte tags, definite lengths in their shortest form, minimal INTEGER and
// OID encodings; anything else is refused, never guessed at.

/** A DER element: its tag, its whole encoding and its contents. */
export interface DerElement {
  readonly tag: number;
  /** Tag, length and contents. */
  readonly bytes: Buffer;
  /** The contents only. */
  readonly value: Buffer;
}

/** Why bytes are not the DER expected; caught by the certificate parser and reported there. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

/** Universal and context tags X.509 uses. */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  teletexString: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const;

/** The tag of `[n]` in context-specific class: constructed (EXPLICIT, or IMPLICIT of a constructed type) or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/** The element that starts at `offset` of `input`. */
export function readElement(input: Buffer, offset: number): DerElement {
  if (offset + 2 > input.length) throw new DerError(`truncated element at offset ${offset}`);
  const tag = input[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset}`);
  // Universal 0 is BER's end-of-contents marker, never an element.
  if ((tag & 0xdf) === 0x00) throw new DerError(`tag 0 at offset ${offset}`);
  let length = input[offset + 1] as number;
  let header = 2;
  if (length === 0x80) throw new DerError(`indefinite length at offset ${offset}`);
  if (length > 0x80) {
    const count = length & 0x7f;
    if (count > 4) throw new DerError(`length of ${count} octets at offset ${offset}`);
    if (offset + 2 + count > input.length) throw new DerError(`truncated length at offset ${offset}`);
    if (input[offset + 2] === 0) throw new DerError(`length with a leading zero at offset ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (input[offset + 2 + i] as number);
    if (length < 0x80) throw new DerError(`long-form length under 128 at offset ${offset}`);
    header += count;
  }
  const end = offset + header + length;
  if (end > input.length) throw new DerError(`element at offset ${offset} runs past its container`);
  return {
    tag,
    bytes: input.subarray(offset, end),
    value: input.subarray(offset + header, end),
  };
}

/** The one element `input` holds, with nothing after it; `tag` when given must match. */
export function readOnly(input: Buffer, tag?: number): DerElement {
  const element = readElement(input, 0);
  if (element.bytes.length !== input.length) throw new DerError('trailing bytes after the element');
  if (tag !== undefined) expectTag(element, tag);
  return element;
}

/** Throws unless `element` has `tag`. */
export function expectTag(element: DerElement, tag: number): void {
  if (element.tag !== tag) {
    throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${element.tag.toString(16)}`);
  }
}

/** The elements a constructed element holds, which must fill it exactly. */
export function childrenOf(element: DerElement, tag?: number): DerElement[] {
  if (tag !== undefined) expectTag(element, tag);
  if ((element.tag & 0x20) === 0) throw new DerError(`tag 0x${element.tag.toString(16)} is not constructed`);
  const out: DerElement[] = [];
  let offset = 0;
  while (offset < element.value.length) {
    const child = readElement(element.value, offset);
    out.push(child);
    offset += child.bytes.length;
  }
  return out;
}

/**
 * Checks an element of any type (ANY, or a CHOICE arm not otherwise read) is well formed all
 * the way down: constructed elements hold whole elements, and the universal types with fixed
 * rules (BOOLEAN, INTEGER, BIT STRING, NULL, OID) follow them.
 */
export function checkElement(element: DerElement): void {
  const universal = (element.tag & 0xc0) === 0;
  if (universal && !ANY_TYPES.has(element.tag & 0x1f)) {
    throw new DerError(`universal type ${element.tag & 0x1f} has no place in a certificate`);
  }
  if ((element.tag & 0x20) !== 0) {
    for (const child of childrenOf(element)) checkElement(child);
    return;
  }
  switch (element.tag) {
    case TAG.boolean:
      readBoolean(element);
      break;
    case TAG.integer:
      readIntegerBytes(element);
      break;
    case TAG.bitString:
      readBitString(element);
      break;
    case TAG.null:
      if (element.value.length !== 0) throw new DerError('NULL with contents');
      break;
    case TAG.oid:
      readOid(element);
      break;
    case TAG.utcTime:
    case TAG.generalizedTime:
      readTime(element);
      break;
  }
}

/**
 * Universal types a value of type ANY may have in a certificate: BOOLEAN, INTEGER, BIT STRING,
 * OCTET STRING, NULL, OID, ENUMERATED, UTF8String, SEQUENCE, SET, the character string types
 * and the two times. The rest (reserved numbers, REAL, EXTERNAL, relative OIDs, …) are refused.
 */
const ANY_TYPES = new Set([1, 2, 3, 4, 5, 6, 10, 12, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30]);

/** An OBJECT IDENTIFIER in dotted form. */
export function readOid(element: DerElement): string {
  expectTag(element, TAG.oid);
  const v = element.value;
  if (v.length === 0) throw new DerError('empty OID');
  const arcs: (number | bigint)[] = [];
  let i = 0;
  while (i < v.length) {
    if (v[i] === 0x80) throw new DerError('OID arc with a leading zero');
    let n = 0n;
    let octets = 0;
    for (;;) {
      if (i >= v.length) throw new DerError('truncated OID arc');
      const b = v[i++] as number;
      n = (n << 7n) | BigInt(b & 0x7f);
      octets++;
      if ((b & 0x80) === 0) break;
    }
    arcs.push(octets <= 7 ? Number(n) : n);
  }
  const first = arcs[0] as number | bigint;
  const head =
    typeof first === 'bigint' || first >= 80
      ? ['2', String(BigInt(first) - 80n)]
      : [String(Math.floor(first / 40)), String(first % 40)];
  return [...head, ...arcs.slice(1).map(String)].join('.');
}

/** An INTEGER's contents, minimal two's complement (what a serial number is shown from). */
export function readIntegerBytes(element: DerElement, tag: number = TAG.integer): Buffer {
  expectTag(element, tag);
  const v = element.value;
  if (v.length === 0) throw new DerError('empty INTEGER');
  if (v.length > 1) {
    const a = v[0] as number;
    const b = v[1] as number;
    if ((a === 0x00 && b < 0x80) || (a === 0xff && b >= 0x80)) throw new DerError('INTEGER not minimal');
  }
  return v;
}

/** A small INTEGER as a number (at most 6 octets). */
export function readSmallInteger(element: DerElement, tag: number = TAG.integer): number {
  const v = readIntegerBytes(element, tag);
  if (v.length > 6) throw new DerError('INTEGER too large');
  return v.readIntBE(0, v.length);
}

/** A BOOLEAN (any non-zero octet is true). */
export function readBoolean(element: DerElement): boolean {
  expectTag(element, TAG.boolean);
  if (element.value.length !== 1) throw new DerError('BOOLEAN of other than one octet');
  return element.value[0] !== 0;
}

/** A BIT STRING: its octets and how many bits of the last one are unused. */
export function readBitString(element: DerElement): { readonly bytes: Buffer; readonly unused: number } {
  expectTag(element, TAG.bitString);
  const v = element.value;
  if (v.length === 0) throw new DerError('empty BIT STRING');
  const unused = v[0] as number;
  if (unused > 7 || (v.length === 1 && unused !== 0)) throw new DerError('BIT STRING with bad unused bits');
  return { bytes: v.subarray(1), unused };
}

/**
 * A BIT STRING as a number, bit 0 (the first) as 1, bit 1 as 2, …: the form keyUsage flags take
 * (`KeyUsageFlags`). Unused trailing bits are ignored.
 */
export function readBitFlags(element: DerElement): number {
  const { bytes, unused } = readBitString(element);
  const bits = bytes.length * 8 - unused;
  if (bits > 32) throw new DerError('BIT STRING of flags over 32 bits');
  let flags = 0;
  for (let i = 0; i < bits; i++) {
    if (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1) flags += 2 ** i;
  }
  return flags;
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** A Time (UTCTime or GeneralizedTime, RFC 5280 §4.1.2.5 forms) as milliseconds since the epoch. */
export function readTime(element: DerElement): number {
  const text = element.value.toString('latin1');
  const utc = element.tag === TAG.utcTime ? UTC_TIME.exec(text) : null;
  const generalized = element.tag === TAG.generalizedTime ? GENERALIZED_TIME.exec(text) : null;
  const m = utc ?? generalized;
  if (m === null) throw new DerError(`not a UTCTime or GeneralizedTime of RFC 5280's form: "${text}"`);
  const first = Number(m[1]);
  // RFC 5280 §4.1.2.5.1: a UTCTime year of 50 or more is 19YY, under 50 is 20YY.
  const year = utc === null ? first : first >= 50 ? 1900 + first : 2000 + first;
  const [month, day, hour, minute, second] = m.slice(2).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  // Refuse what Date.UTC would silently roll over (month 13, February 30, hour 24, …).
  if (
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    throw new DerError(`time out of range: "${text}"`);
  }
  return ms;
}

/**
 * A directory string's text, by its tag: UTF8String as UTF-8, BMPString as UTF-16BE,
 * UniversalString as UTF-32BE, the 8-bit types (Printable, Teletex, IA5) byte for byte;
 * undefined for any other tag.
 */
export function readString(element: DerElement): string | undefined {
  const v = element.value;
  switch (element.tag) {
    case TAG.utf8String:
      return v.toString('utf8');
    case TAG.printableString:
    case TAG.teletexString:
    case TAG.ia5String:
      return v.toString('latin1');
    case TAG.bmpString: {
      if (v.length % 2 !== 0) throw new DerError('BMPString of an odd length');
      let s = '';
      for (let i = 0; i < v.length; i += 2) s += String.fromCharCode(v.readUInt16BE(i));
      return s;
    }
    case TAG.universalString: {
      if (v.length % 4 !== 0) throw new DerError('UniversalString of a length not a multiple of 4');
      let s = '';
      for (let i = 0; i < v.length; i += 4) {
        const cp = v.readUInt32BE(i);
        if (cp > 0x10ffff) throw new DerError('UniversalString character out of range');
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default:
      return undefined;
  }
}

// Writing: just what an empty CRL needs (src/tls/material.ts).

function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n & 0xff);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** A DER element of `tag` around `contents`. */
export function encodeElement(tag: number, ...contents: readonly Uint8Array[]): Buffer {
  const value = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), lengthOctets(value.length), value]);
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function encodeOid(oid: string): Buffer {
  const arcs = oid.split('.').map((a) => BigInt(a));
  const [a, b, ...rest] = arcs as [bigint, bigint, ...bigint[]];
  const octets: number[] = [];
  for (const arc of [a * 40n + b, ...rest]) {
    const group = [Number(arc & 0x7fn)];
    for (let n = arc >> 7n; n > 0n; n >>= 7n) group.unshift(Number(n & 0x7fn) | 0x80);
    octets.push(...group);
  }
  return encodeElement(TAG.oid, Buffer.from(octets));
}

/** A non-negative small INTEGER. */
export function encodeSmallInteger(n: number): Buffer {
  const octets: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) octets.unshift(v & 0xff);
  if (octets.length === 0 || (octets[0] as number) >= 0x80) octets.unshift(0);
  return encodeElement(TAG.integer, Buffer.from(octets));
}

/** A Time as RFC 5280 §4.1.2.5 wants it: UTCTime through 2049, GeneralizedTime from 2050. */
export function encodeTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, '0');
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return year >= 1950 && year < 2050
    ? encodeElement(TAG.utcTime, Buffer.from(`${two(year % 100)}${rest}`, 'latin1'))
    : encodeElement(TAG.generalizedTime, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'latin1'));
}
