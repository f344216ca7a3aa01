import { once } from 'node:events';
import { Agent, interceptors, request, fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { connectMtls } from '../../src/client/connect-mtls.js';
import { createMtlsInterceptor } from '../../src/client/interceptor.js';
import { PEER_ID_HEADER } from '../../src/client/peer-handler.js';
import { getPeer } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { caOf, httpsServer, pemOf, plainServer, tcpServer } from '../helpers/client-servers.js';
import { expectCodeAsync } from '../helpers/expect-code.js';
import { onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const client = ca.identity('/ns/demo/sa/app-ui');
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
afterAll(() => ca.close());

describe('createMtlsInterceptor', () => {
  it('routes mtls destinations through sidecarless and the rest to the composed dispatcher', async () => {
    const secure = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) });
    const plain = await plainServer();
    let baseConnects = 0;
    const base = new Agent({
      connect: (opts, cb) => {
        baseConnects++;
        // The composed dispatcher's own connector: plain TCP for http://.
        import('node:net').then(({ default: net }) => {
          const s = net.connect(Number(opts.port), opts.hostname, () => cb(null, s));
          s.once('error', (e) => cb(e, null));
        });
      },
    });
    const mtls = createMtlsInterceptor({
      identity: client,
      destinations: { [`127.0.0.1:${secure.port}`]: { expect: BOARDS }, '*': { mode: 'plaintext' } },
    });
    const dispatcher = base.compose(interceptors.retry({ maxRetries: 0 }), mtls);
    onCleanup(async () => {
      await mtls.close();
      await base.destroy();
    });

    const a = await undiciFetch(`http://127.0.0.1:${secure.port}/a`, {
      dispatcher,
      method: 'POST',
      body: 'x',
    });
    expect(a.headers.get(PEER_ID_HEADER)).toBe(BOARDS);
    expect(await a.json()).toMatchObject({ body: 'x', clientId: 'spiffe://cluster.local/ns/demo/sa/app-ui' });
    expect(baseConnects).toBe(0);

    const b = await undiciFetch(`http://127.0.0.1:${plain.port}/b`, { dispatcher });
    expect(await b.json()).toMatchObject({ url: '/b' });
    // The plaintext server's claim was removed on the way through.
    expect(b.headers.get(PEER_ID_HEADER)).toBeNull();
    expect(baseConnects).toBe(1);

    const c = await request(`http://127.0.0.1:${plain.port}/c`, { dispatcher });
    expect(c.headers[PEER_ID_HEADER]).toBeUndefined();
    await c.body.text();
  });

  it('a request to no destination fails with ERR_NO_DESTINATION', async () => {
    const mtls = createMtlsInterceptor({
      identity: client,
      destinations: { 'boards:8080': { expect: BOARDS } },
    });
    const dispatcher = new Agent().compose(mtls);
    onCleanup(() => mtls.close());
    const err = await undiciFetch('http://127.0.0.1:1234/', { dispatcher }).then(
      () => expect.fail('succeeded'),
      (e: { cause: unknown }) => e.cause,
    );
    expect(err).toMatchObject({ code: 'ERR_NO_DESTINATION', detail: { value: '127.0.0.1:1234' } });
  });
});

describe('connectMtls', () => {
  it('resolves with an authenticated socket, registered for getPeer', async () => {
    const srv = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) });
    const socket = await connectMtls({ identity: client, host: '127.0.0.1', port: srv.port, expect: BOARDS });
    onCleanup(() => socket.destroy());
    expect(getPeer(socket).id?.toString()).toBe(BOARDS);
    socket.write('GET /raw HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await once(socket, 'end');
    expect(Buffer.concat(chunks).toString()).toContain(
      '"clientId":"spiffe://cluster.local/ns/demo/sa/app-ui"',
    );
  });

  it('rejects a wrong identity, a plaintext server and an abort', async () => {
    const srv = await httpsServer(pemOf(ca.issue('/ns/demo/sa/other')));
    const err = await expectCodeAsync(
      () => connectMtls({ identity: client, host: '127.0.0.1', port: srv.port, expect: BOARDS }),
      'ERR_PEER_ID_MISMATCH',
    );
    expect(err.message).toContain(`127.0.0.1:${srv.port}`);
    const plain = await plainServer();
    await expectCodeAsync(
      () => connectMtls({ identity: client, host: '127.0.0.1', port: plain.port, expect: '*' }),
      'ERR_PEER_NOT_TLS',
    );
    const silent = await tcpServer(() => {});
    const controller = new AbortController();
    const pending = connectMtls({
      identity: client,
      host: '127.0.0.1',
      port: silent.port,
      expect: '*',
      signal: controller.signal,
    });
    controller.abort();
    await expectCodeAsync(() => pending, 'ERR_ABORTED');
    await expectCodeAsync(
      () =>
        connectMtls({ identity: client, host: '127.0.0.1', port: silent.port, expect: '*', timeout: 100 }),
      'ERR_TIMEOUT',
    );
  });

  it('checks its options', async () => {
    await expectCodeAsync(
      async () => connectMtls({ identity: client, host: 'x', port: 0, expect: '*' }),
      'ERR_OPTION_INVALID',
    );
    await expectCodeAsync(
      async () => connectMtls({ identity: client, host: 'x', port: 1, expect: 'unauthenticated' }),
      'ERR_POLICY_INVALID',
    );
    await expectCodeAsync(
      async () => connectMtls({ identity: client, host: 'x', port: 1 } as never),
      'ERR_POLICY_INVALID',
    );
    await expectCodeAsync(
      async () => connectMtls({ identity: client, host: 'a b', port: 1, expect: '*' }),
      'ERR_OPTION_INVALID',
    );
  });
});
