// Express, Fastify and Hono on a sidecarless server, unchanged: the gates run before the
// framework sees a request, and no spelling of a restricted path reaches its route.
import { once } from 'node:events';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type HttpBindings, serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createLocalCa, createMtlsServer, getPeer, type MtlsServerOptions } from '../../src/index.js';
import { rawTlsRequest, requestText } from '../helpers/raw-http.js';
import { credentialsOf, listen, mtlsRequest, onCleanup, run } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const identity = ca.identity('/ns/demo/sa/boards');
const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
const ops = credentialsOf(ca.issue('/ns/ops/sa/admin'));
const options = {
  identity,
  authorize: { '/admin/*': 'spiffe://cluster.local/ns/ops/*', '*': 'spiffe://cluster.local/*' },
} satisfies MtlsServerOptions;

/** How often the app's middleware and its /admin route ran. */
interface Counts {
  middleware: number;
  admin: number;
}

interface App {
  readonly port: number;
  readonly counts: Counts;
}

/**
 * Each app: a middleware counting every request it sees, a real /admin route (and everything under
 * it) counting its calls, and /whoami answering with the caller read through getPeer().
 */
const frameworks: Record<string, () => Promise<App>> = {
  async express() {
    const counts: Counts = { middleware: 0, admin: 0 };
    // Express defaults: case-insensitive routes, trailing "/" ignored.
    const app = express();
    app.use((_req, _res, next) => {
      counts.middleware++;
      next();
    });
    app.all(['/admin', '/admin/*rest'], (_req, res) => {
      counts.admin++;
      res.json({ admin: true });
    });
    app.get('/whoami', (req, res) => {
      res.json({ id: getPeer(req).id?.toString() ?? null });
    });
    const { port } = await listen(createMtlsServer(options, app));
    return { port, counts };
  },

  async fastify() {
    const counts: Counts = { middleware: 0, admin: 0 };
    // The most lenient router settings: more spellings that would reach /admin without the gate.
    const app = Fastify({
      serverFactory: (handler) => createMtlsServer(options, handler),
      routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    });
    app.addHook('onRequest', async () => {
      counts.middleware++;
    });
    const admin = async () => {
      counts.admin++;
      return { admin: true };
    };
    app.all('/admin', admin);
    app.all('/admin/*', admin);
    app.get('/whoami', async (request) => ({ id: getPeer(request.raw).id?.toString() ?? null }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    onCleanup(() => app.close());
    return { port: (app.server.address() as AddressInfo).port, counts };
  },

  async hono() {
    const counts: Counts = { middleware: 0, admin: 0 };
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.use('*', async (_c, next) => {
      counts.middleware++;
      await next();
    });
    app.all('/admin', (c) => {
      counts.admin++;
      return c.json({ admin: true });
    });
    app.all('/admin/*', (c) => {
      counts.admin++;
      return c.json({ admin: true });
    });
    app.get('/whoami', (c) => c.json({ id: getPeer(c.env.incoming).id?.toString() ?? null }));
    const server = serve({
      fetch: app.fetch,
      // Typed as http.createServer, whose first overload takes the listener alone: hence the optionals.
      // @hono/node-server calls it as (serverOptions, listener).
      createServer: (_opts?: unknown, listener?: RequestListener) => createMtlsServer(options, listener),
      port: 0,
      hostname: '127.0.0.1',
    });
    await once(server, 'listening');
    onCleanup(() => new Promise((resolve) => server.close(resolve)));
    return { port: (server.address() as AddressInfo).port, counts };
  },
};

/**
 * Spellings of /admin/x a router might route to /admin for a peer the rule does not allow (the
 * issue's list), with what the gate answers: 403 when the path normalises into /admin, 400 when
 * it cannot be normalised safely.
 */
const SPELLINGS: readonly { target: string; status: 400 | 403 }[] = [
  { target: '//admin/x', status: 403 },
  { target: '/%61dmin/x', status: 403 },
  { target: '/%2e%2e/admin/x', status: 400 }, // "/../admin/x": above the root
  { target: '/ADMIN/x', status: 403 },
  { target: '/admin%2fx', status: 400 },
  { target: '/admin/x;a=b', status: 400 },
  { target: '/admin/./x', status: 403 },
  { target: '/x/../admin/x', status: 403 },
  { target: '/admin/x/', status: 403 },
  { target: '/admin/', status: 403 },
  { target: '/admin', status: 403 },
  { target: '/Admin/x', status: 403 },
  { target: '/admin\\x', status: 400 },
];

describe.each(Object.keys(frameworks))('%s on createMtlsServer', (name) => {
  const start = frameworks[name] as () => Promise<App>;

  it('an mTLS call reaches a route, which reads the caller with getPeer()', async () => {
    const { port, counts } = await start();
    const res = await mtlsRequest(port, '/whoami', ui, ca.bundle());
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ id: 'spiffe://cluster.local/ns/demo/sa/app-ui' });
    expect(counts.middleware).toBe(1);
  });

  it('STRICT: a plaintext call is reset (curl exit 56)', async () => {
    const { port, counts } = await start();
    const curl = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}/whoami`]);
    expect(curl.code).toBe(56);
    expect(curl.stderr).toMatch(/reset by peer/);
    expect(counts.middleware).toBe(0);
  });

  it('a denied request gets 403 JSON and never reaches middleware; an allowed peer does', async () => {
    const { port, counts } = await start();
    const denied = await mtlsRequest(port, '/admin/x', ui, ca.bundle());
    expect(denied.status).toBe(403);
    expect(denied.headers['content-type']).toBe('application/json');
    expect(JSON.parse(denied.body)).toEqual({ error: 'forbidden', reason: 'peer_not_allowed' });
    expect(counts).toEqual({ middleware: 0, admin: 0 });
    // Control, same app: the rule's own peer gets through, so the route and middleware do run.
    const allowed = await mtlsRequest(port, '/admin/x', ops, ca.bundle());
    expect(allowed.status).toBe(200);
    expect(counts).toEqual({ middleware: 1, admin: 1 });
  });

  it('no spelling of /admin/x reaches the admin route for a peer outside ns/ops', async () => {
    const { port, counts } = await start();
    const seen: { target: string; status: number }[] = [];
    for (const { target } of SPELLINGS) {
      const res = await rawTlsRequest(port, ui, ca.bundle(), requestText('GET', target));
      seen.push({ target, status: res.status });
    }
    expect(seen).toEqual(SPELLINGS.map(({ target, status }) => ({ target, status })));
    expect(counts).toEqual({ middleware: 0, admin: 0 });
    // Control over the same raw path: an ns/ops peer reaches the route, through normalisation too.
    for (const target of ['/admin/x', '//admin/./x', '/x/../admin/x']) {
      const res = await rawTlsRequest(port, ops, ca.bundle(), requestText('GET', target));
      expect(res.status, target).toBe(200);
    }
    expect(counts).toEqual({ middleware: 3, admin: 3 });
  });

  it('double encoding is decoded once, by the gate and the router alike', async () => {
    const { port, counts } = await start();
    // "%25" is a literal "%": these name "/%61dmin/x" and "/%2e%2e/admin/x", not /admin/x.
    for (const target of ['/%2561dmin/x', '/%252e%252e/admin/x']) {
      const res = await rawTlsRequest(port, ui, ca.bundle(), requestText('GET', target));
      expect(res.status, target).toBe(404);
    }
    expect(counts).toEqual({ middleware: 2, admin: 0 });
  });
});

describe('case folding', () => {
  it('an encoded KELVIN SIGN, which a case-insensitive Fastify reads as "k", is refused', async () => {
    let reached = 0;
    const app = Fastify({
      serverFactory: (handler) =>
        createMtlsServer(
          {
            identity,
            authorize: { '/kube/*': 'spiffe://cluster.local/ns/ops/*', '*': 'spiffe://cluster.local/*' },
          },
          handler,
        ),
      routerOptions: { caseSensitive: false },
    });
    app.all('/kube/*', async () => {
      reached++;
      return 'kube';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    onCleanup(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    // find-my-way decodes "%E2%84%AA" to U+212A, whose toLowerCase() is "k": "/kube/x" to the router.
    for (const target of ['/%E2%84%AAube/x', '/%e2%84%aaUBE/x']) {
      const res = await rawTlsRequest(port, ui, ca.bundle(), requestText('GET', target));
      expect(res.status, target).toBe(400);
    }
    expect(reached).toBe(0);
    // Control: the route is real, and case-insensitive, for the peer the rule allows.
    expect((await rawTlsRequest(port, ops, ca.bundle(), requestText('GET', '/KUBE/x'))).status).toBe(200);
    expect(reached).toBe(1);
  });
});
