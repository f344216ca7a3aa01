// The client and identity channels, over real sockets and real sources: each fires when the
// event it bridges happens, with the documented payload, and never carries key material.
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ClientPeerEvent,
  type ClientRejectEvent,
  type ClientResponseEvent,
  channels,
  createMtlsAgent,
  createMtlsDispatcher,
  createMtlsServer,
  type FallbackEvent,
  fileIdentity,
  type SourceErrorEvent,
  type SourceUpdateEvent,
  type SourceWithdrawnEvent,
  staticIdentity,
} from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { listen, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
afterAll(() => ca.close());
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const serverIdentity = ca.identity('/ns/demo/sa/boards');

/** Everything published on `name` during the test. */
function record<T>(name: string): T[] {
  const seen: T[] = [];
  const listener = (message: unknown) => seen.push(message as T);
  diagnostics.subscribe(name, listener);
  onCleanup(() => diagnostics.unsubscribe(name, listener));
  return seen;
}

function noKeyMaterial(events: readonly unknown[]): void {
  const text = JSON.stringify(events);
  expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
}

afterEach(() => {
  vi.useRealTimers();
});

async function mtlsServer() {
  return listen(
    createMtlsServer({ identity: serverIdentity, protocol: 'http1' }, (_req, res) => res.end('ok')),
  );
}

function dispatcher(destinations: Parameters<typeof createMtlsDispatcher>[0]['destinations']) {
  const d = createMtlsDispatcher({ identity: ca.identity('/ns/demo/sa/app-ui'), destinations });
  onCleanup(() => d.destroy());
  return d;
}

describe('client channels', () => {
  it('sidecarless:client:peer fires once per new connection, with the server it proved', async () => {
    const peers = record<ClientPeerEvent>(channels.clientPeer);
    const { server, port } = await mtlsServer();
    const d = dispatcher({ [`127.0.0.1:${port}`]: { expect: BOARDS } });
    for (let i = 0; i < 3; i++)
      await (await undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher: d })).text();
    // One event per connection the server accepted (undici may open a second), not per request.
    expect(peers.length).toBe(server.describe().totals.mtls);
    expect(peers.length).toBeLessThan(3);
    expect(peers[0]).toMatchObject({
      destination: `127.0.0.1:${port}`,
      address: `127.0.0.1:${port}`,
      id: BOARDS,
      mtls: true,
      tls: true,
      resumed: false,
      tlsVersion: 'TLSv1.3',
    });
    expect(typeof peers[0]?.keyExchange).toBe('string');
    expect(peers[0]?.serial).toMatch(/^[0-9A-F]+$/);
    noKeyMaterial(peers);
  });

  it.each([
    ['an IPv4 literal', '127.0.0.1', '127.0.0.1'],
    ['an IPv6 literal', '::1', '[::1]'],
    ['a name', '127.0.0.1', 'localhost'],
  ])('sidecarless:client:peer names the address the server was reached at, for %s', async (_, bind, host) => {
    const peers = record<ClientPeerEvent>(channels.clientPeer);
    const seen: string[] = [];
    const server = createMtlsServer({ identity: serverIdentity, protocol: 'http1' }, (req, res) => {
      seen.push(req.socket.localAddress ?? '');
      res.end('ok');
    });
    server.listen(0, bind);
    await once(server, 'listening');
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const d = dispatcher({ [`${host}:${port}`]: { expect: BOARDS } });
    const res = await undiciFetch(`https://${host}:${port}/`, { dispatcher: d });
    await res.text();
    expect(res.status).toBe(200);
    expect(peers).toHaveLength(1);
    expect(peers[0]?.remoteAddress).toBe(seen[0]);
    expect(peers[0]?.remoteAddress).toBe(bind);
  });

  it('sidecarless:client:response fires per response of dispatchers and agents, with both identities', async () => {
    const responses = record<ClientResponseEvent>(channels.clientResponse);
    const server = createMtlsServer({ identity: serverIdentity, protocol: 'http1' }, (req, res) => {
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end('ok');
    });
    const { port } = await listen(server);
    const destinations = { [`127.0.0.1:${port}`]: { expect: BOARDS } };
    const d = dispatcher(destinations);
    for (const path of ['/', '/missing'])
      await (await undiciFetch(`http://127.0.0.1:${port}${path}`, { dispatcher: d })).text();
    const agent = createMtlsAgent({ identity: ca.identity('/ns/demo/sa/app-ui'), destinations });
    onCleanup(() => agent.destroy());
    const status = await new Promise<number>((resolve, reject) =>
      https
        .get({ host: '127.0.0.1', port, path: '/missing', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject),
    );
    expect(status).toBe(404);
    const one = {
      destination: `127.0.0.1:${port}`,
      address: `127.0.0.1:${port}`,
      source: 'spiffe://cluster.local/ns/demo/sa/app-ui',
      peer: BOARDS,
      mtls: true,
    };
    expect(responses).toEqual([
      { ...one, statusCode: 200 },
      { ...one, statusCode: 404 },
      { ...one, statusCode: 404 },
    ]);
    expect(Object.isFrozen(responses[0])).toBe(true);
    noKeyMaterial(responses);
  });

  it('sidecarless:client:reject fires for a server that is not the expected one, and for no destination', async () => {
    const rejects = record<ClientRejectEvent>(channels.clientReject);
    const { port } = await mtlsServer();
    const d = dispatcher({ [`127.0.0.1:${port}`]: { expect: 'spiffe://cluster.local/ns/demo/sa/other' } });
    await expect(undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher: d })).rejects.toThrow();
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({
      reason: 'ERR_PEER_ID_MISMATCH',
      phase: 'connect',
      destination: `127.0.0.1:${port}`,
      address: `127.0.0.1:${port}`,
      peer: BOARDS,
    });
    // Port 8081: fetch itself refuses its "bad ports" before a dispatcher sees them.
    await expect(undiciFetch('http://127.0.0.2:8081/', { dispatcher: d })).rejects.toThrow();
    expect(rejects[1]).toMatchObject({
      reason: 'ERR_NO_DESTINATION',
      destination: null,
      address: '127.0.0.2:8081',
    });
    noKeyMaterial(rejects);
  });

  it('sidecarless:client:fallback carries the fallback event of an auto destination', async () => {
    const fallbacks = record<FallbackEvent>(channels.clientFallback);
    const peers = record<ClientPeerEvent>(channels.clientPeer);
    const { port } = await listen(http.createServer((_req, res) => res.end('plain')));
    const d = dispatcher({ [`127.0.0.1:${port}`]: { mode: 'auto', expect: BOARDS } });
    const emitted: FallbackEvent[] = [];
    d.on('fallback', (event) => emitted.push(event));
    expect(await (await undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher: d })).text()).toBe('plain');
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]).toBe(emitted[0]); // the same event, bridged
    expect(fallbacks[0]).toMatchObject({ destination: `127.0.0.1:${port}`, address: `127.0.0.1:${port}` });
    expect(peers[0]).toMatchObject({
      mtls: false,
      tls: false,
      id: null,
      tlsVersion: null,
      keyExchange: null,
    });
    // And the edge shows the plaintext request.
    expect(d.describe().edges[0]).toMatchObject({ requests: 1, mtlsShare: 0, peer: null });
  });
});

describe('identity channels', () => {
  it('sidecarless:identity:update fires for every accepted update, with IDs only', async () => {
    const updates = record<SourceUpdateEvent>(channels.sourceUpdate);
    const source = ca.identity('/ns/demo/sa/rotating');
    onCleanup(() => source.close());
    expect(updates).toHaveLength(1);
    (source as unknown as { renewNow(): void }).renewNow();
    expect(updates).toHaveLength(2);
    expect(updates[1]).toMatchObject({
      source: 'localCa spiffe://cluster.local/ns/demo/sa/rotating',
      id: 'spiffe://cluster.local/ns/demo/sa/rotating',
      generation: 2,
      trustDomains: ['cluster.local'],
    });
    expect(updates[1]?.serial).toBe(source.current().svid.leaf.serialNumber);
    noKeyMaterial(updates);
  });

  it('sidecarless:identity:withdrawn fires when an SVID expires without renewal', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const short = createTestCa({ ttl: 5_000 });
    onCleanup(() => short.close());
    const withdrawn = record<SourceWithdrawnEvent>(channels.sourceWithdrawn);
    const svid = short.issue('/ns/demo/sa/job');
    const source = staticIdentity({ svid, bundles: short.bundle() });
    onCleanup(() => source.close());
    vi.advanceTimersByTime(svid.notAfter.getTime() - Date.now() - 10);
    expect(withdrawn).toEqual([]);
    vi.advanceTimersByTime(20);
    expect(withdrawn).toHaveLength(1);
    expect(withdrawn[0]).toMatchObject({
      source: 'staticIdentity spiffe://cluster.local/ns/demo/sa/job',
      id: 'spiffe://cluster.local/ns/demo/sa/job',
    });
    expect(withdrawn[0]?.message).toContain('expired');
  });

  it('sidecarless:identity:error fires with the error the source emits, naming the file', async () => {
    const errors = record<SourceErrorEvent>(channels.sourceError);
    const dir = mkdtempSync(join(tmpdir(), 'sidecarless-channels-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const source = fileIdentity({ preset: 'istio', dir, watch: false, pollInterval: 50 });
    onCleanup(() => source.close());
    const emitted: string[] = [];
    source.on('error', (err) => emitted.push(err.message));
    await expect(source.ready({ timeout: 2_000 })).rejects.toThrow();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({
      source: `fileIdentity ${join(dir, 'cert-chain.pem')}`,
      code: 'ERR_FILE_UNREADABLE',
    });
    expect(errors[0]?.file).toContain(dir);
    expect(emitted).toContain(errors[0]?.message);
  });
});
