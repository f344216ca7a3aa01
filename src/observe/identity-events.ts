// The payloads of identity sources' `expiring` event and of the sidecarless:identity:* channels.
import type { ErrorCode } from '../errors.js';

/**
 * An identity source accepted an update, as `sidecarless:identity:update` publishes it (every
 * source, built-in or the local CA's). IDs, serials and dates; never a key.
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type SourceUpdateEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.sourceUpdate, (message) => {
 *   const event = message as SourceUpdateEvent;
 *   console.log(`${event.source}: ${event.id} until ${event.notAfter?.toISOString()}`);
 * });
 * ```
 */
export interface SourceUpdateEvent {
  /** Which source: its kind and where it reads from (`fileIdentity /etc/certs/cert-chain.pem`). */
  readonly source: string;
  /** The default SVID's SPIFFE ID, or null for a bundle source. */
  readonly id: string | null;
  /** Its leaf certificate's serial number, or null. */
  readonly serial: string | null;
  /** When it expires (earliest notAfter of its chain), or null. */
  readonly notAfter: Date | null;
  /** The update's generation (1, 2, …). */
  readonly generation: number;
  /** The trust domains of the bundles. */
  readonly trustDomains: readonly string[];
}

/**
 * An identity source withdrew its identity (`current()` throws until the next update), as
 * `sidecarless:identity:withdrawn` publishes it.
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type SourceWithdrawnEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.sourceWithdrawn, (message) => console.error((message as SourceWithdrawnEvent).message));
 * ```
 */
export interface SourceWithdrawnEvent {
  /** Which source. */
  readonly source: string;
  /** The SPIFFE ID that was withdrawn, or null for a bundle source. */
  readonly id: string | null;
  /** Why (`identity withdrawn: the X509-SVID … expired at …`). */
  readonly message: string;
}

/**
 * Something an identity source survived (a discarded update, an unreadable file, a failed call),
 * as `sidecarless:identity:error` publishes it; the last good identity stays current.
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { channels, type SourceErrorEvent } from 'sidecarless';
 * diagnostics.subscribe(channels.sourceError, (message) => {
 *   const event = message as SourceErrorEvent;
 *   console.warn(event.source, event.code, event.message);
 * });
 * ```
 */
export interface SourceErrorEvent {
  /** Which source. */
  readonly source: string;
  /** The error's stable code. */
  readonly code: ErrorCode;
  /** The error's message (redacted; names files and addresses, never key material). */
  readonly message: string;
  /** The file at fault, when there is one. */
  readonly file: string | null;
}

/**
 * The SVID, or an authority of a trusted bundle, is close to its end: a source's `expiring`
 * event and the `sidecarless:identity:expiring` channel. Fires once when less than the source's
 * `expiryWarning` share of its lifetime is left (default 20 %, `lifetime`), and again when the
 * source then fails to get a newer one (`rotation-failed`: a discarded update, a failed read,
 * call or renewal).
 * @example
 * ```ts
 * import { fileIdentity, type ExpiringEvent } from 'sidecarless';
 * const source = fileIdentity({ preset: 'istio', dir: '/etc/certs' });
 * source.on('expiring', (event: ExpiringEvent) => {
 *   const left = Math.round(event.remaining * 100);
 *   console.warn(`${event.kind} ${event.id} (${event.subject}) expires ${event.notAfter.toISOString()}: ${left} % left`);
 * });
 * ```
 */
export interface ExpiringEvent {
  /** Which source. */
  readonly source: string;
  /** `svid` (the default SVID's chain) or `authority` (a root of a trusted bundle). */
  readonly kind: 'svid' | 'authority';
  /** The SVID's SPIFFE ID, or the authority's trust domain as `spiffe://<trust domain>`. */
  readonly id: string;
  /** The certificate's subject (the SVID's leaf, or the authority). */
  readonly subject: string;
  /** The certificate's serial number. */
  readonly serial: string;
  /** When it expires (for an SVID, the earliest notAfter of its chain). */
  readonly notAfter: Date;
  /** The share of its lifetime left, 0 to 1 (0 once expired). */
  readonly remaining: number;
  /** `lifetime`: it crossed the warning share; `rotation-failed`: the source then failed to renew it. */
  readonly reason: 'lifetime' | 'rotation-failed';
}
