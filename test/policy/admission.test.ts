// The server's decisions as tables, without sockets: admitConnection, admitPeer, admitRequest.
import { describe, expect, it } from 'vitest';
import { createAuthorizationPolicy } from '../../src/authz/policy.js';
import { SidecarlessError } from '../../src/errors.js';
import {
  admitConnection,
  admitPeer,
  admitRequest,
  type ConnectionFacts,
  type RequestFacts,
} from '../../src/policy/admission.js';
import { fakePeer } from '../../src/testing/index.js';

describe('admitConnection', () => {
  const base: ConnectionFacts = {
    mode: 'STRICT',
    protocol: 'http1',
    sniffed: 'tls',
    hasIdentity: true,
    plaintextPaths: false,
  };
  it.each([
    // mode, protocol, sniffed, identity, plaintextPaths → verdict
    ['STRICT', 'http1', 'tls', true, false, 'tls required'],
    ['STRICT', 'http1', 'tls', false, false, 'ERR_NO_IDENTITY destroy'],
    ['STRICT', 'http1', 'http1', true, false, 'ERR_PLAINTEXT_REFUSED reset'],
    ['STRICT', 'http2', 'h2c', true, false, 'ERR_PLAINTEXT_REFUSED reset'],
    ['STRICT', 'http1', 'http1', true, true, 'plaintext limited'],
    ['STRICT', 'http2', 'h2c', true, true, 'plaintext limited'],
    ['STRICT', 'tls', 'http1', true, false, 'ERR_PLAINTEXT_REFUSED reset'],
    ['PERMISSIVE', 'http1', 'tls', true, false, 'tls optional'],
    ['PERMISSIVE', 'http1', 'tls', false, false, 'ERR_NO_IDENTITY destroy'],
    ['PERMISSIVE', 'http1', 'http1', true, false, 'plaintext'],
    ['PERMISSIVE', 'http1', 'http1', false, false, 'plaintext'],
    ['PERMISSIVE', 'http2', 'h2c', true, false, 'plaintext'],
    ['DISABLE', 'http1', 'tls', true, false, 'ERR_TLS_REFUSED destroy'],
    ['DISABLE', 'http1', 'http1', false, false, 'plaintext'],
  ] as const)(
    '%s %s, sniffed %s, identity %s, plaintextPaths %s: %s',
    (mode, protocol, sniffed, hasIdentity, paths, want) => {
      const v = admitConnection({ ...base, mode, protocol, sniffed, hasIdentity, plaintextPaths: paths });
      const got =
        v.admit === false
          ? `${v.code} ${v.end}`
          : v.admit === 'tls'
            ? `tls ${v.requireCertificate ? 'required' : 'optional'}`
            : v.limited
              ? 'plaintext limited'
              : 'plaintext';
      expect(got).toBe(want);
    },
  );
});

describe('admitPeer', () => {
  const untrusted = new SidecarlessError('ERR_SVID_UNTRUSTED', 'not issued by any authority', {
    peer: 'spiffe://cluster.local/x',
    certificate: 'subject "", serial 01',
  });
  it.each([
    ['STRICT', true, { presented: false }, 'ERR_NO_CLIENT_CERTIFICATE'],
    ['PERMISSIVE', true, { presented: false }, 'tls'],
    ['STRICT', true, { presented: true }, 'mtls'],
    ['PERMISSIVE', true, { presented: true }, 'mtls'],
    ['STRICT', true, { presented: true, error: untrusted }, 'ERR_SVID_UNTRUSTED'],
    // An invalid certificate is never downgraded to "unauthenticated".
    ['PERMISSIVE', true, { presented: true, error: untrusted }, 'ERR_SVID_UNTRUSTED'],
    ['PERMISSIVE', true, { presented: true, error: new Error('odd') }, 'ERR_HANDSHAKE_FAILED'],
    ['STRICT', false, { presented: true }, 'ERR_NO_IDENTITY'],
  ] as const)('%s, identity %s, %o: %s', (mode, hasIdentity, certificate, want) => {
    const v = admitPeer(mode, hasIdentity, certificate);
    expect(v.admit === false ? v.code : v.admit).toBe(want);
    if (v.admit === false && v.code === 'ERR_SVID_UNTRUSTED') {
      expect(v).toMatchObject({
        peer: 'spiffe://cluster.local/x',
        certificate: 'subject "", serial 01',
        end: 'reset',
      });
    }
  });
});

describe('admitRequest', () => {
  const policy = createAuthorizationPolicy({
    authorize: {
      '/healthz': ['*', 'unauthenticated'],
      '/admin/*': 'spiffe://cluster.local/ns/ops/*',
      '*': '*',
    },
  });
  const base: RequestFacts = {
    peer: fakePeer('spiffe://cluster.local/ns/demo/sa/ui'),
    limited: false,
    plaintextPaths: new Set(['/healthz']),
    hasIdentity: true,
    closing: undefined,
    method: 'GET',
    target: '/orders',
    host: null,
    port: 8080,
    sni: null,
    policy,
  };
  it.each([
    ['an allowed request', {}, 'through /orders keep-alive'],
    ['normalised before it is decided', { target: '//orders/./7?x=1' }, 'through /orders/7?x=1 keep-alive'],
    ['denied by the policy', { target: '/ADMIN/users' }, '403 peer_not_allowed'],
    ['a bad target', { target: '/a%2fb' }, '400 bad_request'],
    [
      'a limited plaintext connection, probe path',
      { peer: fakePeer(null), limited: true, target: '/healthz' },
      'through /healthz keep-alive',
    ],
    // Matched exactly as sent: another spelling of the probe path is reset, not normalised into it.
    [
      'a limited plaintext connection, other spelling',
      { peer: fakePeer(null), limited: true, target: '//healthz' },
      'ERR_PLAINTEXT_REFUSED reset',
    ],
    [
      'a limited plaintext connection, other path',
      { peer: fakePeer(null), limited: true, target: '/orders' },
      'ERR_PLAINTEXT_REFUSED reset',
    ],
    ['an encrypted connection after a withdrawal', { hasIdentity: false }, 'ERR_NO_IDENTITY destroy'],
    [
      'a plaintext connection after a withdrawal',
      { peer: fakePeer(null), hasIdentity: false, target: '/healthz' },
      'through /healthz keep-alive',
    ],
    [
      'a connection closing after a trust change',
      { closing: 'ERR_PEER_NO_LONGER_TRUSTED' },
      'ERR_PEER_NO_LONGER_TRUSTED destroy',
    ],
    ['a connection at its maximum age', { closing: 'ERR_CONNECTION_MAX_AGE' }, 'through /orders close'],
  ] as const)('%s: %s', (_name, change, want) => {
    const v = admitRequest({ ...base, ...(change as Partial<RequestFacts>) });
    const got = v.admit
      ? `through ${v.path}${v.query} ${v.keepAlive ? 'keep-alive' : 'close'}`
      : v.end === 'respond'
        ? `${v.status} ${v.reason}`
        : `${v.code} ${v.end}`;
    expect(got).toBe(want);
  });

  it('audit lets a denial through but never a bad request', () => {
    const audit = createAuthorizationPolicy({
      authorize: { '*': 'spiffe://cluster.local/ns/ops/*' },
      mode: 'audit',
    });
    const through = admitRequest({ ...base, policy: audit });
    expect(through.admit && through.decision.verdict).toBe('deny');
    const bad = admitRequest({ ...base, policy: audit, target: '/a/../../b' });
    expect(bad.admit === false && bad.end === 'respond' && bad.status).toBe(400);
  });
});
