import http from 'node:http';
import https from 'node:https';
import axios from 'axios';
import got from 'got';
import { afterAll, describe, expect, it } from 'vitest';
import { createMtlsAgent, type MtlsHttpsAgent } from '../../src/client/agent.js';
import type { FallbackEvent } from '../../src/client/connect.js';
import { getPeer, isSidecarlessError } from '../../src/index.js';
import { createTestCa } from '../../src/testing/index.js';
import { caOf, httpsServer, pemOf, plainServer } from '../helpers/client-servers.js';
import { useOpensslDir } from '../helpers/openssl.js';
import { onCleanup, record } from '../helpers/server.js';

const ca = createTestCa({ intermediate: true });
const client = ca.identity('/ns/demo/sa/app-ui');
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
const boards = { ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) };
afterAll(() => ca.close());

type Agent = http.Agent;

function agentFor(port: number, protocol: 'https:' | 'http:' = 'https:'): MtlsHttpsAgent {
  const agent = createMtlsAgent({
    identity: client,
    destinations: { [`127.0.0.1:${port}`]: { expect: BOARDS }, '*': { mode: 'plaintext' } },
    protocol,
  } as never) as MtlsHttpsAgent;
  onCleanup(() => agent.close());
  return agent;
}

interface Result {
  readonly status: number;
  readonly body: string;
  readonly res: http.IncomingMessage;
}

function get(url: string, agent: Agent, options: https.RequestOptions = {}, body?: string): Promise<Result> {
  const request = url.startsWith('https:') ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: body === undefined ? 'GET' : 'POST', ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, res }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('createMtlsAgent', () => {
  it('https.request over mTLS; getPeer(res) is the verified server', async () => {
    const srv = await httpsServer(boards);
    const agent = agentFor(srv.port);
    const a = await get(`https://127.0.0.1:${srv.port}/a`, agent, {}, 'payload');
    expect(JSON.parse(a.body)).toMatchObject({
      method: 'POST',
      body: 'payload',
      clientId: 'spiffe://cluster.local/ns/demo/sa/app-ui',
    });
    const peer = getPeer(a.res);
    expect(peer).toMatchObject({ mtls: true, tls: true });
    expect(peer.id?.toString()).toBe(BOARDS);
    const b = await get(`https://127.0.0.1:${srv.port}/b`, agent);
    expect(b.res.socket).toBe(a.res.socket); // kept alive by default
    expect(srv.connections()).toBe(1);
  });

  it('ignores the request’s own TLS options for an mTLS destination', async () => {
    const srv = await httpsServer(boards);
    const agent = agentFor(srv.port);
    const res = await get(`https://127.0.0.1:${srv.port}/a`, agent, {
      ca: 'not a CA',
      rejectUnauthorized: true,
      checkServerIdentity: () => new Error('never called'),
    });
    expect(res.status).toBe(200);
  });

  it('refuses a server with the wrong SPIFFE ID through the request’s error', async () => {
    const srv = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/other')), ca: caOf(ca.bundle()) });
    const agent = agentFor(srv.port);
    const err = await get(`https://127.0.0.1:${srv.port}/a`, agent, {}, 'secret').then(
      () => expect.fail('succeeded'),
      (e: unknown) => e,
    );
    expect(isSidecarlessError(err, 'ERR_PEER_ID_MISMATCH')).toBe(true);
    expect(srv.seen).toEqual([]);
  });

  it('the http: variant sends http:// URLs over mTLS (http.request code unchanged)', async () => {
    const srv = await httpsServer(boards);
    const agent = agentFor(srv.port, 'http:');
    expect(agent).toBeInstanceOf(http.Agent);
    expect(agent).not.toBeInstanceOf(https.Agent);
    const res = await get(`http://127.0.0.1:${srv.port}/plain-url`, agent, {}, 'x');
    expect(JSON.parse(res.body)).toMatchObject({
      url: '/plain-url',
      clientId: 'spiffe://cluster.local/ns/demo/sa/app-ui',
    });
    expect(getPeer(res.res).id?.toString()).toBe(BOARDS);
  });

  it('the http: variant sends plaintext destinations in plaintext, and auto falls back with an event', async () => {
    const srv = await plainServer();
    // Its mTLS key is for another port ("localhost" reaches 127.0.0.1, and a key there covers it).
    const agent = agentFor(srv.port + 1, 'http:');
    const plain = await get(`http://localhost:${srv.port}/p`, agent);
    expect(JSON.parse(plain.body)).toMatchObject({ url: '/p' });
    expect(getPeer(plain.res)).toMatchObject({ mtls: false, tls: false, id: null });

    const auto = createMtlsAgent({
      identity: client,
      protocol: 'http:',
      destinations: { '*': { mode: 'auto', expect: BOARDS } },
    });
    onCleanup(() => auto.close());
    const events = record<FallbackEvent>(auto, 'fallback');
    const res = await get(`http://127.0.0.1:${srv.port}/q`, auto, {}, 'once');
    expect(JSON.parse(res.body)).toMatchObject({ url: '/q', body: 'once' });
    expect(events).toHaveLength(1);
    expect(srv.seen.map((s) => s.url)).toEqual(['/p', '/q']);
  });

  it('works as axios’ httpsAgent and as got’s https agent', async () => {
    const srv = await httpsServer(boards);
    const agent = agentFor(srv.port);
    const a = await axios.post(`https://127.0.0.1:${srv.port}/axios`, 'data', { httpsAgent: agent });
    expect(a.data).toMatchObject({
      url: '/axios',
      body: 'data',
      clientId: 'spiffe://cluster.local/ns/demo/sa/app-ui',
    });
    expect(getPeer(a.request.res).id?.toString()).toBe(BOARDS);
    const g = await got
      .post(`https://127.0.0.1:${srv.port}/got`, { body: 'g', agent: { https: agent } })
      .json();
    expect(g).toMatchObject({ url: '/got', body: 'g', clientId: 'spiffe://cluster.local/ns/demo/sa/app-ui' });
  });

  describe('https:// to a plaintext destination: ordinary TLS with the request’s options', () => {
    const openssl = useOpensslDir();
    openssl.run(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
    );
    const cert = openssl.readText('cert.pem');

    it('verifies the host name against the given CA, and presents no SVID', async () => {
      const srv = await httpsServer(
        { cert, key: openssl.readText('key.pem') },
        { requestCert: true, rejectUnauthorized: false },
      );
      const agent = agentFor(srv.port + 1); // its mTLS key does not match: '*' (plaintext) applies
      const ok = await get(`https://localhost:${srv.port}/ok`, agent, { ca: cert });
      expect(JSON.parse(ok.body)).toMatchObject({ url: '/ok', clientId: null });
      expect(getPeer(ok.res)).toMatchObject({ tls: true, mtls: false, id: null });
      const wrongName = await get(`https://127.0.0.1:${srv.port}/no`, agent, { ca: cert }).then(
        () => expect.fail('succeeded'),
        (e: NodeJS.ErrnoException) => e,
      );
      expect(wrongName.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      const systemRoots = await get(`https://localhost:${srv.port}/no`, agent).then(
        () => expect.fail('succeeded'),
        (e: NodeJS.ErrnoException) => e,
      );
      expect(systemRoots.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(srv.seen.map((s) => s.url)).toEqual(['/ok']);
    });
  });

  it('rejects bad options', () => {
    const destinations = { '*': { expect: '*' } };
    expect(() => createMtlsAgent({ identity: client, destinations, protocol: 'ftp:' as never })).toThrow(
      /protocol/,
    );
    expect(() => createMtlsAgent({ identity: client, destinations, maxSockets: 0 })).toThrow(/maxSockets/);
    expect(() => createMtlsAgent({ identity: client, destinations, keepalive: true } as never)).toThrow(
      /keepalive/,
    );
    expect(() => createMtlsAgent({ identity: client, destinations: { b: {} } })).toThrow(/"b"/);
  });
});
