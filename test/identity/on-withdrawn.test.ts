// onWithdrawn(): the optional IdentitySource method through which servers close, at once, the
// connections made with a withdrawn identity. Every built-in source implements it; a source with
// only the four required methods keeps working, with one warning.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  createLocalCa,
  createMtlsServer,
  fileIdentity,
  type IdentitySource,
  type SidecarlessError,
  staticIdentity,
  workloadApiIdentity,
} from '../../src/index.js';
import { startFake, track } from '../helpers/identity-sources.js';
import { credentialsOf, listen, mtlsRequest, onCleanup } from '../helpers/server.js';

const ca = createLocalCa({ trustDomain: 'cluster.local' });

function watch(source: IdentitySource): SidecarlessError[] {
  const heard: SidecarlessError[] = [];
  const stop = source.onWithdrawn?.((err) => heard.push(err));
  onCleanup(() => stop?.());
  return heard;
}

describe('onWithdrawn on the built-in sources', () => {
  it('staticIdentity: fires when its SVID expires, on a timer, without anyone calling current()', async () => {
    const source = staticIdentity({ svid: ca.issue('/short', { ttl: 1_000 }), bundles: ca.bundles() });
    onCleanup(() => source.close());
    const heard = watch(source);
    await vi.waitFor(() => expect(heard.map((e) => e.code)).toEqual(['ERR_NO_IDENTITY']), { timeout: 5_000 });
    expect(heard[0]?.message).toMatch(/expired/);
  });

  it('workloadApiIdentity: fires when the agent redacts the SVID, and the unsubscribe stops it', async () => {
    const fake = await startFake({ svids: ['/ns/demo/sa/web', '/ns/demo/sa/admin'] });
    const source = track(
      workloadApiIdentity({ address: fake.address, pick: { id: 'spiffe://cluster.local/ns/demo/sa/admin' } }),
    );
    await source.ready({ timeout: 5_000 });
    const heard: SidecarlessError[] = [];
    const stop = source.onWithdrawn?.((err) => heard.push(err));
    fake.setSvids(['/ns/demo/sa/web']);
    await vi.waitFor(() => expect(heard).toHaveLength(1));
    fake.setSvids(['/ns/demo/sa/web', '/ns/demo/sa/admin']);
    await vi.waitFor(() => expect(source.current().svid.id.path).toBe('/ns/demo/sa/admin'));
    stop?.();
    fake.setSvids(['/ns/demo/sa/web']);
    await vi.waitFor(() => expect(() => source.current()).toThrow());
    expect(heard).toHaveLength(1);
  });

  it('fileIdentity: fires when the SVID on disk expires and no newer one arrives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecarless-withdrawn-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const svid = ca.issue('/files', { ttl: 1_000 });
    writeFileSync(join(dir, 'cert.pem'), svid.certChainPem());
    writeFileSync(join(dir, 'key.pem'), svid.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(dir, 'bundle.pem'), ca.bundle().toPem());
    const source = fileIdentity({
      certChain: join(dir, 'cert.pem'),
      key: join(dir, 'key.pem'),
      bundle: join(dir, 'bundle.pem'),
    });
    onCleanup(() => source.close());
    await source.ready({ timeout: 5_000 });
    const heard = watch(source);
    await vi.waitFor(() => expect(heard).toHaveLength(1), { timeout: 5_000 });
  });
});

describe('a source with only ready, current, subscribe and close', () => {
  it('serves as before, and the server warns once that a withdrawal is noticed late', async () => {
    const inner = ca.identity('/ns/demo/sa/boards');
    await inner.ready();
    const minimal: IdentitySource = {
      ready: (options) => inner.ready(options),
      current: () => inner.current(),
      subscribe: (listener) => inner.subscribe(listener),
      close: () => inner.close(),
      [Symbol.asyncDispose]: () => inner.close(),
    };
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    onCleanup(() => process.off('warning', onWarning));
    const first = createMtlsServer({ identity: minimal }, (_req, res) => res.end('ok'));
    createMtlsServer({ identity: minimal }, (_req, res) => res.end('ok'));
    const { port } = await listen(first);
    const ui = credentialsOf(ca.issue('/ns/demo/sa/app-ui'));
    expect((await mtlsRequest(port, '/', ui, ca.bundle())).status).toBe(200);
    await vi.waitFor(() => expect(warnings.filter((w) => w.includes('onWithdrawn'))).toHaveLength(1));
  });
});
