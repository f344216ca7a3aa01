// Mistakes newcomers make in authorization keys get a hint instead of a map that denies
// everything: router parameters and pattern syntax are refused; a ":" inside a segment is legal.
import { describe, expect, it } from 'vitest';
import { authorize } from '../../src/authz/authorize.js';
import { createAuthorizationPolicy } from '../../src/authz/policy.js';
import { createLocalCa, X509Svid } from '../../src/index.js';
import { fakePeer } from '../../src/testing/index.js';
import { expectCode } from '../helpers/expect-code.js';

const ui = 'spiffe://cluster.local/ns/demo/sa/app-ui';

describe('authorization keys: hints', () => {
  it.each([
    ['GET /orders/:id', /":id" looks like a router parameter.*"\/orders\/\*"/],
    ['/users/:userId/orders', /":userId" looks like a router parameter.*"\/users\/\*"/],
    ['/:tenant', /":tenant" looks like a router parameter.*"\/\*"/],
    ['/files/[id]', /"\[" cannot appear unencoded/],
    ['/items/{id}', /"\{" cannot appear unencoded/],
    ['/a|b', /"\|" cannot appear unencoded/],
    ['/^admin', /"\^" cannot appear unencoded/],
    ['/a\\b', /a backslash cannot appear unencoded/],
  ])('refuses %s, with a hint', (key, hint) => {
    const err = expectCode(
      () => createAuthorizationPolicy({ authorize: { [key]: ui } }),
      'ERR_POLICY_INVALID',
    );
    expect(err.message).toMatch(hint);
    expect(err.detail.field).toBe(key);
  });

  it.each(['POST /v1/things:batchGet', '/a:b/c', '/orders/*', '/x%5By%5D'])(
    'keeps %s as a literal key',
    (key) => {
      const policy = createAuthorizationPolicy({ authorize: { [key]: ui } });
      const path = key.replace(/^[A-Z]+ /, '').replace('/*', '/7');
      const method = key.startsWith('POST ') ? 'POST' : 'GET';
      expect(authorize(policy, fakePeer(ui), { method, path }).allowed).toBe(true);
    },
  );
});

describe('a file path where PEM is expected', () => {
  it.each([['/etc/certs/cert-chain.pem'], ['./certs/svid.crt'], ['C:\\certs\\svid.pem'], ['svid.pem']])(
    '%s gets the hint, in certificates and keys',
    (path) => {
      const cert = expectCode(() => X509Svid.parse(path, path), 'ERR_PEM_INVALID');
      expect(cert.message).toMatch(
        /this looks like a file path: read the file \(fs\.readFileSync\) or use fileIdentity\(\)/,
      );
      expect(cert.message).not.toContain(path);
      const ca = createLocalCa({ trustDomain: 'td' });
      const key = expectCode(() => X509Svid.parse(ca.issue('/x').certChainPem(), path), 'ERR_KEY_INVALID');
      expect(key.message).toMatch(/this looks like a file path/);
    },
  );

  it('control: text that is neither PEM nor a path gets no hint', () => {
    expect(expectCode(() => X509Svid.parse('hello world', 'x'), 'ERR_PEM_INVALID').message).not.toMatch(
      /file path/,
    );
  });
});
