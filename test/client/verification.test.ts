import { constants, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import tls from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { createMtlsServer, getPeer, isSidecarlessError } from '../../src/index.js';
import { type BadSvidKind, badSvidKinds, createTestCa } from '../../src/testing/index.js';
import { fixedIdentity } from '../helpers/client-identity.js';
import { caOf, httpsServer, pemOf } from '../helpers/client-servers.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { expectedReason } from '../helpers/reasons.js';
import { listen, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const uiSvid = ca.issue('/ns/demo/sa/app-ui');
const client = ca.identity('/ns/demo/sa/app-ui');
afterAll(() => ca.close());

async function causeOf(promise: Promise<unknown>): Promise<unknown> {
  const err = await promise.then(
    () => expect.fail('the request succeeded'),
    (e: unknown) => e,
  );
  return (err as { cause?: unknown }).cause;
}

describe('server authentication', () => {
  const kinds = Object.keys(badSvidKinds) as BadSvidKind[];

  it.each(kinds)('refuses a server presenting a %s chain with its code', async (kind) => {
    const bad = ca.issueBad(kind, '/ns/demo/sa/boards');
    // Old algorithms and small keys are refused by sidecarless, not by OpenSSL's security level.
    const srv = await httpsServer(pemOf(bad), { ciphers: 'DEFAULT:@SECLEVEL=0' });
    const dispatcher = createMtlsDispatcher({
      identity: fixedIdentity(uiSvid, bad.bundles),
      destinations: { '*': { expect: '*' } },
    });
    onCleanup(() => dispatcher.destroy());
    const cause = await causeOf(
      undiciFetch(`http://127.0.0.1:${srv.port}/x`, { dispatcher, method: 'POST', body: 'secret' }),
    );
    expect(isSidecarlessError(cause), String(cause)).toBe(true);
    // Exactly the documented reason (test/helpers/reasons.ts, docs/errors.md).
    expect((cause as { code: string }).code).toBe(expectedReason(kind));
    expect((cause as Error).message).toContain(`127.0.0.1:${srv.port}`);
    expect(srv.seen).toEqual([]);
  });

  it('control: the same setup accepts a good SVID', async () => {
    const srv = await httpsServer(pemOf(ca.issue('/ns/demo/sa/boards')));
    const dispatcher = createMtlsDispatcher({
      identity: fixedIdentity(uiSvid, ca.bundles()),
      destinations: { '*': { expect: '*' } },
    });
    onCleanup(() => dispatcher.destroy());
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/x`, { dispatcher });
    expect(res.headers.get(PEER_ID_HEADER)).toBe('spiffe://cluster.local/ns/demo/sa/boards');
  });

  it('refuses a server whose trust domain has no bundle, and fails without an identity', async () => {
    const other = createTestCa({ trustDomain: 'other.example' });
    onCleanup(() => other.close());
    const srv = await httpsServer(pemOf(other.issue('/ns/demo/sa/boards')));
    const identity = mutableIdentity(uiSvid, ca.bundles());
    const dispatcher = createMtlsDispatcher({ identity, destinations: { '*': { expect: '*' } } });
    onCleanup(() => dispatcher.destroy());
    const url = `http://127.0.0.1:${srv.port}/x`;
    expect(await causeOf(undiciFetch(url, { dispatcher }))).toMatchObject({ code: 'ERR_SVID_NO_BUNDLE' });
    identity.withdraw();
    const cause = await causeOf(undiciFetch(url, { dispatcher }));
    expect(cause).toMatchObject({ code: 'ERR_NO_IDENTITY' });
    expect((cause as Error).message).toContain(`127.0.0.1:${srv.port}`);
  });

  it('talks to createMtlsServer (STRICT): both sides see each other', async () => {
    const server = createMtlsServer(
      {
        identity: ca.identity('/ns/demo/sa/boards'),
        authorize: { '*': 'spiffe://cluster.local/ns/demo/sa/app-ui' },
      },
      (req, res) => res.end(`hello ${getPeer(req).id}`),
    );
    const { port } = await listen(server);
    const dispatcher = createMtlsDispatcher({
      identity: client,
      destinations: { [`127.0.0.1:${port}`]: { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
    });
    onCleanup(() => dispatcher.destroy());
    const res = await undiciFetch(`http://127.0.0.1:${port}/shareditems`, { dispatcher });
    expect(await res.text()).toBe('hello spiffe://cluster.local/ns/demo/sa/app-ui');
    expect(res.headers.get(PEER_ID_HEADER)).toBe('spiffe://cluster.local/ns/demo/sa/boards');
  });
});

describe('SNI', () => {
  it('is the URL host name, and absent for an IP literal', async () => {
    const names: string[] = [];
    const srv = await httpsServer(pemOf(ca.issue('/ns/demo/sa/boards')), {
      SNICallback: (name, cb) => {
        names.push(name);
        cb(null, undefined);
      },
    });
    const dispatcher = createMtlsDispatcher({ identity: client, destinations: { '*': { expect: '*' } } });
    onCleanup(() => dispatcher.destroy());
    await (await undiciFetch(`http://LocalHost:${srv.port}/a`, { dispatcher })).text();
    await (await undiciFetch(`http://127.0.0.1:${srv.port}/b`, { dispatcher })).text();
    expect(names).toEqual(['localhost']);
    expect(srv.seen.map((r) => r.url)).toEqual(['/a', '/b']);
  });
});

describe('TLS session resumption', () => {
  it('never skips the identity check: a server that changed its SPIFFE ID between connections is refused', async () => {
    // A server that issues tickets it will accept again after its certificate changed
    // (docs/node-tls.md §2): a client that resumed would never see the new certificate.
    const ticketKeys = randomBytes(48);
    const first = pemOf(ca.issue('/ns/demo/sa/boards'));
    const srv = await httpsServer(first, { ticketKeys, maxVersion: 'TLSv1.2' });
    const url = `http://127.0.0.1:${srv.port}/x`;
    const dispatcher = createMtlsDispatcher({
      identity: client,
      destinations: { '*': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
    });
    onCleanup(() => dispatcher.destroy());
    const ok = await undiciFetch(url, { dispatcher, headers: { connection: 'close' } });
    expect(ok.headers.get(PEER_ID_HEADER)).toBe('spiffe://cluster.local/ns/demo/sa/boards');
    await ok.text();

    // A raw client holding a ticket from the first certificate...
    const raw = tls.connect({
      port: srv.port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      maxVersion: 'TLSv1.2',
    });
    const [session] = (await once(raw, 'session')) as [Buffer];
    raw.destroy();
    const swapped = pemOf(ca.issue('/ns/demo/sa/impostor'));
    srv.server.setSecureContext({ ...swapped, ticketKeys });
    // ...resumes after the swap without seeing the new certificate (the platform fact)...
    const resumed = tls.connect({
      port: srv.port,
      host: '127.0.0.1',
      session,
      rejectUnauthorized: false,
      maxVersion: 'TLSv1.2',
    });
    await once(resumed, 'secureConnect');
    expect(resumed.isSessionReused()).toBe(true);
    expect(resumed.getPeerX509Certificate()).toBeUndefined();
    resumed.destroy();

    // ...while the dispatcher makes a full handshake and refuses the new identity.
    const cause = await causeOf(undiciFetch(url, { dispatcher }));
    expect(cause).toMatchObject({
      code: 'ERR_PEER_ID_MISMATCH',
      detail: { peer: 'spiffe://cluster.local/ns/demo/sa/impostor' },
    });
  });

  it('offers no session to a TLS 1.3 server either: every connection is a full handshake', async () => {
    const srv = await httpsServer(pemOf(ca.issue('/ns/demo/sa/boards')), { ticketKeys: randomBytes(48) });
    const resumed: boolean[] = [];
    srv.server.on('secureConnection', (s: tls.TLSSocket) =>
      s.on('secure', () => {}).once('data', () => resumed.push(s.isSessionReused())),
    );
    const dispatcher = createMtlsDispatcher({ identity: client, destinations: { '*': { expect: '*' } } });
    onCleanup(() => dispatcher.destroy());
    for (let i = 0; i < 3; i++) {
      const res = await undiciFetch(`http://127.0.0.1:${srv.port}/${i}`, {
        dispatcher,
        headers: { connection: 'close' },
      });
      await res.text();
    }
    expect(resumed).toEqual([false, false, false]);
    expect(srv.connections()).toBe(3);
  });
});

describe('HTTPS agents of other libraries see the dispatcher as a normal client', () => {
  it('a node:https server with requestCert sees the client SVID', async () => {
    const srv = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) });
    const dispatcher = createMtlsDispatcher({ identity: client, destinations: { '*': { expect: '*' } } });
    onCleanup(() => dispatcher.destroy());
    await (await undiciFetch(`https://127.0.0.1:${srv.port}/`, { dispatcher })).text();
    expect(srv.seen[0]?.clientId).toBe('spiffe://cluster.local/ns/demo/sa/app-ui');
    expect(https.globalAgent).toBeDefined();
    expect(constants.SSL_OP_NO_TICKET).toBeGreaterThan(0);
  });
});
