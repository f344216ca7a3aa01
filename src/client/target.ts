import { isIP } from 'node:net';
import { type ErrorCode, type ErrorDetail, SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';
import { type DestinationTable, hostPort, portOf, type ResolvedDestination } from './destinations.js';

/** One connection to make: where to, and under which destination. */
export interface Target {
  /** The host as the caller wrote it (what DNS resolves). */
  readonly host: string;
  readonly port: number;
  /** `host:port` in canonical form, for messages and events. */
  readonly address: string;
  /** The URL's protocol: `'http:'` or `'https:'`. */
  readonly protocol: 'http:' | 'https:';
  /** SNI: the host name, never an IP literal (RFC 6066 §3). */
  readonly servername: string | undefined;
  readonly localAddress: string | undefined;
  readonly destination: ResolvedDestination;
}

/** What a connector is asked for: undici's connect options and node:http's agree on these. */
export interface ConnectRequest {
  readonly host: string;
  readonly port: string | number | undefined;
  readonly protocol: string;
  readonly localAddress?: string | null | undefined;
}

/**
 * Resolves the destination of a connection.
 * @throws SidecarlessError `ERR_NO_DESTINATION` when no key matches and there is no `'*'`
 */
export function targetOf(table: DestinationTable, request: ConnectRequest): Target {
  const protocol = request.protocol === 'https:' ? 'https:' : 'http:';
  const host =
    request.host.startsWith('[') && request.host.endsWith(']') ? request.host.slice(1, -1) : request.host;
  const address = hostPort(host, request.port, protocol);
  const destination = table.resolve(host, request.port, protocol);
  if (destination === undefined) {
    throw new SidecarlessError(
      'ERR_NO_DESTINATION',
      `no destination matches ${address} and there is no "*" default; requests there are not sent`,
      { value: address },
    );
  }
  const name = host.replace(/\.+$/, '');
  return Object.freeze({
    host,
    port: portOf(request.port, protocol) as number,
    address,
    protocol,
    servername: isIP(name) === 0 && name !== '' ? name : undefined,
    localAddress: request.localAddress ?? undefined,
    destination,
  });
}

/**
 * An error about one destination: the message names the key and the address, `detail.value` the
 * address and `detail.field` the destination.
 */
export function destinationError(
  code: ErrorCode,
  target: Target,
  rule: string,
  detail: ErrorDetail = {},
  cause?: unknown,
): SidecarlessError {
  const key = target.destination.key;
  return new SidecarlessError(
    code,
    `destination ${quote(key)} (${target.address}, ${target.destination.mode}): ${rule}`,
    { ...detail, value: target.address, field: `destinations[${quote(key)}]` },
    cause === undefined ? undefined : { cause },
  );
}
