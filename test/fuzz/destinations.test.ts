import http from 'node:http';
import fc from 'fast-check';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMtlsAgent,
  createMtlsDispatcher,
  createMtlsServer,
  getPeer,
  type MtlsDispatcher,
  type MtlsHttpAgent,
} from '../../src/index.js';
import { params } from './settings.js';

// Destination host canonicalisation, fuzzed through the clients' exported behaviour (the table
// itself is being reworked): requests to spellings of 127.0.0.1 on three ports whose keys differ in
// strictness. Oracle: a request's chosen destination is at least as strict as the key of the address
// it actually connects to — seen from the servers, which all listen on 127.0.0.1 only:
//   STRICT_PORT: key '127.0.0.1:<port>' mtls, expect boards; the server is boards  -> only mTLS gets in
//   WRONG_PORT:  key '127.0.0.1:<port>' mtls, expect nobody; the server is boards  -> nothing gets in
//   OPEN_PORT:   no key: '*' plaintext                                              -> anything
const ca = createLocalCa({ trustDomain: 'cluster.local' });
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const NOBODY = 'spiffe://cluster.local/ns/demo/sa/nobody';
type Seen = { server: 'strict' | 'wrong' | 'open'; mtls: boolean };
const seen: Seen[] = [];
let ports: { strict: number; wrong: number; open: number };
let dispatcher: MtlsDispatcher;
let agent: MtlsHttpAgent;

beforeAll(async () => {
  const serve = async (server: Seen['server']) => {
    const s = createMtlsServer(
      { identity: ca.identity('/ns/demo/sa/boards'), mode: 'PERMISSIVE' },
      (req, res) => {
        seen.push({ server, mtls: getPeer(req).mtls });
        res.end('ok');
      },
    );
    s.listen(0, '127.0.0.1');
    await new Promise((resolve) => s.once('listening', resolve));
    return s;
  };
  const servers = { strict: await serve('strict'), wrong: await serve('wrong'), open: await serve('open') };
  const portOf = (s: http.Server) => (s.address() as { port: number }).port;
  ports = { strict: portOf(servers.strict), wrong: portOf(servers.wrong), open: portOf(servers.open) };
  afterAll(async () => {
    await Promise.all(
      Object.values(servers).map((s) => {
        s.closeAllConnections();
        return new Promise((r) => s.close(r));
      }),
    );
  });
  const identity = ca.identity('/ns/demo/sa/app-ui');
  const destinations = {
    [`127.0.0.1:${ports.strict}`]: { expect: BOARDS },
    [`127.0.0.1:${ports.wrong}`]: { expect: NOBODY },
    '*': { mode: 'plaintext' as const },
  };
  // No pooling: each request makes its own connection, so each is decided afresh.
  dispatcher = createMtlsDispatcher({ identity, destinations, keepAliveTimeout: 1, connections: 1 });
  agent = createMtlsAgent({ identity, destinations, protocol: 'http:', keepAlive: false });
});
afterAll(async () => {
  await dispatcher?.close();
  await agent?.close();
  await ca.close();
});

/** One request by a client to host:port; resolves with the servers' view of it (or nothing: refused). */
async function send(
  client: 'fetch' | 'agent',
  urlHost: string,
  host: string,
  port: number,
): Promise<Seen | undefined> {
  const before = seen.length;
  try {
    if (client === 'fetch') {
      const res = await undiciFetch(`http://${urlHost}:${port}/`, {
        dispatcher,
        headers: { connection: 'close' },
      });
      await res.text();
    } else {
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host, port, path: '/', agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
    }
  } catch {
    // refused: the oracle only looks at what reached a server
  }
  expect(seen.length - before).toBeLessThanOrEqual(1);
  return seen.length > before ? seen.at(-1) : undefined;
}

function expectAtLeastAsStrict(where: 'strict' | 'wrong' | 'open', got: Seen | undefined, spelling: string) {
  if (got === undefined) return; // refusing is always at least as strict
  expect(got.server, spelling).toBe(where);
  if (where === 'strict') expect(got.mtls, `${spelling} reached the mTLS-only key in plaintext`).toBe(true);
  if (where === 'wrong') expect.fail(`${spelling} reached a server whose key expects ${NOBODY}`);
}

// 127.0.0.1 as inet_aton and the WHATWG URL parser read it: one to four parts, each in decimal,
// octal (leading 0) or hex (0x, any case), with an optional trailing dot.
const PARTS: Record<number, number[]> = { 4: [127, 0, 0, 1], 3: [127, 0, 1], 2: [127, 1], 1: [2130706433] };
const radix = fc.constantFrom('dec', 'oct', 'hex', 'HEX');
const ipv4Spelling = fc
  .tuple(
    fc.constantFrom(1, 2, 3, 4),
    fc.array(radix, { minLength: 4, maxLength: 4 }),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([n, radixes, zeroPad, trailingDot]) => {
    const text = (PARTS[n] as number[])
      .map((v, i) => {
        const r = radixes[i];
        if (r === 'oct') return `0${zeroPad ? '0' : ''}${v.toString(8)}`;
        if (r === 'hex') return `0x${zeroPad ? '0' : ''}${v.toString(16)}`;
        if (r === 'HEX') return `0X${zeroPad ? '0' : ''}${v.toString(16).toUpperCase()}`;
        return String(v);
      })
      .join('.');
    return trailingDot ? `${text}.` : text;
  });
// Names and IPv6 forms that reach 127.0.0.1 too (IPv4-mapped addresses reach an IPv4 listener).
const otherSpelling = fc.constantFrom(
  'localhost',
  'LOCALHOST',
  'LocalHost',
  '::ffff:127.0.0.1',
  '::ffff:7f00:1',
  '::FFFF:7F00:0001',
  '0:0:0:0:0:ffff:7f00:1',
  '0000:0000:0000:0000:0000:ffff:127.0.0.1',
);
const target = fc.constantFrom('strict', 'wrong', 'open') as fc.Arbitrary<'strict' | 'wrong' | 'open'>;
const client = fc.constantFrom('fetch', 'agent') as fc.Arbitrary<'fetch' | 'agent'>;

async function run(spelling: string, where: 'strict' | 'wrong' | 'open', by: 'fetch' | 'agent') {
  const urlHost = spelling.includes(':') ? `[${spelling}]` : spelling;
  const got = await send(by, urlHost, spelling, ports[where]);
  expectAtLeastAsStrict(where, got, `${by} ${spelling}:${where}`);
  return got;
}

describe('fuzz: destination host canonicalisation, end to end', () => {
  it('controls: the canonical spelling gets mTLS on the strict port, nothing on the wrong one, plaintext on the open one', async () => {
    for (const by of ['fetch', 'agent'] as const) {
      expect(await run('127.0.0.1', 'strict', by)).toEqual({ server: 'strict', mtls: true });
      expect(await run('127.0.0.1', 'wrong', by)).toBeUndefined();
      expect(await run('127.0.0.1', 'open', by)).toEqual({ server: 'open', mtls: false });
    }
  });

  it('every spelling of 127.0.0.1 as IPv4 numbers: the destination is at least as strict as its key', async () => {
    let served = 0;
    await fc.assert(
      fc.asyncProperty(ipv4Spelling, target, client, async (spelling, where, by) => {
        if ((await run(spelling, where, by)) !== undefined) served++;
      }),
      params(120),
    );
    expect(served).toBeGreaterThan(20);
  });

  it('names and IPv6 spellings that reach 127.0.0.1: the destination is at least as strict as its key', async () => {
    await fc.assert(
      fc.asyncProperty(otherSpelling, target, client, async (spelling, where, by) => {
        await run(spelling, where, by);
      }),
      params(60),
    );
  });
});
