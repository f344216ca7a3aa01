import type { Peer } from '../authz/peer.js';
import type { WorkloadIdentity } from '../identity/source.js';
import { withoutSessionPeer } from '../tls/session-der.js';
import type { Target } from './target.js';

/** A TLS session a client may offer again, with the server identity verified when it was made. */
export interface CachedSession {
  /** As Node gave it, without the server's certificate (tls/session-der.ts). */
  readonly session: Buffer;
  /** The server, as verified by the full handshake that made the session. */
  readonly peer: Peer;
  /** The identity snapshot (our SVID and bundles) the session was made under. */
  readonly identity: WorkloadIdentity;
  readonly expires: number;
}

/** Longest a session is offered again, whatever the server's ticket lifetime. */
const MAX_AGE = 10 * 60_000;
const LIMIT = 1024;

/**
 * The opt-in TLS session cache of a client (`resumption: true`). A resumed client session
 * exposes no certificate in Node (docs/node-tls.md §2), so the verified server Peer is stored with the
 * session and checked again on resumption. Sessions are keyed by destination key, address and
 * SNI, belong to one identity snapshot (a new SVID or new bundles make them unusable), are dropped
 * on every bundle change, and replaced by newer ones. A session is offered more than once:
 * measured (Node 20, 24), a Node server sends no new ticket on a resumed connection, and without
 * early data (never sent here) reuse replays nothing. Sessions are kept without the server's
 * certificate, which each offer would otherwise decode again and nothing reads.
 */
export class SessionCache {
  readonly #entries = new Map<string, CachedSession>();

  /** The session to offer for `target` under `identity`, or undefined (a stale one is dropped). */
  take(target: Target, identity: WorkloadIdentity, now = Date.now()): CachedSession | undefined {
    const key = keyOf(target);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const notAfter = entry.peer.notAfter?.getTime() ?? 0;
    if (entry.identity === identity && now < entry.expires && now < notAfter) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  store(target: Target, identity: WorkloadIdentity, peer: Peer, session: Buffer, now = Date.now()): void {
    const key = keyOf(target);
    this.#entries.delete(key);
    this.#entries.set(
      key,
      Object.freeze({ session: withoutSessionPeer(session), peer, identity, expires: now + MAX_AGE }),
    );
    if (this.#entries.size > LIMIT) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  clear(): void {
    this.#entries.clear();
  }
}

// Targets are kept per origin (core.ts), so the key is built once per origin, not per connection.
const keys = new WeakMap<Target, string>();

function keyOf(target: Target): string {
  let key = keys.get(target);
  if (key === undefined) {
    key = `${target.destination.keys.join('\0')}\0\0${target.address}\0${target.servername ?? ''}`;
    keys.set(target, key);
  }
  return key;
}
