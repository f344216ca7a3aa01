// The Peer of a connection is built in one place, src/tls/peer.ts, for servers and clients alike
// (and by fakePeer in the testing kit, for users' unit tests): a second builder is how a door
// once got a peer that differed from the others.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the Peer builder', () => {
  it('only src/tls/peer.ts (and the testing kit) writes a Peer object literal', () => {
    // A Peer literal names its verified chain and ALPN; the event types do not hold a chain.
    const builds = (text: string) => /^\s*chain: /m.test(text) && /^\s*alpn: /m.test(text);
    const builders = files(SRC)
      .filter((f) => builds(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f))
      .filter((f) => !f.startsWith('testing/'));
    expect(builders).toEqual(['tls/peer.ts']);
  });
});
