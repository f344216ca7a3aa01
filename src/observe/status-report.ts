// The status report statusHandler() serves: what servers, clients and identity sources describe,
// gathered into one JSON-ready document. Sources have no describe(): the report follows their
// updates and errors from the moment the handler is made.
import type { AddressInfo } from 'node:net';
import type { AuthorizationPolicy, AuthorizationPolicyDescription } from '../authz/policy.js';
import type { ClientReport } from '../client/core.js';
import type { SidecarlessError } from '../errors.js';
import type { BundleSource, IdentitySource, WorkloadIdentity } from '../identity/source.js';
import type { BundleSet } from '../x509/bundle-set.js';
import type { EdgeReport } from './edges.js';
import type { ExpiringEvent } from './identity-events.js';

/**
 * What statusHandler() needs of a server: `createMtlsServer()`'s `describe()` and `policy`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type StatusServer } from 'sidecarless';
 * const server: StatusServer = createMtlsServer({ identity: createLocalCa({ trustDomain: 'td' }).identity('/web') }, (_req, res) => res.end());
 * ```
 */
export interface StatusServer {
  /** The listener report. */
  describe(): {
    readonly address: AddressInfo | string | null;
    readonly mode: string;
    readonly protocol: string;
    readonly id: string | null;
    readonly notAfter: Date | null;
    readonly trustDomains: readonly string[];
    readonly edges: readonly EdgeReport[];
  };
  /** The compiled authorization policy, when there is one. */
  readonly policy?: AuthorizationPolicy | undefined;
}

/**
 * What statusHandler() needs of a client: a dispatcher's or an agent's `describe()`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsDispatcher, type StatusClient } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'td' }).identity('/ui');
 * const client: StatusClient = createMtlsDispatcher({ identity, destinations: { '*': { expect: '*' } } });
 * ```
 */
export interface StatusClient {
  /** The client report. */
  describe(): ClientReport;
}

/**
 * A certificate's name and end, as the status report shows it.
 * @example
 * ```ts
 * import type { StatusCertificate } from 'sidecarless';
 * const line = (c: StatusCertificate) => `${c.name} until ${c.notAfter.toISOString()}`;
 * ```
 */
export interface StatusCertificate {
  /** The SPIFFE ID (an SVID) or the subject (a bundle authority). */
  readonly name: string;
  /** When it expires. */
  readonly notAfter: Date;
}

/**
 * An identity or bundle source in the status report.
 * @example
 * ```ts
 * import type { StatusSourceReport } from 'sidecarless';
 * const failing = (s: StatusSourceReport) => s.lastError !== null || s.unavailable !== null;
 * ```
 */
export interface StatusSourceReport {
  /** The name it was given in `statusHandler({ sources })`. */
  readonly name: string;
  /** The SVIDs it holds now, the default first (none for a bundle source or without an identity). */
  readonly svids: readonly StatusCertificate[];
  /** Each trusted bundle's authorities, by trust domain. */
  readonly bundles: readonly {
    readonly trustDomain: string;
    readonly authorities: readonly StatusCertificate[];
  }[];
  /** The last accepted update seen since the handler was made (the first one included), or null. */
  readonly lastRotation: Date | null;
  /** The last error the source survived or its withdrawal, or null. */
  readonly lastError: { readonly code: string; readonly message: string; readonly at: Date } | null;
  /** The last `expiring` warning, or null. */
  readonly lastExpiring: ExpiringEvent | null;
  /** Why `current()` gave nothing (`ERR_NO_IDENTITY: …`), or null when it has an identity. */
  readonly unavailable: string | null;
}

/**
 * A server in the status report: its `describe()`, with the address as `host:port` and its rules.
 * @example
 * ```ts
 * import type { StatusServerReport } from 'sidecarless';
 * const strict = (s: StatusServerReport) => s.mode === 'STRICT';
 * ```
 */
export interface StatusServerReport {
  /** `host:port` (`[v6]:port`), the pipe path, or null before listen. */
  readonly address: string | null;
  /** The mTLS mode. */
  readonly mode: string;
  /** The protocol served. */
  readonly protocol: string;
  /** The server's SPIFFE ID, or null. */
  readonly id: string | null;
  /** When its SVID expires, or null. */
  readonly notAfter: Date | null;
  /** The trust domains whose peers it accepts. */
  readonly trustDomains: readonly string[];
  /** Its authorization rules, or null without a policy. */
  readonly rules: AuthorizationPolicyDescription | null;
  /** Its inbound edges (refusal messages without query strings). */
  readonly edges: readonly EdgeReport[];
}

/**
 * A client in the status report.
 * @example
 * ```ts
 * import type { StatusClientReport } from 'sidecarless';
 * const plaintext = (c: StatusClientReport) => c.edges.filter((e) => e.mtlsRequests < e.requests);
 * ```
 */
export interface StatusClientReport extends ClientReport {
  /** The name it was given in `statusHandler({ clients })`. */
  readonly name: string;
}

/**
 * The JSON document of {@link statusHandler} (`?format=json`), which `sidecarless describe` reads.
 * @example
 * ```ts
 * import type { StatusReport } from 'sidecarless';
 * const report = (await (await fetch('http://127.0.0.1:15000/?format=json')).json()) as StatusReport;
 * for (const server of report.servers) console.log(server.address, server.mode);
 * ```
 */
export interface StatusReport {
  /** The document's format version: 1. */
  readonly version: 1;
  /** When the report was made. */
  readonly generatedAt: Date;
  /** Each server given. */
  readonly servers: readonly StatusServerReport[];
  /** Each client given. */
  readonly clients: readonly StatusClientReport[];
  /** Each identity or bundle source given. */
  readonly sources: readonly StatusSourceReport[];
}

/** Drops the query string of every path in a message: `/a?token=x` becomes `/a`. */
export function withoutQueries(text: string): string {
  return text.replace(/(\/[^\s"'?#]*)[?#][^\s"']*/g, '$1');
}

/**
 * What a refusal message shows of a path: without its query string, and with percent-escapes of
 * visible ASCII decoded (`/%3Cimg%20src=x%3E` reads `/<img src=x>`), so the page shows what was
 * asked for, as text. Other escapes stay as they are.
 */
export function shownMessage(text: string): string {
  return withoutQueries(text).replace(/%([2-7][0-9A-Fa-f])/g, (sequence, hex: string) => {
    const c = Number.parseInt(hex, 16);
    return c >= 0x20 && c <= 0x7e ? String.fromCharCode(c) : sequence;
  });
}

function addressOf(address: AddressInfo | string | null): string | null {
  if (address === null || typeof address === 'string') return address;
  return address.family === 'IPv6' || address.address.includes(':')
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
}

function cleanEdges(edges: readonly EdgeReport[]): readonly EdgeReport[] {
  return edges.map((edge) =>
    edge.lastRefusal === null
      ? edge
      : { ...edge, lastRefusal: { ...edge.lastRefusal, message: shownMessage(edge.lastRefusal.message) } },
  );
}

function isIdentity(value: WorkloadIdentity | BundleSet): value is WorkloadIdentity {
  return (value as Partial<WorkloadIdentity>).svid !== undefined;
}

type AnySource = IdentitySource | BundleSource;
interface Listening {
  on?(event: string, listener: (...args: unknown[]) => void): () => void;
}

/** Follows one source: its last rotation, last error, last expiring warning. */
class SourceWatch {
  readonly name: string;
  readonly source: AnySource;
  lastRotation: Date | null = null;
  lastError: StatusSourceReport['lastError'] = null;
  lastExpiring: ExpiringEvent | null = null;
  readonly #stops: (() => void)[] = [];

  constructor(name: string, source: AnySource) {
    this.name = name;
    this.source = source;
    this.#stops.push(source.subscribe(() => this.#rotated()));
    try {
      source.current();
      this.#rotated();
    } catch {
      // No identity yet: the first update sets it.
    }
    const events = source as AnySource & Listening;
    if (typeof events.on === 'function') {
      this.#stops.push(events.on('error', (err) => this.#failed(err as SidecarlessError)));
      this.#stops.push(events.on('withdrawn', (err) => this.#failed(err as SidecarlessError)));
      this.#stops.push(
        events.on('expiring', (event) => {
          this.lastExpiring = event as ExpiringEvent;
        }),
      );
    } else if (typeof (source as IdentitySource).onWithdrawn === 'function') {
      const stop = (source as IdentitySource).onWithdrawn?.((err) => this.#failed(err));
      if (stop !== undefined) this.#stops.push(stop);
    }
  }

  #rotated(): void {
    this.lastRotation = new Date();
  }

  #failed(err: SidecarlessError): void {
    this.lastError = Object.freeze({
      code: String(err.code ?? 'ERR_UNKNOWN'),
      message: shownMessage(String(err.message)),
      at: new Date(),
    });
  }

  report(): StatusSourceReport {
    let current: WorkloadIdentity | BundleSet | undefined;
    let unavailable: string | null = null;
    try {
      current = this.source.current();
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      unavailable = `${String(e.code ?? 'Error')}: ${String(e.message)}`;
    }
    const bundleSet = current === undefined ? undefined : isIdentity(current) ? current.bundles : current;
    const svids =
      current !== undefined && isIdentity(current)
        ? current.svids.map((svid) => ({ name: svid.id.toString(), notAfter: svid.notAfter }))
        : [];
    const bundles = (bundleSet?.bundles() ?? []).map((bundle) => ({
      trustDomain: bundle.trustDomain.name,
      authorities: bundle.authorities.map((authority) => ({
        name: authority.subject.replaceAll('\n', ', '),
        notAfter: new Date(authority.validTo),
      })),
    }));
    return {
      name: this.name,
      svids,
      bundles,
      lastRotation: this.lastRotation,
      lastError: this.lastError,
      lastExpiring: this.lastExpiring,
      unavailable,
    };
  }

  close(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }
}

/** What the report is made of. */
export interface StatusInputs {
  readonly servers: readonly StatusServer[];
  readonly clients: Readonly<Record<string, StatusClient>>;
  readonly sources: Readonly<Record<string, AnySource>>;
}

/** Gathers the report on each call; follows the sources until closed. */
export class StatusCollector {
  readonly #servers: readonly StatusServer[];
  readonly #clients: readonly [string, StatusClient][];
  readonly #sources: readonly SourceWatch[];

  constructor(inputs: StatusInputs) {
    this.#servers = [...inputs.servers];
    this.#clients = Object.entries(inputs.clients);
    this.#sources = Object.entries(inputs.sources).map(([name, source]) => new SourceWatch(name, source));
  }

  report(): StatusReport {
    return {
      version: 1,
      generatedAt: new Date(),
      servers: this.#servers.map((server) => {
        const d = server.describe();
        return {
          address: addressOf(d.address),
          mode: d.mode,
          protocol: d.protocol,
          id: d.id,
          notAfter: d.notAfter,
          trustDomains: d.trustDomains,
          rules: server.policy?.describe() ?? null,
          edges: cleanEdges(d.edges),
        };
      }),
      clients: this.#clients.map(([name, client]) => {
        const d = client.describe();
        return { name, id: d.id, notAfter: d.notAfter, edges: cleanEdges(d.edges) };
      }),
      sources: this.#sources.map((watch) => watch.report()),
    };
  }

  close(): void {
    for (const watch of this.#sources) watch.close();
  }
}
