// Turning untrusted input into text for messages. Anything that could be key material is
// replaced before it reaches a message, a detail field, an event or a log line.

const PEM_MARKER = /-----BEGIN|-----END|PRIVATE KEY/i;
// PEM bodies are 64-character base64 lines; raw base64 or base64url keys are long runs too.
// SPIFFE IDs and paths rarely hold such a run: dots, dashes and slashes break them up. A run may
// go on over line breaks: a PEM body without its armour is one run (its last line may be short).
const LONG_BASE64_RUN = /[A-Za-z0-9+/=_-](?:[A-Za-z0-9+/=_-]|\r?\n(?=[A-Za-z0-9+/=_-])){47,}/g;
// Hex keys (a DER dump, an EC scalar, an Ed25519 seed) are long hex runs; certificate serial
// numbers, which messages do show, have at most 40 hex digits (RFC 5280: 20 octets).
const LONG_HEX_RUN = /[0-9a-fA-F]{48,}/g;
const MAX_SHOWN = 120;

function isSuspiciousRun(run: string): boolean {
  if (/[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run)) return true;
  return (run.match(LONG_HEX_RUN) ?? []).some((hex) => /[0-9]/.test(hex) && /[a-fA-F]/.test(hex));
}

/** Control characters but tab, LF and CR, and U+FFFD: bytes that were not text to begin with. */
function isBinaryChar(c: number): boolean {
  return (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0x7f && c < 0xa0) || c === 0xfffd;
}

/**
 * Bytes read as text (a DER key given where a string was expected) have no reliable end, and most
 * of their bytes are printable: everything from the word holding the first binary character on
 * is dropped.
 */
function redactBinary(text: string): string {
  let first = -1;
  for (let i = 0; i < text.length; i++) {
    if (isBinaryChar(text.charCodeAt(i))) {
      first = i;
      break;
    }
  }
  if (first === -1) return text;
  let start = first;
  while (start > 0 && !/[\s"'`(]/.test(text.charAt(start - 1))) start--;
  return `${text.slice(0, start)}[binary data of ${text.length - start} characters redacted]`;
}

/** Removes anything that looks like key material from a string meant for a message. */
export function redact(text: string): string {
  return redactText(redactBinary(text));
}

/** Drops PEM blocks and long base64 or hex runs. */
function redactText(text: string): string {
  if (PEM_MARKER.test(text)) {
    // Keep the words around a PEM block, drop every line of base64 and the block itself.
    return text
      .replace(/-----BEGIN[^-]*-----[\s\S]*?(-----END[^-]*-----|$)/g, '[PEM redacted]')
      .replace(LONG_BASE64_RUN, (run) =>
        isSuspiciousRun(run) ? `[${run.length} characters redacted]` : run,
      );
  }
  return text.replace(LONG_BASE64_RUN, (run) =>
    isSuspiciousRun(run) ? `[${run.length} characters redacted]` : run,
  );
}

function countUnprintable(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0) || c === 0xfffd) n++;
  }
  return n;
}

/**
 * Characters JSON.stringify leaves as they are but a log viewer must not get raw: DEL and the C1
 * controls (U+009B is a terminal's CSI), line and paragraph separators, and the bidirectional
 * controls that make text read differently from what it is (CVE-2021-42574).
 */
function mustEscape(c: number): boolean {
  return (
    (c >= 0x7f && c < 0xa0) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x200e ||
    c === 0x200f ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  );
}

/** JSON.stringify, also escaping the characters of {@link mustEscape}. */
function escapeString(text: string): string {
  let out = '';
  for (const ch of JSON.stringify(text)) {
    const c = ch.charCodeAt(0);
    out += mustEscape(c) ? `\\u${c.toString(16).padStart(4, '0')}` : ch;
  }
  return out;
}

/**
 * Quotes an input string for a message: escaped, truncated, redacted. Binary data (a DER key read
 * as text, say) is never echoed.
 */
export function quote(text: string, max = MAX_SHOWN): string {
  if (countUnprintable(text) > 8) return `<binary data of ${text.length} characters, not shown>`;
  if (PEM_MARKER.test(text)) return '<PEM text, not shown>';
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  // Redacted before escaping (an escaped line break would split a base64 run in two), and the few
  // control characters left (at most 8) are shown escaped, not redacted as binary data.
  const escaped = escapeString(redactText(cut));
  return text.length > max ? `${escaped} (${text.length} characters)` : escaped;
}

/** Describes any value for an option error: its type and a short, redacted excerpt. */
export function show(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `string ${quote(value, 60)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.length} bytes`;
  if (value instanceof ArrayBuffer) return `an ArrayBuffer of ${value.byteLength} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `an instance of ${name}` : 'an object';
}
