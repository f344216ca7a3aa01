import type { ServerCore } from './server-core.js';

/** The HTTP servers' timeouts, from the settings. */
export function applyHttpTimeouts(
  core: ServerCore,
  server: {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout: number;
    connectionsCheckingInterval?: number;
  },
): void {
  server.headersTimeout = core.settings.headersTimeout;
  server.requestTimeout = core.settings.requestTimeout;
  server.keepAliveTimeout = core.settings.keepAliveTimeout;
  // Node enforces headersTimeout/requestTimeout only when it checks its connections, every 30 s by
  // default (read at listen(), for http.Server and http2's HTTP/1.1 fallback alike): a 20 s
  // headersTimeout would really be 20–50 s.
  const { headersTimeout, requestTimeout } = core.settings;
  server.connectionsCheckingInterval = Math.max(10, Math.min(1_000, headersTimeout, requestTimeout));
}

/** Refusals by maxConnections, reported (Node drops the socket before anyone sees it). */
export function watchDrops(
  core: ServerCore,
  server: { maxConnections: number; on(event: 'drop', listener: (data?: object) => void): unknown },
): void {
  if (core.settings.maxConnections === undefined) return;
  server.maxConnections = core.settings.maxConnections;
  server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
    core.rejectInfo(
      data ?? {},
      'sniff',
      'ERR_CONNECTION_LIMIT',
      `more than ${core.settings.maxConnections} connections`,
    );
  });
}
