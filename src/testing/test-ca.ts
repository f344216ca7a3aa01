import { inspect } from 'node:util';
import { SidecarlessError } from '../errors.js';
import { createLocalCa } from '../identity/local-ca.js';
import { checkOptions } from '../internal/options.js';
import { quote } from '../internal/show.js';
import { type BadSvid, buildBadSvid } from './bad-svid.js';
import { type BadSvidKind, badSvidKinds } from './bad-svid-kinds.js';
import type { LocalCa, LocalCaOptions } from './public-types.js';

/**
 * Options of {@link createTestCa}: those of `createLocalCa`, with a default trust domain.
 * @example
 * ```ts
 * import { createTestCa } from 'sidecarless/testing';
 * const ca = createTestCa({ trustDomain: 'example.org', intermediate: true });
 * ```
 */
export interface TestCaOptions extends Omit<LocalCaOptions, 'trustDomain' | 'root'> {
  /** The trust domain (default `cluster.local`). */
  readonly trustDomain?: LocalCaOptions['trustDomain'];
}

/**
 * A local CA for tests, with a factory of bad certificate chains.
 * @example
 * ```ts
 * import { createTestCa } from 'sidecarless/testing';
 * const ca = createTestCa();
 * const good = ca.issue('/ns/demo/sa/ui');
 * const bad = ca.issueBad('two-uri-sans', '/ns/demo/sa/ui');
 * ```
 */
export interface TestCa extends LocalCa {
  /**
   * Builds a chain that breaks one rule (see {@link badSvidKinds}), signed for real.
   * @param kind - the rule to break
   * @param path - the workload path the leaf claims (default `/ns/test/sa/bad`)
   */
  issueBad(kind: BadSvidKind, path?: string): BadSvid;
}

/**
 * Creates a CA for tests: a `LocalCa` of `sidecarless` (trust domain `cluster.local` unless told otherwise)
 * that can also build bad certificate chains of every kind `verifyPeerChain` must refuse.
 *
 * @param options - trust domain, intermediate, lifetimes, key type
 * @example
 * ```ts
 * import { verifyPeerChain } from 'sidecarless';
 * import { createTestCa } from 'sidecarless/testing';
 * const ca = createTestCa();
 * const bad = ca.issueBad('leaf-is-ca');
 * try { verifyPeerChain(bad.certificates, bad.bundles); } catch (err) { console.log(err.code); } // ERR_SVID_LEAF_IS_CA
 * ```
 */
export function createTestCa(options: TestCaOptions = {}): TestCa {
  const opts = checkOptions<TestCaOptions>(
    options,
    ['trustDomain', 'intermediate', 'ttl', 'rootTtl', 'keyType'],
    'createTestCa',
  );
  const ca = createLocalCa({ ...opts, trustDomain: opts.trustDomain ?? 'cluster.local' });
  const issueBad = (kind: BadSvidKind, path = '/ns/test/sa/bad'): BadSvid => {
    if (!Object.hasOwn(badSvidKinds, kind)) {
      throw new SidecarlessError(
        'ERR_OPTION_INVALID',
        `unknown bad SVID kind ${quote(String(kind))} (see badSvidKinds)`,
        {
          field: 'kind',
        },
      );
    }
    return buildBadSvid(ca, kind, path);
  };
  return Object.freeze({
    trustDomain: ca.trustDomain,
    issue: ca.issue.bind(ca),
    identity: ca.identity.bind(ca),
    bundle: ca.bundle.bind(ca),
    bundles: ca.bundles.bind(ca),
    rotateRoot: ca.rotateRoot.bind(ca),
    close: ca.close.bind(ca),
    [Symbol.asyncDispose]: ca.close.bind(ca),
    issueBad,
    [inspect.custom]: () => `TestCa(${ca.trustDomain.name})`,
  });
}
