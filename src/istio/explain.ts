// `sidecarless policy explain`: what the Istio documents decide for one workload, as data and as
// text. Pure: documents and context in, report out (the command reads the files).
import type { PolicyEngineRule } from '../authz/policy.js';
import type { MtlsMode } from '../server/options.js';
import type { IstioContext } from './context.js';
import { translateDestinations } from './destination-rules.js';
import type { IstioInput } from './documents.js';
import { type FromIstioOptions, translateServer } from './from-istio.js';
import type { ModeResolution } from './peer-authentication.js';

/**
 * What {@link explainIstio} reports: the mode and its deciding object, the authorization rules
 * in evaluation order with the policies that do not apply, the client destinations, and every
 * document that was skipped.
 * @example
 * ```ts
 * import { explainIstio, type IstioExplanation } from 'sidecarless/istio';
 * const e: IstioExplanation = explainIstio('', { namespace: 'demo', labels: {}, port: 8080, trustDomain: 'cluster.local' });
 * e.mode.mode; // 'PERMISSIVE'
 * ```
 */
export interface IstioExplanation {
  /** The workload as given. */
  readonly workload: {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly port: number;
    readonly trustDomain: string;
  };
  /** The server's mTLS mode and how it was decided. */
  readonly mode: ModeResolution;
  /** The AuthorizationPolicies. */
  readonly authorization: {
    /** Every AuthorizationPolicy read, and whether it applies to the workload. */
    readonly policies: readonly { readonly name: string; readonly applies: boolean; readonly why: string }[];
    /** The applying rules in evaluation order (DENY, ALLOW, then the ones that only report). */
    readonly rules: readonly PolicyEngineRule[];
    /** Defaults and other notes. */
    readonly notes: readonly string[];
  };
  /** The client destinations the DestinationRules give (most specific key first). */
  readonly destinations: readonly {
    readonly key: string;
    readonly mode: string;
    readonly expect: string | null;
    readonly source: string;
  }[];
  /** Notes on the DestinationRules. */
  readonly destinationNotes: readonly string[];
}

/**
 * Explains what Istio documents decide for one workload: the effective mode with the deciding
 * object, the authorization rules that apply (and the policies that do not, with why), and the
 * destinations its clients get. The same translation `fromIstio` and `istioDestinations` run.
 *
 * @param docs - the Istio documents
 * @param context - the workload (as for `fromIstio`)
 * @param options - as for `fromIstio`
 * @returns the report, plain data (print it with {@link formatIstioExplanation} or as JSON)
 * @throws SidecarlessError as `fromIstio` and `istioDestinations` do
 * @example
 * ```ts
 * import { explainIstio, formatIstioExplanation } from 'sidecarless/istio';
 * const yaml = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: demo }\nspec: { mtls: { mode: STRICT } }\n';
 * const report = explainIstio(yaml, { namespace: 'demo', labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' });
 * console.log(formatIstioExplanation(report));
 * ```
 */
export function explainIstio(
  docs: IstioInput,
  context: IstioContext,
  options: FromIstioOptions = {},
): IstioExplanation {
  const server = translateServer(docs, context, options);
  const client = translateDestinations(docs, context);
  const description = server.engine.describe();
  const engine = description.engine;
  const ctx = server.context;
  const destinations = [...client.explained]
    .sort((a, b) => rank(b.key) - rank(a.key) || a.key.localeCompare(b.key))
    .map((d) => ({
      key: d.key,
      mode: d.destination.mode ?? 'mtls',
      expect: d.destination.expect === undefined ? null : [d.destination.expect].flat().join(', '),
      source: d.source,
    }));
  return {
    workload: {
      namespace: ctx.namespace,
      labels: ctx.labels,
      port: ctx.port as number,
      trustDomain: ctx.trustDomain,
    },
    mode: server.mode,
    authorization: {
      policies: server.scopes,
      rules: engine?.rules ?? [],
      notes: engine?.notes ?? [],
    },
    destinations,
    destinationNotes: client.notes,
  };
}

function rank(key: string): number {
  if (key === '*') return -1;
  const host = key.replace(/:\d+$/, '');
  return (host.startsWith('*.') ? 0 : 1000) + host.length + (host === key ? 0 : 1);
}

const LIBRARY_DEFAULT: MtlsMode = 'STRICT';

/**
 * The report of {@link explainIstio} as text, for a terminal.
 * @param e - the report
 * @returns lines of text, ending with a newline
 * @example
 * ```ts
 * import { explainIstio, formatIstioExplanation } from 'sidecarless/istio';
 * process.stdout.write(formatIstioExplanation(explainIstio('', { namespace: 'demo', labels: {}, port: 8080, trustDomain: 'cluster.local' })));
 * ```
 */
export function formatIstioExplanation(e: IstioExplanation): string {
  const out: string[] = [];
  const labels =
    Object.entries(e.workload.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '(none)';
  out.push(
    `workload  namespace ${e.workload.namespace}, labels ${labels}, port ${e.workload.port}, trust domain ${e.workload.trustDomain}`,
  );
  out.push('');
  out.push(
    `mode      ${e.mode.mode}  (${e.mode.level}${e.mode.decidedBy === null ? '' : `: ${e.mode.decidedBy}`})`,
  );
  out.push(`          ${e.mode.reason}`);
  if (e.mode.level === 'default')
    out.push(`          sidecarless without Istio documents: ${LIBRARY_DEFAULT}`);
  for (const note of e.mode.notes) out.push(`          - ${note}`);
  out.push('');
  out.push('authorization (Istio evaluation: any DENY rule denies; then any ALLOW rule allows)');
  if (e.authorization.rules.length === 0) out.push('  no rule applies');
  for (const r of e.authorization.rules) {
    out.push(`  ${r.action.padEnd(5)}${r.enforced ? '' : ' (reported only)'}  ${r.name}`);
    out.push(`         ${r.rule}`);
  }
  for (const p of e.authorization.policies)
    if (!p.applies) out.push(`  - ${p.name} does not apply: ${p.why}`);
  for (const note of e.authorization.notes) if (!/does not apply/.test(note)) out.push(`  - ${note}`);
  out.push('');
  out.push('destinations (clients; the most specific key wins)');
  for (const d of e.destinations) {
    out.push(`  ${d.key.padEnd(40)} ${d.mode.padEnd(9)} ${d.expect ?? ''}`.trimEnd());
    out.push(`  ${''.padEnd(40)} ${d.source}`);
  }
  for (const note of e.destinationNotes) out.push(`  - ${note}`);
  return `${out.join('\n')}\n`;
}
