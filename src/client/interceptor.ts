import type { Dispatcher } from 'undici';
import { compileDestinations, type DestinationTable } from './destinations.js';
import { createMtlsDispatcher, type MtlsDispatcher, type MtlsDispatcherOptions } from './dispatcher.js';
import { StripPeerHeaderHandler } from './peer-handler.js';
import { planOf, targetOf } from './target.js';

/**
 * An undici interceptor for `dispatcher.compose()` that sends requests to `mtls` and `auto`
 * destinations through a sidecarless dispatcher, and everything else on to the dispatcher it is
 * composed with.
 * @example
 * ```ts
 * import { Agent } from 'undici';
 * import { createLocalCa, createMtlsInterceptor, type MtlsInterceptor } from 'sidecarless';
 * const mtls: MtlsInterceptor = createMtlsInterceptor({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { '*.svc.cluster.local': { expect: 'spiffe://cluster.local/*' }, '*': { mode: 'plaintext' } },
 * });
 * const dispatcher = new Agent().compose(mtls);
 * await mtls.close();
 * ```
 */
export interface MtlsInterceptor extends Dispatcher.DispatcherComposeInterceptor, AsyncDisposable {
  /** The dispatcher that carries the mTLS requests (its `fallback` events, its pool). */
  readonly dispatcher: MtlsDispatcher;
  /** Closes the mTLS dispatcher (not the one it is composed with). */
  close(): Promise<void>;
}

/**
 * Whether a request may go on to the composed dispatcher in plaintext: only when its destination
 * is `plaintext` without asking DNS. When the destination depends on the name's addresses (some
 * key is an IP literal), the sidecarless dispatcher takes the request: it resolves the name once
 * and connects to the addresses it checked, where the composed dispatcher would resolve it again.
 */
function isPlaintext(table: DestinationTable, origin: unknown): boolean {
  if (origin === undefined) return false;
  try {
    const url = new URL(String(origin));
    const plan = planOf(table, { host: url.hostname, port: url.port, protocol: url.protocol });
    return !plan.resolve && targetOf(table, plan).destination.mode === 'plaintext';
  } catch {
    // No destination, or no valid host: the sidecarless dispatcher fails the request with the reason.
    return false;
  }
}

/**
 * Creates an interceptor for undici's `dispatcher.compose()`: requests to `mtls` and `auto`
 * destinations (and to no destination, which fail with `ERR_NO_DESTINATION`) go through a
 * sidecarless dispatcher (see {@link createMtlsDispatcher}); requests to `plaintext`
 * destinations go on to the composed dispatcher unchanged (its proxy, TLS and pool settings),
 * except that a {@link PEER_ID_HEADER} header their servers send is removed (from responses, 1xx,
 * 101 and trailers). When some destination key is an IP literal, a request to a name whose
 * destination could depend on the addresses it resolves to goes through the sidecarless
 * dispatcher instead, plaintext or not: it resolves the name once and connects to the addresses
 * it checked, where the composed dispatcher would resolve it again.
 *
 * @param options - as for {@link createMtlsDispatcher}
 * @returns the interceptor; `close()` it when done
 * @throws SidecarlessError as {@link createMtlsDispatcher}
 * @example
 * ```ts
 * import { Agent, interceptors, setGlobalDispatcher } from 'undici';
 * import { createLocalCa, createMtlsInterceptor } from 'sidecarless';
 * const mtls = createMtlsInterceptor({
 *   identity: createLocalCa({ trustDomain: 'cluster.local' }).identity('/ns/demo/sa/ui'),
 *   destinations: { 'boards:8080': { expect: 'spiffe://cluster.local/ns/demo/sa/boards' }, '*': { mode: 'plaintext' } },
 * });
 * setGlobalDispatcher(new Agent().compose(interceptors.retry(), mtls));
 * ```
 */
export function createMtlsInterceptor(options: MtlsDispatcherOptions): MtlsInterceptor {
  const dispatcher = createMtlsDispatcher(options);
  const table = compileDestinations(options.destinations, options.searchDomains);
  const interceptor = (dispatch: Dispatcher['dispatch']): Dispatcher['dispatch'] =>
    function mtlsInterceptor(opts, handler) {
      if (isPlaintext(table, opts.origin)) return dispatch(opts, new StripPeerHeaderHandler(handler));
      return dispatcher.dispatch(opts, handler);
    };
  const close = () => dispatcher.close();
  return Object.assign(interceptor, { dispatcher, close, [Symbol.asyncDispose]: close });
}
