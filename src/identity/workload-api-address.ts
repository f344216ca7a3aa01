import { isIP } from 'node:net';
import { SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';

/** The environment variable the SPIFFE Workload Endpoint spec (§4) names for the address. */
export const SPIFFE_ENDPOINT_SOCKET = 'SPIFFE_ENDPOINT_SOCKET';

/** A Workload API address, validated. */
export interface WorkloadApiAddress {
  /** The address as given, for messages. */
  readonly address: string;
  /** The target `@grpc/grpc-js` dials: `unix:/abs/path`, `ipv4:1.2.3.4:80` or `ipv6:[::1]:80`. */
  readonly target: string;
}

// RFC 3986 §3: scheme ":" hier-part [ "?" query ] [ "#" fragment ].
const URI = /^([A-Za-z][A-Za-z0-9+.-]*):([^?#]*)(\?[^#]*)?(#.*)?$/;

function refuse(address: string, rule: string): SidecarlessError {
  const shown = quote(address);
  return new SidecarlessError(
    'ERR_WORKLOAD_API_ADDRESS_INVALID',
    `Workload API address ${shown}: ${rule} (SPIFFE Workload Endpoint §4)`,
    { field: 'address', value: shown },
  );
}

function decodePath(address: string, path: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw refuse(address, 'the path has an invalid percent-encoding');
  }
  if (decoded.includes('\0')) throw refuse(address, 'the path must not contain a NUL character');
  return decoded;
}

function parseUnix(address: string, rest: string): WorkloadApiAddress {
  let path: string;
  if (rest.startsWith('//')) {
    // unix://authority/path: the authority (host or userinfo) must be empty.
    const slash = rest.indexOf('/', 2);
    const authority = slash === -1 ? rest.slice(2) : rest.slice(2, slash);
    if (authority.includes('@')) throw refuse(address, 'a unix address must not include userinfo');
    if (authority !== '') {
      throw refuse(address, 'a unix address must not have an authority (write unix:///absolute/path)');
    }
    path = slash === -1 ? '' : rest.slice(slash);
  } else {
    path = rest;
  }
  if (path === '') throw refuse(address, 'a unix address must have the socket path');
  if (!path.startsWith('/')) {
    throw refuse(address, 'the socket path of a unix address must be absolute (unix:///absolute/path)');
  }
  return { address, target: `unix:${decodePath(address, path)}` };
}

function parseTcp(address: string, rest: string): WorkloadApiAddress {
  if (!rest.startsWith('//')) throw refuse(address, 'a tcp address must be tcp://<IP>:<port>');
  const slash = rest.indexOf('/', 2);
  if (slash !== -1) throw refuse(address, 'a tcp address must not have a path');
  const authority = rest.slice(2);
  if (authority.includes('@')) throw refuse(address, 'a tcp address must not include userinfo');
  let host: string;
  let port: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) throw refuse(address, 'an IPv6 host must be enclosed in brackets');
    host = authority.slice(1, close);
    const after = authority.slice(close + 1);
    if (!after.startsWith(':')) throw refuse(address, 'a tcp address must have a port');
    port = after.slice(1);
    if (isIP(host) !== 6 || host.includes('%')) throw refuse(address, 'the host must be an IP address');
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon === -1 ? authority : authority.slice(0, colon);
    port = colon === -1 ? '' : authority.slice(colon + 1);
    if (host === '') throw refuse(address, 'a tcp address must have a host (an IP address)');
    if (colon === -1) throw refuse(address, 'a tcp address must have a port');
    if (host.includes(':')) throw refuse(address, 'an IPv6 host must be enclosed in brackets');
    if (isIP(host) !== 4) {
      throw refuse(address, 'the host must be an IP address, not a name (no DNS lookup is made)');
    }
  }
  if (port === '') throw refuse(address, 'a tcp address must have a port');
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) {
    throw refuse(address, 'the port must be a number from 1 to 65535');
  }
  const target = isIP(host) === 6 ? `ipv6:[${host}]:${Number(port)}` : `ipv4:${host}:${Number(port)}`;
  return { address, target };
}

/**
 * Validates a Workload API address per the SPIFFE Workload Endpoint spec §4: `unix:///abs/path`
 * (or `unix:/abs/path`) with no authority, query or fragment, or `tcp://<IP>:<port>` with an IP
 * literal, a port and nothing else. Pure: no connection is tried.
 *
 * @param value - the address (from the option or `SPIFFE_ENDPOINT_SOCKET`)
 * @throws SidecarlessError `ERR_WORKLOAD_API_ADDRESS_INVALID` naming the value and the rule
 */
export function parseWorkloadApiAddress(value: unknown): WorkloadApiAddress {
  if (value === undefined || value === '') {
    throw new SidecarlessError(
      'ERR_WORKLOAD_API_ADDRESS_INVALID',
      `no Workload API address: set option "address" or the ${SPIFFE_ENDPOINT_SOCKET} environment variable (SPIFFE Workload Endpoint §4)`,
      { field: 'address' },
    );
  }
  if (typeof value !== 'string') {
    throw new SidecarlessError(
      'ERR_WORKLOAD_API_ADDRESS_INVALID',
      `Workload API address must be a string, got ${typeof value}`,
      { field: 'address' },
    );
  }
  const match = URI.exec(value);
  if (match === null) {
    throw refuse(value, 'must be a URI with the scheme "unix" or "tcp" (e.g. unix:///run/spire/agent.sock)');
  }
  const [, scheme = '', rest = '', query, fragment] = match;
  if (query !== undefined) throw refuse(value, 'must not have a query');
  if (fragment !== undefined) throw refuse(value, 'must not have a fragment');
  // RFC 3986 §3.1: schemes are case-insensitive.
  switch (scheme.toLowerCase()) {
    case 'unix':
      return parseUnix(value, rest);
    case 'tcp':
      return parseTcp(value, rest);
    default:
      throw refuse(value, 'the scheme must be "unix" or "tcp"');
  }
}
