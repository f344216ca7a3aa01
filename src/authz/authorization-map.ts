import type { PeerMatcher } from './peer-matcher.js';

/**
 * Who may call what: keys are `[METHOD ]path-pattern`, values are {@link PeerMatcher}s.
 *
 * - `/exact` covers that path, and the same path with a trailing `/`;
 * - `/prefix/*` covers `/prefix`, `/prefix/` and everything under it;
 * - `*` is the default, for paths no other key covers;
 * - `GET /x`, `POST /x/*`, `GET *`: a method limits a key to that method (uppercase, one of
 *   `http.METHODS`); a `GET` key also binds `HEAD`, which routers answer with the GET handler.
 *
 * Keys are case-insensitive (two keys differing only in case are an error) and written in normal
 * form (no `//`, `.`, `..`, or encoded unreserved characters). The most specific key decides:
 * exact over prefix, longer prefix over shorter, then method-specific over any-method.
 *
 * @example
 * ```ts
 * import type { AuthorizationMap } from 'sidecarless';
 * const rules: AuthorizationMap = {
 *   'GET /boards/*': ['cluster.local/ns/demo/sa/app-ui', 'cluster.local/ns/demo/sa/api'],
 *   'POST /boards/*': 'cluster.local/ns/demo/sa/api',
 *   '/admin/*': 'spiffe://cluster.local/ns/ops/*',
 *   '/healthz': ['*', 'unauthenticated'],
 * };
 * ```
 */
export type AuthorizationMap = Readonly<Record<string, PeerMatcher>>;
