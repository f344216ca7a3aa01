// A matcher naming a trust domain the server does not trust can never match: one warning per
// matcher when the bundles first arrive and whenever they change.
import { describe, expect, it } from 'vitest';
import { BundleSet, createLocalCa, createMtlsServer } from '../../src/index.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { onCleanup } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });
const partner = createLocalCa({ trustDomain: 'partner.example' });

function warnings(): string[] {
  const seen: string[] = [];
  const listener = (w: Error) => {
    if (w.name === 'SidecarlessWarning') seen.push(w.message);
  };
  process.on('warning', listener);
  onCleanup(() => process.off('warning', listener));
  return seen;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('matchers naming an untrusted trust domain', () => {
  it('warn once per matcher at start, again after a bundle change leaves them untrusted, not when trusted', async () => {
    const seen = warnings();
    const identity = mutableIdentity(ca.issue('/ns/demo/sa/boards'), ca.bundles());
    onCleanup(() => identity.close());
    createMtlsServer({
      identity,
      authorize: {
        '/billing/*': 'spiffe://partner.example/ns/billing/*',
        '/ops/*': ['cluster.local/ns/ops/sa/admin', 'partner.example/ns/ops/sa/admin'],
        '*': 'spiffe://cluster.local/*',
      },
    });
    await settle();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatch(
      /authorize key "\/billing\/\*": matcher spiffe:\/\/partner.example\/ns\/billing\/\* names trust domain partner.example, which the server does not trust/,
    );
    expect(seen[1]).toMatch(/"\/ops\/\*".*partner\.example/);
    identity.update({ bundles: BundleSet.of(ca.bundle(), partner.bundle()) });
    await settle();
    expect(seen).toHaveLength(2); // now trusted: nothing to say
    identity.update({ bundles: ca.bundles() });
    await settle();
    expect(seen).toHaveLength(4);
  });

  it('control: matchers of trusted trust domains, "*" and functions warn nothing', async () => {
    const seen = warnings();
    createMtlsServer({
      identity: ca.identity('/ns/demo/sa/boards'),
      authorize: {
        '/a': 'spiffe://cluster.local/ns/a/*',
        '/b': '*',
        '/c': () => true,
        '*': 'unauthenticated',
      },
      mode: 'PERMISSIVE',
    });
    await settle();
    expect(seen.filter((w) => w.includes('does not trust'))).toEqual([]);
  });
});
