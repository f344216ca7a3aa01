// PeerAuthentication and the v1alpha1 Policy/MeshPolicy → the server's mTLS mode, with Istio's
// precedence (https://istio.io/latest/docs/concepts/security/#authentication-policies): the
// narrowest policy applies (workload > namespace > mesh); UNSET inherits; a mesh-level UNSET,
// and no policy at all, mean PERMISSIVE.
import type { MtlsMode } from '../server/options.js';
import { checkContext, type IstioContext, type ResolvedContext } from './context.js';
import type { IstioInput } from './documents.js';
import { type At, isPlainObject, list, mapping, portNumber, refName } from './fields.js';
import { collectObjects, type IstioObject, oldest, selects } from './objects.js';

/**
 * How the mode was decided: the deciding object, its level and why.
 * @example
 * ```ts
 * import { resolveMode } from 'sidecarless/istio';
 * const r = resolveMode('', { namespace: 'demo', labels: {}, port: 8080, trustDomain: 'cluster.local' });
 * [r.mode, r.level, r.libraryDefault]; // ['PERMISSIVE', 'default', 'STRICT']
 * ```
 */
export interface ModeResolution {
  /** The mode Istio would apply on this port. */
  readonly mode: MtlsMode;
  /** Which level decided: a port-level setting, the workload, namespace or mesh policy, or Istio's default. */
  readonly level: 'port' | 'workload' | 'namespace' | 'mesh' | 'default';
  /** The deciding object (`kind/namespace/name`, with the field for a port level), or null for the default. */
  readonly decidedBy: string | null;
  /** Why, in words. */
  readonly reason: string;
  /** The mode sidecarless uses when told nothing (STRICT), shown beside Istio's. */
  readonly libraryDefault: MtlsMode;
  /** Objects that were considered and why they did not decide (ignored, inherited, not selected). */
  readonly notes: readonly string[];
}

const MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
type IstioMode = (typeof MODES)[number];

function readMode(value: unknown, at: At): IstioMode {
  const m = mapping(value, at, ['mode']);
  const mode = m.mode ?? 'UNSET';
  if (!MODES.includes(mode as IstioMode)) {
    throw at.key('mode').invalid(`must be one of ${MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  }
  return mode as IstioMode;
}

interface PaSpec {
  readonly object: IstioObject;
  readonly mtls: IstioMode;
  readonly ports: ReadonlyMap<number, IstioMode>;
}

function readPeerAuthentication(object: IstioObject): PaSpec {
  const at = object.at.key('spec');
  const spec = mapping(object.spec, at, ['selector', 'mtls', 'portLevelMtls'], {
    portLevelTls: 'server TLS settings per port are not something sidecarless takes from Istio',
  });
  const mtls = spec.mtls === undefined || spec.mtls === null ? 'UNSET' : readMode(spec.mtls, at.key('mtls'));
  const ports = new Map<number, IstioMode>();
  if (spec.portLevelMtls !== undefined && spec.portLevelMtls !== null) {
    const pl = at.key('portLevelMtls');
    if (!isPlainObject(spec.portLevelMtls)) throw pl.invalid('must be a mapping of ports to { mode }');
    const entries = Object.entries(spec.portLevelMtls);
    // Istio's validation: port-level mTLS only in a workload policy, never empty, no port 0.
    if (entries.length === 0)
      throw pl.invalid('must have at least one port when present (Istio refuses it empty)');
    if (selects(object.spec, at, {}) === undefined) {
      throw pl.invalid(
        'is only allowed in a policy with a selector (Istio refuses port-level mTLS in a mesh or namespace policy)',
      );
    }
    for (const [key, value] of entries)
      ports.set(portNumber(key, pl.item(key)), readMode(value, pl.item(key)));
  }
  return { object, mtls, ports };
}

function istioDefault(notes: string[], why: string): ModeResolution {
  return {
    mode: 'PERMISSIVE',
    level: 'default',
    decidedBy: null,
    reason: `${why}: Istio accepts plaintext and mTLS (PERMISSIVE); sidecarless alone defaults to STRICT`,
    libraryDefault: 'STRICT',
    notes,
  };
}

function resolveV1(objects: readonly IstioObject[], context: ResolvedContext): ModeResolution {
  const notes: string[] = [];
  const mesh: PaSpec[] = [];
  const namespace: PaSpec[] = [];
  const workload: PaSpec[] = [];
  for (const object of objects) {
    const inRoot = object.namespace === context.rootNamespace;
    if (!inRoot && object.namespace !== context.namespace) continue;
    const pa = readPeerAuthentication(object);
    const selected = selects(object.spec, object.at.key('spec'), context.labels);
    if (inRoot && selected !== undefined) {
      notes.push(
        `${refName(object)} ignored: a root-namespace policy with a selector is neither mesh-wide nor workload-specific`,
      );
    } else if (inRoot && context.namespace !== context.rootNamespace) {
      mesh.push(pa);
    } else if (selected === undefined) {
      (inRoot ? mesh : namespace).push(pa);
    } else if (selected) {
      workload.push(pa);
    } else {
      notes.push(`${refName(object)} not applied: its selector does not match the workload labels`);
    }
  }
  const levels: [ModeResolution['level'], PaSpec[]][] = [
    ['workload', workload],
    ['namespace', namespace],
    ['mesh', mesh],
  ];
  const chosen = levels.map(([level, list]) => {
    const one = oldest(
      list.map((p) => p.object),
      level,
    );
    for (const other of list) {
      if (other.object !== one)
        notes.push(
          `${refName(other.object)} ignored: ${refName(one as IstioObject)} is older at the ${level} level`,
        );
    }
    return [level, list.find((p) => p.object === one)] as const;
  });
  const port = context.port as number;
  const w = chosen[0]?.[1];
  const wPort = w?.ports.get(port);
  if (w !== undefined && wPort !== undefined && wPort !== 'UNSET') {
    return decided(
      wPort,
      'port',
      `${refName(w.object)} spec.portLevelMtls[${port}]`,
      `port-level setting for workload port ${port}`,
      notes,
    );
  }
  for (const [level, pa] of chosen) {
    if (pa === undefined) continue;
    if (pa.mtls !== 'UNSET') return decided(pa.mtls, level, refName(pa.object), `${level} policy`, notes);
    notes.push(`${refName(pa.object)}: mtls mode UNSET, inherited from the level above`);
  }
  const meshPolicy = chosen[2]?.[1];
  return istioDefault(
    notes,
    meshPolicy === undefined
      ? 'no PeerAuthentication applies'
      : `mesh-level ${refName(meshPolicy.object)} leaves the mode UNSET`,
  );
}

function decided(
  mode: Exclude<IstioMode, 'UNSET'>,
  level: ModeResolution['level'],
  by: string,
  what: string,
  notes: string[],
): ModeResolution {
  return { mode, level, decidedBy: by, reason: `${what} says ${mode}`, libraryDefault: 'STRICT', notes };
}

const JWT = 'JWT origin authentication has no counterpart in sidecarless';

/** A v1alpha1 Policy's peer mode: no `peers` means no mTLS; `- mtls:` (null or {}) means STRICT. */
function v1alpha1Mode(object: IstioObject): Exclude<IstioMode, 'UNSET'> {
  const at = object.at.key('spec');
  const spec = mapping(object.spec, at, ['targets', 'peers'], {
    origins: JWT,
    originIsOptional: JWT,
    principalBinding: 'principals from JWT origins have no counterpart in sidecarless',
    peerIsOptional: 'accepting peers that fail authentication has no counterpart in sidecarless',
  });
  const peers = list(spec.peers, at.key('peers')) ?? [];
  let mode: Exclude<IstioMode, 'UNSET'> | undefined;
  peers.forEach((peer, i) => {
    const p = mapping(peer, at.key('peers').item(i), ['mtls'], {
      jwt: 'JWT peer authentication has no counterpart in sidecarless',
    });
    if (!('mtls' in p)) throw at.key('peers').item(i).invalid('must set "mtls"');
    if (mode !== undefined)
      throw at.key('peers').item(i).invalid('repeats "mtls": a Policy has one mTLS method');
    const m =
      p.mtls === null
        ? {}
        : mapping(p.mtls, at.key('peers').item(i).key('mtls'), ['mode'], {
            allowTls:
              'TLS without a client certificate is not a mode sidecarless servers have (use PERMISSIVE or STRICT)',
          });
    const value = m.mode ?? 'STRICT';
    if (value !== 'STRICT' && value !== 'PERMISSIVE') {
      throw at
        .key('peers')
        .item(i)
        .key('mtls.mode')
        .invalid(`must be STRICT or PERMISSIVE, got ${JSON.stringify(value)}`);
    }
    mode = value;
  });
  return mode ?? 'DISABLE';
}

/** Whether a v1alpha1 Policy's `targets` select the workload's service and port. */
function targeted(object: IstioObject, context: ResolvedContext): boolean {
  const at = object.at.key('spec.targets');
  const targets = list(object.spec.targets, at) ?? [];
  const service = context.service;
  if (service === null) {
    throw at.invalid(
      'selects services: give context.service (its name and ports) so the targets can be matched',
    );
  }
  const servicePorts = service.ports.filter((p) => p.targetPort === context.port);
  return targets.some((target, i) => {
    const t = mapping(target, at.item(i), ['name', 'ports'], {
      labels: 'target labels were never implemented by Istio',
    });
    if (typeof t.name !== 'string' || t.name === '')
      throw at.item(i).key('name').invalid('must be a service name');
    if (t.name !== service.name) return false;
    const ports = list(t.ports, at.item(i).key('ports'));
    if (ports === undefined || ports.length === 0) return true;
    return ports.some((port, j) => {
      const p = mapping(port, at.item(i).key('ports').item(j), ['number', 'name']);
      if (p.number !== undefined) {
        const n = portNumber(p.number, at.item(i).key('ports').item(j).key('number'));
        return servicePorts.some((s) => s.port === n);
      }
      if (typeof p.name !== 'string' || p.name === '')
        throw at.item(i).key('ports').item(j).invalid('must set "number" or "name"');
      return servicePorts.some((s) => s.name === p.name);
    });
  });
}

function resolveV1alpha1(objects: readonly IstioObject[], context: ResolvedContext): ModeResolution {
  const notes: string[] = [];
  const mesh: IstioObject[] = [];
  const namespace: IstioObject[] = [];
  const service: IstioObject[] = [];
  for (const object of objects) {
    if (object.name !== 'default' && (object.kind === 'MeshPolicy' || object.spec.targets === undefined)) {
      // Istio 1.x validation: a MeshPolicy, and a Policy without targets, must be named "default".
      throw object.at
        .key('metadata.name')
        .invalid('must be "default" for a MeshPolicy or a Policy without targets');
    }
    if (object.kind === 'MeshPolicy') mesh.push(object);
    else if (object.namespace !== context.namespace) continue;
    else if (object.spec.targets === undefined) namespace.push(object);
    else if (targeted(object, context)) service.push(object);
    else notes.push(`${refName(object)} not applied: its targets do not name this service and port`);
  }
  const levels: [ModeResolution['level'], IstioObject[]][] = [
    ['workload', service],
    ['namespace', namespace],
    ['mesh', mesh],
  ];
  for (const [level, list] of levels) {
    const one = oldest(list, level);
    if (one === undefined) continue;
    const mode = v1alpha1Mode(one);
    return decided(
      mode,
      level,
      refName(one),
      `${level} v1alpha1 ${one.kind}${mode === 'DISABLE' ? ' without peers' : ''}`,
      notes,
    );
  }
  return istioDefault(notes, 'no v1alpha1 Policy or MeshPolicy applies');
}

/** Resolves the mode from objects already collected. */
export function resolveModeOf(objects: readonly IstioObject[], context: ResolvedContext): ModeResolution {
  const v1 = objects.filter((o) => o.kind === 'PeerAuthentication');
  const v1alpha1 = objects.filter((o) => o.kind === 'Policy' || o.kind === 'MeshPolicy');
  if (v1.length > 0 && v1alpha1.length > 0) {
    const [a, b] = [v1alpha1[0] as IstioObject, v1[0] as IstioObject];
    throw a.at.conflict(
      `and ${refName(b)}: v1alpha1 authentication policies and v1/v1beta1 PeerAuthentication cannot be mixed (no Istio release served both)`,
    );
  }
  const resolution = v1alpha1.length > 0 ? resolveV1alpha1(v1alpha1, context) : resolveV1(v1, context);
  return Object.freeze({ ...resolution, notes: Object.freeze([...resolution.notes]) });
}

/**
 * The mTLS mode Istio would apply to the workload's port: a pure function of the documents,
 * naming the deciding object and why. PeerAuthentication (`security.istio.io/v1`, `v1beta1`):
 * workload (selector) over namespace over mesh (root namespace); `portLevelMtls` keyed by the
 * workload port; `UNSET` inherits; the oldest policy of a level wins. v1alpha1 `Policy` /
 * `MeshPolicy`: service targets over the namespace's `default` over the `MeshPolicy`. Nothing
 * applying means PERMISSIVE, as in Istio (sidecarless alone defaults to STRICT: see
 * `libraryDefault`).
 *
 * @param docs - the Istio documents (YAML text, parsed documents or objects)
 * @param context - the workload: `namespace`, `labels`, `port`, `trustDomain` (and `service` for v1alpha1 targets)
 * @returns the mode and how it was decided
 * @throws SidecarlessError `ERR_ISTIO_INVALID` for a malformed policy, `ERR_ISTIO_UNSUPPORTED` for
 *   a refused field (`origins`, `principalBinding`, JWT peers), `ERR_ISTIO_CONFLICT` for two
 *   policies at one level without timestamps or v1alpha1 mixed with v1, `ERR_OPTION_INVALID` for a
 *   bad context
 * @example
 * ```ts
 * import { resolveMode } from 'sidecarless/istio';
 * const yaml = `
 * apiVersion: authentication.istio.io/v1alpha1
 * kind: Policy
 * metadata: { name: default, namespace: microservices-demo }
 * spec:
 *   peers:
 *   - mtls: { mode: STRICT }
 * `;
 * const r = resolveMode(yaml, { namespace: 'microservices-demo', labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' });
 * [r.mode, r.decidedBy]; // ['STRICT', 'Policy/microservices-demo/default']
 * ```
 */
export function resolveMode(docs: IstioInput, context: IstioContext): ModeResolution {
  const ctx = checkContext(context, { port: true, labels: true });
  return resolveModeOf(collectObjects(docs, ctx).objects, ctx);
}
