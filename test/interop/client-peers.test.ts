// createMtlsDispatcher, createMtlsAgent and connectMtls as clients, real servers that require a
// client certificate: nginx (ssl_verify_client on), haproxy (verify required), openssl s_server
// -Verify, a Go tls.Listen server (RequireAndVerifyClientCert, then the URI SAN) and Python's ssl
// (CERT_REQUIRED, then the URI SAN). Our side verifies the server's SVID by SPIFFE ID.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMtlsAgent } from '../../src/client/agent.js';
import { connectMtls } from '../../src/client/connect-mtls.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { createLocalCa, type KeyType } from '../../src/identity/local-ca.js';
import type { IdentitySource } from '../../src/identity/source.js';
import { getPeer, isSidecarlessError } from '../../src/index.js';
import { fixedIdentity } from '../helpers/client-identity.js';
import { skipWithout } from '../helpers/programs.js';
import {
  buildGoPeer,
  FIXTURES,
  freePort,
  KEY_TYPES,
  outputOf,
  type Peer,
  startPeer,
  workDir,
  writeSvid,
} from './peers.js';

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const other = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const files = workDir('client');
const caPem = files.write('ca.pem', ca.bundle().toPem());
const boards = writeSvid(files, 'boards', ca.issue('/ns/demo/sa/boards'));
// A server with the right SPIFFE ID from a CA we do not trust.
const impostor = writeSvid(files, 'impostor', other.issue('/ns/demo/sa/boards'));
const client = ca.identity('/ns/demo/sa/app-ui');
// Our SPIFFE ID, another CA's SVID: every verifying server refuses it.
const intruder = fixedIdentity(other.issue('/ns/demo/sa/app-ui'), ca.bundles());
/** Our SVID with every key type (RSA keys are slow to make: once per file). */
const byKeyType = new Map(
  KEY_TYPES.map((k) => [k, fixedIdentity(ca.issue('/ns/demo/sa/app-ui', { keyType: k }), ca.bundles())]),
);
afterAll(async () => {
  await client.close();
  await ca.close();
  await other.close();
});

const disposers: (() => unknown)[] = [];
afterAll(async () => {
  for (const dispose of disposers) await dispose();
});

function dispatcher(port: number, identity: IdentitySource = client) {
  const d = createMtlsDispatcher({ identity, destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } } });
  disposers.push(() => d.destroy());
  return d;
}

/** A fetch through the dispatcher: the status, body and server ID, or the error's cause. */
async function fetchVia(port: number, identity?: IdentitySource, path = '/') {
  try {
    const res = await undiciFetch(`http://127.0.0.1:${port}${path}`, {
      dispatcher: dispatcher(port, identity),
    });
    return {
      status: res.status,
      body: await res.text(),
      server: res.headers.get(PEER_ID_HEADER),
      cause: undefined,
    };
  } catch (err) {
    return { status: 0, body: '', server: null, cause: (err as { cause?: unknown }).cause };
  }
}

/** An https.request through createMtlsAgent: the body and getPeer(res), or the error. */
function agentGet(port: number, identity: IdentitySource = client) {
  const agent = createMtlsAgent({ identity, destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } } });
  disposers.push(() => agent.destroy());
  return new Promise<{ body: string; server: string | undefined; error: unknown }>((resolve) => {
    https
      .get(`https://127.0.0.1:${port}/agent`, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ body, server: getPeer(res).id?.toString(), error: undefined }));
      })
      .on('error', (error) => resolve({ body: '', server: undefined, error }));
  });
}

/** connectMtls, one HTTP/1.0 request, everything read until the server closes (or the error). */
async function rawGet(port: number, identity: IdentitySource = client) {
  const socket = await connectMtls({ identity, host: '127.0.0.1', port, expect: BOARDS, timeout: 5_000 });
  const protocol = socket.getProtocol();
  return new Promise<{ data: string; server: string | undefined; error: unknown; protocol: string | null }>(
    (resolve) => {
      let data = '';
      let error: unknown;
      socket.setEncoding('utf8');
      socket.on('data', (d) => {
        data += d;
      });
      socket.on('error', (e) => {
        error = e;
      });
      socket.on('close', () => resolve({ data, server: getPeer(socket).id?.toString(), error, protocol }));
      socket.end('GET / HTTP/1.0\r\n\r\n');
    },
  );
}

const refused = (cause: unknown) => isSidecarlessError(cause, 'ERR_REFUSED_BY_SERVER');
const untrusted = (cause: unknown) => isSidecarlessError(cause, 'ERR_SVID_UNTRUSTED');

describe.skipIf(skipWithout('nginx'))('nginx (ssl_verify_client on)', () => {
  let port = 0;
  let impostorPort = 0;
  let tls12Port = 0;
  let prefix = '';
  beforeAll(async () => {
    port = await freePort();
    impostorPort = await freePort();
    tls12Port = await freePort();
    prefix = join(files.dir, 'nginx');
    const server = (listen: number, cert: { cert: string; key: string }, protocols = 'TLSv1.2 TLSv1.3') => `
  server {
    listen 127.0.0.1:${listen} ssl;
    ssl_protocols ${protocols};
    ssl_certificate ${cert.cert};
    ssl_certificate_key ${cert.key};
    ssl_client_certificate ${caPem};
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / { return 200 "verify=$ssl_client_verify serial=$ssl_client_serial $ssl_protocol"; }
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
${server(port, boards)}
${server(impostorPort, impostor)}
${server(tls12Port, boards, 'TLSv1.2')}
}
`,
    );
    await startPeer(
      'nginx',
      ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off; master_process off;'],
      port,
    );
  });
  /** nginx's error log once it matches `pattern` (nginx logs a close when it notices it), or after 2 s. */
  const errorLog = async (pattern: RegExp) => {
    let text = '';
    for (let i = 0; i < 80; i++) {
      text = readFileSync(join(prefix, 'error.log'), 'utf8');
      if (pattern.test(text)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    return text;
  };

  it('the dispatcher: nginx verifies our SVID, we see its SPIFFE ID', async () => {
    const res = await fetchVia(port);
    expect(res).toMatchObject({ status: 200, server: BOARDS });
    expect(res.body).toBe(`verify=SUCCESS serial=${client.current().svid.leaf.serialNumber} TLSv1.3`);
  });

  it('the agent: the same through https.request, TLS 1.3 and 1.2', async () => {
    const res = await agentGet(port);
    expect(res.server).toBe(BOARDS);
    expect(res.body).toMatch(/^verify=SUCCESS .* TLSv1\.3$/);
    const old = await agentGet(tls12Port);
    expect(old.server).toBe(BOARDS);
    expect(old.body).toMatch(/^verify=SUCCESS .* TLSv1\.2$/);
  });

  it('an untrusted client SVID: nginx answers 400 and logs the verify error', async () => {
    // nginx finishes the handshake and refuses at the HTTP layer, with its own 400 page.
    const res = await fetchVia(port, intruder);
    expect(res.status).toBe(400);
    expect(res.body).toContain('The SSL certificate error');
    const verifyError = /client SSL certificate verify error: \(20:unable to get local issuer certificate\)/;
    expect(await errorLog(verifyError)).toMatch(verifyError);
  });

  it('a server SVID of an untrusted CA: refused on our side before any request byte', async () => {
    const res = await fetchVia(impostorPort);
    expect(untrusted(res.cause), String(res.cause)).toBe(true);
    // We verify the server's chain as soon as it arrives and close: nginx sees the handshake end.
    const closed = new RegExp(
      `peer closed connection in SSL handshake while SSL handshaking, client: 127\\.0\\.0\\.1, server: 127\\.0\\.0\\.1:${impostorPort}`,
    );
    expect(await errorLog(closed)).toMatch(closed);
  });
});

describe.skipIf(skipWithout('haproxy'))('haproxy (bind ssl crt ca-file verify required)', () => {
  let port = 0;
  let haproxy: Peer;
  beforeAll(async () => {
    port = await freePort();
    const conf = files.write(
      'haproxy-server.cfg',
      `global
  log stdout format raw local0
defaults
  mode http
  log global
  log-format "%HU %ST verify=%[ssl_c_verify] %sslv"
  timeout connect 3s
  timeout client 5s
  timeout server 5s
frontend in
  bind 127.0.0.1:${port} ssl crt ${boards.both} ca-file ${caPem} verify required
  http-request return status 200 content-type text/plain lf-string "haproxy verify=%[ssl_c_verify] used=%[ssl_c_used]"
`,
    );
    haproxy = await startPeer('haproxy', ['-f', conf, '-db'], port);
  });

  it('the dispatcher and the agent: haproxy verifies our SVID, we see its SPIFFE ID', async () => {
    expect(await fetchVia(port, undefined, '/haproxy')).toMatchObject({
      status: 200,
      server: BOARDS,
      body: 'haproxy verify=0 used=1',
    });
    expect(await agentGet(port)).toMatchObject({ server: BOARDS, body: 'haproxy verify=0 used=1' });
    expect(await outputOf(haproxy, /\/agent 200/)).toMatch(/\/haproxy 200 verify=0 TLSv1\.3/);
  });

  it('an untrusted client SVID: haproxy aborts the handshake, we report ERR_REFUSED_BY_SERVER', async () => {
    const res = await fetchVia(port, intruder);
    expect(refused(res.cause), String(res.cause)).toBe(true);
    expect(await outputOf(haproxy, /SSL client CA chain cannot be verified/)).toMatch(
      /SSL client CA chain cannot be verified/,
    );
  });
});

describe.skipIf(skipWithout('openssl'))('openssl s_server -Verify (connectMtls)', () => {
  const sServer = async (version: string, cert = boards) => {
    const port = await freePort();
    const peer = await startPeer(
      'openssl',
      [
        's_server',
        version,
        '-accept',
        `127.0.0.1:${port}`,
        '-cert',
        cert.cert,
        '-key',
        cert.key,
        '-cert_chain',
        cert.chain,
        '-CAfile',
        caPem,
        '-Verify',
        '3',
        '-verify_return_error',
        '-www',
      ],
      port,
    );
    return { port, peer };
  };
  let servers: Record<string, { port: number; peer: Peer }> = {};
  beforeAll(async () => {
    servers = { '-tls1_3': await sServer('-tls1_3'), '-tls1_2': await sServer('-tls1_2') };
  });

  it.each(
    KEY_TYPES.flatMap((k) => [
      [k, '-tls1_3', 'TLSv1.3'],
      [k, '-tls1_2', 'TLSv1.2'],
    ]),
  )(
    'a %s client SVID over %s: s_server verifies it, we see its SPIFFE ID',
    async (keyType, flag, version) => {
      const identity = byKeyType.get(keyType as KeyType) as IdentitySource;
      const { port } = servers[flag as string] as { port: number };
      const res = await rawGet(port, identity);
      expect(res.error).toBeUndefined();
      expect(res.server).toBe(BOARDS);
      expect(res.protocol).toBe(version);
      expect(res.data).toContain('Client certificate');
      expect(res.data).toContain(`URI:${UI}`);
    },
  );

  it.each(['-tls1_3', '-tls1_2'])(
    'an untrusted client SVID over %s: the alert is ERR_REFUSED_BY_SERVER; s_server prints its verify error',
    async (flag) => {
      const { port, peer } = servers[flag] as { port: number; peer: Peer };
      const outcome = await rawGet(port, intruder).catch((err: unknown) => ({ error: err, data: '' }));
      expect(refused(outcome.error), String(outcome.error)).toBe(true);
      // The alert OpenSSL sent, named in our message whatever Node's OpenSSL spells it.
      expect(String((outcome.error as Error).message)).toContain('sent the TLS alert');
      expect(outcome.data).toBe('');
      expect(await outputOf(peer, /verify error:num=20:unable to get local issuer certificate/)).toMatch(
        /verify error:num=20:unable to get local issuer certificate/,
      );
    },
  );
});

describe.skipIf(skipWithout('go', 'golang-go'))('Go tls.Listen (RequireAndVerifyClientCert, URI SAN)', () => {
  let port = 0;
  let go: Peer;
  beforeAll(async () => {
    const binary = await buildGoPeer(files.dir);
    port = await freePort();
    go = await startPeer(
      binary,
      ['server', `127.0.0.1:${port}`, caPem, boards.cert, boards.key, 'spiffe://cluster.local/ns/demo/'],
      port,
    );
  }, 120_000);

  it('the agent and connectMtls: Go verifies our SVID and URI SAN, we see its SPIFFE ID', async () => {
    expect(await agentGet(port)).toMatchObject({ server: BOARDS, body: `go-server client-id ${UI}` });
    const raw = await rawGet(port);
    expect(raw.server).toBe(BOARDS);
    expect(raw.data).toContain(`go-server client-id ${UI}`);
  });

  it.each(KEY_TYPES)('a %s client SVID through connectMtls: Go verifies it', async (keyType) => {
    const raw = await rawGet(port, byKeyType.get(keyType) as IdentitySource);
    expect(raw.server).toBe(BOARDS);
    expect(raw.protocol).toBe('TLSv1.3');
    expect(raw.data).toContain(`go-server client-id ${UI}`);
  });

  it('an untrusted client SVID: Go refuses the chain, we report ERR_REFUSED_BY_SERVER', async () => {
    const res = await agentGet(port, intruder);
    expect(refused(res.error), String(res.error)).toBe(true);
    expect(await outputOf(go, /refused: .*certificate signed by unknown authority/)).toMatch(
      /x509: certificate signed by unknown authority/,
    );
  });

  it('a trusted SVID outside the URI SAN Go accepts: Go refuses it by SAN', async () => {
    const outsider = ca.identity('/ns/ops/sa/backup');
    disposers.push(() => outsider.close());
    const res = await agentGet(port, outsider);
    expect(refused(res.error), String(res.error)).toBe(true);
    expect(await outputOf(go, /client URI SAN/)).toContain(
      'refused: client URI SAN spiffe://cluster.local/ns/ops/sa/backup, want spiffe://cluster.local/ns/demo/*',
    );
  });
});

describe.skipIf(skipWithout('python3'))('Python ssl server (CERT_REQUIRED, URI SAN)', () => {
  let port = 0;
  let py: Peer;
  beforeAll(async () => {
    port = await freePort();
    py = await startPeer(
      'python3',
      [
        join(FIXTURES, 'peer.py'),
        'server',
        String(port),
        caPem,
        boards.cert,
        boards.key,
        'spiffe://cluster.local/ns/demo/',
      ],
      port,
    );
  });

  it('the dispatcher: Python verifies our SVID and URI SAN, we see its SPIFFE ID', async () => {
    expect(await fetchVia(port)).toMatchObject({
      status: 200,
      server: BOARDS,
      body: `python-server client-id ${UI}`,
    });
    expect(await outputOf(py, /served /)).toContain(`served ${UI}`);
  });

  it('an untrusted client SVID: Python refuses the chain, we report ERR_REFUSED_BY_SERVER', async () => {
    const res = await fetchVia(port, intruder);
    expect(refused(res.cause), String(res.cause)).toBe(true);
    expect(await outputOf(py, /CERTIFICATE_VERIFY_FAILED|certificate verify failed/)).toMatch(
      /certificate verify failed/,
    );
  });

  it('a trusted SVID outside the URI SAN Python accepts: refused, by SAN', async () => {
    const outsider = ca.identity('/ns/ops/sa/backup');
    disposers.push(() => outsider.close());
    const res = await fetchVia(port, outsider);
    expect(refused(res.cause), String(res.cause)).toBe(true);
    expect(await outputOf(py, /client URI SAN/)).toContain(
      'refused: client URI SAN spiffe://cluster.local/ns/ops/sa/backup',
    );
  });
});
