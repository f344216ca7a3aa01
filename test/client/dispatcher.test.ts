import { getGlobalDispatcher, request, setGlobalDispatcher, fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMtlsDispatcher, type MtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import type { Peer } from '../../src/index.js';
import { isSidecarlessError } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { caOf, httpsServer, pemOf } from '../helpers/client-servers.js';
import { onCleanup } from '../helpers/server.js';

const ca = createTestCa({ intermediate: true });
const client = ca.identity('/ns/demo/sa/app-ui');
const boards = pemOf(ca.issue('/ns/demo/sa/boards'));
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
afterAll(() => ca.close());

function dispatcherFor(
  port: number,
  extra: Partial<Parameters<typeof createMtlsDispatcher>[0]> = {},
): MtlsDispatcher {
  const dispatcher = createMtlsDispatcher({
    identity: client,
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    ...extra,
  });
  onCleanup(() => dispatcher.destroy());
  return dispatcher;
}

/** The error a failed fetch carries in its cause. */
async function fetchCause(promise: Promise<unknown>): Promise<unknown> {
  const err = await promise.then(
    () => expect.fail('the request succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TypeError);
  return (err as { cause?: unknown }).cause;
}

describe('createMtlsDispatcher', () => {
  it('sends an http:// fetch over mTLS, presenting the SVID and checking the server ID', async () => {
    const srv = await httpsServer({ ...boards, ca: caOf(ca.bundle()) });
    const peers: Peer[] = [];
    const dispatcher = dispatcherFor(srv.port, { onPeer: (peer) => peers.push(peer) });
    const res = await undiciFetch(`http://127.0.0.1:${srv.port}/shareditems`, { dispatcher });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ clientId: 'spiffe://cluster.local/ns/demo/sa/app-ui' });
    // The server's own claim was removed; the header holds what the handshake proved.
    expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    expect(peers).toHaveLength(1);
    expect(peers[0]).toMatchObject({ mtls: true, tls: true, resumed: false });
    expect(peers[0]?.id?.toString()).toBe(BOARDS);
    expect(peers[0]?.chain).toHaveLength(3);
  });

  it('works with https:// URLs, undici.request, and Node global fetch through setGlobalDispatcher', async () => {
    const srv = await httpsServer({ ...boards, ca: caOf(ca.bundle()) });
    const dispatcher = dispatcherFor(srv.port);
    const res = await request(`https://127.0.0.1:${srv.port}/a`, { dispatcher, method: 'PUT', body: 'xyz' });
    expect(res.statusCode).toBe(200);
    expect(res.headers[PEER_ID_HEADER]).toBe(BOARDS);
    expect(await res.body.json()).toMatchObject({ method: 'PUT', body: 'xyz' });
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(dispatcher);
    try {
      const global = await fetch(`http://127.0.0.1:${srv.port}/b`, { method: 'POST', body: 'hello' });
      expect(global.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
      expect(await global.json()).toMatchObject({ method: 'POST', body: 'hello' });
    } finally {
      setGlobalDispatcher(previous);
    }
    expect(srv.seen.map((s) => `${s.method} ${s.url} ${s.body}`)).toEqual(['PUT /a xyz', 'POST /b hello']);
    expect(srv.connections()).toBe(2); // one per origin (https://, http://), each kept alive
  });

  it('refuses a server with a valid SVID but the wrong SPIFFE ID, before sending anything', async () => {
    const srv = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/other')), ca: caOf(ca.bundle()) });
    const dispatcher = dispatcherFor(srv.port);
    const cause = await fetchCause(
      undiciFetch(`http://127.0.0.1:${srv.port}/x`, { dispatcher, method: 'POST', body: 'secret' }),
    );
    expect(isSidecarlessError(cause, 'ERR_PEER_ID_MISMATCH')).toBe(true);
    expect((cause as Error).message).toContain(`127.0.0.1:${srv.port}`);
    expect((cause as Error).message).toContain('spiffe://cluster.local/ns/demo/sa/other');
    expect(cause).toMatchObject({
      detail: { peer: 'spiffe://cluster.local/ns/demo/sa/other', value: `127.0.0.1:${srv.port}` },
    });
    expect(srv.seen).toEqual([]);
    expect(srv.bytes().includes('secret')).toBe(false);
  });

  it('a throwing onPeer fails the request', async () => {
    const srv = await httpsServer({ ...boards, ca: caOf(ca.bundle()) });
    const dispatcher = dispatcherFor(srv.port, {
      onPeer: () => {
        throw new Error('not today');
      },
    });
    const cause = await fetchCause(undiciFetch(`http://127.0.0.1:${srv.port}/x`, { dispatcher }));
    expect((cause as Error).message).toBe('not today');
  });

  it('close() stops following the identity', async () => {
    const subscribe = vi.spyOn(client, 'subscribe');
    const dispatcher = createMtlsDispatcher({ identity: client, destinations: { '*': { expect: '*' } } });
    const unsubscribe = subscribe.mock.results[0]?.value as () => void;
    expect(typeof unsubscribe).toBe('function');
    await dispatcher.close();
    subscribe.mockRestore();
  });
});
