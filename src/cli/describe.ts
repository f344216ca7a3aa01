// `sidecarless describe <url>`: what `istioctl x describe` showed of a pod, from a running
// process: reads the JSON of statusHandler() (src/observe/status-handler.ts) and prints the
// listener and outbound tables, the rules and the edges.
import type { StatusReport } from '../observe/status-report.js';
import { type Output, table } from './output.js';
import { durationFlag, positionalArgs, UsageError } from './usage.js';

/** What went wrong reading the endpoint: printed, and in the JSON as `problem`. */
interface Problem {
  readonly kind: 'unreachable' | 'http-status' | 'not-a-status-document';
  readonly message: string;
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`<url> ${JSON.stringify(text)} is not a URL (http://127.0.0.1:15000/)`, '<url>');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`<url> must be http:// or https://, got ${JSON.stringify(url.protocol)}`, '<url>');
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('<url> must not carry credentials', '<url>');
  }
  url.searchParams.set('format', 'json');
  return url;
}

/** Text from the server for a terminal: control characters (escape sequences) shown, not sent. */
function safe(value: unknown): string {
  let text = '';
  for (const c of String(value ?? '—')) {
    const n = c.codePointAt(0) as number;
    text += n < 0x20 || (n >= 0x7f && n <= 0x9f) ? `\\x${n.toString(16).padStart(2, '0')}` : c;
  }
  return text;
}

function inWords(date: string | null | undefined): string {
  if (date === null || date === undefined) return 'unknown expiry';
  const ms = Date.parse(date) - Date.now();
  if (!Number.isFinite(ms)) return 'unknown expiry';
  if (ms <= 0) return 'EXPIRED';
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `expires in ${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `expires in ${hours}h` : `expires in ${Math.floor(hours / 24)}d`;
}

/** The headers of the tables `describe` prints, as `istioctl x describe` and the lab named them. */
export const DESCRIBE_HEADERS = Object.freeze({
  listeners: ['HOST:PORT', 'CERTIFICATE', 'VALIDATE PEER CERTIFICATE'],
  outbound: ['HOST:PORT', 'CERTIFICATE', 'VALIDATE PEER CERTIFICATE', 'CLIENT'],
  rules: ['MAP', 'KEY', 'MATCHER'],
  edges: ['DIR', 'VIA', 'SOURCE -> DESTINATION', 'LOCK', 'REQUESTS', 'REFUSALS', 'LAST REFUSAL'],
} as const);

const VALIDATE: Record<string, string> = {
  STRICT: 'yes: a client certificate is required (STRICT)',
  PERMISSIVE: 'when presented: plaintext is accepted too (PERMISSIVE)',
  DISABLE: 'no: plaintext only (DISABLE)',
};

type Json = Record<string, unknown>;
// The document as JSON parsed it: dates are strings.
type Dated<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? readonly Dated<U>[]
    : T extends object
      ? { readonly [K in keyof T]: Dated<T[K]> }
      : T;
type Document = Dated<StatusReport>;

function isDocument(value: unknown): value is Document {
  const v = value as Json | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.version === 1 &&
    Array.isArray(v.servers) &&
    Array.isArray(v.clients) &&
    Array.isArray(v.sources)
  );
}

async function read(url: URL, timeout: number): Promise<Document | Problem> {
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(timeout),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return {
      kind: 'unreachable',
      message: `${url.host}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    };
  }
  const text = await res.text();
  if (res.status !== 200) {
    return { kind: 'http-status', message: `HTTP ${res.status}: ${safe(text.trim().slice(0, 200))}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'not-a-status-document', message: 'the answer is not JSON' };
  }
  if (!isDocument(value)) {
    return {
      kind: 'not-a-status-document',
      message: 'the answer is not a sidecarless status document (version 1)',
    };
  }
  return value;
}

/** `sidecarless describe <url>`. */
export async function runDescribe(
  values: Record<string, unknown>,
  positionals: string[],
  out: Output,
): Promise<number> {
  const [text] = positionalArgs(positionals, ['url']);
  const url = parseUrl(text as string);
  const timeout = durationFlag('--timeout', values.timeout, 5_000);
  const shownUrl = `${url.origin}${url.pathname}`;
  const report = await read(url, timeout);
  if ('kind' in report) {
    out.error(`sidecarless describe: ${shownUrl}: ${report.message}`);
    out.document({ ok: false, url: shownUrl, problem: report });
    return 1;
  }
  if (out.json) {
    out.document({ ok: true, url: shownUrl, report });
    return 0;
  }
  const listeners = report.servers.map((s) => [
    safe(s.address ?? 'not listening'),
    s.id === null ? 'none' : `${safe(s.id)} (${inWords(s.notAfter)})`,
    VALIDATE[s.mode] ?? safe(s.mode),
  ]);
  out.line(out.colour.bold('Listeners (inbound)'));
  if (listeners.length === 0) out.line('  none');
  else for (const line of table([DESCRIBE_HEADERS.listeners, ...listeners])) out.line(line);

  const outbound = report.clients.flatMap((c) =>
    c.edges.map((e) => [
      safe(e.destination),
      e.tlsVersion === null ? 'none (plaintext)' : e.peer === null ? 'none' : `${safe(c.id)}`,
      e.peer !== null
        ? `yes: ${safe(e.peer)}`
        : e.tlsVersion !== null
          ? 'TLS without a SPIFFE ID'
          : 'no (plaintext)',
      safe(c.name),
    ]),
  );
  out.line();
  out.line(out.colour.bold('Outbound'));
  if (outbound.length === 0) out.line('  none');
  else for (const line of table([DESCRIBE_HEADERS.outbound, ...outbound])) out.line(line);

  for (const s of report.servers) {
    out.line();
    out.line(out.colour.bold(`Rules of ${safe(s.address ?? 'not listening')}`));
    if (s.rules === null) out.line('  none: every authenticated peer of a trusted trust domain is allowed');
    else {
      const rules = [
        ...s.rules.deny.map((r) => ['deny', safe(r.key), safe(r.matcher)]),
        ...s.rules.authorize.map((r) => ['authorize', safe(r.key), safe(r.matcher)]),
        ...(s.rules.engine?.rules ?? []).map((r) => [safe(r.action), safe(r.name), safe(r.rule)]),
      ];
      out.line(`  mode: ${safe(s.rules.mode)}`);
      for (const line of table([DESCRIBE_HEADERS.rules, ...rules])) out.line(`  ${line}`);
    }
  }

  // VIA: the listener an inbound edge arrived on (two listeners may share a SPIFFE ID), or the
  // client an outbound edge left from.
  const edges = [
    ...report.servers.flatMap((s) => s.edges.map((e) => ({ e, via: s.address ?? 'not listening' }))),
    ...report.clients.flatMap((c) => c.edges.map((e) => ({ e, via: c.name }))),
  ].map(({ e, via }) => [
    e.direction === 'inbound' ? 'in' : 'out',
    safe(via),
    `${safe(e.source)} -> ${safe(e.destination)}`,
    e.requests === 0
      ? '—'
      : e.mtlsShare === 1
        ? 'mTLS'
        : e.mtlsRequests === 0
          ? 'plaintext'
          : `${Math.round((e.mtlsShare ?? 0) * 100)}% mTLS`,
    String(e.requests),
    String(e.refusals),
    e.lastRefusal === null ? '' : `${safe(e.lastRefusal.reason)}: ${safe(e.lastRefusal.message)}`,
  ]);
  out.line();
  out.line(out.colour.bold('Edges'));
  if (edges.length === 0) out.line('  none yet');
  else for (const line of table([DESCRIBE_HEADERS.edges, ...edges])) out.line(line);

  for (const source of report.sources) {
    out.line();
    out.line(out.colour.bold(`Identity source ${safe(source.name)}`));
    if (source.unavailable !== null) out.line(out.colour.red(`  ${safe(source.unavailable)}`));
    for (const svid of source.svids) out.line(`  SVID ${safe(svid.name)} (${inWords(svid.notAfter)})`);
    for (const bundle of source.bundles) {
      for (const a of bundle.authorities) {
        out.line(`  authority of ${safe(bundle.trustDomain)}: ${safe(a.name)} (${inWords(a.notAfter)})`);
      }
    }
    out.line(`  last rotation: ${safe(source.lastRotation ?? 'none seen')}`);
    const error = source.lastError;
    out.line(
      error === null
        ? '  last error: none'
        : out.colour.red(`  last error: ${safe(error.code)}: ${safe(error.message)} (${safe(error.at)})`),
    );
  }
  return 0;
}
