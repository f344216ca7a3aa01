// sidecarless/metrics over real mTLS: a STRICT sidecarless server with an authorization rule,
// real clients with certificates from the test CA, and the counters read back from a real
// prom-client registry and from a real OpenTelemetry MeterProvider with an in-memory exporter.
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import client from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsServer } from '../../src/index.js';
import {
  istioMetrics,
  type MetricsSink,
  openTelemetrySink,
  promClientSink,
} from '../../src/metrics/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { credentialsOf, listen, mtlsRequest, onCleanup, plainRequest } from '../helpers/server.js';

const ca = createTestCa();
afterAll(() => ca.close());
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const OPS = 'spiffe://cluster.local/ns/ops/sa/admin';

/** Two allowed requests and one denied from the UI, one from ops, one plaintext refused at the door. */
async function traffic(sink: MetricsSink) {
  const metrics = istioMetrics(sink);
  onCleanup(() => metrics.close());
  const server = createMtlsServer(
    {
      identity: ca.identity('/ns/demo/sa/boards'),
      protocol: 'http1',
      authorize: { '/items': UI, '/admin': OPS },
    },
    (_req, res) => {
      res.statusCode = 201;
      res.end('ok');
    },
  );
  metrics.observe(server);
  const { port } = await listen(server);
  const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
  const ops = credentialsOf(ca.issue('/ns/ops/sa/admin'));
  expect((await mtlsRequest(port, '/items', ui, ca.bundle())).status).toBe(201);
  expect((await mtlsRequest(port, '/items?x=1', ui, ca.bundle())).status).toBe(201);
  expect((await mtlsRequest(port, '/admin', ui, ca.bundle())).status).toBe(403);
  expect((await mtlsRequest(port, '/admin', ops, ca.bundle())).status).toBe(201);
  await expect(plainRequest(port, '/items')).rejects.toThrow(); // STRICT: reset, never a request
  // Every connection closed (agent: false): wait until the server has none.
  server.closeAllConnections();
  const open = () => Object.values(server.describe().connections).reduce((a, b) => a + b, 0);
  while (open() > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setImmediate(resolve));
  return { metrics, server };
}

const base = {
  reporter: 'destination',
  destination_principal: BOARDS,
  connection_security_policy: 'mutual_tls',
  request_protocol: 'http',
};

describe('istioMetrics with prom-client', () => {
  it('counts requests by principal and response code, and connections opened and closed', async () => {
    const registry = new client.Registry();
    await traffic(promClientSink(client, registry));
    const requests = await registry.getSingleMetric('istio_requests_total')?.get();
    const series = requests?.values.map((v) => ({ ...v.labels, value: v.value }));
    expect(series).toEqual(
      expect.arrayContaining([
        { ...base, source_principal: UI, response_code: '201', value: 2 },
        { ...base, source_principal: UI, response_code: '403', value: 1 },
        { ...base, source_principal: OPS, response_code: '201', value: 1 },
      ]),
    );
    expect(series).toHaveLength(3);
    const opened = await registry.getSingleMetric('istio_tcp_connections_opened_total')?.get();
    const total = (opened?.values ?? []).reduce((sum, v) => sum + v.value, 0);
    expect(total).toBe(4);
    expect(opened?.values.find((v) => v.labels.source_principal === UI)?.value).toBe(3);
    const closed = await registry.getSingleMetric('istio_tcp_connections_closed_total')?.get();
    expect((closed?.values ?? []).reduce((sum, v) => sum + v.value, 0)).toBe(4);
    const text = await registry.metrics();
    expect(text).toContain(
      `istio_requests_total{reporter="destination",source_principal="${UI}",destination_principal="${BOARDS}",connection_security_policy="mutual_tls",request_protocol="http",response_code="403"} 1`,
    );
  });

  it('reuses a counter already in the registry, and refuses what is not prom-client', async () => {
    const registry = new client.Registry();
    const sink = promClientSink(client, registry);
    istioMetrics(sink);
    expect(() => istioMetrics(sink)).not.toThrow();
    expect(() => promClientSink({} as never)).toThrow(TypeError);
    expect(() => openTelemetrySink({} as never)).toThrow(TypeError);
  });
});

describe('istioMetrics with OpenTelemetry', () => {
  it('exports the same counters through a MeterProvider', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    onCleanup(() => provider.shutdown());
    await traffic(openTelemetrySink(provider.getMeter('sidecarless')));
    await reader.forceFlush();
    const metrics = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    const requests = metrics.filter((m) => m.descriptor.name === 'istio_requests_total').at(-1);
    const points = requests?.dataPoints.map((p) => ({ ...p.attributes, value: p.value }));
    expect(points).toEqual(
      expect.arrayContaining([
        { ...base, source_principal: UI, response_code: '201', value: 2 },
        { ...base, source_principal: UI, response_code: '403', value: 1 },
        { ...base, source_principal: OPS, response_code: '201', value: 1 },
      ]),
    );
    const opened = metrics.filter((m) => m.descriptor.name === 'istio_tcp_connections_opened_total').at(-1);
    expect(opened?.dataPoints.reduce((sum, p) => sum + (p.value as number), 0)).toBe(4);
  });
});
