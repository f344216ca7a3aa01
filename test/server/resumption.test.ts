// Safe resumption (issue 14, section 1), opt-in with `resumption: true`: sessions resume, and a
// resumed connection is admitted only against the record of a full handshake the server admitted
// under the same ticket keys, verified again. Every way the issue names to get a ticket for a peer
// that must not come back is tried, on TLS 1.2 and 1.3.
import { fetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BundleSet,
  createLocalCa,
  createMtlsDispatcher,
  createMtlsServer,
  getPeer,
  type PeerEvent,
  type RejectEvent,
} from '../../src/index.js';
import { admissionTestHooks } from '../../src/server/server-core.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { credentialsOf, listen, onCleanup, record, tlsExchange } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const partner = createLocalCa({ trustDomain: 'partner.example' });
const forged = createLocalCa({ trustDomain: 'cluster.local' });
const viaIntermediate = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const ui = credentialsOf(ca.issue(UI));
const GET = 'GET / HTTP/1.1\r\nhost: boards\r\nconnection: close\r\n\r\n';
const VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

afterEach(() => {
  admissionTestHooks.refusalDelay = 0;
});

function echo(req: Parameters<typeof getPeer>[0], res: { end(s: string): void }): void {
  res.end(`${getPeer(req).id} resumed=${getPeer(req).resumed}`);
}

async function serve(bundles: BundleSet, options: Record<string, unknown> = {}) {
  const identity = mutableIdentity(ca.issue('/ns/demo/sa/boards'), bundles);
  onCleanup(() => identity.close());
  const server = createMtlsServer({ identity, resumption: true, ...options }, echo);
  const peers = record<PeerEvent>(server, 'peer');
  const rejects = record<RejectEvent>(server, 'reject');
  const { port } = await listen(server);
  return { identity, server, peers, rejects, port };
}

/** A full handshake, then a second connection offering its session. */
async function twice(port: number, client: object, between?: () => unknown | Promise<unknown>) {
  const first = await tlsExchange(port, { ...client, send: GET });
  const session = first.sessions.at(-1) ?? first.session;
  expect(session, 'the server offered a session').toBeInstanceOf(Buffer);
  await between?.();
  const second = await tlsExchange(port, { ...client, session, send: GET });
  return { first, second };
}

describe.each(VERSIONS)('%s', (version) => {
  const client = { ...ui, ca: ca.bundle().toPem(), maxVersion: version };

  it("resumes: both ends agree, and the resumed peer is the full handshake's, with resumed: true", async () => {
    const { peers, port } = await serve(ca.bundles());
    const { first, second } = await twice(port, client);
    expect(first.data).toMatch(new RegExp(`${UI} resumed=false$`));
    expect(second.reused).toBe(true);
    expect(second.data).toMatch(new RegExp(`${UI} resumed=true$`));
    expect(peers.map((p) => [p.id, p.resumed])).toEqual([
      [UI, false],
      [UI, true],
    ]);
  });

  it('a refused peer that got a ticket (refusal held back) is refused on resume', async () => {
    admissionTestHooks.refusalDelay = 150;
    const { rejects, port } = await serve(ca.bundles());
    const impostor = { ...credentialsOf(forged.issue(UI)), ca: ca.bundle().toPem(), maxVersion: version };
    const { first, second } = await twice(port, impostor);
    expect(first.data).toBe('');
    expect(second.reused).toBe(true); // OpenSSL resumed it...
    expect(second.data).toBe(''); // ...and the gate refused it
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_SVID_UNTRUSTED', 'ERR_RESUMPTION_REFUSED']);
  });

  it('after a CA is removed from the bundle, the saved session is a full handshake, refused', async () => {
    const { identity, rejects, port } = await serve(
      BundleSet.of(
        ca.bundle().withAuthorities([...ca.bundle().anchors(), ...viaIntermediate.bundle().anchors()]),
      ),
    );
    const other = {
      ...credentialsOf(viaIntermediate.issue(UI)),
      ca: ca.bundle().toPem(),
      maxVersion: version,
    };
    const { second } = await twice(port, other, () => identity.update({ bundles: ca.bundles() }));
    expect(second.reused).toBe(false);
    expect(second.data).toBe('');
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_SVID_UNTRUSTED']);
  });

  it('after a trust domain is removed, the saved session is refused', async () => {
    const { identity, rejects, port } = await serve(BundleSet.of(ca.bundle(), partner.bundle()));
    const billing = {
      ...credentialsOf(partner.issue('/ns/billing/sa/api')),
      ca: ca.bundle().toPem(),
      maxVersion: version,
    };
    const { second } = await twice(port, billing, () => identity.update({ bundles: ca.bundles() }));
    expect(second.data).toBe('');
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_SVID_NO_BUNDLE']);
  });

  it("after the peer's certificate expired, a resumption is refused", async () => {
    const { rejects, port } = await serve(ca.bundles(), { keepAliveTimeout: 60_000 });
    const svid = ca.issue('/ns/demo/sa/short', { ttl: 1_000 });
    const short = { ...credentialsOf(svid), ca: ca.bundle().toPem(), maxVersion: version };
    // X.509 times have whole seconds: wait for the notAfter the certificate really carries.
    const { second } = await twice(port, short, async () => {
      while (Date.now() <= svid.notAfter.getTime() + 20) await new Promise((r) => setTimeout(r, 50));
    });
    expect(second.data).toBe('');
    expect(rejects.map((r) => r.reason)).toContain('ERR_SVID_EXPIRED');
  });

  it("after the server's SVID rotates, the saved session is a full handshake", async () => {
    const { identity, peers, port } = await serve(ca.bundles());
    const { second } = await twice(port, client, () =>
      identity.update({ svid: ca.issue('/ns/demo/sa/boards') }),
    );
    expect(second.reused).toBe(false);
    expect(second.data).toMatch(/resumed=false$/);
    expect(peers.map((p) => p.resumed)).toEqual([false, false]);
  });

  it('a ticket from another server instance with the same identity is a full handshake', async () => {
    const a = await serve(ca.bundles());
    const b = await serve(ca.bundles());
    const first = await tlsExchange(a.port, { ...client, send: GET });
    const session = first.sessions.at(-1) ?? first.session;
    const second = await tlsExchange(b.port, { ...client, session, send: GET });
    expect(second.reused).toBe(false);
    expect(second.data).toMatch(/resumed=false$/);
  });

  it('an SVID issued by an intermediate resumes (the record holds its chain)', async () => {
    const { peers, port } = await serve(
      BundleSet.of(
        ca.bundle().withAuthorities([...ca.bundle().anchors(), ...viaIntermediate.bundle().anchors()]),
      ),
    );
    const other = {
      ...credentialsOf(viaIntermediate.issue(UI)),
      ca: ca.bundle().toPem(),
      maxVersion: version,
    };
    const { second } = await twice(port, other);
    expect(second.reused).toBe(true);
    expect(peers.map((p) => p.resumed)).toEqual([false, true]);
  });

  it('an application session store on the server cannot bring a refused peer back', async () => {
    admissionTestHooks.refusalDelay = 150;
    const { server, rejects, port } = await serve(ca.bundles());
    const store = new Map<string, Buffer>();
    let storeCalls = 0;
    server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      storeCalls++;
      store.set(id.toString('hex'), data);
      done();
    });
    server.on('resumeSession', (id: Buffer, done: (err: Error | null, data?: Buffer) => void) => {
      storeCalls++;
      done(null, store.get(id.toString('hex')));
    });
    const impostor = { ...credentialsOf(forged.issue(UI)), ca: ca.bundle().toPem(), maxVersion: version };
    const { second } = await twice(port, impostor);
    expect(second.data).toBe('');
    expect(storeCalls).toBe(0); // the library's sockets never reach the application's store
    expect(rejects.map((r) => r.reason)).toEqual(['ERR_SVID_UNTRUSTED', 'ERR_RESUMPTION_REFUSED']);
  });
});

describe('resumption settings', () => {
  it('is off by default: no session resumes', async () => {
    const identity = mutableIdentity(ca.issue('/ns/demo/sa/boards'), ca.bundles());
    onCleanup(() => identity.close());
    const server = createMtlsServer({ identity }, echo);
    const { port } = await listen(server);
    const client = { ...ui, ca: ca.bundle().toPem() };
    const first = await tlsExchange(port, { ...client, send: GET });
    const second = await tlsExchange(port, {
      ...client,
      session: first.sessions.at(-1) ?? first.session,
      send: GET,
    });
    expect(second.reused).toBe(false);
  });

  it('ticket keys last at most sessionLifetime: then a full handshake', async () => {
    const { peers, port } = await serve(ca.bundles(), { sessionLifetime: 1_000 });
    const client = { ...ui, ca: ca.bundle().toPem() };
    const { second } = await twice(port, client, () => new Promise((r) => setTimeout(r, 1_300)));
    expect(second.reused).toBe(false);
    expect(peers.map((p) => p.resumed)).toEqual([false, false]);
  });

  it('the library dispatcher with resumption: true resumes against the library server', async () => {
    const { peers, port } = await serve(ca.bundles());
    const dispatcher = createMtlsDispatcher({
      identity: ca.identity(UI),
      destinations: { [`127.0.0.1:${port}`]: { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
      resumption: true,
    });
    onCleanup(() => dispatcher.close());
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/`, {
        dispatcher,
        headers: { connection: 'close' },
      });
      await res.text();
    }
    expect(peers.map((p) => p.resumed)).toEqual([false, true, true]);
  });

  it.each([
    ['a non-boolean resumption', { resumption: 'yes' }],
    ['a sessionLifetime under a second', { sessionLifetime: 10 }],
    ['a sessionLifetime over a day', { sessionLifetime: 2 * 86_400_000 }],
  ])('refuses %s, naming the option', (_name, options) => {
    expect(() => createMtlsServer({ identity: ca.identity('/x'), ...options } as never)).toThrow(
      /resumption|sessionLifetime/,
    );
  });
});
