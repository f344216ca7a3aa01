// sidecarless/istio: Istio YAML as configuration. Every export is listed by name. This entry
// point (and only it) loads the `yaml` parser.
export type { NoAllowPolicy } from './authorization.js';
export type {
  IstioContext,
  IstioService,
  IstioServicePort,
} from './context.js';
export {
  ISTIO_SEARCH_DOMAINS,
  type IstioDestinationsOptions,
  istioDestinations,
} from './destination-rules.js';
export {
  type IstioDocument,
  IstioDocuments,
  type IstioInput,
  type IstioSource,
  MAX_ISTIO_YAML_BYTES,
  parseIstioYaml,
  readIstioFiles,
} from './documents.js';
export { explainIstio, formatIstioExplanation, type IstioExplanation } from './explain.js';
export { type FromIstioOptions, fromIstio, type IstioServerOptions } from './from-istio.js';
export { type ModeResolution, resolveMode } from './peer-authentication.js';
