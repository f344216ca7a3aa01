// `sidecarless check <host:port>`: what `istioctl experimental authz check` and Kiali's locks told
// about a port, from outside: three probes (probes.ts), the mode they imply (check-mode.ts), the
// server's SVID verified against our own bundle with verifyPeerChain, and the lab's listener table.
import { resolve as resolvePath } from 'node:path';
import { compilePeerMatcher } from '../authz/peer-matcher.js';
import { parseHost } from '../client/hosts.js';
import { isSidecarlessError } from '../errors.js';
import { fileIdentity } from '../identity/file-identity.js';
import type { IdentitySource } from '../identity/source.js';
import { workloadApiIdentity } from '../identity/workload-api-identity.js';
import { inspectCertificate } from '../x509/certificate.js';
import { verifyPeerChain } from '../x509/verify.js';
import { inferMode, type ModeVerdict } from './check-mode.js';
import { type Output, table } from './output.js';
import { type ProbeResult, probeMtls, probePlaintext, probeTls, type Target } from './probes.js';
import { durationFlag, optionalFlag, positionalArgs, UsageError } from './usage.js';

/** `host:port`, `[v6]:port`: the target, or a usage error naming the argument. */
export function parseTarget(text: string, path: string): Target {
  const bad = (why: string) => new UsageError(`<host:port> ${JSON.stringify(text)}: ${why}`, '<host:port>');
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (m === null) throw bad('must be host:port (an IPv6 address in brackets: [::1]:8443)');
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) throw bad('the port must be 1 to 65535');
  const parsed = parseHost(m[1] as string);
  if (!parsed.ok) throw bad(`the host ${parsed.rule}`);
  return {
    host: parsed.host,
    urlHost: parsed.kind === 'ipv6' ? `[${parsed.host}]` : parsed.host,
    port,
    path,
    servername: parsed.kind === 'name' ? parsed.host : undefined,
  };
}

/** `--path`: sent as the request line's target, so only a path of visible ASCII (no CR, LF, space). */
function pathFlag(value: unknown): string {
  const path = optionalFlag('--path', value) ?? '/';
  if (!/^\/[\x21-\x7e]*$/.test(path) || path.length > 2048) {
    throw new UsageError(
      `--path must start with "/" and hold only visible ASCII characters, got ${JSON.stringify(path)}`,
      '--path',
    );
  }
  return path;
}

/** Our identity: --cert-dir (Istio's file names), --workload-api, or $SPIFFE_ENDPOINT_SOCKET. */
function identityOf(values: Record<string, unknown>): { source: IdentitySource; from: string } | undefined {
  const certDir = optionalFlag('--cert-dir', values['cert-dir']);
  const workloadApi = optionalFlag('--workload-api', values['workload-api']);
  if (certDir !== undefined && workloadApi !== undefined) {
    throw new UsageError('--cert-dir and --workload-api are two identities: give one', '--workload-api');
  }
  if (certDir !== undefined) {
    const dir = resolvePath(certDir);
    return { source: fileIdentity({ preset: 'istio', dir, watch: false }), from: `--cert-dir ${dir}` };
  }
  const address = workloadApi ?? process.env.SPIFFE_ENDPOINT_SOCKET;
  if (address === undefined || address === '') return undefined;
  return {
    source: workloadApiIdentity({ address }),
    from: workloadApi === undefined ? `SPIFFE_ENDPOINT_SOCKET ${address}` : `--workload-api ${address}`,
  };
}

function shown(result: ProbeResult): string {
  switch (result.outcome) {
    case 'answered':
      return `answered: HTTP ${result.status}`;
    case 'refused':
      return `refused: ${result.how}`;
    case 'skipped':
      return `skipped: ${result.reason}`;
  }
}

function inWords(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  return m > 0 ? `${m}m${s % 60}s` : `${s}s`;
}

const MODE_CELL: Record<ModeVerdict['mode'], string> = {
  STRICT: 'yes (STRICT)',
  PERMISSIVE: 'yes (PERMISSIVE)',
  DISABLE: 'no (DISABLE)',
  UNKNOWN: 'unknown (UNKNOWN)',
};

/** The header of the listener table `check` prints, as the lab's `istioctl experimental authz check`. */
export const CHECK_LISTENER_HEADERS = ['LISTENER', 'CERTIFICATE', 'mTLS (MODE)', 'RBAC'] as const;

/** Our identity for the mTLS probe, and where it came from (shown). */
export interface CheckIdentity {
  readonly source: IdentitySource;
  readonly from: string;
}

/** What the three probes and the verification showed: the listener row and `--json`'s document. */
export interface CheckResult {
  readonly ok: boolean;
  readonly mode: ModeVerdict['mode'];
  /** One cell per {@link CHECK_LISTENER_HEADERS} entry. */
  readonly listener: Readonly<Record<(typeof CHECK_LISTENER_HEADERS)[number], string>>;
  /** The text `sidecarless check` prints after the listener table. */
  readonly details: readonly string[];
  /** The document `sidecarless check --json` prints. */
  readonly document: Record<string, unknown>;
}

export async function runCheck(
  values: Record<string, unknown>,
  positionals: string[],
  out: Output,
): Promise<number> {
  const [text] = positionalArgs(positionals, ['host:port']) as [string];
  const target = parseTarget(text, pathFlag(values.path));
  const timeout = durationFlag('--timeout', values.timeout, 5_000);
  const expect = optionalFlag('--expect', values.expect) ?? '*';
  try {
    compilePeerMatcher(expect, 'expect');
  } catch (err) {
    throw new UsageError(`--expect: ${(err as Error).message}`, '--expect');
  }
  const identity = identityOf(values);
  try {
    const result = await checkPort(target, { identity, expect, timeout, colour: out.colour });
    for (const line of table([CHECK_LISTENER_HEADERS, Object.values(result.listener)])) out.line(line);
    out.line();
    for (const line of result.details) out.line(line);
    out.document(result.document);
    return result.ok ? 0 : 1;
  } finally {
    await identity?.source.close();
  }
}

/**
 * `sidecarless check` without the command line: the probes, the inferred mode, the server's chain
 * verified against our bundle. The demo's last step runs it too. Closes nothing it was given.
 */
export async function checkPort(
  target: Target,
  options: {
    readonly identity: CheckIdentity | undefined;
    readonly expect: string;
    readonly timeout: number;
    readonly colour: Output['colour'];
  },
): Promise<CheckResult> {
  const { identity, expect, timeout } = options;
  const details: string[] = [];
  const out = { colour: options.colour, line: (text = '') => void details.push(text) };
  const own = identity === undefined ? undefined : await identity.source.ready({ timeout });
  const plaintext = await probePlaintext(target, timeout);
  const tls = await probeTls(target, timeout);
  const mtls =
    identity === undefined
      ? ({
          outcome: 'skipped',
          reason: 'no identity (--cert-dir, --workload-api or SPIFFE_ENDPOINT_SOCKET)',
        } as const)
      : await probeMtls(target, identity.source, expect, timeout);
  const verdict = inferMode({
    plaintext: plaintext.outcome === 'answered',
    tlsHandshake: tls.handshake,
    tlsWithoutCertificate: tls.outcome === 'answered',
    mtls: mtls.outcome === 'skipped' ? undefined : mtls.outcome === 'answered',
  });

  // The server's certificate: verified against our bundles, never trusted on the TLS probe's word.
  const chain =
    tls.chain.length > 0
      ? tls.chain
      : 'server' in mtls && mtls.server
        ? mtls.server.chain.map((c) => c.raw)
        : [];
  const leaf = chain[0] === undefined ? undefined : inspectCertificate(chain[0]);
  let server: {
    presented: boolean;
    verified: boolean;
    id: string | null;
    notAfter: string | null;
    error?: { code: string; message: string };
    chain: { subject: string; issuer: string; serial: string; notAfter: string }[];
  } = { presented: false, verified: false, id: null, notAfter: null, chain: [] };
  if (leaf !== undefined) {
    const presented = chain.map((der, i) => {
      const c = inspectCertificate(der, i);
      return {
        subject: c.subject,
        issuer: c.issuer,
        serial: c.serial,
        notAfter: new Date(c.notAfter).toISOString(),
      };
    });
    server = {
      presented: true,
      verified: false,
      id: leaf.uris[0] ?? null,
      notAfter: new Date(leaf.notAfter).toISOString(),
      chain: presented,
    };
    if (own !== undefined) {
      try {
        const v = verifyPeerChain(chain, own.bundles, { usage: 'server' });
        server = { ...server, verified: true, id: v.id.toString(), notAfter: v.notAfter.toISOString() };
      } catch (err) {
        if (!isSidecarlessError(err)) throw err;
        server = { ...server, error: { code: err.code, message: err.message } };
      }
    }
  }
  const accepted = mtls.outcome === 'answered';
  const ourId = own?.svid.id.toString() ?? null;

  const certificate =
    server.presented === false
      ? 'none (no TLS)'
      : `${server.id ?? '(no SPIFFE ID)'}${server.verified ? '' : ' UNVERIFIED'} (expires in ${inWords(Date.parse(server.notAfter as string) - Date.now())})`;
  const listener: CheckResult['listener'] = {
    LISTENER: `${target.host}_${target.port}`,
    CERTIFICATE: certificate,
    'mTLS (MODE)': MODE_CELL[verdict.mode],
    RBAC: 'unknown (see describe)',
  };
  out.line(`probes on ${target.path}:`);
  out.line(`  plaintext HTTP                ${shown(plaintext)}`);
  out.line(
    `  TLS without client cert       ${shown(tls)}${tls.handshake ? ` (handshake completed, ${tls.protocol})` : ''}`,
  );
  out.line(
    `  mTLS with our identity        ${shown(mtls)}${mtls.outcome === 'refused' ? ` (${mtls.message})` : ''}`,
  );
  out.line(`mode: ${verdict.mode}: ${verdict.reason}`);
  if (server.presented) {
    if (server.verified)
      out.line(out.colour.green(`server: ${server.id}, verified against our bundle (${identity?.from})`));
    else if (server.error !== undefined)
      out.line(
        out.colour.red(
          `server: ${server.id ?? '(no SPIFFE ID)'} did NOT verify against our bundle: ${server.error.code}: ${server.error.message}`,
        ),
      );
    else
      out.line(
        out.colour.red(
          `server: claims ${server.id ?? '(no SPIFFE ID)'}, UNVERIFIED: no identity given, so no bundle to verify it against (use --cert-dir or --workload-api)`,
        ),
      );
    out.line('chain (as presented, leaf first):');
    for (const [i, c] of server.chain.entries()) {
      out.line(
        `  ${i}  ${c.subject || '(empty subject)'}  issuer ${c.issuer}  serial ${c.serial}  expires ${c.notAfter}`,
      );
    }
  } else {
    out.line('server: presented no certificate (it does not speak TLS on this port)');
  }
  if (ourId === null) out.line('our identity: none given: the mTLS probe was skipped');
  else if (accepted)
    out.line(
      out.colour.green(
        `our identity ${ourId}: accepted (HTTP ${mtls.status}${mtls.status === 403 ? ": authenticated, and the server's authorization refused this path" : ''})`,
      ),
    );
  else if (verdict.mode === 'DISABLE' && !server.presented)
    out.line(`our identity ${ourId}: not presented (the server does not speak TLS on this port)`);
  else
    out.line(
      out.colour.red(`our identity ${ourId}: not accepted (${mtls.outcome === 'refused' ? mtls.how : ''})`),
    );
  out.line("RBAC: unknown (see describe): a probe cannot see the server's rules");

  const ok =
    verdict.mode !== 'UNKNOWN' &&
    (own === undefined ||
      ((!server.presented || server.verified) && (accepted || verdict.mode === 'DISABLE')));
  const document = {
    ok,
    target: { host: target.host, port: target.port, path: target.path },
    mode: verdict.mode,
    reason: verdict.reason,
    listener,
    probes: {
      plaintext,
      tls: { ...(({ chain: _c, ...rest }) => rest)(tls) },
      mtls: (({ server: _s, ...rest }) => rest)(mtls as typeof mtls & { server?: unknown }),
    },
    server,
    identity: ourId === null ? null : { id: ourId, from: identity?.from, accepted },
    rbac: 'unknown',
  };
  return { ok, mode: verdict.mode, listener, details, document };
}
