import { SidecarlessError } from '../errors.js';
import { checkOptions, invalidOption } from '../internal/options.js';
import { toTrustDomain } from '../spiffe/trust-domain.js';

/**
 * A port of the Kubernetes Service in front of the workload: v1alpha1 `Policy` targets name
 * service ports (by number or name), not workload ports.
 * @example
 * ```ts
 * import type { IstioServicePort } from 'sidecarless/istio';
 * const http: IstioServicePort = { name: 'http', port: 80, targetPort: 8080 };
 * ```
 */
export interface IstioServicePort {
  /** The port's name in the Service. */
  readonly name?: string;
  /** The Service port. */
  readonly port: number;
  /** The workload (container) port it forwards to; default: `port`. */
  readonly targetPort?: number;
}

/**
 * The Kubernetes Service of the workload, for v1alpha1 `Policy` targets.
 * @example
 * ```ts
 * import type { IstioService } from 'sidecarless/istio';
 * const boards: IstioService = { name: 'boards', ports: [{ name: 'http', port: 8080, targetPort: 8080 }] };
 * ```
 */
export interface IstioService {
  /** The Service name (a v1alpha1 target's `name`). */
  readonly name: string;
  /** Its ports. */
  readonly ports: readonly IstioServicePort[];
}

/**
 * Who the workload is, as Istio would see it: which policies select it and which names are local.
 * @example
 * ```ts
 * import type { IstioContext } from 'sidecarless/istio';
 * const context: IstioContext = {
 *   namespace: 'microservices-demo',
 *   labels: { app: 'boards' },
 *   port: 8080,
 *   trustDomain: 'cluster.local',
 * };
 * ```
 */
export interface IstioContext {
  /** The workload's namespace (the client's, for `istioDestinations`). */
  readonly namespace: string;
  /** The workload's pod labels, matched against `selector.matchLabels` (required by `fromIstio`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** The workload (container) port the server listens on (required by `fromIstio`). */
  readonly port?: number;
  /** The Service in front of the workload (v1alpha1 `targets`). */
  readonly service?: IstioService;
  /** The mesh's trust domain (Istio `meshConfig.trustDomain`). */
  readonly trustDomain: string;
  /** Other names of the trust domain (Istio `trustDomainAliases`). */
  readonly trustDomainAliases?: readonly string[];
  /** Istio's root namespace, where mesh-wide policies live (default `istio-system`). */
  readonly rootNamespace?: string;
  /** The Kubernetes cluster domain (default `cluster.local`). */
  readonly clusterDomain?: string;
}

/** The context after checking, with defaults. */
export interface ResolvedContext {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly labelsGiven: boolean;
  readonly port: number | null;
  readonly service: IstioService | null;
  readonly trustDomain: string;
  readonly trustDomainAliases: readonly string[];
  readonly rootNamespace: string;
  readonly clusterDomain: string;
}

const KNOWN: (keyof IstioContext)[] = [
  'namespace',
  'labels',
  'port',
  'service',
  'trustDomain',
  'trustDomainAliases',
  'rootNamespace',
  'clusterDomain',
];

// RFC 1123 label, as Kubernetes namespaces are.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function port(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65_535) {
    throw invalidOption(field, 'a port number 1-65535', value);
  }
  return value;
}

/** Checks an Istio context once; `needs` names what the caller cannot do without. */
export function checkContext(
  context: unknown,
  needs: { readonly port?: boolean; readonly labels?: boolean },
): ResolvedContext {
  const c = checkOptions<IstioContext>(context, KNOWN, 'Istio context');
  if (typeof c.namespace !== 'string' || !DNS_LABEL.test(c.namespace)) {
    throw invalidOption('context.namespace', 'a Kubernetes namespace name', c.namespace);
  }
  const trustDomain = toTrustDomain(c.trustDomain, 'context.trustDomain').name;
  const aliases = c.trustDomainAliases ?? [];
  if (!Array.isArray(aliases))
    throw invalidOption('context.trustDomainAliases', 'a list of trust domains', aliases);
  const trustDomainAliases = aliases.map((a, i) => toTrustDomain(a, `context.trustDomainAliases[${i}]`).name);
  const rootNamespace = c.rootNamespace ?? 'istio-system';
  if (typeof rootNamespace !== 'string' || !DNS_LABEL.test(rootNamespace)) {
    throw invalidOption('context.rootNamespace', 'a Kubernetes namespace name', rootNamespace);
  }
  const clusterDomain = c.clusterDomain ?? 'cluster.local';
  if (typeof clusterDomain !== 'string' || !DNS_NAME.test(clusterDomain)) {
    throw invalidOption('context.clusterDomain', 'a DNS name such as "cluster.local"', clusterDomain);
  }
  if (needs.labels === true && c.labels === undefined) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      'option "context.labels" is required: selectors decide which policies apply ({} for none)',
      { field: 'context.labels' },
    );
  }
  const labels = c.labels ?? {};
  const proto = typeof labels === 'object' && labels !== null ? Object.getPrototypeOf(labels) : undefined;
  if (
    (proto !== Object.prototype && proto !== null) ||
    !Object.values(labels).every((v) => typeof v === 'string')
  ) {
    throw invalidOption('context.labels', 'an object of label names and string values', labels);
  }
  if (needs.port === true && c.port === undefined) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      'option "context.port" is required: port-level mTLS and "ports" rules are keyed by the workload port',
      { field: 'context.port' },
    );
  }
  return Object.freeze({
    namespace: c.namespace,
    labels: Object.freeze({ ...labels }),
    labelsGiven: c.labels !== undefined,
    port: c.port === undefined ? null : port('context.port', c.port),
    service: c.service === undefined ? null : checkService(c.service),
    trustDomain,
    trustDomainAliases: Object.freeze(trustDomainAliases),
    rootNamespace,
    clusterDomain,
  });
}

function checkService(value: unknown): IstioService {
  const s = checkOptions<IstioService>(value, ['name', 'ports'], 'context.service');
  if (typeof s.name !== 'string' || !DNS_LABEL.test(s.name)) {
    throw invalidOption('context.service.name', 'a Kubernetes Service name', s.name);
  }
  if (!Array.isArray(s.ports)) throw invalidOption('context.service.ports', 'a list of ports', s.ports);
  const ports = s.ports.map((p, i) => {
    const field = `context.service.ports[${i}]`;
    const o = checkOptions<IstioServicePort>(p, ['name', 'port', 'targetPort'], field);
    if (o.name !== undefined && typeof o.name !== 'string')
      throw invalidOption(`${field}.name`, 'a string', o.name);
    return Object.freeze({
      ...(o.name === undefined ? {} : { name: o.name }),
      port: port(`${field}.port`, o.port),
      targetPort: port(`${field}.targetPort`, o.targetPort ?? o.port),
    });
  });
  return Object.freeze({ name: s.name, ports: Object.freeze(ports) });
}
