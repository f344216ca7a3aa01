import dns, { type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { type ErrorCode, type ErrorDetail, SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';
import type { DestinationTable, ResolvedDestination } from './destinations.js';
import { type HostKind, parseHost, portOf } from './hosts.js';

/** Where a connection goes, as parsed from the request. */
export interface Endpoint {
  /** What to resolve and connect to: the canonical IP literal, or the name as the URL parser wrote it. */
  readonly host: string;
  readonly port: number;
  /** `host:port` in canonical form, for messages and events. */
  readonly address: string;
  /** The URL's protocol: `'http:'` or `'https:'`. */
  readonly protocol: 'http:' | 'https:';
  /** SNI: the host name, never an IP literal (RFC 6066 §3). */
  readonly servername: string | undefined;
  readonly localAddress: string | undefined;
}

/** One connection to make: where to, and under which destination. */
export interface Target extends Endpoint {
  readonly destination: ResolvedDestination;
  /**
   * When the client resolved the name itself: hands Node exactly the addresses whose destinations
   * were checked, so nothing resolves it a second time (no rebinding between check and connect).
   */
  readonly lookup: LookupFunction | undefined;
}

/** What a connector is asked for: undici's connect options and node:http's agree on these. */
export interface ConnectRequest {
  readonly host: string;
  readonly port: string | number | undefined;
  readonly protocol: string;
  readonly localAddress?: string | null | undefined;
}

/** A connection request, parsed: everything about it that needs no DNS answer. */
export interface Plan extends Endpoint {
  /** The canonical host (destination keys' form). */
  readonly name: string;
  readonly kind: HostKind;
  /** Whether the destination depends on the name's addresses (a name, and some key is an IP literal). */
  readonly resolve: boolean;
}

/**
 * Parses a connection request.
 * @throws SidecarlessError `ERR_HOST_INVALID` for a host no destination can be chosen for (an
 *   IPv6 zone id, a malformed name) or a bad port
 */
export function planOf(table: DestinationTable, request: ConnectRequest): Plan {
  const protocol = request.protocol === 'https:' ? 'https:' : 'http:';
  const written = String(request.host);
  const host = written.startsWith('[') && written.endsWith(']') ? written.slice(1, -1) : written;
  const parsed = parseHost(host);
  const port = portOf(request.port, protocol);
  if (!parsed.ok || port === undefined) {
    const value = `${quote(host)}:${quote(String(request.port ?? ''))}`;
    const rule = parsed.ok ? 'the port must be 1-65535' : `the host ${parsed.rule}`;
    throw new SidecarlessError(
      'ERR_HOST_INVALID',
      `request to ${value}: ${rule}; no destination can be chosen, so nothing is sent`,
      { value },
    );
  }
  const { host: name, kind } = parsed;
  // A name is resolved as the URL parser spells it (IDNA, lower case), keeping a trailing dot:
  // "boards." is absolute, "boards" goes through the resolver's search path.
  const connectTo = kind === 'name' ? `${name}${/\.+$/.test(host) ? '.' : ''}` : name;
  return Object.freeze({
    name,
    kind,
    host: connectTo,
    port,
    address: kind === 'ipv6' ? `[${name}]:${port}` : `${name}:${port}`,
    protocol,
    servername: kind === 'name' ? name : undefined,
    localAddress: request.localAddress ?? undefined,
    resolve: kind === 'name' && table.resolvesNames,
  });
}

/**
 * The target of a plan: the strictest destination among the host, its search-domain names and
 * (when the plan resolves) the addresses it resolved to.
 * @throws SidecarlessError `ERR_NO_DESTINATION` when no key matches and there is no `'*'`
 */
export function targetOf(table: DestinationTable, plan: Plan, addresses?: readonly LookupAddress[]): Target {
  const candidates = table.candidates(
    plan.name,
    plan.kind,
    addresses?.map((a) => a.address),
  );
  const destination = table.select(candidates, plan.port);
  if (destination === undefined) {
    throw new SidecarlessError(
      'ERR_NO_DESTINATION',
      `no destination matches ${plan.address} and there is no "*" default; requests there are not sent`,
      { value: plan.address },
    );
  }
  return targetFor(plan, destination, addresses);
}

/** A target for a destination already chosen. */
export function targetFor(
  plan: Plan,
  destination: ResolvedDestination,
  addresses?: readonly LookupAddress[],
): Target {
  return Object.freeze({
    host: plan.host,
    port: plan.port,
    address: plan.address,
    protocol: plan.protocol,
    servername: plan.servername,
    localAddress: plan.localAddress,
    destination,
    lookup: addresses === undefined ? undefined : fixedLookup(addresses),
  });
}

// As net.connect resolves by default (lib/net.js): only address families this host has.
const HINTS = process.platform === 'win32' ? 0 : dns.ADDRCONFIG;

/** Resolves a plan's name once, for a new connection: every address. */
export function resolvePlan(plan: Plan, cb: (err: Error | null, addresses: LookupAddress[]) => void): void {
  // Through the module object, as net does: a test resolver (and a user's patched one) applies.
  dns.lookup(plan.host, { all: true, hints: HINTS }, (err, addresses) => cb(err, addresses ?? []));
}

/** A lookup for net.connect that answers with addresses already resolved (and checked). */
function fixedLookup(addresses: readonly LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const family = options.family === 4 || options.family === 6 ? options.family : 0;
    const usable = family === 0 ? [...addresses] : addresses.filter((a) => a.family === family);
    if (options.all === true) {
      (callback as unknown as (err: null, all: LookupAddress[]) => void)(null, usable);
      return;
    }
    const first = usable[0];
    if (first === undefined) {
      const err: NodeJS.ErrnoException = new Error(`no IPv${family} address was resolved`);
      err.code = 'ENOTFOUND';
      callback(err, '', 0);
      return;
    }
    callback(null, first.address, first.family);
  };
}

/**
 * An error about one destination: the message names the key(s) and the address, `detail.value`
 * the address and `detail.field` the (first) destination.
 */
export function destinationError(
  code: ErrorCode,
  target: Target,
  rule: string,
  detail: ErrorDetail = {},
  cause?: unknown,
): SidecarlessError {
  const { keys, mode } = target.destination;
  const named =
    keys.length === 1
      ? `destination ${quote(keys[0] as string)}`
      : `destinations ${keys.map((k) => quote(k)).join(' and ')}`;
  return new SidecarlessError(
    code,
    `${named} (${target.address}, ${mode}): ${rule}`,
    { ...detail, value: target.address, field: `destinations[${quote(target.destination.key)}]` },
    cause === undefined ? undefined : { cause },
  );
}
