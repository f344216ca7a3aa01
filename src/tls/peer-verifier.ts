import { createHash } from 'node:crypto';
import type { BundleSet } from '../x509/bundle-set.js';
import { type VerifiedPeerChain, verifyPeerChain } from '../x509/verify.js';

interface Verdict {
  readonly result: VerifiedPeerChain;
  readonly notBefore: number;
  readonly notAfter: number;
}

const LIMIT = 1024;

/**
 * verifyPeerChain with a verdict cache, for handshakes. A verdict is keyed by the whole presented
 * chain and belongs to one BundleSet object: every trust change brings a new BundleSet, so the
 * cache is dropped with it. Validity is re-checked on every hit; only successes are cached.
 */
export class PeerVerifier {
  readonly #usage: 'client' | 'server';
  #bundles: BundleSet | undefined;
  #verdicts = new Map<string, Verdict>();

  constructor(usage: 'client' | 'server') {
    this.#usage = usage;
  }

  verify(chain: readonly Buffer[], bundles: BundleSet, now = Date.now()): VerifiedPeerChain {
    if (bundles !== this.#bundles) {
      this.#bundles = bundles;
      this.#verdicts = new Map();
    }
    const hash = createHash('sha256');
    for (const der of chain) hash.update(createHash('sha256').update(der).digest());
    const key = hash.digest('base64');
    const hit = this.#verdicts.get(key);
    if (hit !== undefined && now >= hit.notBefore && now <= hit.notAfter) return hit.result;
    if (hit !== undefined) this.#verdicts.delete(key);
    // A miss, or a verdict outside its window: verify in full (which names the expiry).
    const result = verifyPeerChain(chain, bundles, { now, usage: this.#usage });
    const notBefore = Math.max(...result.verifiedChain.map((c) => Date.parse(c.validFrom)));
    this.#verdicts.set(key, { result, notBefore, notAfter: result.notAfter.getTime() });
    if (this.#verdicts.size > LIMIT) this.#verdicts.delete(this.#verdicts.keys().next().value as string);
    return result;
  }

  /** Forgets every verdict (a trust change the BundleSet identity does not show). */
  clear(): void {
    this.#verdicts = new Map();
  }
}
