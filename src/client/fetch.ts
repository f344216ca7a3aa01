import type { RequestInfo, RequestInit, Response } from 'undici';
import { createMtlsDispatcher, type MtlsDispatcher, type MtlsDispatcherOptions } from './dispatcher.js';
import { loadUndici } from './undici.js';

/**
 * The options of one request through {@link createMtlsFetch}: undici's `RequestInit`, without
 * `dispatcher` (the function brings its own).
 * @example
 * ```ts
 * import type { MtlsFetchInit } from 'sidecarless';
 * const init: MtlsFetchInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };
 * ```
 */
export type MtlsFetchInit = Omit<RequestInit, 'dispatcher'>;

/**
 * A `fetch` whose requests go through a sidecarless dispatcher: mTLS with the workload's SVID, the
 * server authenticated by its SPIFFE ID. Typed with undici's own types, so it type-checks whatever
 * `@types/node` the project uses (Node's global `fetch` types do not take undici 7's dispatcher
 * under `@types/node` 20).
 * @example
 * ```ts
 * import { createLocalCa, createMtlsFetch, type MtlsFetch } from 'sidecarless';
 * const fetch: MtlsFetch = createMtlsFetch({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui'),
 *   destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
 * });
 * await fetch.close();
 * ```
 */
export interface MtlsFetch extends AsyncDisposable {
  /** Sends a request, as `fetch` does. */
  (input: RequestInfo, init?: MtlsFetchInit): Promise<Response>;
  /** The dispatcher the requests go through (its events, its pool). */
  readonly dispatcher: MtlsDispatcher;
  /** Closes the dispatcher: pooled connections end, new requests fail. */
  close(): Promise<void>;
}

/**
 * Creates a `fetch` bound to a new sidecarless dispatcher: the typed way to call mTLS services
 * with `fetch`, without passing `dispatcher` (or casting) on every call.
 *
 * @param options - as for {@link createMtlsDispatcher}
 * @returns the function; `close()` it when done
 * @throws SidecarlessError as {@link createMtlsDispatcher}; requests reject as `fetch` does, with
 *   the sidecarless error as the `cause`
 * @example
 * ```ts
 * import { createLocalCa, createMtlsFetch } from 'sidecarless';
 * const fetch = createMtlsFetch({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/app-ui'),
 *   destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' } },
 * });
 * const res = await fetch('http://boards:8080/shareditems'); // mTLS on the wire
 * console.log(res.status, await res.json());
 * ```
 */
export function createMtlsFetch(options: MtlsDispatcherOptions): MtlsFetch {
  const dispatcher = createMtlsDispatcher(options);
  const undiciFetch = loadUndici().fetch;
  const close = () => dispatcher.close();
  const bound = (input: RequestInfo, init?: MtlsFetchInit) => undiciFetch(input, { ...init, dispatcher });
  return Object.assign(bound, { dispatcher, close, [Symbol.asyncDispose]: close });
}
