// sidecarless/metrics: Istio's standard metrics (istio_requests_total,
// istio_tcp_connections_opened_total, istio_tcp_connections_closed_total) for sidecarless
// servers, fed by the servers' own events, and istio_requests_total for sidecarless clients,
// fed by the sidecarless:client:response channel, through a small sink with adapters for
// prom-client and OpenTelemetry. Neither library is imported here: the caller passes its prom-client module or
// its OpenTelemetry meter, so the package depends on neither (optional peer dependencies).

import diagnostics from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { channels } from '../observe/channels.js';
import type { ClientResponseEvent } from '../observe/client-events.js';
import { UNAUTHENTICATED_SOURCE } from '../observe/edges.js';
import type { AuthorizationEvent, PeerEvent } from '../observe/server-events.js';
import { getPeer } from '../server/get-peer.js';
import type { MtlsHttp2Server, MtlsHttpServer, MtlsTlsServer } from '../server/server-types.js';

/**
 * The names of the counters, as Istio's standard metrics name them.
 * @example
 * ```ts
 * import { ISTIO_METRICS } from 'sidecarless/metrics';
 * console.log(ISTIO_METRICS.requests); // istio_requests_total
 * ```
 */
export const ISTIO_METRICS = Object.freeze({
  requests: 'istio_requests_total',
  tcpOpened: 'istio_tcp_connections_opened_total',
  tcpClosed: 'istio_tcp_connections_closed_total',
} as const);

/**
 * The labels of `istio_requests_total`, as Istio names them.
 * @example
 * ```ts
 * import { REQUEST_LABELS } from 'sidecarless/metrics';
 * console.log(REQUEST_LABELS.join(','));
 * ```
 */
export const REQUEST_LABELS = [
  'reporter',
  'source_principal',
  'destination_principal',
  'connection_security_policy',
  'request_protocol',
  'response_code',
] as const;

/**
 * The labels of the TCP connection counters.
 * @example
 * ```ts
 * import { TCP_LABELS } from 'sidecarless/metrics';
 * console.log(TCP_LABELS.includes('connection_security_policy'));
 * ```
 */
export const TCP_LABELS = [
  'reporter',
  'source_principal',
  'destination_principal',
  'connection_security_policy',
] as const;

/**
 * One counter of a {@link MetricsSink}: adds `value` (1 by default) to the series of `labels`.
 * @example
 * ```ts
 * import type { CounterFn } from 'sidecarless/metrics';
 * const count: CounterFn = (labels, value = 1) => console.log(labels, value);
 * ```
 */
export type CounterFn = (labels: Readonly<Record<string, string>>, value?: number) => void;

/**
 * Where the counters go: one function per counter. {@link promClientSink} and
 * {@link openTelemetrySink} make one; any other metrics library needs only this.
 * @example
 * ```ts
 * import type { MetricsSink } from 'sidecarless/metrics';
 * const totals = new Map<string, number>();
 * const sink: MetricsSink = {
 *   counter: (name) => (labels, value = 1) => {
 *     const key = `${name}${JSON.stringify(labels)}`;
 *     totals.set(key, (totals.get(key) ?? 0) + value);
 *   },
 * };
 * ```
 */
export interface MetricsSink {
  /** Makes (or finds) the counter `name` with these label names. */
  counter(name: string, help: string, labelNames: readonly string[]): CounterFn;
}

/**
 * The part of the `prom-client` module {@link promClientSink} uses (prom-client 15).
 * @example
 * ```ts
 * import client from 'prom-client';
 * import type { PromClientLike } from 'sidecarless/metrics';
 * const promClient: PromClientLike<client.Registry> = client;
 * ```
 */
export interface PromClientLike<R extends PromRegistryLike = PromRegistryLike> {
  /** prom-client's `Counter` class. */
  readonly Counter: new (config: {
    name: string;
    help: string;
    labelNames: string[];
    registers?: R[];
  }) => { inc(labels: Record<string, string>, value?: number): void };
  /** prom-client's default registry. */
  readonly register: R;
}

/**
 * The part of a prom-client `Registry` {@link promClientSink} uses.
 * @example
 * ```ts
 * import client from 'prom-client';
 * import type { PromRegistryLike } from 'sidecarless/metrics';
 * const registry: PromRegistryLike = new client.Registry();
 * ```
 */
export interface PromRegistryLike {
  /** The metric registered under `name`, if any. */
  getSingleMetric(name: string): unknown;
}

/**
 * A sink writing prom-client counters into `registry` (default: prom-client's default registry).
 * Pass the `prom-client` module itself: sidecarless does not import it. A counter already
 * registered under the same name is reused.
 * @example
 * ```ts
 * import client from 'prom-client';
 * import { istioMetrics, promClientSink } from 'sidecarless/metrics';
 * const registry = new client.Registry();
 * const metrics = istioMetrics(promClientSink(client, registry));
 * // metrics.observe(server); then serve `await registry.metrics()` on /metrics
 * ```
 */
export function promClientSink<R extends PromRegistryLike>(
  client: PromClientLike<R>,
  registry: R = client.register,
): MetricsSink {
  if (typeof client?.Counter !== 'function') {
    throw new TypeError(
      'promClientSink(client): pass the prom-client module (import client from "prom-client")',
    );
  }
  return {
    counter(name, help, labelNames) {
      const existing = registry.getSingleMetric(name) as
        | { inc(labels: Record<string, string>, value?: number): void }
        | undefined;
      const counter =
        existing ?? new client.Counter({ name, help, labelNames: [...labelNames], registers: [registry] });
      return (labels, value = 1) => counter.inc({ ...labels }, value);
    },
  };
}

/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api` 1.x) {@link openTelemetrySink} uses.
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import type { OtelMeterLike } from 'sidecarless/metrics';
 * const meter: OtelMeterLike = metrics.getMeter('sidecarless');
 * ```
 */
export interface OtelMeterLike {
  /** `meter.createCounter(name, { description, unit })`. */
  createCounter(
    name: string,
    options?: { description?: string; unit?: string },
  ): { add(value: number, attributes?: Record<string, string>): void };
}

/**
 * A sink writing OpenTelemetry counters on `meter` (`metrics.getMeter('sidecarless')`, or a
 * MeterProvider's). sidecarless does not import `@opentelemetry/api`.
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { istioMetrics, openTelemetrySink } from 'sidecarless/metrics';
 * const istio = istioMetrics(openTelemetrySink(metrics.getMeter('sidecarless')));
 * ```
 */
export function openTelemetrySink(meter: OtelMeterLike): MetricsSink {
  if (typeof meter?.createCounter !== 'function') {
    throw new TypeError('openTelemetrySink(meter): pass an OpenTelemetry Meter (metrics.getMeter(name))');
  }
  const made = new Map<string, CounterFn>();
  return {
    counter(name, help) {
      let fn = made.get(name);
      if (fn === undefined) {
        const counter = meter.createCounter(name, { description: help, unit: '1' });
        fn = (labels, value = 1) => counter.add(value, { ...labels });
        made.set(name, fn);
      }
      return fn;
    },
  };
}

/**
 * What {@link IstioMetrics.observe} counts: a server made by `createMtlsServer()`.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * import type { ObservableServer } from 'sidecarless/metrics';
 * const server: ObservableServer = createMtlsServer({ identity: createLocalCa({ trustDomain: 'td' }).identity('/web') }, (_req, res) => res.end());
 * ```
 */
export type ObservableServer = MtlsHttpServer | MtlsHttp2Server | MtlsTlsServer;

/**
 * The counters of {@link istioMetrics}; `observe()` each server to count.
 * @example
 * ```ts
 * import type { IstioMetrics } from 'sidecarless/metrics';
 * const stopAll = (metrics: IstioMetrics) => metrics.close();
 * ```
 */
export interface IstioMetrics {
  /**
   * Counts a server's requests (`istio_requests_total`, with the status it answered, refusals
   * included) and connections; returns the function that stops.
   */
  observe(server: ObservableServer): () => void;
  /**
   * Counts the responses every sidecarless client of this process receives (dispatchers, agents,
   * `createMtlsFetch`): `istio_requests_total{reporter="source"}`, fed by the
   * `sidecarless:client:response` channel. Channels are per process, so this is once per process,
   * as Istio's sidecar reported all of a workload's outbound requests. Calling it again returns
   * the same stop function. Returns the function that stops.
   */
  observeClients(): () => void;
  /** Stops observing every server and the clients. Idempotent. */
  close(): void;
}

/** Connections between their peer event and their socket, at most. */
const MAX_PENDING = 10_000;

/** Istio's label value for an unknown principal. */
const UNKNOWN = 'unknown';

function policyOf(mtls: boolean): string {
  return mtls ? 'mutual_tls' : 'none';
}

/**
 * Istio-shaped counters for sidecarless servers, reported as Istio's sidecars did on the server
 * side (`reporter="destination"`), and for sidecarless clients (`reporter="source"`):
 * - `istio_requests_total`, labelled `source_principal`, `destination_principal`,
 *   `connection_security_policy`, `request_protocol` and `response_code`: every request an
 *   observed server answered, every request its authorization denied (403), every request it
 *   refused as malformed (400, before any authorization decision); with
 *   {@link IstioMetrics.observeClients}, every response a client received;
 * - `istio_tcp_connections_opened_total` and `istio_tcp_connections_closed_total` with the same
 *   principals and security policy, per connection an observed server accepted.
 *
 * On the client side `source_principal` is this workload's SPIFFE ID and `destination_principal`
 * the SPIFFE ID the server proved; `connection_security_policy` is `mutual_tls` when the server was
 * verified and our SVID presented (Istio's source-side proxies report `unknown`, as they cannot see
 * the server's policy; a sidecarless client verified the server itself), `none` in plaintext.
 *
 * Principals are SPIFFE IDs (`spiffe://cluster.local/ns/demo/sa/app-ui`), `unknown` without one;
 * `connection_security_policy` is `mutual_tls` or `none`, as in Istio. Series are bounded by the
 * verified callers (unauthenticated callers share `unknown`) and the response codes.
 * @example
 * ```ts
 * import client from 'prom-client';
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * import { istioMetrics, promClientSink } from 'sidecarless/metrics';
 * const server = createMtlsServer({ identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/boards') }, (_req, res) => res.end());
 * const metrics = istioMetrics(promClientSink(client));
 * const stop = metrics.observe(server);
 * ```
 */
export function istioMetrics(sink: MetricsSink): IstioMetrics {
  if (typeof sink?.counter !== 'function') throw new TypeError('istioMetrics(sink): pass a MetricsSink');
  const requests = sink.counter(
    ISTIO_METRICS.requests,
    'Requests answered or refused by sidecarless servers, as Istio counts them',
    REQUEST_LABELS,
  );
  const opened = sink.counter(
    ISTIO_METRICS.tcpOpened,
    'Connections accepted by sidecarless servers',
    TCP_LABELS,
  );
  const closed = sink.counter(
    ISTIO_METRICS.tcpClosed,
    'Connections closed on sidecarless servers',
    TCP_LABELS,
  );
  const stops = new Set<() => void>();

  const observe = (server: ObservableServer): (() => void) => {
    if (typeof server?.describe !== 'function' || typeof server.on !== 'function') {
      throw new TypeError('observe(server): pass a server made by createMtlsServer()');
    }
    const events = server as unknown as EventEmitter;
    const destination = () => server.describe().id ?? UNKNOWN;
    const protocol = server.describe().protocol === 'tls' ? 'tcp' : 'http';
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      let source = UNKNOWN;
      let mtls = false;
      try {
        const peer = getPeer(req);
        source = peer.id?.toString() ?? UNKNOWN;
        mtls = peer.mtls;
      } catch {
        // Not a sidecarless request (cannot happen on an observed server): counted as unknown.
      }
      res.once('finish', () =>
        requests({
          reporter: 'destination',
          source_principal: source,
          destination_principal: destination(),
          connection_security_policy: policyOf(mtls),
          request_protocol: protocol,
          response_code: String(res.statusCode),
        }),
      );
    };
    // A request the server refused is answered by the server itself (403 when its authorization
    // denied it, 400 when the request-target could not be normalised, before any rule was asked)
    // and never reaches 'request' listeners: its decision event stands for it.
    const onDecision = (event: AuthorizationEvent) => {
      const code =
        event.reason === 'bad_request' ? '400' : !event.allowed && event.path !== null ? '403' : undefined;
      if (code === undefined) return;
      requests({
        reporter: 'destination',
        source_principal: event.peer ?? UNKNOWN,
        destination_principal: destination(),
        connection_security_policy: policyOf(event.mtls),
        request_protocol: protocol,
        response_code: code,
      });
    };
    // The peer event names the connection by its remote address and port; the connection (or
    // secureConnection) event that follows carries its socket, whose close is counted with the
    // same labels. Bounded: a connection never handed on (refused later) is forgotten.
    const pending = new Map<string, Record<string, string>>();
    const onPeer = (event: PeerEvent) => {
      const labels = {
        reporter: 'destination',
        source_principal: event.id ?? UNKNOWN,
        destination_principal: destination(),
        connection_security_policy: policyOf(event.mtls),
      };
      opened(labels);
      if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value as string);
      pending.set(`${event.remoteAddress}|${event.remotePort}`, labels);
    };
    const onSocket = (socket: Socket) => {
      const key = `${socket.remoteAddress}|${socket.remotePort}`;
      const labels = pending.get(key);
      if (labels === undefined) return;
      pending.delete(key);
      socket.once('close', () => closed(labels));
    };
    events.on('request', onRequest);
    events.on('authorization', onDecision);
    events.on('peer', onPeer);
    events.on('connection', onSocket);
    events.on('secureConnection', onSocket);
    const stop = () => {
      events.off('request', onRequest);
      events.off('authorization', onDecision);
      events.off('peer', onPeer);
      events.off('connection', onSocket);
      events.off('secureConnection', onSocket);
      stops.delete(stop);
    };
    stops.add(stop);
    return stop;
  };
  let stopClients: (() => void) | undefined;
  const observeClients = (): (() => void) => {
    if (stopClients !== undefined) return stopClients;
    const onResponse = (message: unknown) => {
      const event = message as ClientResponseEvent;
      requests({
        reporter: 'source',
        source_principal: event.source === UNAUTHENTICATED_SOURCE ? UNKNOWN : event.source,
        destination_principal: event.peer ?? UNKNOWN,
        connection_security_policy: policyOf(event.mtls),
        request_protocol: 'http',
        response_code: String(event.statusCode),
      });
    };
    diagnostics.subscribe(channels.clientResponse, onResponse);
    const stop = () => {
      diagnostics.unsubscribe(channels.clientResponse, onResponse);
      stops.delete(stop);
      stopClients = undefined;
    };
    stops.add(stop);
    stopClients = stop;
    return stop;
  };
  return {
    observe,
    observeClients,
    close: () => {
      for (const stop of [...stops]) stop();
    },
  };
}
