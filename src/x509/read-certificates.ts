import { X509Certificate } from 'node:crypto';
import { SidecarlessError } from '../errors.js';
import { decodePem, looksLikePem, pathHint, splitConcatenatedDer } from './pem.js';

/**
 * Certificates as users hold them: PEM text, PEM or DER or concatenated-DER bytes,
 * `X509Certificate` objects, or a list of any of these.
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { X509Bundle, type CertificateInput } from 'sidecarless';
 * const input: CertificateInput = readFileSync('/etc/certs/root-cert.pem');
 * X509Bundle.fromCertificates('cluster.local', input);
 * ```
 */
export type CertificateInput =
  | string
  | Uint8Array
  | X509Certificate
  | readonly (string | Uint8Array | X509Certificate)[];

/** Reads certificates into DER buffers, in order, refusing anything that is not a certificate. */
export function readCertificates(input: CertificateInput, what: string, limit: number): Buffer[] {
  const out: Buffer[] = [];
  const items = Array.isArray(input) ? input : [input];
  for (const item of items as readonly unknown[]) {
    if (out.length > limit) break;
    if (item instanceof X509Certificate) {
      out.push(item.raw);
    } else if (typeof item === 'string' || (item instanceof Uint8Array && looksLikePem(item))) {
      const text = typeof item === 'string' ? item : Buffer.from(item).toString('latin1');
      if (typeof item === 'string' && !looksLikePem(text)) {
        throw new SidecarlessError(
          'ERR_PEM_INVALID',
          `${what}: a string must be PEM text with "CERTIFICATE" blocks${pathHint(text)}`,
          {
            index: out.length,
          },
        );
      }
      for (const block of decodePem(text, what)) {
        if (block.label !== 'CERTIFICATE') {
          // Say what was found, never what it holds: a private key in a certificate file is a
          // common mistake and its bytes must not reach a message.
          throw new SidecarlessError(
            'ERR_PEM_INVALID',
            `${what}: expected only "CERTIFICATE" PEM blocks, found "${block.label}"`,
            { index: out.length },
          );
        }
        out.push(block.der);
      }
    } else if (item instanceof Uint8Array) {
      out.push(...splitConcatenatedDer(item, what, limit + 1));
    } else {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `${what} must be PEM text, DER bytes or X509Certificate objects, got ${item === null ? 'null' : typeof item}`,
        {},
      );
    }
  }
  if (out.length === 0) {
    throw new SidecarlessError('ERR_CERTIFICATE_INVALID', `${what}: no certificate found`, {});
  }
  if (out.length > limit) {
    throw new SidecarlessError('ERR_CERTIFICATE_INVALID', `${what}: more than ${limit} certificates`, {
      index: limit,
    });
  }
  return out;
}
