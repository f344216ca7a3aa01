// The parity table's e2e sample through real servers: createMtlsServer({ ...fromIstio() }) on
// 127.0.0.1, real TLS handshakes with SVIDs from a local CA, and plaintext requests where the
// resolved mode admits them. The server's verdict (200, 403, 400, reset) must be the table's.
import { describe, expect, it } from 'vitest';
import { createLocalCa, createMtlsServer, type LocalCa } from '../../src/index.js';
import { fromIstio } from '../../src/istio/index.js';
import { credentialsOf, listen, mtlsRequest, plainRequest } from '../helpers/server.js';
import { ALL_CASES, contextOf, type ParityCase, type ParityRequest, peerId } from './parity-cases.js';

const sample = ALL_CASES.filter((c) => c.e2e);
const ca: LocalCa = createLocalCa({ trustDomain: 'cluster.local' });

function statusOf(r: ParityRequest): number {
  return r.want === 'allow' ? 200 : r.want === 'deny' ? 403 : 400;
}

async function send(port: number, r: ParityRequest) {
  const options = { method: r.method ?? 'GET', headers: { host: r.host ?? 'httpbin.foo' } };
  if (r.peer === null) return plainRequest(port, r.path ?? '/', { method: options.method });
  const path = new URL(peerId(r.peer)).pathname;
  return mtlsRequest(port, r.path ?? '/', credentialsOf(ca.issue(path)), ca.bundle(), {
    ...options,
    ...(r.ip === undefined ? {} : { localAddress: r.ip }),
  });
}

/** Requests a loopback client can make: a remote address outside 127.0.0.0/8 cannot be had here. */
function reachable(r: ParityRequest): boolean {
  return r.ip === undefined || r.ip.startsWith('127.');
}

async function serve(c: ParityCase) {
  const options = fromIstio(c.yaml, contextOf(c), c.options);
  const seen: string[] = [];
  const server = createMtlsServer({ identity: ca.identity('/ns/foo/sa/httpbin'), ...options }, (req, res) => {
    seen.push(req.url ?? '');
    res.end('ok');
  });
  const { port } = await listen(server);
  return { port, seen, mode: options.mode };
}

describe('the parity sample through real servers', () => {
  it('has 10 cases, each run end to end', () => {
    expect(sample).toHaveLength(10);
  });

  describe.each(sample.map((c) => [`${c.id} ${c.name}`, c] as const))('%s', (_name, c) => {
    if (c.mode !== undefined) {
      it(`serves as ${c.mode}: mTLS answered, plaintext ${c.mode === 'STRICT' ? 'reset' : 'answered'}`, async () => {
        const { port, seen, mode } = await serve(c);
        expect(mode).toBe(c.mode);
        const mtls = await send(port, { peer: 'ns/foo/sa/sleep', want: 'allow' });
        expect(mtls.status).toBe(200);
        if (c.mode === 'STRICT') {
          await expect(plainRequest(port, '/')).rejects.toThrow(/ECONNRESET|socket hang up/);
          expect(seen).toEqual(['/']);
        } else {
          expect((await plainRequest(port, '/')).status).toBe(200);
          expect(seen).toEqual(['/', '/']);
        }
      });
    }
    for (const [i, r] of (c.requests ?? []).entries()) {
      if (!reachable(r)) continue;
      it(`request ${i + 1}: ${r.method ?? 'GET'} ${r.path ?? '/'} from ${r.peer ?? 'a plaintext peer'} → ${statusOf(r)}`, async () => {
        const { port, seen } = await serve(c);
        const res = await send(port, r);
        expect(res.status, res.body).toBe(statusOf(r));
        // Only an allowed request reaches the handler.
        expect(seen).toHaveLength(r.want === 'allow' ? 1 : 0);
        if (r.want === 'deny' && r.reason !== undefined) expect(JSON.parse(res.body).reason).toBe(r.reason);
      });
    }
  });
});
