// The one table of host spellings a client must not let fall to a weaker destination key. Used
// by the pure table test (test/client/destinations.test.ts) and end to end by every client
// (test/client/host-spellings.test.ts); a test there fails when a form the destination rules know
// (EMBEDDED_IPV4_FORMS, THIS_HOST_RANGES) has no row here.

/** One way to write (or reach) the address 127.0.0.1, the address the tables key. */
export interface HostSpelling {
  /** The host as a URL authority writes it (IPv6 in brackets); undefined when a URL cannot carry it. */
  readonly url: string | undefined;
  /** The host as a node:http or connectMtls `host` option writes it (no brackets). */
  readonly host: string;
  /** The rule it exercises: an entry of EMBEDDED_IPV4_FORMS or THIS_HOST_RANGES, or a form below. */
  readonly form: string;
  /**
   * For names: the addresses a resolver answers (faked in the end-to-end test: no /etc/hosts
   * entry can be added there); `'system'` for names the system resolver knows everywhere.
   */
  readonly dns?: readonly string[] | 'system';
  /**
   * False when nothing on a host without NAT64 or SIIT answers at that address: only the table
   * test can show which destination it gets.
   */
  readonly reachable: boolean;
  /** Refused before any connection, instead of matched. */
  readonly refused?: 'ERR_HOST_INVALID';
}

/** Forms of this table that are not entries of the destination rules' own lists. */
export const OTHER_FORMS = [
  'ipv4',
  'ipv4-shorthand',
  'ipv4-hex',
  'ipv4-decimal',
  'localhost',
  'dns-name',
  'zone-id',
] as const;

export const HOST_SPELLINGS: readonly HostSpelling[] = [
  { url: '127.0.0.1', host: '127.0.0.1', form: 'ipv4', reachable: true },
  { url: '127.1', host: '127.1', form: 'ipv4-shorthand', reachable: true },
  { url: '0x7f.0.0.1', host: '0x7f.0.0.1', form: 'ipv4-hex', reachable: true },
  { url: '2130706433', host: '2130706433', form: 'ipv4-decimal', reachable: true },
  { url: '[::ffff:127.0.0.1]', host: '::ffff:127.0.0.1', form: 'ipv4-mapped', reachable: true },
  { url: '[::ffff:7f00:1]', host: '::ffff:7f00:1', form: 'ipv4-mapped', reachable: true },
  {
    url: '[0:0:0:0:0:FFFF:7F00:0001]',
    host: '0:0:0:0:0:FFFF:7F00:0001',
    form: 'ipv4-mapped',
    reachable: true,
  },
  { url: '[::127.0.0.1]', host: '::127.0.0.1', form: 'ipv4-compatible', reachable: false },
  { url: '[::ffff:0:127.0.0.1]', host: '::ffff:0:7f00:1', form: 'ipv4-translated', reachable: false },
  { url: '[64:ff9b::7f00:1]', host: '64:ff9b::127.0.0.1', form: 'nat64', reachable: false },
  { url: '127.0.0.2', host: '127.0.0.2', form: 'loopback-v4', reachable: true },
  { url: '127.254.0.1', host: '127.254.0.1', form: 'loopback-v4', reachable: true },
  { url: '[::1]', host: '::1', form: 'loopback-v6', reachable: true },
  { url: '[0:0:0:0:0:0:0:1]', host: '0:0:0:0:0:0:0:1', form: 'loopback-v6', reachable: true },
  { url: '0.0.0.0', host: '0.0.0.0', form: 'unspecified-v4', reachable: true },
  { url: '0', host: '0', form: 'unspecified-v4', reachable: true },
  { url: '[::]', host: '::', form: 'unspecified-v6', reachable: true },
  { url: 'localhost', host: 'localhost', form: 'localhost', dns: 'system', reachable: true },
  { url: 'LOCALHOST', host: 'LocalHost', form: 'localhost', dns: 'system', reachable: true },
  { url: 'boards.test', host: 'boards.test', form: 'dns-name', dns: ['127.0.0.1'], reachable: true },
  { url: 'mapped.test', host: 'mapped.test', form: 'dns-name', dns: ['::ffff:127.0.0.1'], reachable: true },
  { url: 'v6.test', host: 'v6.test', form: 'dns-name', dns: ['::1'], reachable: true },
  { url: 'both.test', host: 'both.test', form: 'dns-name', dns: ['::1', '127.0.0.1'], reachable: true },
  { url: undefined, host: 'fe80::1%lo', form: 'zone-id', reachable: false, refused: 'ERR_HOST_INVALID' },
  { url: undefined, host: '::1%1', form: 'zone-id', reachable: false, refused: 'ERR_HOST_INVALID' },
];

/** The names the end-to-end test's resolver answers, and what. */
export const FAKE_DNS: ReadonlyMap<string, readonly string[]> = new Map(
  HOST_SPELLINGS.flatMap((s) => (Array.isArray(s.dns) ? [[s.host, s.dns] as const] : [])),
);
