// statusHandler() over real sockets: a PERMISSIVE server with mTLS and plaintext callers, a
// dispatcher, an identity source; the admin port answered as JSON and HTML, with its headers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { STATUS_PAGE_CSP, type StatusReport, statusHandler } from '../../src/index.js';
import { escapeHtml, isLoopback, renderStatusPage } from '../../src/observe/status-handler.js';
import { shownMessage, withoutQueries } from '../../src/observe/status-report.js';
import { createTestCa } from '../../src/testing/index.js';
import { onCleanup } from '../helpers/server.js';
import { BOARDS, HOSTILE_PATH, startStatusWorld, TITLE_PATH, UI } from '../helpers/status-world.js';

const ca = createTestCa();
afterAll(() => ca.close());

function get(url: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET') {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const req = http.request(url, { headers, method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('statusHandler()', () => {
  it('serves the report as JSON for ?format=json and for Accept: application/json', async () => {
    const world = await startStatusWorld(ca);
    const byQuery = await get(`${world.adminUrl}?format=json`);
    expect(byQuery.status).toBe(200);
    expect(byQuery.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(byQuery.headers['x-content-type-options']).toBe('nosniff');
    const report = JSON.parse(byQuery.body) as StatusReport;
    const byAccept = await get(world.adminUrl, { accept: 'application/json' });
    expect(JSON.parse(byAccept.body).version).toBe(1);

    expect(report.version).toBe(1);
    const [server] = report.servers;
    expect(server).toMatchObject({ address: `127.0.0.1:${world.port}`, mode: 'PERMISSIVE', id: BOARDS });
    expect(server?.rules?.authorize.map((r) => r.key).sort()).toEqual(['/health', '/items']);
    const mtls = server?.edges.find((e) => e.source === UI);
    expect(mtls).toMatchObject({ requests: 3, mtlsRequests: 3, refusals: 1, tlsVersion: 'TLSv1.3' });
    expect(mtls?.lastRefusal?.message).toContain(TITLE_PATH);
    const plain = server?.edges.find((e) => e.source === 'unauthenticated');
    expect(plain).toMatchObject({ mtlsRequests: 0, refusals: 1, tlsVersion: null });
    // The refusal names the path, without its query string.
    expect(plain?.lastRefusal?.reason).toBe('ERR_NOT_AUTHORIZED');
    expect(JSON.stringify(plain?.lastRefusal)).not.toContain('secret-query');

    const client = report.clients[0];
    expect(client).toMatchObject({ name: 'ui-dispatcher', id: UI });
    expect(client?.edges[0]).toMatchObject({ destination: `127.0.0.1:${world.port}`, peer: BOARDS });

    const source = report.sources[0];
    expect(source?.name).toBe('boards-identity');
    expect(source?.svids[0]?.name).toBe(BOARDS);
    expect(source?.bundles[0]?.trustDomain).toBe('cluster.local');
    expect(source?.bundles[0]?.authorities.length).toBeGreaterThan(0);
    expect(source?.lastRotation).not.toBeNull();
    expect(source?.lastError).toBeNull();
  });

  it('serves an HTML page with locks, escaped text and a script-free CSP', async () => {
    const world = await startStatusWorld(ca);
    const page = await get(world.adminUrl, { accept: 'text/html,application/json;q=0.9' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(STATUS_PAGE_CSP);
    expect(STATUS_PAGE_CSP).toMatch(/default-src 'none'/);
    expect(STATUS_PAGE_CSP).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(STATUS_PAGE_CSP).not.toMatch(/unsafe|script-src 'self'/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('data-lock="closed"');
    expect(page.body).toContain('data-lock="open"');
    expect(page.body).not.toContain('<img');
    expect(page.body).not.toContain('<script');
    expect(page.body).toContain(escapeHtml(HOSTILE_PATH));
    expect(page.body).toContain(escapeHtml(TITLE_PATH));
    expect(page.body).not.toContain('secret-query');
    const head = await get(world.adminUrl, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const post = await get(world.adminUrl, {}, 'POST');
    expect(post.status).toBe(405);
  });

  it('answers loopback callers only, unless behindAuthorization', async () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', '::ffff:10.0.0.1', '::2', '128.0.0.1', undefined].some(isLoopback)).toBe(false);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
    if (external === undefined) {
      console.warn('skipped the 403 over a real socket: this machine has no non-loopback IPv4 address');
      return;
    }
    for (const behindAuthorization of [false, true]) {
      const handler = statusHandler({ behindAuthorization });
      onCleanup(() => handler.close());
      const admin = http.createServer(handler);
      admin.listen(0, external);
      await new Promise((resolve) => admin.once('listening', resolve));
      onCleanup(() => new Promise((resolve) => admin.close(resolve)));
      const { port } = admin.address() as AddressInfo;
      const res = await get(`http://${external}:${port}/?format=json`);
      expect(res.status).toBe(behindAuthorization ? 200 : 403);
    }
  });

  it('escapes every string it renders and drops query strings', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
    expect(withoutQueries('path "/a/b?token=1" denied; /c#frag')).toBe('path "/a/b" denied; /c');
    expect(shownMessage('GET /%3Cb%3E%0A?q=%3C')).toBe('GET /<b>%0A');
    const hostile = '<script>document.title="pwned"</script>';
    const page = renderStatusPage({
      version: 1,
      generatedAt: new Date(0),
      servers: [],
      clients: [{ name: hostile, id: hostile, notAfter: null, edges: [] }],
      sources: [],
    });
    expect(page).not.toContain('<script>');
    expect(page).toContain('&lt;script&gt;');
  });

  it('refuses what it cannot describe', () => {
    expect(() => statusHandler({ servers: [{} as never] })).toThrow(/servers/);
    expect(() => statusHandler({ nope: 1 } as never)).toThrow(/nope/);
    expect(() => statusHandler({ behindAuthorization: 'yes' as never })).toThrow(/behindAuthorization/);
  });
});
