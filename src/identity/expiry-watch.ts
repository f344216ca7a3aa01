import type { X509Certificate } from 'node:crypto';
import { invalidOption } from '../internal/options.js';
import { setLongTimeout, type Timer } from '../internal/timers.js';
import type { ExpiringEvent } from '../observe/identity-events.js';
import type { BundleSet } from '../x509/bundle-set.js';
import type { X509Svid } from '../x509/svid.js';

/** The default share of a certificate's lifetime left when `expiring` fires. */
export const DEFAULT_EXPIRY_WARNING = 0.2;

/** Checks a source's `expiryWarning` option: a share of the lifetime, above 0 and below 1. */
export function expiryWarningOption(value: unknown): number {
  if (value === undefined) return DEFAULT_EXPIRY_WARNING;
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw invalidOption('expiryWarning', 'a share of the lifetime between 0 and 1 (0.2: 20 % left)', value);
  }
  return value;
}

/** One certificate watched: the SVID's chain, or a bundle authority. */
interface Watched {
  readonly key: string;
  readonly kind: 'svid' | 'authority';
  readonly id: string;
  readonly subject: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

function certificateTimes(cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/**
 * Warns before the SVID or a bundle authority runs out: once when less than `share` of its
 * lifetime is left (`lifetime`), and once more if the source then fails to renew it
 * (`rotation-failed`). Re-armed with every published identity; a certificate kept across updates
 * is warned about once, not on every update.
 */
export class ExpiryWatch {
  readonly #share: number;
  readonly #emit: (event: Omit<ExpiringEvent, 'source'>) => void;
  #timers: Timer[] = [];
  #watched: Watched[] = [];
  /** Keys warned about (`lifetime`), and those also reported as failing to rotate. */
  #warned = new Set<string>();
  #failed = new Set<string>();

  constructor(share: number, emit: (event: Omit<ExpiringEvent, 'source'>) => void) {
    this.#share = share;
    this.#emit = emit;
  }

  /** Watches the certificates of a newly published identity (`svid` undefined: bundles only). */
  arm(svid: X509Svid | undefined, bundles: BundleSet): void {
    this.cancel();
    const watched: Watched[] = [];
    if (svid !== undefined) {
      watched.push({
        key: `svid:${svid.leaf.fingerprint256}`,
        kind: 'svid',
        id: svid.id.toString(),
        subject: svid.leaf.subject,
        serial: svid.leaf.serialNumber,
        notBefore: svid.notBefore.getTime(),
        notAfter: svid.notAfter.getTime(),
      });
    }
    for (const bundle of bundles.bundles()) {
      for (const authority of bundle.authorities) {
        watched.push({
          key: `authority:${authority.fingerprint256}`,
          kind: 'authority',
          id: bundle.trustDomain.idString(),
          subject: authority.subject,
          serial: authority.serialNumber,
          ...certificateTimes(authority),
        });
      }
    }
    const keys = new Set(watched.map((w) => w.key));
    this.#warned = new Set([...this.#warned].filter((k) => keys.has(k)));
    this.#failed = new Set([...this.#failed].filter((k) => keys.has(k)));
    this.#watched = watched;
    for (const item of watched) {
      if (this.#warned.has(item.key)) continue;
      const at = item.notAfter - this.#share * (item.notAfter - item.notBefore);
      // Never synchronously: listeners added right after the source was made still hear it.
      this.#timers.push(setLongTimeout(() => this.#warn(item, 'lifetime'), Math.max(at - Date.now(), 0)));
    }
  }

  /** The source failed to renew (a discarded update, a failed read, call or renewal). */
  rotationFailed(): void {
    for (const item of this.#watched) {
      if (this.#warned.has(item.key) && !this.#failed.has(item.key)) this.#warn(item, 'rotation-failed');
    }
  }

  #warn(item: Watched, reason: ExpiringEvent['reason']): void {
    (reason === 'lifetime' ? this.#warned : this.#failed).add(item.key);
    const lifetime = item.notAfter - item.notBefore;
    const remaining = lifetime <= 0 ? 0 : Math.min(1, Math.max(0, (item.notAfter - Date.now()) / lifetime));
    this.#emit(
      Object.freeze({
        kind: item.kind,
        id: item.id,
        subject: item.subject,
        serial: item.serial,
        notAfter: new Date(item.notAfter),
        remaining,
        reason,
      }),
    );
  }

  cancel(): void {
    for (const timer of this.#timers) timer.cancel();
    this.#timers = [];
  }
}
