// createMtlsServer as the server, real programs as its clients: curl, openssl s_client, a Go
// client, Python's ssl module, nginx as a reverse proxy and haproxy as a client-side proxy. Each
// peer verifies our chain to the bundle root (and the DNS SAN `localhost` where it checks a host
// name; the Go and Python clients also check the URI SAN), and presents an SVID we verify.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyType } from '../../src/identity/local-ca.js';
import { createLocalCa } from '../../src/identity/local-ca.js';
import { createMtlsServer, getPeer, type RejectEvent } from '../../src/index.js';
import { skipWithout } from '../helpers/programs.js';
import {
  buildGoPeer,
  FIXTURES,
  freePort,
  KEY_TYPES,
  localhostIdentity,
  outputOf,
  runPeer,
  startPeer,
  workDir,
  writeSvid,
} from './peers.js';

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const other = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const files = workDir('server');
const caPem = files.write('ca.pem', ca.bundle().toPem());
// A CA of another name: a peer that trusts only it meets our root (the server sends it) as an
// unknown self-signed certificate.
const stranger = createLocalCa({ trustDomain: 'elsewhere.test' });
const otherCaPem = files.write('stranger-ca.pem', stranger.bundle().toPem());
const client = writeSvid(files, 'client', ca.issue('/ns/demo/sa/app-ui'));
// Same SPIFFE ID, another CA: every verifying server refuses it.
const intruder = writeSvid(files, 'intruder', other.issue('/ns/demo/sa/app-ui'));
const boards = localhostIdentity(ca, '/ns/demo/sa/boards');
/** Client SVIDs of every key type (RSA keys are slow to make: once per file). */
const svids = new Map(
  KEY_TYPES.map((k) => [k, writeSvid(files, `key-${k}`, ca.issue('/ns/demo/sa/app-ui', { keyType: k }))]),
);

interface Served {
  readonly port: number;
  readonly rejects: RejectEvent[];
}
type Listening = { listen(port: number, host: string): unknown; address(): unknown; close(): unknown };

const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
  await ca.close();
  await other.close();
  await stranger.close();
});

async function listening(server: Listening & NodeJS.EventEmitter): Promise<Served> {
  const rejects: RejectEvent[] = [];
  server.on('reject', (e: RejectEvent) => rejects.push(e));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => {
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, rejects };
}

/** What the handler saw: the caller's SPIFFE ID, whether it was mTLS, the HTTP version. */
const whoami = (req: { httpVersion: string }, res: { end(s: string): void }) => {
  const peer = getPeer(req as never);
  res.end(`id=${peer.id?.toString() ?? null} mtls=${peer.mtls} http=${req.httpVersion}`);
};

let strict: Served;
let permissive: Served;
let h2: Served;
let h2Permissive: Served;
/** STRICT http1 servers whose SVID has each key type. */
const h1ByKey = new Map<KeyType, Served>();
const rawTls = new Map<KeyType, Served>();

beforeAll(async () => {
  strict = await listening(createMtlsServer({ identity: boards.identity, mode: 'STRICT' }, whoami));
  permissive = await listening(createMtlsServer({ identity: boards.identity, mode: 'PERMISSIVE' }, whoami));
  h2 = await listening(
    createMtlsServer({ identity: boards.identity, mode: 'STRICT', protocol: 'http2' }, whoami),
  );
  h2Permissive = await listening(
    createMtlsServer({ identity: boards.identity, mode: 'PERMISSIVE', protocol: 'http2' }, whoami),
  );
  for (const keyType of KEY_TYPES) {
    const { identity } = localhostIdentity(ca, '/ns/demo/sa/boards', keyType);
    const server = createMtlsServer({ identity, protocol: 'tls' }, (socket, peer) => {
      socket.end(`id=${peer.id?.toString()} version=${socket.getProtocol()}\n`);
    });
    rawTls.set(keyType, await listening(server));
    h1ByKey.set(keyType, await listening(createMtlsServer({ identity }, whoami)));
  }
});

/** The last reject event, waiting a little: a server reports it as the connection ends. */
async function lastReject(served: Served, count: number): Promise<RejectEvent | undefined> {
  for (let i = 0; i < 40 && served.rejects.length < count; i++) await new Promise((r) => setTimeout(r, 25));
  return served.rejects.at(-1);
}

describe.skipIf(skipWithout('curl'))('curl', () => {
  const curl = (...args: string[]) => runPeer('curl', ['-sS', '--max-time', '5', ...args]);
  const mtls = (cert: { cert: string; key: string }, trust = caPem) => [
    '--cacert',
    trust,
    '--cert',
    cert.cert,
    '--key',
    cert.key,
  ];

  it.each([
    ['TLS 1.3', ['--tlsv1.3']],
    ['TLS 1.2', ['--tlsv1.2', '--tls-max', '1.2']],
  ])(
    'mTLS over %s against STRICT: curl verifies our chain and host name, we see its SPIFFE ID',
    async (_, version) => {
      const res = await curl(
        ...version,
        ...mtls(client),
        '-w',
        ' %{ssl_verify_result}',
        `https://localhost:${strict.port}/x`,
      );
      expect(res.stdout).toBe(`id=${UI} mtls=true http=1.1 0`);
    },
  );

  it('HTTP/2 (ALPN h2) against protocol http2', async () => {
    const res = await curl(
      '--http2',
      ...mtls(client),
      '-w',
      ' %{http_version}',
      `https://localhost:${h2.port}/x`,
    );
    expect(res.stdout).toBe(`id=${UI} mtls=true http=2.0 2`);
  });

  it('HTTP/2 against PERMISSIVE: mTLS by ALPN, and plaintext with prior knowledge', async () => {
    const tls = await curl(
      '--http2',
      ...mtls(client),
      '-w',
      ' %{http_version}',
      `https://localhost:${h2Permissive.port}/x`,
    );
    expect(tls.stdout).toBe(`id=${UI} mtls=true http=2.0 2`);
    const h2c = await curl(
      '--http2-prior-knowledge',
      '-w',
      ' %{http_version}',
      `http://127.0.0.1:${h2Permissive.port}/x`,
    );
    expect(h2c.stdout).toBe('id=null mtls=false http=2.0 2');
  });

  it('plaintext: PERMISSIVE serves it as unauthenticated, STRICT resets it', async () => {
    expect((await curl(`http://127.0.0.1:${permissive.port}/x`)).stdout).toBe('id=null mtls=false http=1.1');
    expect((await curl(...mtls(client), `https://localhost:${permissive.port}/x`)).stdout).toBe(
      `id=${UI} mtls=true http=1.1`,
    );
    const before = strict.rejects.length;
    const refused = await curl(`http://127.0.0.1:${strict.port}/x`);
    expect(refused.code).toBe(56);
    expect((await lastReject(strict, before + 1))?.reason).toBe('ERR_PLAINTEXT_REFUSED');
  });

  it('an SVID of an untrusted CA: refused by us as untrusted, and curl gets no answer', async () => {
    for (const served of [strict, permissive]) {
      const before = served.rejects.length;
      const res = await curl(...mtls(intruder), `https://localhost:${served.port}/x`);
      expect(res.code).not.toBe(0);
      expect(res.stdout).toBe('');
      expect((await lastReject(served, before + 1))?.reason).toBe('ERR_SVID_UNTRUSTED');
    }
  });

  it('a server chain curl does not trust: curl refuses it itself', async () => {
    const res = await curl(...mtls(client, otherCaPem), `https://localhost:${strict.port}/x`);
    expect(res.code).toBe(60);
    expect(res.stderr).toMatch(/SSL certificate problem: self-signed certificate in certificate chain/);
  });
});

describe.skipIf(skipWithout('openssl'))('openssl s_client against protocol tls', () => {
  const sClient = (
    port: number,
    cert: { cert: string; key: string; chain: string },
    version: string,
    trust = caPem,
  ) =>
    runPeer('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-verify_hostname',
      'localhost',
      '-CAfile',
      trust,
      '-cert',
      cert.cert,
      '-key',
      cert.key,
      // s_client sends the first certificate of -cert only: the intermediates go apart.
      '-cert_chain',
      cert.chain,
      '-verify_return_error',
      '-ign_eof',
      version,
    ]);

  // Server and client SVIDs of the same key type, both TLS versions.
  const cases = KEY_TYPES.flatMap((k) => [
    [k, '-tls1_3', 'TLSv1.3'],
    [k, '-tls1_2', 'TLSv1.2'],
  ]);
  it.each(cases)('%s SVIDs, %s: both sides verify', async (keyType, flag, version) => {
    const served = rawTls.get(keyType as KeyType) as Served;
    const svid = svids.get(keyType as KeyType) as ReturnType<typeof writeSvid>;
    const res = await sClient(served.port, svid, flag as string);
    expect(res.stdout).toContain('Verify return code: 0 (ok)');
    expect(res.stdout).toContain(`id=${UI} version=${version}`);
  });

  it('an untrusted client SVID: we refuse it (ERR_SVID_UNTRUSTED), s_client reads nothing', async () => {
    const served = rawTls.get('ec-p256') as Served;
    for (const flag of ['-tls1_3', '-tls1_2']) {
      const before = served.rejects.length;
      const res = await sClient(served.port, intruder, flag);
      expect(res.stdout).not.toContain('id=');
      expect((await lastReject(served, before + 1))?.reason).toBe('ERR_SVID_UNTRUSTED');
    }
  });

  it('a server chain s_client does not trust: its own verify error', async () => {
    const res = await sClient((rawTls.get('ec-p256') as Served).port, client, '-tls1_3', otherCaPem);
    expect(res.code).not.toBe(0);
    expect(res.output).toMatch(/verify error:num=19:self-signed certificate in certificate chain/);
  });
});

describe.skipIf(skipWithout('go', 'golang-go'))('Go crypto/tls client (checks our URI SAN itself)', () => {
  let goPeer = '';
  beforeAll(async () => {
    goPeer = await buildGoPeer(files.dir);
  }, 120_000);
  const go = (port: number, cert: { cert: string; key: string }, expect = BOARDS, ...extra: string[]) =>
    runPeer(goPeer, [
      'client',
      `127.0.0.1:${port}`,
      'localhost',
      caPem,
      cert.cert,
      cert.key,
      expect,
      '/go',
      ...extra,
    ]);

  it.each([[[]], [['tls12']]])('valid on both sides (%s)', async (extra) => {
    const res = await go(strict.port, client, BOARDS, ...(extra as string[]));
    expect(res.stdout).toBe(`server-id ${BOARDS}\nstatus 200\nid=${UI} mtls=true http=1.1\n`);
  });

  it('against PERMISSIVE: the Go client is an mTLS caller there too', async () => {
    const res = await go(permissive.port, client);
    expect(res.stdout).toBe(`server-id ${BOARDS}\nstatus 200\nid=${UI} mtls=true http=1.1\n`);
  });

  it('a server ID it does not expect: the Go client refuses it', async () => {
    const res = await go(strict.port, client, 'spiffe://cluster.local/ns/demo/sa/other');
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(
      `refused: server URI SAN ${BOARDS}, want spiffe://cluster.local/ns/demo/sa/other`,
    );
  });

  it('an untrusted Go client: refused by us, the Go client sees no answer', async () => {
    const before = strict.rejects.length;
    const res = await go(strict.port, intruder);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/refused: /);
    expect((await lastReject(strict, before + 1))?.reason).toBe('ERR_SVID_UNTRUSTED');
  });
});

describe.skipIf(skipWithout('python3'))('Python ssl client (CERT_REQUIRED, check_hostname, URI SAN)', () => {
  const py = (port: number, cert: { cert: string; key: string }, expect = BOARDS, ...extra: string[]) =>
    runPeer('python3', [
      join(FIXTURES, 'peer.py'),
      'client',
      '127.0.0.1',
      String(port),
      'localhost',
      caPem,
      cert.cert,
      cert.key,
      expect,
      ...extra,
    ]);

  it.each([
    ['TLSv1.3', []],
    ['TLSv1.2', ['tls12']],
  ])('valid on both sides, %s', async (version, extra) => {
    const res = await py(strict.port, client, BOARDS, ...(extra as string[]));
    expect(res.stdout).toContain(`server-id ${BOARDS} ${version}`);
    expect(res.stdout).toContain(`id=${UI} mtls=true http=1.1`);
  });

  it('against PERMISSIVE: an mTLS caller there too', async () => {
    const res = await py(permissive.port, client);
    expect(res.stdout).toContain(`id=${UI} mtls=true http=1.1`);
  });

  it('a server ID it does not expect, and a chain it does not trust: Python refuses', async () => {
    const wrongId = await py(strict.port, client, 'spiffe://cluster.local/ns/demo/sa/other');
    expect(wrongId.stdout).toContain(`refused: server URI SAN ${BOARDS}`);
    const untrusted = await runPeer('python3', [
      join(FIXTURES, 'peer.py'),
      'client',
      '127.0.0.1',
      String(strict.port),
      'localhost',
      otherCaPem,
      client.cert,
      client.key,
      BOARDS,
    ]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stdout).toContain('CERTIFICATE_VERIFY_FAILED');
  });

  it('an untrusted Python client: refused by us', async () => {
    const before = strict.rejects.length;
    const res = await py(strict.port, intruder);
    expect(res.stdout).not.toContain('id=');
    expect((await lastReject(strict, before + 1))?.reason).toBe('ERR_SVID_UNTRUSTED');
  });
});

describe.skipIf(skipWithout('nginx') || skipWithout('curl'))(
  'nginx reverse proxy (proxy_ssl_certificate, proxy_ssl_verify on)',
  () => {
    let port = 0;
    let prefix = '';
    beforeAll(async () => {
      port = await freePort();
      prefix = join(files.dir, 'nginx');
      const upstream = (location: string, cert: { cert: string; key: string }, trusted: string) => `
    location ${location} {
      proxy_pass https://127.0.0.1:${strict.port};
      proxy_ssl_certificate ${cert.cert};
      proxy_ssl_certificate_key ${cert.key};
      proxy_ssl_trusted_certificate ${trusted};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 3;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
    }`;
      const conf = files.write(
        'nginx/nginx.conf',
        `worker_processes 1;
error_log ${prefix}/error.log info;
pid ${prefix}/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    ${upstream('/good', client, caPem)}
    ${upstream('/intruder', intruder, caPem)}
    ${upstream('/untrusted', client, otherCaPem)}
  }
}
`,
      );
      await startPeer(
        'nginx',
        ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off; master_process off;'],
        port,
      );
    });
    const get = (path: string) =>
      runPeer('curl', ['-sS', '--max-time', '5', '-w', ' %{http_code}', `http://127.0.0.1:${port}${path}`]);
    const errorLog = async () => (await runPeer('cat', [join(prefix, 'error.log')])).stdout;

    it('nginx verifies our chain and name; we see nginx SVID', async () => {
      expect((await get('/good')).stdout).toBe(`id=${UI} mtls=true http=1.0 200`);
    });

    it('an untrusted nginx SVID: we refuse it, nginx answers 502', async () => {
      const before = strict.rejects.length;
      expect((await get('/intruder')).stdout).toMatch(/ 502$/);
      expect((await lastReject(strict, before + 1))?.reason).toBe('ERR_SVID_UNTRUSTED');
    });

    it('our chain not in its trusted certificates: nginx refuses it and logs why', async () => {
      expect((await get('/untrusted')).stdout).toMatch(/ 502$/);
      expect(await errorLog()).toMatch(
        /upstream SSL certificate verify error: \(19:self-signed certificate in certificate chain\)/,
      );
    });
  },
);

describe.skipIf(skipWithout('haproxy') || skipWithout('curl'))(
  'haproxy client-side proxy (server ssl crt ca-file verify required)',
  () => {
    let port = 0;
    let haproxy: Awaited<ReturnType<typeof startPeer>>;
    beforeAll(async () => {
      port = await freePort();
      const server = (name: string, crt: string, caFile: string) => `
backend ${name}
  server boards 127.0.0.1:${strict.port} ssl crt ${crt} ca-file ${caFile} verify required verifyhost localhost sni str(localhost)`;
      const conf = files.write(
        'haproxy.cfg',
        `global
  log stdout format raw local0
defaults
  mode http
  log global
  log-format "%HU %ST %[ssl_bc_err_str]"
  timeout connect 3s
  timeout client 5s
  timeout server 5s
  retries 0
frontend in
  bind 127.0.0.1:${port}
  use_backend intruder if { path_beg /intruder }
  use_backend untrusted if { path_beg /untrusted }
  default_backend good
${server('good', client.both, caPem)}
${server('intruder', intruder.both, caPem)}
${server('untrusted', client.both, otherCaPem)}
`,
      );
      haproxy = await startPeer('haproxy', ['-f', conf, '-db'], port);
    });
    const get = (path: string) =>
      runPeer('curl', ['-sS', '--max-time', '5', '-w', ' %{http_code}', `http://127.0.0.1:${port}${path}`]);

    it('haproxy verifies our chain and name; we see its SPIFFE ID', async () => {
      expect((await get('/good')).stdout).toBe(`id=${UI} mtls=true http=1.1 200`);
    });

    it('an untrusted haproxy SVID: we refuse it', async () => {
      const before = strict.rejects.length;
      expect((await get('/intruder')).stdout).toMatch(/ 50[23]$/);
      expect((await lastReject(strict, before + 1))?.reason).toBe('ERR_SVID_UNTRUSTED');
    });

    it('our chain not under its ca-file: haproxy refuses it and logs the verify error', async () => {
      expect((await get('/untrusted')).stdout).toMatch(/ 503$/);
      const verifyFailed = /\/untrusted 503 .*certificate verify failed/;
      expect(await outputOf(haproxy, verifyFailed)).toMatch(verifyFailed);
    });
  },
);

// Server and client SVIDs of one key type, both TLS versions, through each peer that speaks HTTP.
describe.skipIf(skipWithout('curl') || skipWithout('go', 'golang-go') || skipWithout('python3'))(
  'every SVID key type through curl, Go (TLS 1.2 and 1.3) and Python (TLS 1.3)',
  () => {
    let goPeer = '';
    beforeAll(async () => {
      goPeer = await buildGoPeer(files.dir);
    }, 120_000);

    it.each(
      KEY_TYPES.flatMap((k) => [
        [k, '1.3'],
        [k, '1.2'],
      ]),
    )('%s over TLS %s', async (keyType, version) => {
      const served = h1ByKey.get(keyType as KeyType) as Served;
      const svid = svids.get(keyType as KeyType) as ReturnType<typeof writeSvid>;
      const tls12 = version === '1.2';
      const want = `id=${UI} mtls=true http=1.1`;
      const curled = await runPeer('curl', [
        '-sS',
        '--max-time',
        '5',
        ...(tls12 ? ['--tlsv1.2', '--tls-max', '1.2'] : ['--tlsv1.3']),
        '--cacert',
        caPem,
        '--cert',
        svid.cert,
        '--key',
        svid.key,
        `https://localhost:${served.port}/k`,
      ]);
      expect(curled.stdout).toBe(want);
      const gone = await runPeer(goPeer, [
        'client',
        `127.0.0.1:${served.port}`,
        'localhost',
        caPem,
        svid.cert,
        svid.key,
        BOARDS,
        '/k',
        ...(tls12 ? ['tls12'] : []),
      ]);
      expect(gone.stdout).toBe(`server-id ${BOARDS}\nstatus 200\n${want}\n`);
      // Python starts slowly: TLS 1.2 with Python is in its own tests above.
      if (tls12) return;
      const py = await runPeer('python3', [
        join(FIXTURES, 'peer.py'),
        'client',
        '127.0.0.1',
        String(served.port),
        'localhost',
        caPem,
        svid.cert,
        svid.key,
        BOARDS,
      ]);
      expect(py.stdout).toContain(`server-id ${BOARDS} TLSv1.3`);
      expect(py.stdout).toContain(want);
    });
  },
);
