// Turning untrusted input into text for messages. Anything that could be key material is
// replaced before it reaches a message, a detail field, an event or a log line.

const PEM_MARKER = /-----BEGIN|-----END|PRIVATE KEY/i;
// PEM bodies are 64-character base64 lines; raw base64 or base64url keys are long runs too.
// SPIFFE IDs and paths rarely hold such a run: dots, dashes and slashes break them up.
const LONG_BASE64_RUN = /[A-Za-z0-9+/=_-]{48,}/g;
const MAX_SHOWN = 120;

function isSuspiciousRun(run: string): boolean {
  return /[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run);
}

/** Removes anything that looks like key material from a string meant for a message. */
export function redact(text: string): string {
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
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) n++;
  }
  return n;
}

/**
 * Quotes an input string for a message: escaped, truncated, redacted. Binary data (a DER key read
 * as text, say) is never echoed.
 */
export function quote(text: string, max = MAX_SHOWN): string {
  if (countUnprintable(text) > 8) return `<binary data of ${text.length} characters, not shown>`;
  if (PEM_MARKER.test(text)) return '<PEM text, not shown>';
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  const escaped = JSON.stringify(redact(cut));
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
