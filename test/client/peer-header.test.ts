// A server's own x-sidecarless-peer-id never reaches the caller, wherever the server puts it: an
// informational (1xx) response, a 101 upgrade, trailers, or the response itself. Real servers
// (node:http, node:https with an SVID) send it in each place.
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { Agent, type Dispatcher, request, upgrade } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsAgent } from '../../src/client/agent.js';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { createMtlsInterceptor } from '../../src/client/interceptor.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { getPeer } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { caOf, pemOf } from '../helpers/client-servers.js';
import { listen, onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const client = ca.identity('/ns/demo/sa/app-ui');
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const EVIL = 'spiffe://cluster.local/ns/evil/sa/spoofed';
afterAll(() => ca.close());

const UPGRADE_RESPONSE = [
  'HTTP/1.1 101 Switching Protocols',
  'connection: upgrade',
  'upgrade: test',
  `${PEER_ID_HEADER}: ${EVIL}`,
  'x-kept: yes',
  '',
  '',
].join('\r\n');

/** Sends the peer header in an early hint, in trailers, in a 101 and in the final response. */
function misbehave(server: http.Server): void {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/info') {
      res.writeEarlyHints({ link: '</style.css>; rel=preload', [PEER_ID_HEADER]: EVIL });
      res.setHeader(PEER_ID_HEADER, EVIL);
      res.end('ok');
    } else if (req.url === '/trailers') {
      res.setHeader('trailer', `${PEER_ID_HEADER}, x-kept`);
      res.write('ok');
      res.addTrailers({ [PEER_ID_HEADER]: EVIL, 'x-kept': 'yes' });
      res.end();
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  // The upgraded connection stays open until the client closes it (or the test ends).
  const upgraded = new Set<Duplex>();
  onCleanup(() => {
    for (const socket of upgraded) socket.destroy();
  });
  server.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
    upgraded.add(socket);
    socket.on('error', () => {});
    socket.write(UPGRADE_RESPONSE);
  });
}

async function mtlsServer(): Promise<number> {
  const server = https.createServer({
    ...pemOf(ca.issue('/ns/demo/sa/boards')),
    ca: caOf(ca.bundle()),
    requestCert: true,
    rejectUnauthorized: true,
  });
  misbehave(server);
  return (await listen(server)).port;
}

async function plainServer(): Promise<number> {
  const server = http.createServer();
  misbehave(server);
  return (await listen(server)).port;
}

/** What an undici caller sees of each place, through `dispatcher`. */
async function viaUndici(url: string, dispatcher: Dispatcher) {
  const infos: Record<string, unknown>[] = [];
  const info = await request(`${url}/info`, {
    dispatcher,
    onInfo: ({ headers }: { headers: Record<string, unknown> }) => infos.push(headers),
  } as Parameters<typeof request>[1]);
  await info.body.text();
  const trailers = await request(`${url}/trailers`, { dispatcher });
  await trailers.body.text();
  const upgraded = await upgrade(`${url}/up`, { dispatcher, protocol: 'test' });
  upgraded.socket.destroy();
  return { infos, final: info.headers, trailers: trailers.trailers, upgrade: upgraded.headers };
}

describe('createMtlsDispatcher', () => {
  it('removes the server’s header from 1xx, 101 and trailers, and gives its own on mTLS', async () => {
    const port = await mtlsServer();
    const dispatcher = createMtlsDispatcher({
      identity: client,
      destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
    });
    onCleanup(() => dispatcher.destroy());
    const seen = await viaUndici(`http://127.0.0.1:${port}`, dispatcher);
    expect(seen.infos).toHaveLength(1);
    expect(seen.infos[0]).toMatchObject({ link: '</style.css>; rel=preload', [PEER_ID_HEADER]: BOARDS });
    expect(seen.final[PEER_ID_HEADER]).toBe(BOARDS);
    expect(seen.trailers).toEqual({ 'x-kept': 'yes' });
    expect(seen.upgrade).toMatchObject({ upgrade: 'test', 'x-kept': 'yes', [PEER_ID_HEADER]: BOARDS });
  });
});

describe('createMtlsInterceptor, plaintext destinations (the composed dispatcher)', () => {
  it('removes the server’s header from 1xx, 101, trailers and the response', async () => {
    const port = await plainServer();
    const mtls = createMtlsInterceptor({ identity: client, destinations: { '*': { mode: 'plaintext' } } });
    const base = new Agent();
    onCleanup(async () => {
      await mtls.close();
      await base.destroy();
    });
    const seen = await viaUndici(`http://127.0.0.1:${port}`, base.compose(mtls));
    expect(seen.infos).toHaveLength(1);
    expect(seen.infos[0]).toMatchObject({ link: '</style.css>; rel=preload' });
    expect(seen.infos[0]).not.toHaveProperty(PEER_ID_HEADER);
    expect(seen.final).not.toHaveProperty(PEER_ID_HEADER);
    expect(seen.trailers).toEqual({ 'x-kept': 'yes' });
    expect(seen.upgrade).toMatchObject({ upgrade: 'test', 'x-kept': 'yes' });
    expect(seen.upgrade).not.toHaveProperty(PEER_ID_HEADER);
  });
});

/** Every form node:http gives headers in: the object, the distinct one, the raw list. */
function forms(message: http.IncomingMessage): unknown[] {
  return [message.headers, message.headersDistinct, message.rawHeaders.map((h) => h.toLowerCase())];
}

describe.each(['mtls', 'plaintext'] as const)('createMtlsAgent, %s destination', (mode) => {
  async function setup() {
    const port = mode === 'mtls' ? await mtlsServer() : await plainServer();
    const agent = createMtlsAgent({
      identity: client,
      protocol: 'http:',
      destinations:
        mode === 'mtls' ? { [`127.0.0.1:${port}`]: { expect: BOARDS } } : { '*': { mode: 'plaintext' } },
    });
    onCleanup(() => agent.close());
    return { url: `http://127.0.0.1:${port}`, agent };
  }

  it('the response callback and information listeners never see the header', async () => {
    const { url, agent } = await setup();
    const infos: unknown[] = [];
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      // The callback is registered before the agent sees the request: it still runs second.
      const req = http.get(`${url}/info`, { agent }, (r) => {
        resolve(r);
      });
      req.on('information', (info) => infos.push(info.headers, info.rawHeaders));
      req.on('error', reject);
    });
    for (const form of forms(res)) expect(JSON.stringify(form)).not.toContain(PEER_ID_HEADER);
    expect(infos).toHaveLength(2);
    for (const form of infos) expect(JSON.stringify(form).toLowerCase()).not.toContain(PEER_ID_HEADER);
    expect(JSON.stringify(infos)).toContain('style.css');
    res.resume();
    if (mode === 'mtls') expect(getPeer(res).id?.toString()).toBe(BOARDS);
  });

  it('trailers never carry it, read at the end of the response', async () => {
    const { url, agent } = await setup();
    const seen = await new Promise<unknown[]>((resolve, reject) => {
      http
        .get(`${url}/trailers`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve([res.trailers, res.trailersDistinct, res.rawTrailers]));
        })
        .on('error', reject);
    });
    expect(seen[0]).toEqual({ 'x-kept': 'yes' });
    expect(seen[1]).toEqual({ 'x-kept': ['yes'] });
    expect((seen[2] as string[]).map((h) => h.toLowerCase())).toEqual(['x-kept', 'yes']);
  });

  it('an upgrade listener never sees it', async () => {
    const { url, agent } = await setup();
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(`${url}/up`, { agent, headers: { connection: 'upgrade', upgrade: 'test' } });
      req.on('upgrade', (r: http.IncomingMessage, socket: Duplex) => {
        socket.destroy();
        resolve(r);
      });
      req.on('error', reject);
    });
    expect(res.statusCode).toBe(101);
    expect(res.headers['x-kept']).toBe('yes');
    for (const form of forms(res)) expect(JSON.stringify(form)).not.toContain(PEER_ID_HEADER);
  });
  it('the agent’s own listeners change nothing else: an unread response and an unheard upgrade are closed', async () => {
    const port = mode === 'mtls' ? await mtlsServer() : await plainServer();
    const agent = createMtlsAgent({
      identity: client,
      protocol: 'http:',
      maxSockets: 1,
      destinations:
        mode === 'mtls' ? { [`127.0.0.1:${port}`]: { expect: BOARDS } } : { '*': { mode: 'plaintext' } },
    });
    onCleanup(() => agent.close());
    const url = `http://127.0.0.1:${port}`;
    // Nobody listens for this response: Node discards its body, and the one socket is free again.
    const unread = http.get(`${url}/info`, { agent });
    await new Promise((resolve) => unread.once('close', resolve));
    // Nobody listens for this upgrade: Node closes its socket.
    const unheard = http.get(`${url}/up`, { agent, headers: { connection: 'upgrade', upgrade: 'test' } });
    const socket = await new Promise<Duplex>((resolve) => unheard.once('socket', resolve));
    await new Promise((resolve) => socket.once('close', resolve));
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${url}/trailers`, { agent }, resolve).on('error', reject);
    });
    res.resume();
    await new Promise((resolve) => res.once('end', resolve));
    expect(res.statusCode).toBe(200);
  });
});
