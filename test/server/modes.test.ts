import https from 'node:https';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  type BundleSet,
  createLocalCa,
  createMtlsServer,
  getPeer,
  type MtlsServerOptions,
  type RejectEvent,
} from '../../src/index.js';
import { type BadSvidKind, badSvidKinds, createTestCa } from '../../src/testing/index.js';
import { expectedReason } from '../helpers/reasons.js';
import {
  type ClientCredentials,
  credentialsOf,
  listen,
  mtlsRequest,
  plainRequest,
  record,
  run,
  tempFiles,
} from '../helpers/server.js';

// Clients live in cluster.local; the server in its own trust domain, trusting cluster.local as
// federated. Each bad-certificate scenario brings the bundles its verifier must trust.
const clients = createTestCa({ trustDomain: 'cluster.local' });
const serverCa = createLocalCa({ trustDomain: 'server.test' });
const good = credentialsOf(clients.issue('/ns/demo/sa/app-ui'));

function serverIdentity(bundles: BundleSet = clients.bundles()) {
  return serverCa.identity('/ns/srv/sa/boards', { federatedBundles: bundles.bundles() });
}

function start(
  options: Partial<MtlsServerOptions> & { readonly protocol?: 'http1' } = {},
  bundles?: BundleSet,
) {
  let calls = 0;
  const server = createMtlsServer({ identity: serverIdentity(bundles), ...options }, (req, res) => {
    calls++;
    const peer = getPeer(req);
    res.end(
      JSON.stringify({ id: peer.id?.toString() ?? null, mtls: peer.mtls, tls: peer.tls, url: req.url }),
    );
  });
  const rejects = record<RejectEvent>(server, 'reject');
  return { server, rejects, calls: () => calls };
}

/** An HTTPS request whose outcome is reported instead of thrown. */
function attempt(
  port: number,
  client: ClientCredentials | undefined,
  extra: tls.ConnectionOptions = {},
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/shareditems',
        agent: false,
        ca: serverCa.bundle().toPem(),
        ...(client ?? {}),
        ...extra,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

describe('STRICT', () => {
  it('lets an mTLS peer through, with its identity on the request', async () => {
    const { server, calls } = start();
    const { port } = await listen(server);
    const res = await mtlsRequest(port, '/shareditems', good, serverCa.bundle());
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      id: 'spiffe://cluster.local/ns/demo/sa/app-ui',
      mtls: true,
      tls: true,
      url: '/shareditems',
    });
    expect(calls()).toBe(1);
  });

  it('resets a plaintext client, as the mesh lab shows: curl (56) Connection reset by peer', async () => {
    const { server, rejects, calls } = start();
    const { port } = await listen(server);
    const curl = await run('curl', ['-sS', `http://127.0.0.1:${port}/shareditems`]);
    expect(curl.code).toBe(56);
    expect(curl.stderr).toContain('Recv failure: Connection reset by peer');
    expect(rejects).toMatchObject([
      { reason: 'ERR_PLAINTEXT_REFUSED', phase: 'sniff', remoteAddress: '127.0.0.1' },
    ]);
    expect(calls()).toBe(0);
  });

  it('refuses a TLS client without a certificate, and no byte reaches the handler', async () => {
    const { server, rejects, calls } = start();
    const { port } = await listen(server);
    const res = await attempt(port, undefined);
    expect(res).toHaveProperty('error');
    expect(rejects).toMatchObject([{ reason: 'ERR_NO_CLIENT_CERTIFICATE', phase: 'handshake' }]);
    expect(calls()).toBe(0);
  });

  describe('refuses every bad-certificate kind of the testing kit, naming the reason', () => {
    const kinds = Object.keys(badSvidKinds) as BadSvidKind[];
    for (const kind of kinds) {
      it(kind, async () => {
        const bad = clients.issueBad(kind);
        const { server, rejects, calls } = start({}, bad.bundles);
        const { port } = await listen(server);
        // The weak kinds cannot even be loaded at OpenSSL's default security level: the test
        // client lowers it, the server refuses them all the same.
        const res = await attempt(
          port,
          { cert: bad.certChainPem(), key: bad.privateKeyPem() },
          { ciphers: 'DEFAULT:@SECLEVEL=0' },
        );
        expect(res, 'the client must not get a response').toHaveProperty('error');
        await expect.poll(() => rejects.length).toBe(1);
        expect(rejects[0]?.phase).toBe('handshake');
        // Exactly the documented reason (test/helpers/reasons.ts, docs/errors.md).
        expect(rejects[0]?.reason).toBe(expectedReason(kind));
        expect(calls()).toBe(0);
      });
    }
  });

  it('calls neither handler nor middleware for a bad client that sends its request in the handshake flight', async () => {
    const bad = clients.issueBad('leaf-is-ca');
    const { server, rejects, calls } = start({}, bad.bundles);
    let middleware = 0;
    server.prependListener('request', () => {
      middleware++;
    });
    const { port } = await listen(server);
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      cert: bad.certChainPem(),
      key: bad.privateKeyPem(),
      ca: serverCa.bundle().toPem(),
      checkServerIdentity: () => undefined,
      minVersion: 'TLSv1.3',
    });
    // TLS 1.3: the client's Finished and its first request leave together.
    socket.once('secureConnect', () => socket.write('GET /admin HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.on('error', () => {});
    socket.on('data', () => {});
    await new Promise((resolve) => socket.once('close', resolve));
    expect(rejects).toMatchObject([{ reason: 'ERR_SVID_LEAF_IS_CA' }]);
    expect(middleware).toBe(0);
    expect(calls()).toBe(0);
  });

  it('plaintextPaths: probes pass in plaintext, anything else is reset, checked per request', async () => {
    const { server, rejects, calls } = start({ plaintextPaths: ['/healthz', '/readyz'] });
    const { port } = await listen(server);
    expect(JSON.parse((await plainRequest(port, '/healthz')).body)).toMatchObject({
      mtls: false,
      url: '/healthz',
    });
    await expect(plainRequest(port, '/admin')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(rejects.at(-1)).toMatchObject({ reason: 'ERR_PLAINTEXT_REFUSED', phase: 'request' });
    // Pipelined on one connection: the first is served, the second never reaches the handler.
    const before = calls();
    const paths: string[] = [];
    server.prependListener('request', (req: { url?: string }) => paths.push(req.url ?? ''));
    const { createConnection } = await import('node:net');
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (d) => {
      received += d;
    });
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(received).toContain('HTTP/1.1 200');
    expect(paths).toEqual(['/healthz']);
    expect(calls() - before).toBe(1);
    // mTLS callers may use any path.
    expect((await mtlsRequest(port, '/admin', good, serverCa.bundle())).status).toBe(200);
  });

  it('accepts openssl s_client with a valid certificate, and refuses it with an invalid one', async () => {
    const { server, rejects } = start();
    const { port } = await listen(server);
    const bad = clients.issueBad('wrong-root');
    const files = tempFiles({
      'good.pem': good.cert,
      'good.key': good.key,
      'bad.pem': bad.certChainPem(),
      'bad.key': bad.privateKeyPem(),
      'ca.pem': serverCa.bundle().toPem(),
    });
    const request = 'GET /shareditems HTTP/1.1\r\nHost: boards\r\nConnection: close\r\n\r\n';
    const args = (cert: string, key: string) => [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-cert',
      cert,
      '-key',
      key,
      '-CAfile',
      files['ca.pem'] as string,
      '-quiet',
      '-ign_eof',
    ];
    const ok = await run('openssl', args(files['good.pem'] as string, files['good.key'] as string), request);
    expect(ok.stdout).toContain('HTTP/1.1 200 OK');
    expect(ok.stdout).toContain('spiffe://cluster.local/ns/demo/sa/app-ui');
    const refused = await run(
      'openssl',
      args(files['bad.pem'] as string, files['bad.key'] as string),
      request,
    );
    expect(refused.stdout).not.toContain('HTTP/1.1');
    expect(rejects).toMatchObject([{ reason: 'ERR_SVID_UNTRUSTED', phase: 'handshake' }]);
  });
});

describe('PERMISSIVE', () => {
  it('serves plaintext, TLS without a certificate and mTLS on one port, each with its peer', async () => {
    const { server } = start({ mode: 'PERMISSIVE' });
    const { port } = await listen(server);
    expect(JSON.parse((await plainRequest(port, '/a')).body)).toMatchObject({
      id: null,
      mtls: false,
      tls: false,
    });
    const noCert = (await attempt(port, undefined)) as { body: string };
    expect(JSON.parse(noCert.body)).toMatchObject({ id: null, mtls: false, tls: true });
    expect(JSON.parse((await mtlsRequest(port, '/a', good, serverCa.bundle())).body)).toMatchObject({
      id: 'spiffe://cluster.local/ns/demo/sa/app-ui',
      mtls: true,
    });
  });

  it('works both ways with the real curl', async () => {
    const { server } = start({ mode: 'PERMISSIVE' });
    const { port } = await listen(server);
    const files = tempFiles({ 'c.pem': good.cert, 'c.key': good.key, 'ca.pem': serverCa.bundle().toPem() });
    const plain = await run('curl', ['-sS', `http://127.0.0.1:${port}/x`]);
    expect(JSON.parse(plain.stdout)).toMatchObject({ mtls: false });
    // curl checks the host name against DNS/IP SANs, which SVIDs do not carry: -k here, the
    // server's side is what this test is about.
    const mtls = await run('curl', [
      '-sSk',
      '--cert',
      files['c.pem'] as string,
      '--key',
      files['c.key'] as string,
      `https://127.0.0.1:${port}/x`,
    ]);
    expect(JSON.parse(mtls.stdout)).toMatchObject({
      mtls: true,
      id: 'spiffe://cluster.local/ns/demo/sa/app-ui',
    });
  });

  it('refuses an invalid certificate: never downgraded to unauthenticated', async () => {
    const bad = clients.issueBad('expired');
    const { server, rejects, calls } = start({ mode: 'PERMISSIVE' }, bad.bundles);
    const { port } = await listen(server);
    expect(await attempt(port, { cert: bad.certChainPem(), key: bad.privateKeyPem() })).toHaveProperty(
      'error',
    );
    expect(rejects).toMatchObject([{ reason: 'ERR_SVID_EXPIRED' }]);
    expect(calls()).toBe(0);
  });
});

describe('DISABLE', () => {
  it('serves plaintext and closes a TLS ClientHello', async () => {
    const server = createMtlsServer({ mode: 'DISABLE' }, (req, res) => res.end(`plain ${getPeer(req).tls}`));
    const rejects = record<RejectEvent>(server, 'reject');
    const { port } = await listen(server);
    expect((await plainRequest(port, '/')).body).toBe('plain false');
    await expect(
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, rejectUnauthorized: false, agent: false }, resolve)
          .on('error', reject);
      }),
    ).rejects.toThrow();
    expect(rejects).toMatchObject([{ reason: 'ERR_TLS_REFUSED', phase: 'sniff' }]);
  });
});
