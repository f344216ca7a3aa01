// sidecarless: every public export, listed by name. Nothing else is public.
export type { AuthorizationMap } from './authz/authorization-map.js';
export {
  type AuthorizationDecision,
  type AuthorizationReason,
  type AuthorizationRequest,
  authorize,
  type RequestAttributes,
} from './authz/authorize.js';
export type { Peer } from './authz/peer.js';
export type { PeerMatcher } from './authz/peer-matcher.js';
export {
  type AuthorizationMode,
  type AuthorizationPolicy,
  type AuthorizationPolicyDescription,
  type AuthorizationPolicyOptions,
  type AuthorizationRule,
  createAuthorizationPolicy,
  type PolicyEngineDescription,
  type PolicyEngineRule,
} from './authz/policy.js';
export {
  createMtlsAgent,
  type MtlsAgentExtras,
  type MtlsAgentOptions,
  type MtlsHttpAgent,
  type MtlsHttpsAgent,
} from './client/agent.js';
export { type ConnectMtlsOptions, connectMtls } from './client/connect-mtls.js';
export type { ClientReport, MtlsClientOptions } from './client/core.js';
export type { Destination, DestinationMode, Destinations } from './client/destinations.js';
export {
  createMtlsDispatcher,
  type MtlsDispatcher,
  type MtlsDispatcherOptions,
} from './client/dispatcher.js';
export { createMtlsFetch, type MtlsFetch, type MtlsFetchInit } from './client/fetch.js';
export { createMtlsInterceptor, type MtlsInterceptor } from './client/interceptor.js';
export { type OnPeer, PEER_ID_HEADER, type PeerRequestInfo } from './client/peer-handler.js';
export { type ErrorCode, type ErrorDetail, isSidecarlessError, SidecarlessError } from './errors.js';
export {
  type FileIdentityOptions,
  type FileIdentityPreset,
  fileIdentity,
  fileIdentityPresets,
} from './identity/file-identity.js';
export {
  createLocalCa,
  type IssueOptions,
  type KeyType,
  type LocalCa,
  type LocalCaCertificate,
  type LocalCaOptions,
  type LocalIdentityOptions,
} from './identity/local-ca.js';
export type { BundleSource, IdentitySource, ReadyOptions, WorkloadIdentity } from './identity/source.js';
export type { IdentitySourceEvents, ObservableSource, RetryInfo } from './identity/source-events.js';
export { type StaticIdentityOptions, staticIdentity } from './identity/static-identity.js';
export {
  type ObservedBundleSource,
  type WorkloadApiBundlesOptions,
  workloadApiBundles,
} from './identity/workload-api-bundles.js';
export {
  type ObservedIdentitySource,
  type WorkloadApiIdentityOptions,
  workloadApiIdentity,
} from './identity/workload-api-identity.js';
export type { SvidPick } from './identity/workload-api-response.js';
export type { RetryOptions } from './identity/workload-api-stream.js';
export type { AuthorizationDecisionEvent, FallbackEvent } from './observe/channels.js';
export {
  type AuthorizationEvent,
  type ClientPeerEvent,
  type ClientRejectEvent,
  type ClientResponseEvent,
  channels,
  type ExpiringEvent,
  type IdentityUpdateEvent,
  type PeerEvent,
  type RejectEvent,
  type RejectPhase,
  type SourceErrorEvent,
  type SourceUpdateEvent,
  type SourceWithdrawnEvent,
} from './observe/channels.js';
export {
  type EdgeRefusal,
  type EdgeReport,
  KEY_EXCHANGE_NOT_EXPOSED,
  UNAUTHENTICATED_SOURCE,
} from './observe/edges.js';
export {
  STATUS_PAGE_CSP,
  type StatusHandler,
  type StatusHandlerOptions,
  statusHandler,
} from './observe/status-handler.js';
export type {
  StatusCertificate,
  StatusClient,
  StatusClientReport,
  StatusReport,
  StatusServer,
  StatusServerReport,
  StatusSourceReport,
} from './observe/status-report.js';
export {
  admitConnection,
  admitPeer,
  admitRequest,
  type ConnectionAdmission,
  type ConnectionEnd,
  type ConnectionFacts,
  type PeerAdmission,
  type PresentedCertificate,
  type Refusal,
  type RequestAdmission,
  type RequestFacts,
  type SniffedProtocol,
} from './policy/admission.js';
export type { ConnectionCounts } from './server/connections.js';
export { createMtlsServer } from './server/create-server.js';
export { getPeer, type PeerCarrier } from './server/get-peer.js';
export type { ForwardClientCert } from './server/headers.js';
export type { MtlsMode, MtlsServerOptions, ServerProtocol } from './server/options.js';
export type { ServerTotals } from './server/server-core.js';
export type {
  MtlsHttp2Server,
  MtlsHttpServer,
  MtlsServerExtras,
  MtlsTlsServer,
  ServerReport,
} from './server/server-types.js';
export { MAX_SPIFFE_ID_BYTES, parseSpiffeId, SpiffeId } from './spiffe/spiffe-id.js';
export { MAX_TRUST_DOMAIN_BYTES, TrustDomain } from './spiffe/trust-domain.js';
export {
  type BundleJwk,
  MAX_BUNDLE_AUTHORITIES,
  X509Bundle,
  type X509BundleParseOptions,
} from './x509/bundle.js';
export { BundleSet } from './x509/bundle-set.js';
export { MAX_CERTIFICATE_BYTES } from './x509/certificate.js';
export type { PrivateKeyInput } from './x509/private-key.js';
export type { CertificateInput } from './x509/read-certificates.js';
export { X509Svid, type X509SvidParseOptions } from './x509/svid.js';
export {
  MAX_CHAIN_LENGTH,
  type VerifiedPeerChain,
  type VerifyPeerChainOptions,
  verifyPeerChain,
} from './x509/verify.js';
