import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseWorkloadApiAddress } from '../../src/identity/workload-api-address.js';
import { workloadApiBundles } from '../../src/identity/workload-api-bundles.js';
import { workloadApiIdentity } from '../../src/identity/workload-api-identity.js';
import { expectCode } from '../helpers/expect-code.js';

// SPIFFE Workload Endpoint §4: what SPIFFE_ENDPOINT_SOCKET (or the address option) may hold.
const valid: { address: string; target: string }[] = [
  { address: 'unix:///run/spire/sockets/agent.sock', target: 'unix:/run/spire/sockets/agent.sock' },
  { address: 'unix:/run/spire/agent.sock', target: 'unix:/run/spire/agent.sock' },
  { address: 'UNIX:///tmp/agent.sock', target: 'unix:/tmp/agent.sock' },
  { address: 'unix:///tmp/with%20space.sock', target: 'unix:/tmp/with space.sock' },
  { address: 'tcp://127.0.0.1:8081', target: 'ipv4:127.0.0.1:8081' },
  { address: 'tcp://169.254.169.254:1', target: 'ipv4:169.254.169.254:1' },
  { address: 'tcp://[::1]:65535', target: 'ipv6:[::1]:65535' },
];

const invalid: { name: string; address: string; rule: string }[] = [
  {
    name: 'a bare path',
    address: '/run/spire/agent.sock',
    rule: 'must be a URI with the scheme "unix" or "tcp"',
  },
  { name: 'another scheme', address: 'http://127.0.0.1:8081', rule: 'the scheme must be "unix" or "tcp"' },
  {
    name: 'a unix authority',
    address: 'unix://localhost/run/agent.sock',
    rule: 'must not have an authority',
  },
  { name: 'unix userinfo', address: 'unix://user@/run/agent.sock', rule: 'must not include userinfo' },
  { name: 'a relative unix path', address: 'unix:run/agent.sock', rule: 'must be absolute' },
  { name: 'no unix path', address: 'unix://', rule: 'must have the socket path' },
  { name: 'an empty unix path', address: 'unix:', rule: 'must have the socket path' },
  { name: 'a unix query', address: 'unix:///run/agent.sock?x=1', rule: 'must not have a query' },
  { name: 'a unix fragment', address: 'unix:///run/agent.sock#f', rule: 'must not have a fragment' },
  { name: 'a bad percent-encoding', address: 'unix:///run/%zz.sock', rule: 'invalid percent-encoding' },
  { name: 'an encoded NUL', address: 'unix:///run/a%00.sock', rule: 'NUL' },
  { name: 'tcp without //', address: 'tcp:127.0.0.1:8081', rule: 'must be tcp://<IP>:<port>' },
  { name: 'a tcp host name', address: 'tcp://localhost:8081', rule: 'must be an IP address, not a name' },
  { name: 'no tcp port', address: 'tcp://127.0.0.1', rule: 'must have a port' },
  { name: 'an empty tcp port', address: 'tcp://127.0.0.1:', rule: 'must have a port' },
  { name: 'port 0', address: 'tcp://127.0.0.1:0', rule: 'from 1 to 65535' },
  { name: 'a port too large', address: 'tcp://127.0.0.1:65536', rule: 'from 1 to 65535' },
  { name: 'a named port', address: 'tcp://127.0.0.1:http', rule: 'from 1 to 65535' },
  { name: 'no tcp host', address: 'tcp://:8081', rule: 'must have a host' },
  { name: 'a tcp path', address: 'tcp://127.0.0.1:8081/agent', rule: 'must not have a path' },
  { name: 'a tcp trailing slash', address: 'tcp://127.0.0.1:8081/', rule: 'must not have a path' },
  { name: 'a tcp query', address: 'tcp://127.0.0.1:8081?x', rule: 'must not have a query' },
  { name: 'a tcp fragment', address: 'tcp://127.0.0.1:8081#x', rule: 'must not have a fragment' },
  { name: 'tcp userinfo', address: 'tcp://user@127.0.0.1:8081', rule: 'must not include userinfo' },
  { name: 'IPv6 without brackets', address: 'tcp://::1:8081', rule: 'enclosed in brackets' },
  { name: 'an unclosed bracket', address: 'tcp://[::1:8081', rule: 'enclosed in brackets' },
  { name: 'a bracketed IPv4', address: 'tcp://[127.0.0.1]:8081', rule: 'must be an IP address' },
  { name: 'an IPv6 zone', address: 'tcp://[fe80::1%25eth0]:8081', rule: 'must be an IP address' },
];

describe('Workload API address (SPIFFE Workload Endpoint §4)', () => {
  it.each(valid)('accepts $address', ({ address, target }) => {
    expect(parseWorkloadApiAddress(address)).toEqual({ address, target });
  });

  it.each(invalid)('refuses $name ($address)', ({ address, rule }) => {
    const err = expectCode(() => parseWorkloadApiAddress(address), 'ERR_WORKLOAD_API_ADDRESS_INVALID');
    expect(err.message).toContain(rule);
    expect(err.message).toContain(JSON.stringify(address));
    expect(err.message).toContain('SPIFFE Workload Endpoint §4');
    expect(err.detail.field).toBe('address');
  });

  it('refuses a non-string and an empty address', () => {
    expectCode(() => parseWorkloadApiAddress(42), 'ERR_WORKLOAD_API_ADDRESS_INVALID');
    const err = expectCode(() => parseWorkloadApiAddress(''), 'ERR_WORKLOAD_API_ADDRESS_INVALID');
    expect(err.message).toContain('SPIFFE_ENDPOINT_SOCKET');
  });
});

describe('the sources check the address before any connection', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each(invalid.slice(0, 6))(
    'workloadApiIdentity and workloadApiBundles throw for $name',
    ({ address, rule }) => {
      expect(
        expectCode(() => workloadApiIdentity({ address }), 'ERR_WORKLOAD_API_ADDRESS_INVALID').message,
      ).toContain(rule);
      expectCode(() => workloadApiBundles({ address }), 'ERR_WORKLOAD_API_ADDRESS_INVALID');
    },
  );

  it('takes SPIFFE_ENDPOINT_SOCKET when there is no option, and names it when both are missing', () => {
    vi.stubEnv('SPIFFE_ENDPOINT_SOCKET', 'tcp://localhost:1');
    expect(expectCode(() => workloadApiIdentity(), 'ERR_WORKLOAD_API_ADDRESS_INVALID').message).toContain(
      'not a name',
    );
    vi.stubEnv('SPIFFE_ENDPOINT_SOCKET', undefined);
    const err = expectCode(() => workloadApiIdentity(), 'ERR_WORKLOAD_API_ADDRESS_INVALID');
    expect(err.message).toMatch(
      /no Workload API address: set option "address" or the SPIFFE_ENDPOINT_SOCKET/,
    );
  });

  it('refuses bad options with ERR_OPTION_INVALID', () => {
    const address = 'unix:///tmp/none.sock';
    expectCode(() => workloadApiIdentity({ address, pick: { hint: '' } }), 'ERR_OPTION_INVALID');
    expectCode(
      () => workloadApiIdentity({ address, pick: { hint: 'a', id: 'spiffe://td/x' } as never }),
      'ERR_OPTION_INVALID',
    );
    expectCode(
      () => workloadApiIdentity({ address, pick: { id: 'spiffe://TD/x' } }),
      'ERR_SPIFFE_ID_INVALID',
    );
    expectCode(() => workloadApiIdentity({ address, retry: { initialDelay: -1 } }), 'ERR_OPTION_INVALID');
    expectCode(
      () => workloadApiIdentity({ address, retry: { initialDelay: 100, maxDelay: 10 } }),
      'ERR_OPTION_INVALID',
    );
    expectCode(() => workloadApiIdentity({ address, timeout: 5 } as never), 'ERR_OPTION_INVALID');
  });
});
