// Seeing mTLS: the lab's boards service on two ports (STRICT for app-ui, PERMISSIVE for a caller
// still migrating), app-ui calling it through fetch, and statusHandler() on a loopback admin port,
// which `sidecarless describe` reads and a browser shows with its locks.
//
//   npm run build && node examples/status-page.mjs [--cert-dir DIR] [--port 8443] [--legacy-port 8080] [--admin-port 15000]
//
// Then, from another terminal:
//   sidecarless describe http://127.0.0.1:15000/
//   sidecarless check 127.0.0.1:8443 --cert-dir DIR --path /shareditems   (DIR: app-ui's SVID files)
//   chromium http://127.0.0.1:15000/
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLocalCa, createMtlsDispatcher, createMtlsServer, statusHandler } from 'sidecarless';

const TD = 'cluster.local';
const BOARDS = `spiffe://${TD}/ns/demo/sa/boards`;
const UI = `spiffe://${TD}/ns/demo/sa/app-ui`;

/** Writes app-ui's SVID in Istio's file names, for `sidecarless check --cert-dir`. */
function writeCallerFiles(dir, svid, bundle) {
  mkdirSync(dir, { recursive: true });
  const files = {
    'root-cert.pem': [bundle.toPem(), 0o644],
    'key.pem': [svid.privateKey.export({ format: 'pem', type: 'pkcs8' }), 0o600],
    'cert-chain.pem': [svid.certChainPem(), 0o644],
  };
  for (const [name, [data, mode]] of Object.entries(files)) {
    writeFileSync(join(dir, `.${name}.tmp`), data, { mode });
    renameSync(join(dir, `.${name}.tmp`), join(dir, name));
  }
}

function listen(server, port) {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done(server.address().port));
  });
}

/** Starts boards, the admin port and app-ui's traffic; returns the ports and `close()`. */
export async function main({
  ca = createLocalCa({ trustDomain: TD }),
  port = 0,
  legacyPort = 0,
  adminPort = 0,
  certDir,
  log = console.log,
} = {}) {
  const identity = ca.identity('/ns/demo/sa/boards');
  const items = (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify([{ id: 'MNCkr3mK', raw: 'something goes here' }]));
  };
  // STRICT: app-ui may read the shared items; nothing else is allowed.
  const strict = createMtlsServer({ identity, mode: 'STRICT', authorize: { 'GET /shareditems': UI } }, items);
  // PERMISSIVE while a caller migrates: it may still read in plaintext.
  const legacy = createMtlsServer(
    { identity, mode: 'PERMISSIVE', authorize: { 'GET /shareditems': [UI, 'unauthenticated'] } },
    items,
  );
  // The PERMISSIVE listener first: its edges show both locks.
  const servers = [legacy, strict];
  const strictPort = await listen(strict, port);
  const legacyPortBound = await listen(legacy, legacyPort);

  const uiIdentity = ca.identity('/ns/demo/sa/app-ui');
  const dispatcher = createMtlsDispatcher({
    identity: uiIdentity,
    destinations: {
      [`127.0.0.1:${strictPort}`]: { expect: BOARDS },
      [`127.0.0.1:${legacyPortBound}`]: { expect: BOARDS },
    },
  });
  const handler = statusHandler({
    servers,
    clients: { 'app-ui': dispatcher },
    sources: { 'boards-identity': identity, 'app-ui-identity': uiIdentity },
  });
  const admin = http.createServer(handler);
  const adminPortBound = await listen(admin, adminPort);

  // Traffic for the page: app-ui reads over mTLS on both ports and is denied a path; a caller
  // without identity reads in plaintext on the PERMISSIVE port and is reset on the STRICT one.
  const outcomes = [];
  for (const [at, path] of [
    [strictPort, '/shareditems'],
    [strictPort, '/admin'],
    [legacyPortBound, '/shareditems'],
  ]) {
    const res = await fetch(`http://127.0.0.1:${at}${path}`, { dispatcher });
    await res.text();
    outcomes.push(`app-ui GET 127.0.0.1:${at}${path}: ${res.status}`);
  }
  const plain = await fetch(`http://127.0.0.1:${legacyPortBound}/shareditems`);
  await plain.text();
  outcomes.push(`plaintext GET 127.0.0.1:${legacyPortBound}/shareditems: ${plain.status}`);
  const reset = await fetch(`http://127.0.0.1:${strictPort}/shareditems`).then(
    (res) => `${res.status}`,
    (err) => err.cause?.code ?? err.message,
  );
  outcomes.push(`plaintext GET 127.0.0.1:${strictPort}/shareditems: ${reset}`);

  if (certDir !== undefined) writeCallerFiles(certDir, ca.issue('/ns/demo/sa/app-ui'), ca.bundle());
  const adminUrl = `http://127.0.0.1:${adminPortBound}/`;
  for (const line of outcomes) log(line);
  log(`boards: STRICT on 127.0.0.1:${strictPort}, PERMISSIVE on 127.0.0.1:${legacyPortBound}`);
  log(`status page: ${adminUrl} (loopback callers only)`);
  if (certDir !== undefined) log(`app-ui's SVID for sidecarless check --cert-dir: ${certDir}`);

  return {
    port: strictPort,
    legacyPort: legacyPortBound,
    adminUrl,
    outcomes,
    async close() {
      handler.close();
      await dispatcher.close();
      for (const server of [...servers, admin]) {
        server.closeAllConnections?.();
        await new Promise((done) => server.close(done));
      }
      await uiIdentity.close();
      await identity.close();
      await ca.close();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      'cert-dir': { type: 'string' },
      port: { type: 'string', default: '8443' },
      'legacy-port': { type: 'string', default: '8080' },
      'admin-port': { type: 'string', default: '15000' },
    },
  });
  const running = await main({
    port: Number(values.port),
    legacyPort: Number(values['legacy-port']),
    adminPort: Number(values['admin-port']),
    ...(values['cert-dir'] === undefined ? {} : { certDir: resolve(values['cert-dir']) }),
  });
  console.log('Ctrl-C to stop');
  process.once('SIGINT', () => running.close());
  process.once('SIGTERM', () => running.close());
}
