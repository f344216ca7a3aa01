// Sorting documents into the Istio objects sidecarless reads, the ones it refuses and the ones
// that do not bear on mTLS or authorization (reported as skipped).
import { SidecarlessError } from '../errors.js';
import { quote, show } from '../internal/show.js';
import type { ResolvedContext } from './context.js';
import { documentsOf, type IstioInput, type IstioSource } from './documents.js';
import { At, isPlainObject, type ObjectRef, refName } from './fields.js';

/** The kinds sidecarless translates. */
export type IstioKind =
  | 'PeerAuthentication'
  | 'AuthorizationPolicy'
  | 'RequestAuthentication'
  | 'DestinationRule'
  | 'Policy'
  | 'MeshPolicy';

const VERSIONS: Record<IstioKind, readonly string[]> = {
  PeerAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  AuthorizationPolicy: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  RequestAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  DestinationRule: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  Policy: ['authentication.istio.io/v1alpha1'],
  MeshPolicy: ['authentication.istio.io/v1alpha1'],
};

/** One Istio object, checked down to its metadata; each kind's module reads its spec. */
export interface IstioObject extends ObjectRef {
  readonly kind: IstioKind;
  readonly apiVersion: string;
  /** `metadata.creationTimestamp` in ms, or null (files usually have none). */
  readonly created: number | null;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: Readonly<Record<string, unknown>>;
  /** The object's root, for errors. */
  readonly at: At;
  /** True when the document had no namespace and the context's was taken (as `kubectl apply`). */
  readonly namespaceDefaulted: boolean;
}

/** A document read but not used, and why. */
export interface SkippedDocument {
  /** `kind/namespace/name` (as far as the document says). */
  readonly name: string;
  /** Why it does not bear on the decision. */
  readonly reason: string;
}

/** The objects of a document set. */
export interface CollectedObjects {
  readonly objects: readonly IstioObject[];
  readonly skipped: readonly SkippedDocument[];
}

const CLUSTER = '(cluster)';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function docError(source: IstioSource, rule: string): SidecarlessError {
  const where = `${source.file ?? 'document'}${source.file === null ? ` ${source.index + 1}` : `, document ${source.index + 1}`}`;
  return new SidecarlessError('ERR_ISTIO_INVALID', `${where}: ${rule}`, {
    ...(source.file === null ? {} : { file: source.file }),
    index: source.index,
  });
}

function stringMap(value: unknown, at: At): Readonly<Record<string, string>> {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw at.invalid(`must be a mapping of strings, got ${show(value)}`);
  }
  return value as Record<string, string>;
}

/** Reads the documents into objects; the context supplies the namespace a document leaves out. */
export function collectObjects(input: IstioInput, context: ResolvedContext): CollectedObjects {
  const objects: IstioObject[] = [];
  const skipped: SkippedDocument[] = [];
  for (const { object, source } of documentsOf(input)) {
    const o = object as Record<string, unknown>;
    const { apiVersion, kind } = o;
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      throw docError(
        source,
        `every document needs a string "apiVersion" and "kind", got ${show(apiVersion)} and ${show(kind)}`,
      );
    }
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
    const metadata = isPlainObject(o.metadata) ? o.metadata : {};
    const shownName = `${kind}/${typeof metadata.namespace === 'string' ? metadata.namespace : '-'}/${typeof metadata.name === 'string' ? metadata.name : '-'}`;
    if (group === 'rbac.istio.io') {
      throw docError(
        source,
        `${shownName}: Istio RBAC (${apiVersion}) is not supported: it was replaced by AuthorizationPolicy in Istio 1.4 (refused, not ignored)`,
      );
    }
    if (!(kind in VERSIONS)) {
      if (group === 'security.istio.io' || group === 'authentication.istio.io') {
        throw docError(
          source,
          `${shownName}: kind ${quote(kind)} of ${apiVersion} is not known to sidecarless (refused, not ignored)`,
        );
      }
      const reason = group.endsWith('istio.io')
        ? `${kind} does not decide mTLS, authorization or secure naming`
        : 'not an Istio security or DestinationRule object';
      skipped.push(Object.freeze({ name: shownName, reason }));
      continue;
    }
    const k = kind as IstioKind;
    if (!VERSIONS[k].includes(apiVersion)) {
      throw docError(
        source,
        `${shownName}: apiVersion ${quote(apiVersion)} does not serve ${kind} (expected ${VERSIONS[k].join(' or ')})`,
      );
    }
    objects.push(readObject(o, k, apiVersion, source, context));
  }
  return Object.freeze({ objects: Object.freeze(objects), skipped: Object.freeze(skipped) });
}

function readObject(
  o: Record<string, unknown>,
  kind: IstioKind,
  apiVersion: string,
  source: IstioSource,
  context: ResolvedContext,
): IstioObject {
  for (const key of Object.keys(o)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key)) {
      throw docError(source, `${kind}: unknown top-level field ${quote(key)}`);
    }
  }
  if (!isPlainObject(o.metadata)) throw docError(source, `${kind}: "metadata" must be a mapping`);
  const metadata = o.metadata;
  const name = metadata.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw docError(source, `${kind}: metadata.name must be a Kubernetes object name, got ${show(name)}`);
  }
  const clusterScoped = kind === 'MeshPolicy';
  const given = metadata.namespace;
  if (given !== undefined && given !== null && (typeof given !== 'string' || !DNS_LABEL.test(given))) {
    throw docError(
      source,
      `${kind} ${name}: metadata.namespace must be a Kubernetes namespace name, got ${show(given)}`,
    );
  }
  const namespace = clusterScoped ? CLUSTER : typeof given === 'string' ? given : context.namespace;
  const ref: ObjectRef = { kind, namespace, name, source };
  const at = new At(ref, '');
  const created = readTimestamp(metadata.creationTimestamp, at.key('metadata.creationTimestamp'));
  const spec = o.spec === undefined || o.spec === null ? {} : o.spec;
  if (!isPlainObject(spec)) throw at.key('spec').invalid(`must be a mapping, got ${show(spec)}`);
  return Object.freeze({
    kind,
    apiVersion,
    namespace,
    name,
    source,
    created,
    annotations: stringMap(metadata.annotations, at.key('metadata.annotations')),
    spec,
    at,
    namespaceDefaulted: !clusterScoped && typeof given !== 'string',
  });
}

function readTimestamp(value: unknown, at: At): number | null {
  if (value === undefined || value === null) return null;
  const ms =
    value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw at.invalid(`must be an RFC 3339 time, got ${show(value)}`);
  return ms;
}

/**
 * The one object of a level (mesh, namespace, workload) that Istio applies: the oldest by
 * `creationTimestamp` (ties by name). Without timestamps the choice is the newer-ignored rule
 * applied blind, so it is refused naming both objects.
 */
export function oldest<T extends IstioObject>(candidates: readonly T[], level: string): T | undefined {
  if (candidates.length <= 1) return candidates[0];
  const [a, b] = candidates as [T, T];
  const untimed = candidates.find((c) => c.created === null);
  if (untimed !== undefined) {
    const other = untimed === a ? b : a;
    throw untimed.at.conflict(
      `and ${refName(other)} both apply at the ${level} level and one has no metadata.creationTimestamp: Istio applies the oldest, which cannot be told (remove one, or export both with kubectl get -o yaml)`,
    );
  }
  return [...candidates].sort(
    (x, y) => (x.created as number) - (y.created as number) || refName(x).localeCompare(refName(y)),
  )[0];
}

/** Whether a `selector` (`matchLabels`) selects the workload; `undefined` when there is none. */
export function selects(
  spec: Readonly<Record<string, unknown>>,
  at: At,
  labels: Readonly<Record<string, string>>,
  field = 'selector',
): boolean | undefined {
  const selector = spec[field];
  if (selector === undefined || selector === null) return undefined;
  const sel = at.key(field);
  if (!isPlainObject(selector)) throw sel.invalid(`must be a mapping, got ${show(selector)}`);
  for (const key of Object.keys(selector)) {
    if (key !== 'matchLabels') throw sel.invalid(`has an unknown field ${quote(key)} (known: matchLabels)`);
  }
  const match = stringMap(selector.matchLabels, sel.key('matchLabels'));
  const entries = Object.entries(match);
  // Istio's validation: no empty keys, no wildcards in selectors.
  for (const [k, v] of entries) {
    if (k === '' || k.includes('*') || v.includes('*')) {
      throw sel
        .key('matchLabels')
        .item(k)
        .invalid('must be a label name and value without "*" (Istio refuses wildcards and empty keys)');
    }
  }
  // An empty selector is no selector (the concept page: "without or with an empty selector").
  if (entries.length === 0) return undefined;
  return entries.every(([k, v]) => labels[k] === v);
}
