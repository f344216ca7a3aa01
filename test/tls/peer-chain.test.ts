import { execFile } from 'node:child_process';
import { constants } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { BundleSet, createLocalCa, type X509Svid } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { noMatchCrlPem, tlsMaterialOf } from '../../src/tls/material.js';
import { peerChainOf } from '../../src/tls/peer-chain.js';
import { PeerVerifier } from '../../src/tls/peer-verifier.js';
import { thrownBy } from '../helpers/expect-code.js';

// The platform facts the server's verification rests on (docs/node-tls.md §3, and the no-match CRL in
// src/tls/material.ts). Run on every runtime CI tests: a Node release that changes them fails here.

const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
const partner = createLocalCa({ trustDomain: 'partner.example' });
const serverIdentity = ca.identity('/ns/demo/sa/server', { federatedBundles: [partner.bundle()] });
const dirs: string[] = [];
afterAll(async () => {
  await ca.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function startServer(onSocket: (socket: tls.TLSSocket) => void): Promise<tls.Server> {
  const material = tlsMaterialOf(serverIdentity.current());
  const server = tls.createServer({
    key: material.key,
    cert: material.cert,
    ca: [...material.ca],
    crl: noMatchCrlPem(),
    requestCert: true,
    rejectUnauthorized: false,
    secureOptions: constants.SSL_OP_NO_TICKET,
  });
  server.on('secureConnection', (socket) => {
    onSocket(socket);
    socket.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function keyPem(svid: { privateKey: { export(o: object): string | Buffer } }): string {
  return svid.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

async function present(server: tls.Server, cert: string, key: string): Promise<void> {
  const socket = tls.connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    cert,
    key,
    ca: ca.bundle().toPem(),
    checkServerIdentity: () => undefined,
  });
  socket.on('data', () => {});
  await once(socket, 'close');
}

describe('server side: the whole client chain is exposed and verified in JS', () => {
  it('exposes leaf and intermediate for a client whose SVID is issued by an intermediate', async () => {
    let chainLength = 0;
    let id = '';
    const verifier = new PeerVerifier('client');
    const server = await startServer((socket) => {
      // OpenSSL's own verdict is always a failure: the no-match CRL turns CRL checks on.
      expect(socket.authorized).toBe(false);
      expect(socket.authorizationError).toBe('UNABLE_TO_GET_CRL');
      const chain = peerChainOf(socket);
      chainLength = chain.length;
      id = verifier.verify(chain, serverIdentity.current().bundles).id.toString();
    });
    const client: X509Svid = ca.issue('/ns/demo/sa/client');
    await present(server, client.certChainPem(), keyPem(client));
    server.close();
    // The leaf and the intermediate it presented (Node 20's legacy object adds our root).
    expect(chainLength).toBe(Number(process.versions.node.split('.')[0]) < 24 ? 3 : 2);
    expect(id).toBe('spiffe://cluster.local/ns/demo/sa/client');
  });

  it('verifyPresented: a leaf issued by a bundle authority is read alone where the whole chain is dear', async () => {
    const results: { chain: number; id: string | undefined; error: string | undefined }[] = [];
    const verifier = new PeerVerifier('client');
    const server = await startServer((socket) => {
      const presented = verifier.verifyPresented(socket, serverIdentity.current().bundles);
      results.push({
        chain: presented.chain.length,
        id: presented.result?.id.toString(),
        error: (presented.error as { code?: string } | undefined)?.code,
      });
    });
    // partner.example's root issues leaves itself and is in the server's store, so Node's detailed
    // object would add it (leaf + root); the leaf alone decides the same.
    const rootSigned = partner.issue('/ns/demo/sa/client');
    await present(server, rootSigned.certChainPem(), keyPem(rootSigned));
    const viaIntermediate = ca.issue('/ns/demo/sa/client');
    await present(server, viaIntermediate.certChainPem(), keyPem(viaIntermediate));
    const forged = createTestCa({ trustDomain: 'cluster.local' }).issueBad('foreign-trust-domain-ca');
    await present(server, forged.certChainPem(), forged.privateKeyPem());
    server.close();
    const dear = Number(process.versions.node.split('.')[0]) < 24;
    expect(results[0]).toEqual({
      chain: 1,
      id: 'spiffe://partner.example/ns/demo/sa/client',
      error: undefined,
    });
    // Issued by an intermediate: the leaf alone does not verify, the whole chain is read and does.
    expect(results[1]).toEqual({
      chain: dear ? 3 : 2,
      id: 'spiffe://cluster.local/ns/demo/sa/client',
      error: undefined,
    });
    // Refused: after the leaf alone failed, the whole presented chain decided, with its own reason.
    expect(results[2]).toEqual({ chain: 1, id: undefined, error: 'ERR_SVID_UNTRUSTED' });
  });

  it('refuses a chain from a federated CA that claims our trust domain (a merged pool would accept it)', async () => {
    const test = createTestCa({ trustDomain: 'cluster.local' });
    const forged = test.issueBad('foreign-trust-domain-ca');
    let code = '';
    const verifier = new PeerVerifier('client');
    const bundles = BundleSet.of(
      ca.bundle(),
      ...forged.bundles.bundles().filter((b) => !b.trustDomain.equals('cluster.local')),
    );
    const server = await startServer((socket) => {
      code = thrownBy(() => verifier.verify(peerChainOf(socket), bundles)).code;
    });
    await present(server, forged.certChainPem(), forged.privateKeyPem());
    server.close();
    expect(code).toBe('ERR_SVID_UNTRUSTED');
  });

  it('still advertises the real CA names, so clients that pick their certificate by them send it', async () => {
    const server = await startServer(() => {});
    const dir = mkdtempSync(join(tmpdir(), 'sidecarless-ca-names-'));
    dirs.push(dir);
    const client = ca.issue('/ns/demo/sa/client');
    writeFileSync(join(dir, 'cert.pem'), client.certChainPem());
    writeFileSync(join(dir, 'key.pem'), keyPem(client));
    const output = await new Promise<string>((resolve) => {
      const child = execFile(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${(server.address() as AddressInfo).port}`,
          '-cert',
          join(dir, 'cert.pem'),
          '-key',
          join(dir, 'key.pem'),
        ],
        { timeout: 10_000 },
        (_err, stdout) => resolve(stdout),
      );
      child.stdin?.end();
    });
    server.close();
    const names = output.slice(output.indexOf('Acceptable client certificate CA names'));
    expect(names).toContain('cluster.local root');
    expect(names).toContain('partner.example root');
    expect(names).not.toContain('no CRL issuer');
  });
});
