// The labs' YAML end to end (the OpenShift Service Mesh labs' files: the v1alpha1 Policy "default" with STRICT peers
// and the DestinationRule for *.microservices-demo.svc.cluster.local with ISTIO_MUTUAL): a STRICT
// server on port 8080, an mTLS client fetching /shareditems by the service's name, and the lab's
// rogue plaintext curl reset. Names resolve to a loopback address through a dns.lookup test hook
// (no /etc/hosts); each run takes its own 127.x.y.z so port 8080 is free.
import dns from 'node:dns';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { fetch } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLocalCa, createMtlsDispatcher, createMtlsServer, getPeer } from '../../src/index.js';
import { fromIstio, istioDestinations, resolveMode } from '../../src/istio/index.js';
import { onCleanup, run } from '../helpers/server.js';

const LAB_YAML = `apiVersion: authentication.istio.io/v1alpha1
kind: Policy
metadata:
  name: "default"
  namespace: "microservices-demo"
spec:
  peers:
  - mtls:
      mode: STRICT
---
apiVersion: "networking.istio.io/v1alpha3"
kind: "DestinationRule"
metadata:
  name: "destinationrule-mtls-istio-mutual"
  namespace: "microservices-demo"
spec:
  host: "*.microservices-demo.svc.cluster.local"
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
`;
const NS = 'microservices-demo';
const FQDN = `boards.${NS}.svc.cluster.local`;
const ca = createLocalCa({ trustDomain: 'cluster.local' });

afterEach(() => {
  vi.restoreAllMocks();
});

/** Listens on 8080 of a random 127.x.y.z (bounded tries), so parallel runs do not collide. */
async function listen8080(server: Server): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const address = `127.${10 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
    try {
      server.listen(8080, address);
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
      onCleanup(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      );
      return address;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no free 127.x.y.z:8080 after 20 tries');
}

/** The test hook: these names resolve to the server's loopback address. */
function resolveNames(names: readonly string[], address: string): void {
  const lookup = dns.lookup;
  vi.spyOn(dns, 'lookup').mockImplementation(((host: string, options: unknown, callback: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean };
    if (!names.includes(host)) return (lookup as (...a: unknown[]) => void)(host, options, callback);
    if (opts.all) cb(null, [{ address, family: 4 }]);
    else cb(null, address, 4);
  }) as typeof dns.lookup);
}

describe('the labs YAML, end to end', () => {
  it('yields a STRICT server and an mTLS client: fetch of /shareditems by name succeeds, a plaintext curl is reset', async () => {
    const context = { namespace: NS, labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' };
    expect(resolveMode(LAB_YAML, context)).toMatchObject({
      mode: 'STRICT',
      decidedBy: `Policy/${NS}/default`,
    });
    const seen: string[] = [];
    const server = createMtlsServer(
      { identity: ca.identity(`/ns/${NS}/sa/boards`), ...fromIstio(LAB_YAML, context) },
      (req, res) => {
        seen.push(getPeer(req).id?.toString() ?? 'none');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify([{ id: 'MNCkr3mK', raw: 'something goes here' }]));
      },
    );
    const address = await listen8080(server);
    resolveNames(['boards', FQDN], address);

    const dispatcher = createMtlsDispatcher({
      identity: ca.identity(`/ns/${NS}/sa/app-ui`),
      destinations: istioDestinations(LAB_YAML, { namespace: NS, trustDomain: 'cluster.local' }),
    });
    onCleanup(() => dispatcher.destroy());
    // As the lab's app-ui calls it: the short name, expanded through the pod's search domains.
    const res = await fetch('http://boards:8080/shareditems', { dispatcher });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ id: 'MNCkr3mK', raw: 'something goes here' }]);
    const full = await fetch(`http://${FQDN}:8080/shareditems`, { dispatcher });
    expect(full.status).toBe(200);
    await full.arrayBuffer();
    expect(seen).toEqual([
      `spiffe://cluster.local/ns/${NS}/sa/app-ui`,
      `spiffe://cluster.local/ns/${NS}/sa/app-ui`,
    ]);

    // The lab's rogue pod: `curl boards:8080/shareditems` in plaintext, "Connection reset by peer".
    const curl = await run('curl', [
      '-sS',
      '--max-time',
      '5',
      '--resolve',
      `boards:8080:${address}`,
      'http://boards:8080/shareditems',
    ]);
    expect(curl.code, curl.stderr).toBe(56);
    expect(curl.stderr).toMatch(/reset by peer/i);
    expect(seen).toHaveLength(2);
  });

  it('a control: without the DestinationRule the client does not send mTLS to a STRICT server', async () => {
    const context = { namespace: NS, labels: { app: 'boards' }, port: 8080, trustDomain: 'cluster.local' };
    const server = createMtlsServer(
      { identity: ca.identity(`/ns/${NS}/sa/boards`), ...fromIstio(LAB_YAML, context) },
      (_req, res) => res.end('[]'),
    );
    const address = await listen8080(server);
    resolveNames([FQDN], address);
    // The rule forced plaintext for this host: the STRICT server resets it.
    const plain = `apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: { name: off, namespace: ${NS} }\nspec: { host: "*.${NS}.svc.cluster.local", trafficPolicy: { tls: { mode: DISABLE } } }\n`;
    const dispatcher = createMtlsDispatcher({
      identity: ca.identity(`/ns/${NS}/sa/app-ui`),
      destinations: istioDestinations(plain, { namespace: NS, trustDomain: 'cluster.local' }),
    });
    onCleanup(() => dispatcher.destroy());
    await expect(fetch(`http://${FQDN}:8080/shareditems`, { dispatcher })).rejects.toThrow();
  });
});
