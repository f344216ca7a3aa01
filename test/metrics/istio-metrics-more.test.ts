// sidecarless/metrics, the two gaps of the first version, over real connections and a real
// prom-client registry: requests a server refuses as malformed (400, before any authorization
// decision) are counted, and clients report their responses (reporter="source") from the
// sidecarless:client:response channel, for createMtlsDispatcher and createMtlsAgent alike.
import http from 'node:http';
import { request as httpsRequest } from 'node:https';
import client from 'prom-client';
import { fetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsAgent, createMtlsDispatcher, createMtlsServer } from '../../src/index.js';
import { istioMetrics, promClientSink } from '../../src/metrics/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { credentialsOf, listen, mtlsRequest, onCleanup } from '../helpers/server.js';
import { rawPlainRequest } from '../helpers/status-world.js';

const ca = createTestCa();
afterAll(() => ca.close());
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';

async function series(registry: client.Registry, name = 'istio_requests_total') {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).map(
    (v) => ({ ...v.labels, value: v.value }) as Record<string, string | number | undefined>,
  );
}

describe('istioMetrics: malformed requests (400)', () => {
  it('counts a 400 with the principal the connection proved, or unknown in plaintext', async () => {
    const registry = new client.Registry();
    const metrics = istioMetrics(promClientSink(client, registry));
    onCleanup(() => metrics.close());
    let handled = 0;
    const server = createMtlsServer(
      {
        identity: ca.identity('/ns/demo/sa/boards'),
        mode: 'PERMISSIVE',
        authorize: { '/items': [UI, 'unauthenticated'] },
      },
      (_req, res) => {
        handled++;
        res.end('ok');
      },
    );
    metrics.observe(server);
    const { port } = await listen(server);
    const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
    // An encoded "/" cannot be normalised one way: refused before any rule is asked.
    const bad = await mtlsRequest(port, '/items%2F..%2Fadmin', ui, ca.bundle());
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: 'bad_request', reason: 'bad_request' });
    expect((await mtlsRequest(port, '/items', ui, ca.bundle())).status).toBe(200);
    expect(await rawPlainRequest(port, '/a%2Fb')).toBe(400);
    expect(handled).toBe(1);
    const base = { reporter: 'destination', destination_principal: BOARDS, request_protocol: 'http' };
    expect(await series(registry)).toEqual(
      expect.arrayContaining([
        {
          ...base,
          source_principal: UI,
          connection_security_policy: 'mutual_tls',
          response_code: '400',
          value: 1,
        },
        {
          ...base,
          source_principal: UI,
          connection_security_policy: 'mutual_tls',
          response_code: '200',
          value: 1,
        },
        {
          ...base,
          source_principal: 'unknown',
          connection_security_policy: 'none',
          response_code: '400',
          value: 1,
        },
      ]),
    );
    expect(await series(registry)).toHaveLength(3);
  });

  it('counts a 400 on a server without an authorization policy too', async () => {
    const registry = new client.Registry();
    const metrics = istioMetrics(promClientSink(client, registry));
    onCleanup(() => metrics.close());
    const server = createMtlsServer({ identity: ca.identity('/ns/demo/sa/boards') }, (_req, res) =>
      res.end(),
    );
    metrics.observe(server);
    const { port } = await listen(server);
    const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
    expect((await mtlsRequest(port, '/a%5Cb', ui, ca.bundle())).status).toBe(400);
    expect(await series(registry)).toEqual([
      {
        reporter: 'destination',
        source_principal: UI,
        destination_principal: BOARDS,
        connection_security_policy: 'mutual_tls',
        request_protocol: 'http',
        response_code: '400',
        value: 1,
      },
    ]);
  });
});

function agentGet(port: number, path: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('istioMetrics.observeClients: reporter="source"', () => {
  it('counts what dispatchers and agents receive, with the server principal they verified', async () => {
    const registry = new client.Registry();
    const metrics = istioMetrics(promClientSink(client, registry));
    onCleanup(() => metrics.close());
    const stop = metrics.observeClients();
    expect(metrics.observeClients()).toBe(stop);

    const server = createMtlsServer(
      { identity: ca.identity('/ns/demo/sa/boards'), authorize: { '/items': UI } },
      (_req, res) => {
        res.statusCode = 201;
        res.end('ok');
      },
    );
    const { port } = await listen(server);
    const legacy = http.createServer((_req, res) => res.end('plain'));
    const { port: legacyPort } = await listen(legacy);
    const identity = ca.identity('/ns/demo/sa/app-ui');
    onCleanup(() => identity.close());
    const destinations = {
      [`127.0.0.1:${port}`]: { expect: BOARDS },
      [`127.0.0.1:${legacyPort}`]: { mode: 'plaintext' as const },
    };
    const dispatcher = createMtlsDispatcher({ identity, destinations });
    onCleanup(() => dispatcher.close());
    const agent = createMtlsAgent({ identity, destinations });
    onCleanup(() => agent.destroy());

    for (const path of ['/items', '/items', '/admin']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { dispatcher });
      await res.text();
    }
    expect(await agentGet(port, '/items', agent)).toBe(201);
    const plain = await fetch(`http://127.0.0.1:${legacyPort}/`, { dispatcher });
    expect(await plain.text()).toBe('plain');
    // A server that is not boards: refused at connect, no response, nothing counted.
    const impostor = createMtlsServer({ identity: ca.identity('/ns/demo/sa/impostor') }, (_req, res) =>
      res.end(),
    );
    const { port: impostorPort } = await listen(impostor);
    const wrong = createMtlsDispatcher({
      identity,
      destinations: { [`127.0.0.1:${impostorPort}`]: { expect: BOARDS } },
    });
    onCleanup(() => wrong.close());
    await expect(fetch(`http://127.0.0.1:${impostorPort}/items`, { dispatcher: wrong })).rejects.toThrow();

    const base = { reporter: 'source', source_principal: UI, request_protocol: 'http' };
    const mtls = { ...base, destination_principal: BOARDS, connection_security_policy: 'mutual_tls' };
    expect(await series(registry)).toEqual(
      expect.arrayContaining([
        { ...mtls, response_code: '201', value: 3 },
        { ...mtls, response_code: '403', value: 1 },
        {
          ...base,
          destination_principal: 'unknown',
          connection_security_policy: 'none',
          response_code: '200',
          value: 1,
        },
      ]),
    );
    expect(await series(registry)).toHaveLength(3);

    // Stopped: the channel is no longer followed.
    stop();
    const after = await fetch(`http://127.0.0.1:${port}/items`, { dispatcher });
    await after.text();
    expect((await series(registry)).find((s) => s.response_code === '201')?.value).toBe(3);
    // And observing again counts again.
    metrics.observeClients();
    const again = await fetch(`http://127.0.0.1:${port}/items`, { dispatcher });
    await again.text();
    expect((await series(registry)).find((s) => s.response_code === '201')?.value).toBe(4);
  });
});
