// Servers that are not Node: nginx and `openssl s_server`, both requiring a client certificate.
// They must accept the dispatcher's SVID, and be authenticated by their own.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import type { IdentitySource } from '../../src/identity/source.js';
import { isSidecarlessError } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { fixedIdentity } from '../helpers/client-identity.js';
import { pemOf } from '../helpers/client-servers.js';
import { skipWithout } from '../helpers/programs.js';
import { onCleanup } from '../helpers/server.js';

const ca = createTestCa({ intermediate: true });
const client = ca.identity('/ns/demo/sa/app-ui');
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const dir = mkdtempSync(join(tmpdir(), 'sidecarless-peers-'));
const serverSvid = ca.issue('/ns/demo/sa/boards');
const server = pemOf(serverSvid);
writeFileSync(join(dir, 'cert.pem'), server.cert);
// `openssl s_server -cert` sends the first certificate of its file only: intermediates go apart.
writeFileSync(join(dir, 'chain.pem'), serverSvid.intermediates.map((c) => c.toString()).join(''));
writeFileSync(join(dir, 'key.pem'), server.key);
writeFileSync(join(dir, 'ca.pem'), ca.bundle().toPem());
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await ca.close();
});

async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Starts a process and waits until `port` accepts connections; kills it after the test. */
async function start(
  command: string,
  args: string[],
  port: number,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${command} did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, output: () => output };
}

/** `openssl s_server` with the server's SVID, requiring a client certificate from our CA. */
function sServerArgs(port: number, ...extra: string[]): string[] {
  return [
    's_server',
    ...extra,
    '-accept',
    `127.0.0.1:${port}`,
    '-cert',
    join(dir, 'cert.pem'),
    '-key',
    join(dir, 'key.pem'),
    '-cert_chain',
    join(dir, 'chain.pem'),
    '-CAfile',
    join(dir, 'ca.pem'),
    '-Verify',
    '3',
    '-verify_return_error',
    '-www',
  ];
}

function dispatcherFor(port: number) {
  const dispatcher = createMtlsDispatcher({
    identity: client,
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
  });
  onCleanup(() => dispatcher.destroy());
  return dispatcher;
}

describe('non-Node servers requiring a client certificate', () => {
  it.skipIf(skipWithout('nginx'))(
    'nginx with ssl_verify_client on accepts the SVID (skipped without the nginx binary)',
    async () => {
      const port = await freePort();
      const prefix = join(dir, 'nginx');
      execFileSync('mkdir', ['-p', join(prefix, 'logs'), join(prefix, 'tmp')]);
      writeFileSync(
        join(prefix, 'nginx.conf'),
        `worker_processes 1;
error_log ${prefix}/logs/error.log;
events { worker_connections 64; }
http {
  access_log ${prefix}/logs/access.log;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ssl_client_certificate ${dir}/ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / { return 200 "verify=$ssl_client_verify serial=$ssl_client_serial"; }
  }
}
`,
      );
      await start(
        'nginx',
        [
          '-p',
          prefix,
          '-c',
          join(prefix, 'nginx.conf'),
          '-g',
          `daemon off; master_process off; pid ${prefix}/nginx.pid;`,
        ],
        port,
      );
      const dispatcher = dispatcherFor(port);
      const res = await undiciFetch(`http://127.0.0.1:${port}/shareditems`, { dispatcher });
      expect(res.status).toBe(200);
      expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
      // nginx verified the client certificate, and it was the SVID of the identity.
      expect(await res.text()).toBe(`verify=SUCCESS serial=${client.current().svid.leaf.serialNumber}`);
      expect(readFileSync(join(prefix, 'logs', 'access.log'), 'utf8')).toContain('GET /shareditems');
    },
  );

  it.skipIf(skipWithout('openssl'))(
    'openssl s_server -Verify accepts the SVID (skipped without the openssl binary)',
    async () => {
      const port = await freePort();
      await start('openssl', sServerArgs(port), port);
      const dispatcher = dispatcherFor(port);
      const res = await undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher });
      expect(res.status).toBe(200);
      expect(res.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
      // The status page shows the client certificate the server verified.
      const page = await res.text();
      expect(page).toContain('Client certificate');
      expect(page).toContain('URI:spiffe://cluster.local/ns/demo/sa/app-ui');
    },
  );

  // OpenSSL checks the client certificate in its handshake and sends an alert: under TLS 1.2 it
  // arrives before our handshake ends, under TLS 1.3 after it. Either way the caller is told.
  it.skipIf(skipWithout('openssl')).each(['-tls1_3', '-tls1_2'])(
    'openssl s_server -Verify %s refusing an untrusted SVID: ERR_REFUSED_BY_SERVER naming this workload',
    async (version) => {
      const port = await freePort();
      const other = createTestCa({ intermediate: true });
      onCleanup(() => other.close());
      await start('openssl', sServerArgs(port, version), port);
      const outcomeOf = async (identity: IdentitySource) => {
        const dispatcher = createMtlsDispatcher({
          identity,
          destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS } },
        });
        onCleanup(() => dispatcher.destroy());
        return undiciFetch(`http://127.0.0.1:${port}/`, { dispatcher }).then(
          (res) => res.status,
          (e: { cause?: unknown }) => e.cause,
        );
      };
      // The server's chain is trusted by the client; the client's chain is another CA's.
      const cause = await outcomeOf(fixedIdentity(other.issue('/ns/demo/sa/app-ui'), ca.bundles()));
      expect(isSidecarlessError(cause, 'ERR_REFUSED_BY_SERVER'), String(cause)).toBe(true);
      expect((cause as Error).message).toContain('the server sent the TLS alert unknown_ca');
      expect((cause as Error).message).toContain('spiffe://cluster.local/ns/demo/sa/app-ui');
      expect((cause as { cause?: { code?: string } }).cause?.code).toBe('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
      // Control: the same server, our own SVID.
      expect(await outcomeOf(client)).toBe(200);
    },
  );
});
