import { normalizePath } from '../authz/normalize.js';
import type { AuthorizationPolicy } from '../authz/policy.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import type { MtlsMode } from '../server/options.js';
import {
  authorizationScope,
  compilePolicy,
  IstioAuthorizationEngine,
  type NoAllowPolicy,
} from './authorization.js';
import { checkContext, type IstioContext, type ResolvedContext } from './context.js';
import type { IstioInput } from './documents.js';
import { refName } from './fields.js';
import { type CollectedObjects, collectObjects } from './objects.js';
import { type ModeResolution, resolveModeOf } from './peer-authentication.js';

/**
 * Options of {@link fromIstio}.
 * @example
 * ```ts
 * import type { FromIstioOptions } from 'sidecarless/istio';
 * const options: FromIstioOptions = { probePaths: ['/healthz'], noAllowPolicy: 'deny' };
 * ```
 */
export interface FromIstioOptions {
  /**
   * Exact paths plaintext GET and HEAD requests may reach under STRICT, whatever the policies say
   * (kubelet probes: Istio rewrites them to its agent, past mTLS and authorization). Never taken
   * from Istio objects. Default: none.
   */
  readonly probePaths?: readonly string[];
  /**
   * When no ALLOW policy applies: `'allow'` (default, Istio's rule) or `'deny'` (the library's
   * rule for maps: nothing is allowed unless said).
   */
  readonly noAllowPolicy?: NoAllowPolicy;
  /** `'audit'` decides and reports but lets requests through (default `'enforce'`). */
  readonly authorizationMode?: 'enforce' | 'audit';
}

/**
 * What {@link fromIstio} returns: options to spread into `createMtlsServer`.
 * @example
 * ```ts
 * import type { IstioServerOptions } from 'sidecarless/istio';
 * function modeOf(options: IstioServerOptions): string { return options.mode; }
 * ```
 */
export interface IstioServerOptions {
  /** The mTLS mode Istio would apply on the workload port (see `resolveMode`). */
  readonly mode: MtlsMode;
  /** The compiled AuthorizationPolicies, evaluated as Istio does. */
  readonly authorize: AuthorizationPolicy;
  /** `probePaths`, when given and the mode is STRICT. */
  readonly plaintextPaths?: readonly string[];
}

const KNOWN: (keyof FromIstioOptions)[] = ['probePaths', 'noAllowPolicy', 'authorizationMode'];

function probePathsOf(value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((p) => typeof p === 'string' && p.startsWith('/'))) {
    throw invalidOption('probePaths', 'a list of paths such as "/healthz"', value);
  }
  for (const path of value as string[]) {
    if (normalizePath(path) !== path || (path.length > 1 && path.endsWith('/'))) {
      throw invalidOption(
        'probePaths',
        'paths in normal form (no "//", ".", "..", escapes, query or trailing "/")',
        path,
      );
    }
  }
  return Object.freeze([...(value as string[])]);
}

/** Everything the Istio import decides for one server, for `fromIstio` and `explainIstio`. */
export interface ServerTranslation {
  readonly context: ResolvedContext;
  readonly collected: CollectedObjects;
  readonly mode: ModeResolution;
  readonly engine: IstioAuthorizationEngine;
  readonly scopes: readonly { readonly name: string; readonly applies: boolean; readonly why: string }[];
  readonly probePaths: readonly string[];
}

/** The whole server-side translation. */
export function translateServer(
  docs: IstioInput,
  context: IstioContext,
  options: FromIstioOptions = {},
): ServerTranslation {
  const opts = checkOptions<FromIstioOptions>(options ?? {}, KNOWN, 'fromIstio');
  const noAllowPolicy = opts.noAllowPolicy ?? 'allow';
  if (noAllowPolicy !== 'allow' && noAllowPolicy !== 'deny')
    throw invalidOption('noAllowPolicy', '"allow" or "deny"', noAllowPolicy);
  const authorizationMode = opts.authorizationMode ?? 'enforce';
  if (authorizationMode !== 'enforce' && authorizationMode !== 'audit') {
    throw invalidOption('authorizationMode', '"enforce" or "audit"', authorizationMode);
  }
  const probePaths = probePathsOf(opts.probePaths);
  const ctx = checkContext(context, { port: true, labels: true });
  const collected = collectObjects(docs, ctx);
  const mode = resolveModeOf(collected.objects, ctx);
  const domains = { trustDomain: ctx.trustDomain, aliases: ctx.trustDomainAliases };
  const scopes = [];
  const policies = [];
  const notes: string[] = [];
  for (const object of collected.objects) {
    if (object.kind === 'RequestAuthentication') {
      const scope = authorizationScope(object, ctx);
      if (scope.applies) {
        throw object.at.unsupported(
          'applies to this workload: JWT request authentication has no counterpart in sidecarless (refused, not ignored)',
        );
      }
      notes.push(`${scope.name} does not apply: ${scope.why}`);
      continue;
    }
    if (object.kind !== 'AuthorizationPolicy') continue;
    const scope = authorizationScope(object, ctx);
    scopes.push(scope);
    if (scope.applies) policies.push(compilePolicy(object, domains));
    else notes.push(`${scope.name} does not apply: ${scope.why}`);
  }
  for (const s of collected.skipped) notes.push(`${s.name} skipped: ${s.reason}`);
  for (const object of collected.objects) {
    if (object.namespaceDefaulted)
      notes.push(`${refName(object)} has no metadata.namespace: taken as ${ctx.namespace}`);
  }
  if (probePaths.length > 0)
    notes.push(`probePaths ${probePaths.join(', ')}: plaintext GET/HEAD allowed (not from Istio)`);
  const engine = new IstioAuthorizationEngine(policies, {
    mode: authorizationMode,
    noAllowPolicy,
    probePaths: new Set(probePaths),
    notes: Object.freeze(notes),
  });
  return Object.freeze({ context: ctx, collected, mode, engine, scopes: Object.freeze(scopes), probePaths });
}

/**
 * Takes Istio's YAML as it is and decides as Istio would, for one workload: the mTLS mode of its
 * port (PeerAuthentication or the v1alpha1 Policy, see `resolveMode`) and its
 * AuthorizationPolicies compiled into a policy that evaluates as Istio does (any rule of any
 * ALLOW policy allows; any DENY rule denies first; AUDIT only reports). Spread the result into
 * `createMtlsServer`. Fields sidecarless cannot honour are refused by name, never ignored.
 *
 * @param docs - the Istio documents (YAML text, `readIstioFiles()`, or parsed objects)
 * @param context - the workload: `namespace`, `labels`, `port`, `trustDomain`, and optionally
 *   `trustDomainAliases`, `rootNamespace` (`istio-system`), `clusterDomain`, `service`
 * @param options - `probePaths`, `noAllowPolicy`, `authorizationMode`
 * @returns `{ mode, authorize }`, plus `plaintextPaths` from `probePaths` under STRICT; frozen
 * @throws SidecarlessError `ERR_ISTIO_INVALID`, `ERR_ISTIO_UNSUPPORTED` or `ERR_ISTIO_CONFLICT`
 *   naming the object, the field path and the rule; `ERR_OPTION_INVALID` for a bad context or option
 * @example
 * ```ts
 * import { createLocalCa, createMtlsServer } from 'sidecarless';
 * import { fromIstio } from 'sidecarless/istio';
 *
 * const policies = `
 * apiVersion: security.istio.io/v1
 * kind: PeerAuthentication
 * metadata: { name: default, namespace: demo }
 * spec: { mtls: { mode: STRICT } }
 * ---
 * apiVersion: security.istio.io/v1
 * kind: AuthorizationPolicy
 * metadata: { name: boards, namespace: demo }
 * spec:
 *   selector: { matchLabels: { app: boards } }
 *   rules:
 *   - from: [{ source: { principals: ["cluster.local/ns/demo/sa/app-ui"] } }]
 *     to: [{ operation: { methods: ["GET"], paths: ["/shareditems*"] } }]
 * `;
 * const context = { namespace: 'demo', labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' };
 * const identity = createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/boards');
 * const server = createMtlsServer({ identity, ...fromIstio(policies, context) }, (_req, res) => res.end('[]'));
 * server.listen(8080);
 * ```
 */
export function fromIstio(
  docs: IstioInput,
  context: IstioContext,
  options: FromIstioOptions = {},
): IstioServerOptions {
  const t = translateServer(docs, context, options);
  // plaintextPaths only means something under STRICT: PERMISSIVE and DISABLE serve plaintext already.
  const result: IstioServerOptions =
    t.mode.mode === 'STRICT' && t.probePaths.length > 0
      ? { mode: t.mode.mode, authorize: t.engine, plaintextPaths: t.probePaths }
      : { mode: t.mode.mode, authorize: t.engine };
  return Object.freeze(result);
}
