import { hash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { BundleSet } from '../x509/bundle-set.js';
import { type VerifiedPeerChain, verifyPeerChain } from '../x509/verify.js';
import { PEER_CHAIN_IS_DEAR, peerChainOf, peerLeafOf } from './peer-chain.js';

interface Verdict {
  readonly result: VerifiedPeerChain;
  readonly notBefore: number;
  readonly notAfter: number;
}

const LIMIT = 1024;

/** The keys of frozen chains: a resumed connection offers the same frozen chain every time. */
const frozenKeys = new WeakMap<readonly Buffer[], string>();

function chainKey(chain: readonly Buffer[]): string {
  const frozen = Object.isFrozen(chain);
  const known = frozen ? frozenKeys.get(chain) : undefined;
  if (known !== undefined) return known;
  // One-shot hashes, no Hash object per certificate: a full handshake's chain is keyed anew
  // (about a fifth of createHash's cost, bench/README.md, pair).
  // The hash of the certificates' hashes, whatever the length, so no chain's key is another's.
  const key = hash('sha256', Buffer.concat(chain.map((der) => hash('sha256', der, 'buffer'))), 'base64');
  if (frozen) frozenKeys.set(chain, key);
  return key;
}

/** What {@link PeerVerifier.verifyPresented} found: the chain it read, and a result or an error. */
export interface PresentedVerdict {
  readonly chain: readonly Buffer[];
  readonly result?: VerifiedPeerChain;
  readonly error?: unknown;
}

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
    const key = chainKey(chain);
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

  /**
   * Verifies the chain a TLS socket's peer presented: `chain` is empty when it presented none,
   * `error` says why it was refused. Where reading the whole chain is dear (Node 20 and 22), the
   * leaf is tried alone first: path building ends at the first bundle authority, so a leaf issued
   * by one needs nothing else, with the same verdict; any other outcome reads the whole chain
   * and decides on it alone.
   */
  verifyPresented(socket: TLSSocket, bundles: BundleSet, now = Date.now()): PresentedVerdict {
    if (PEER_CHAIN_IS_DEAR) {
      const leaf = peerLeafOf(socket);
      if (leaf.length === 0) return { chain: leaf };
      try {
        return { chain: leaf, result: this.verify(leaf, bundles, now) };
      } catch {
        // Not issued by an authority directly, or refused: the whole chain decides.
      }
    }
    const chain = peerChainOf(socket);
    if (chain.length === 0) return { chain };
    try {
      return { chain, result: this.verify(chain, bundles, now) };
    } catch (error) {
      return { chain, error };
    }
  }

  /** Forgets every verdict (a trust change the BundleSet identity does not show). */
  clear(): void {
    this.#verdicts = new Map();
  }
}
