// X.509 names read with the DER reader of ./der.ts: distinguished names (RFC 5280 §4.1.2.4) and
// GeneralName (§4.2.1.6), in the forms the checks of ./certificate.ts and ./name-constraints.ts use.
import {
  checkElement,
  childrenOf,
  contextTag,
  type DerElement,
  DerError,
  expectTag,
  readOid,
  readString,
  TAG,
} from './der.js';

/** One attribute of a relative distinguished name: its type OID and its value as text. */
export interface NameAttribute {
  readonly type: string;
  /**
   * The value's text for the directory string types (UTF8, Printable, Teletex, IA5, BMP,
   * Universal); for any other type, the hex of the value's whole encoding.
   */
  readonly value: string;
}

/** A distinguished name: its RDNs in order, each a set of attributes. */
export type DistinguishedName = readonly (readonly NameAttribute[])[];

/** A Name (an RDNSequence). */
export function readName(element: DerElement): DistinguishedName {
  return childrenOf(element, TAG.sequence).map((rdn) =>
    childrenOf(rdn, TAG.set).map((atv) => {
      const parts = childrenOf(atv, TAG.sequence);
      if (parts.length !== 2) throw new DerError('AttributeTypeAndValue of other than two elements');
      const [type, value] = parts as [DerElement, DerElement];
      const text = readString(value);
      if (text !== undefined) return { type: readOid(type), value: text };
      checkElement(value);
      return { type: readOid(type), value: value.bytes.toString('hex') };
    }),
  );
}

/** A GeneralName, by form; `other` for otherName, x400Address, ediPartyName and registeredID. */
export type GeneralNameInfo =
  | { readonly form: 'email' | 'dns' | 'uri' | 'ip'; readonly value: string }
  | { readonly form: 'dir'; readonly name: DistinguishedName }
  | { readonly form: 'other' };

const FORMS: Record<number, 'email' | 'dns' | 'uri'> = {
  [contextTag(1, false)]: 'email',
  [contextTag(2, false)]: 'dns',
  [contextTag(6, false)]: 'uri',
};

/** A GeneralName (RFC 5280 §4.2.1.6); a tag outside its CHOICE is refused. */
export function readGeneralName(element: DerElement): GeneralNameInfo {
  const form = FORMS[element.tag];
  if (form !== undefined) return { form, value: element.value.toString('latin1') };
  switch (element.tag) {
    case contextTag(7, false):
      return { form: 'ip', value: ipToString(element.value) };
    case contextTag(4, true): {
      const inner = childrenOf(element);
      if (inner.length !== 1) throw new DerError('directoryName of other than one Name');
      return { form: 'dir', name: readName(inner[0] as DerElement) };
    }
    case contextTag(0, true): {
      // otherName: type-id OID, [0] EXPLICIT value.
      const parts = childrenOf(element);
      if (parts.length !== 2) throw new DerError('otherName of other than two elements');
      readOid(parts[0] as DerElement);
      expectTag(parts[1] as DerElement, contextTag(0, true));
      checkElement(parts[1] as DerElement);
      return { form: 'other' };
    }
    case contextTag(3, true):
    case contextTag(5, true):
      checkElement(element);
      return { form: 'other' };
    case contextTag(8, false):
      readOid({ ...element, tag: TAG.oid });
      return { form: 'other' };
    default:
      throw new DerError(`tag 0x${element.tag.toString(16)} is not a GeneralName`);
  }
}

/**
 * An iPAddress as text: 4 octets as dotted IPv4, 16 as IPv6 (zeros compressed), 8 or 32 (an
 * address and a mask, in name constraints) as `address/prefix`; any other length as hex.
 */
export function ipToString(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) return formatIpv6(bytes);
  if (bytes.length === 8 || bytes.length === 32) {
    if (bytes.every((b) => b === 0)) return bytes.length === 8 ? '0.0.0.0/0' : '::/0';
    const half = bytes.length / 2;
    const address = bytes.subarray(0, half);
    let prefix = 0;
    for (const b of bytes.subarray(half)) for (let m = b; m > 0; m >>= 1) prefix += m & 1;
    return `${half === 4 ? [...address].join('.') : formatIpv6(address)}/${prefix}`;
  }
  return bytes.toString('hex');
}

function formatIpv6(bytes: Buffer): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(bytes.readUInt16BE(i).toString(16));
  // The longest run of two or more zero groups (the first of equals) becomes "::".
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < parts.length; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < parts.length && parts[j] === '0') j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestLength < 2) return parts.join(':');
  return `${parts.slice(0, bestStart).join(':')}::${parts.slice(bestStart + bestLength).join(':')}`;
}
