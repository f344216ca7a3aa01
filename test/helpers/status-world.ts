// A small real service for the status page tests: a PERMISSIVE sidecarless server (mTLS and
// plaintext callers), a dispatcher calling it over mTLS, and an admin port serving
// statusHandler() on loopback. Certificates come from the test CA.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch } from 'undici';
import {
  createMtlsDispatcher,
  createMtlsServer,
  type StatusHandler,
  statusHandler,
} from '../../src/index.js';
import type { TestCa } from '../../src/testing/index.js';
import { listen, onCleanup, plainRequest } from './server.js';

export const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
export const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
/** The path of the refusal whose reason the page must show as text. */
export const HOSTILE_PATH = '/<img src=x onerror=alert(1)>';
/** A second one, whose handler would change the page's title if it ran. */
export const TITLE_PATH = "/<img src=x onerror=document.title='pwned'>";

export interface StatusWorld {
  readonly port: number;
  readonly adminUrl: string;
  readonly handler: StatusHandler;
}

/** Sends a plaintext request from `port` as raw bytes: the path exactly as written, no client-side checks. */
export async function rawPlainRequest(port: number, path: string): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

export async function startStatusWorld(ca: TestCa): Promise<StatusWorld> {
  const identity = ca.identity('/ns/demo/sa/boards');
  const server = createMtlsServer(
    {
      identity,
      mode: 'PERMISSIVE',
      protocol: 'http1',
      authorize: { '/items': [UI, 'unauthenticated'], '/health': 'unauthenticated' },
    },
    (_req, res) => res.end('ok'),
  );
  const { port } = await listen(server);
  const dispatcher = createMtlsDispatcher({
    identity: ca.identity('/ns/demo/sa/app-ui'),
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
  });
  onCleanup(() => dispatcher.destroy());
  for (let i = 0; i < 2; i++) {
    const res = await undiciFetch(`http://127.0.0.1:${port}/items`, { dispatcher });
    await res.text();
    if (res.status !== 200) throw new Error(`mTLS /items answered ${res.status}`);
  }
  // A refusal on the mTLS edge: the fetch percent-encodes the path as a browser does.
  const denied = await undiciFetch(`http://127.0.0.1:${port}${TITLE_PATH}`, { dispatcher });
  await denied.text();
  if (denied.status !== 403) throw new Error(`the title path answered ${denied.status}, not 403`);
  // A plaintext caller: the open lock, and the refusal with the hostile path (and a query string).
  if ((await plainRequest(port, '/health')).status !== 200) throw new Error('plaintext /health was refused');
  // As a browser sends it: percent-encoded, so the request line holds no space.
  const refused = await rawPlainRequest(port, `${encodeURI(HOSTILE_PATH)}?token=secret-query`);
  if (refused !== 403) throw new Error(`the hostile path answered ${refused}, not 403`);
  const handler = statusHandler({
    servers: [server],
    clients: { 'ui-dispatcher': dispatcher },
    sources: { 'boards-identity': identity },
  });
  onCleanup(() => handler.close());
  const admin = http.createServer(handler);
  await listen(admin);
  const address = admin.address() as AddressInfo;
  return { port, adminUrl: `http://127.0.0.1:${address.port}/`, handler };
}
