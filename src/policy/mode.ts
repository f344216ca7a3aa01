/**
 * The Istio PeerAuthentication meaning, server side: `STRICT` accepts only mTLS (default),
 * `PERMISSIVE` serves plaintext and mTLS on one port, `DISABLE` plaintext only.
 * @example
 * ```ts
 * import type { MtlsMode } from 'sidecarless';
 * const mode: MtlsMode = process.env.MIGRATING ? 'PERMISSIVE' : 'STRICT';
 * ```
 */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** Every mode, in the order the options check names them. */
export const MTLS_MODES: readonly MtlsMode[] = Object.freeze(['STRICT', 'PERMISSIVE', 'DISABLE']);
