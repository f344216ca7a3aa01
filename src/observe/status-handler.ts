// statusHandler(): an opt-in (req, res) handler for an admin port. It publishes the service's
// topology and renders text callers chose (paths in refusal reasons, SNI), so it answers loopback
// callers only (unless mounted behind an authorization rule), escapes every string, sends a
// Content-Security-Policy that allows no script at all, and drops query strings from paths.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BundleSource, IdentitySource } from '../identity/source.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import type { EdgeReport } from './edges.js';
import {
  type StatusClient,
  StatusCollector,
  type StatusReport,
  type StatusServer,
  type StatusServerReport,
  type StatusSourceReport,
} from './status-report.js';

/**
 * Options of {@link statusHandler}: what to describe, and who may ask.
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer, type StatusHandlerOptions } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/boards');
 * const server = createMtlsServer({ identity }, (_req, res) => res.end());
 * const options: StatusHandlerOptions = { servers: [server], sources: { identity } };
 * ```
 */
export interface StatusHandlerOptions {
  /** Servers made by `createMtlsServer()`: their listener, rules and inbound edges. */
  readonly servers?: readonly StatusServer[];
  /** Dispatchers and agents, by a name shown on the page: their outbound edges. */
  readonly clients?: Readonly<Record<string, StatusClient>>;
  /**
   * Identity and bundle sources, by a name shown on the page: each SVID's and bundle authority's
   * expiry, the last rotation and the last error seen since the handler was made.
   */
  readonly sources?: Readonly<Record<string, IdentitySource | BundleSource>>;
  /**
   * Set to true only when the handler is mounted behind an authorization rule of your own (an
   * mTLS server whose policy limits the path to operators, say): then callers from any address
   * are answered. By default (false) only loopback callers are (`127.0.0.0/8`, `::1`,
   * `::ffff:127.x.y.z`); others get 403.
   */
  readonly behindAuthorization?: boolean;
}

/**
 * The handler {@link statusHandler} returns: a Node `(req, res)` request listener, plus `close()`.
 * @example
 * ```ts
 * import http from 'node:http';
 * import { statusHandler, type StatusHandler } from 'sidecarless';
 * const handler: StatusHandler = statusHandler({});
 * const admin = http.createServer(handler).listen(15000, '127.0.0.1');
 * admin.on('close', () => handler.close());
 * ```
 */
export interface StatusHandler {
  /** Answers one request: the HTML page, or JSON (see {@link statusHandler}). */
  (req: IncomingMessage, res: ServerResponse): void;
  /** The report as the JSON answer carries it (before serialisation). */
  report(): StatusReport;
  /** Stops following the sources. Idempotent. */
  close(): void;
}

const STYLE = [
  'body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}',
  'h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}',
  'table{border-collapse:collapse;margin:.4em 0}',
  'th,td{border:1px solid #c8ccd1;padding:.25em .6em;text-align:left;vertical-align:top}',
  'th{background:#f1f3f5}code{font-family:ui-monospace,monospace;font-size:.95em}',
  '.lock{font-weight:600;white-space:nowrap}.lock-closed{color:#18794e}.lock-open{color:#b42318}',
  '.warn{color:#b42318}.muted{color:#667085}.icon{vertical-align:-3px}',
].join('');
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/**
 * The Content-Security-Policy of the HTML page: nothing may load or run but its one inline
 * stylesheet, pinned by hash.
 * @example
 * ```ts
 * import { STATUS_PAGE_CSP } from 'sidecarless';
 * console.log(STATUS_PAGE_CSP.startsWith("default-src 'none'"));
 * ```
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${STYLE_HASH}'`,
  "img-src 'none'",
  "script-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for HTML: the five characters that could end text or an attribute, escaped. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: the callers answered by default. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)) return true;
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/**
 * Whether a request asks for JSON: `?format=json`, or an `Accept` header that names
 * `application/json` and not `text/html` (a browser's always names `text/html`).
 */
export function wantsJson(req: IncomingMessage): boolean {
  const url = req.url ?? '/';
  const query = url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)) : undefined;
  const format = query?.get('format');
  if (format === 'json') return true;
  if (format === 'html') return false;
  const accept = String(req.headers.accept ?? '').toLowerCase();
  return accept.includes('application/json') && !accept.includes('text/html');
}

const when = (date: Date | null | undefined): string => (date ? date.toISOString() : '—');
const cell = (value: unknown): string => `<td>${escapeHtml(value ?? '—')}</td>`;
const code = (value: unknown): string => `<td><code>${escapeHtml(value ?? '—')}</code></td>`;

// Drawn inline (no font or image needed; the CSP loads nothing): a body and a shackle, closed
// into the body or lifted out of it on the left.
const BODY = '<rect x="3" y="7" width="10" height="8" rx="1.5" fill="currentColor"/>';
const SHACKLE_CLOSED =
  '<path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" stroke-width="1.8"/>';
const SHACKLE_OPEN = '<path d="M11 7V2a3 3 0 0 0-6 0" fill="none" stroke="currentColor" stroke-width="1.8"/>';
const icon = (shackle: string, title: string) =>
  `<svg class="icon" viewBox="0 -2 16 18" width="15" height="17" role="img" aria-label="${title}">${BODY}${shackle}</svg>`;
/** The closed lock of an mTLS edge. */
const LOCK_CLOSED = icon(SHACKLE_CLOSED, 'closed lock');
/** The open lock of an edge with plaintext requests. */
const LOCK_OPEN = icon(SHACKLE_OPEN, 'open lock');

function lock(edge: EdgeReport): string {
  if (edge.requests === 0) return '<td class="lock muted" data-lock="none">no requests</td>';
  if (edge.mtlsShare === 1) return `<td class="lock lock-closed" data-lock="closed">${LOCK_CLOSED} mTLS</td>`;
  if (edge.mtlsRequests === 0)
    return `<td class="lock lock-open" data-lock="open">${LOCK_OPEN} plaintext</td>`;
  const share = Math.round((edge.mtlsShare ?? 0) * 100);
  return `<td class="lock lock-open" data-lock="mixed">${LOCK_OPEN} ${share} % mTLS</td>`;
}

function edgeRows(edges: readonly EdgeReport[]): string {
  if (edges.length === 0) return '<p class="muted">No edges yet.</p>';
  const rows = edges.map((edge) => {
    const refusal =
      edge.lastRefusal === null
        ? cell(null)
        : `<td class="warn"><code>${escapeHtml(edge.lastRefusal.reason)}</code> ${escapeHtml(edge.lastRefusal.message)}<br><span class="muted">${escapeHtml(when(edge.lastRefusal.at))}</span></td>`;
    return [
      '<tr class="edge">',
      lock(edge),
      code(edge.source),
      code(edge.destination),
      code(edge.peer),
      cell(edge.requests),
      cell(edge.refusals),
      cell(edge.tlsVersion),
      cell(edge.keyExchange),
      cell(when(edge.lastSeen)),
      refusal,
      '</tr>',
    ].join('');
  });
  return [
    '<table><thead><tr><th>Lock</th><th>Source</th><th>Destination</th><th>Peer</th><th>Requests</th>',
    '<th>Refusals</th><th>TLS</th><th>Key exchange</th><th>Last seen</th><th>Last refusal</th></tr></thead>',
    `<tbody>${rows.join('')}</tbody></table>`,
  ].join('');
}

function serverSection(server: StatusServerReport): string {
  const rules = server.rules;
  const ruleRows =
    rules === null
      ? '<p class="muted">No authorization policy.</p>'
      : [
          `<p>Authorization: ${escapeHtml(rules.mode)}</p>`,
          '<table><thead><tr><th>Map</th><th>Key</th><th>Matcher</th></tr></thead><tbody>',
          ...rules.deny.map((r) => `<tr><td>deny</td>${code(r.key)}${code(r.matcher)}</tr>`),
          ...rules.authorize.map((r) => `<tr><td>authorize</td>${code(r.key)}${code(r.matcher)}</tr>`),
          ...(rules.engine?.rules ?? []).map(
            (r) => `<tr><td>${escapeHtml(r.action)}</td>${code(r.name)}${code(r.rule)}</tr>`,
          ),
          '</tbody></table>',
        ].join('');
  return [
    `<h2>Listener <code>${escapeHtml(server.address ?? 'not listening')}</code></h2>`,
    '<table><tbody>',
    `<tr><th>Mode</th>${cell(server.mode)}</tr>`,
    `<tr><th>Protocol</th>${cell(server.protocol)}</tr>`,
    `<tr><th>SPIFFE ID</th>${code(server.id)}</tr>`,
    `<tr><th>SVID expires</th>${cell(when(server.notAfter))}</tr>`,
    `<tr><th>Trust domains</th>${cell(server.trustDomains.join(', '))}</tr>`,
    '</tbody></table>',
    ruleRows,
    '<h3>Inbound edges</h3>',
    edgeRows(server.edges),
  ].join('');
}

function sourceSection(source: StatusSourceReport): string {
  const certificates = [
    ...source.svids.map((c) => `<tr><td>SVID</td>${code(c.name)}${cell(when(c.notAfter))}</tr>`),
    ...source.bundles.flatMap((b) =>
      b.authorities.map(
        (c) =>
          `<tr><td>authority of ${escapeHtml(b.trustDomain)}</td>${code(c.name)}${cell(when(c.notAfter))}</tr>`,
      ),
    ),
  ];
  const error = source.lastError;
  return [
    `<h2>Source ${escapeHtml(source.name)}</h2>`,
    source.unavailable === null ? '' : `<p class="warn">${escapeHtml(source.unavailable)}</p>`,
    '<table><thead><tr><th>Kind</th><th>Name</th><th>Expires</th></tr></thead>',
    `<tbody>${certificates.join('')}</tbody></table>`,
    `<p>Last rotation: ${escapeHtml(when(source.lastRotation))}</p>`,
    error === null
      ? '<p>Last error: —</p>'
      : `<p class="warn">Last error: <code>${escapeHtml(error.code)}</code> ${escapeHtml(error.message)} (${escapeHtml(when(error.at))})</p>`,
    source.lastExpiring === null
      ? ''
      : `<p class="warn">Expiring: ${escapeHtml(source.lastExpiring.kind)} ${escapeHtml(source.lastExpiring.id)} at ${escapeHtml(when(source.lastExpiring.notAfter))} (${escapeHtml(source.lastExpiring.reason)})</p>`,
  ].join('');
}

/** The HTML page of a report. Every string from the report goes through escapeHtml. */
export function renderStatusPage(report: StatusReport): string {
  const body = [
    '<h1>sidecarless status</h1>',
    `<p class="muted">Generated ${escapeHtml(when(report.generatedAt))}. ${LOCK_CLOSED} every request on the edge was mTLS; ${LOCK_OPEN} some or all were plaintext.</p>`,
    ...report.servers.map(serverSection),
    ...report.clients.map(
      (client) =>
        `<h2>Client ${escapeHtml(client.name)} <code>${escapeHtml(client.id ?? 'no identity')}</code></h2><h3>Outbound edges</h3>${edgeRows(client.edges)}`,
    ),
    ...report.sources.map(sourceSection),
  ];
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>sidecarless status</title>',
    `<style>${STYLE}</style>`,
    `</head><body>${body.join('\n')}</body></html>`,
    '',
  ].join('\n');
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', STATUS_PAGE_CSP);
  res.end(head ? undefined : body);
}

const OPTIONS: readonly (keyof StatusHandlerOptions)[] = [
  'servers',
  'clients',
  'sources',
  'behindAuthorization',
];

/**
 * An opt-in request handler for an admin port: what the given servers, clients and identity
 * sources describe, as an HTML page (the edge table with a closed lock on mTLS edges and an open
 * lock on plaintext ones, each SVID's and bundle authority's expiry, last rotation, last error)
 * or as JSON, which `sidecarless describe <url>` reads.
 *
 * JSON is sent for `?format=json`, or when the `Accept` header names `application/json` and not
 * `text/html`; HTML otherwise (`?format=html` forces it). Every path is answered the same way, so
 * the handler can be mounted under any prefix; GET and HEAD only (others get 405).
 *
 * The page publishes the service's topology and shows text callers chose (paths in refusal
 * reasons), so: only loopback callers are answered unless `behindAuthorization` is set (403
 * otherwise), every string is HTML-escaped, the Content-Security-Policy allows no script and only
 * the page's own stylesheet ({@link STATUS_PAGE_CSP}), `X-Content-Type-Options: nosniff`, and
 * query strings are dropped from the paths shown. docs/observability.md describes the document.
 * @example
 * ```ts
 * import http from 'node:http';
 * import { createLocalCa, createMtlsServer, statusHandler } from 'sidecarless';
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/boards');
 * const server = createMtlsServer({ identity }, (_req, res) => res.end('ok'));
 * const status = statusHandler({ servers: [server], sources: { identity } });
 * http.createServer(status).listen(15000, '127.0.0.1'); // open http://127.0.0.1:15000/
 * ```
 */
export function statusHandler(options: StatusHandlerOptions = {}): StatusHandler {
  checkOptions<StatusHandlerOptions>(options, OPTIONS, 'statusHandler');
  const behind = options.behindAuthorization ?? false;
  if (typeof behind !== 'boolean') throw invalidOption('behindAuthorization', 'a boolean', behind);
  for (const server of options.servers ?? []) {
    if (typeof (server as Partial<StatusServer>)?.describe !== 'function') {
      throw invalidOption('servers', 'servers made by createMtlsServer() (with describe())', server);
    }
  }
  for (const client of Object.values(options.clients ?? {})) {
    if (typeof (client as Partial<StatusClient>)?.describe !== 'function') {
      throw invalidOption('clients', 'dispatchers or agents (with describe())', client);
    }
  }
  for (const source of Object.values(options.sources ?? {})) {
    const s = source as Partial<IdentitySource> | null;
    if (typeof s?.current !== 'function' || typeof s.subscribe !== 'function') {
      throw invalidOption('sources', 'identity or bundle sources', source);
    }
  }
  const collector = new StatusCollector({
    servers: options.servers ?? [],
    clients: options.clients ?? {},
    sources: options.sources ?? {},
  });
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const head = req.method === 'HEAD';
    const json = wantsJson(req);
    const refuse = (status: number, message: string) =>
      json
        ? send(
            res,
            status,
            'application/json; charset=utf-8',
            `${JSON.stringify({ error: message })}\n`,
            head,
          )
        : send(res, status, 'text/plain; charset=utf-8', `${message}\n`, head);
    if (!behind && !isLoopback(req.socket.remoteAddress)) {
      refuse(403, 'the status page answers loopback callers only');
      return;
    }
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      refuse(405, 'GET or HEAD only');
      return;
    }
    const report = collector.report();
    if (json) {
      send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(report, null, 2)}\n`, head);
    } else {
      send(res, 200, 'text/html; charset=utf-8', renderStatusPage(report), head);
    }
  };
  return Object.assign(handler, {
    report: () => collector.report(),
    close: () => collector.close(),
  });
}
