import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalCa, type Peer, SpiffeId, TrustDomain } from '../../src/index.js';
import { type FakePeerOptions, fakePeer } from '../../src/testing/index.js';
import { thrownBy } from '../helpers/expect-code.js';

const UI = 'spiffe://cluster.local/ns/demo/sa/app-ui';
const ca = createLocalCa({ trustDomain: 'cluster.local', intermediate: true });
afterAll(() => ca.close());

/** The fields every mTLS peer built from an ID has. */
function expectMtls(peer: Peer, id: string): void {
  expect(peer.id).toBeInstanceOf(SpiffeId);
  expect(peer.id?.toString()).toBe(id);
  expect(peer.trustDomain).toBeInstanceOf(TrustDomain);
  expect(peer.trustDomain?.name).toBe(SpiffeId.parse(id).trustDomain.name);
  expect(peer.mtls).toBe(true);
  expect(peer.tls).toBe(true);
  expect(peer.remoteAddress).toBe('127.0.0.1');
  expect(peer.alpn).toBeNull();
  expect(peer.resumed).toBe(false);
}

describe('fakePeer', () => {
  it('builds an mTLS peer from an ID string, without a certificate', () => {
    const before = Date.now();
    const peer = fakePeer(UI);
    expectMtls(peer, UI);
    expect(peer.certificate).toBeNull();
    expect(peer.chain).toEqual([]);
    expect(peer.notAfter).toBeInstanceOf(Date);
    const notAfter = (peer.notAfter as Date).getTime();
    expect(notAfter).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(notAfter).toBeLessThanOrEqual(Date.now() + 3_600_000);
  });

  it('builds an mTLS peer from a SpiffeId, keeping the instance', () => {
    const id = SpiffeId.parse(UI);
    const peer = fakePeer(id);
    expectMtls(peer, UI);
    expect(peer.id).toBe(id);
    expect(fakePeer({ id }).id).toBe(id);
  });

  for (const input of [null, 'unauthenticated', undefined] as const) {
    it(`builds a plaintext peer from ${String(input)}`, () => {
      const peer = input === undefined ? fakePeer() : fakePeer(input);
      expect(peer).toMatchObject({
        id: null,
        trustDomain: null,
        mtls: false,
        tls: false,
        certificate: null,
        notAfter: null,
        remoteAddress: '127.0.0.1',
        alpn: null,
        resumed: false,
      });
      expect(peer.chain).toEqual([]);
      expect(fakePeer({}).tls).toBe(false);
    });
  }

  it('builds a TLS peer without a client certificate from { tls: true }', () => {
    const peer = fakePeer({ tls: true });
    expect(peer).toMatchObject({
      id: null,
      trustDomain: null,
      mtls: false,
      tls: true,
      certificate: null,
      notAfter: null,
    });
    expect(fakePeer({ id: null, tls: true }).tls).toBe(true);
  });

  it('takes the ID, certificate, chain and notAfter of an SVID', () => {
    const svid = ca.issue('/ns/demo/sa/app-ui');
    const peer = fakePeer({ svid });
    expectMtls(peer, UI);
    expect(peer.certificate).toBe(svid.leaf);
    expect(peer.chain).toEqual(svid.certificates);
    expect(peer.chain).toHaveLength(2);
    expect(peer.notAfter?.getTime()).toBe(svid.notAfter.getTime());
    // The same ID alongside is fine.
    expect(fakePeer({ svid, id: UI }).id?.toString()).toBe(UI);
  });

  it('takes the other fields', () => {
    const notAfter = new Date(Date.now() + 5_000);
    const peer = fakePeer({ id: UI, remoteAddress: '10.0.0.7', alpn: 'h2', resumed: true, notAfter });
    expect(peer).toMatchObject({ remoteAddress: '10.0.0.7', alpn: 'h2', resumed: true, notAfter });
    expect(fakePeer({ id: UI, remoteAddress: null, notAfter: null })).toMatchObject({
      remoteAddress: null,
      notAfter: null,
    });
  });

  it('refuses an ID without TLS', () => {
    const err = thrownBy(() => fakePeer({ id: UI, tls: false }), 'ERR_OPTION_INVALID');
    expect(err.detail.field).toBe('tls');
    thrownBy(() => fakePeer({ svid: ca.issue('/x'), tls: false }), 'ERR_OPTION_INVALID');
  });

  it('refuses an invalid ID with ERR_SPIFFE_ID_INVALID', () => {
    for (const id of ['spiffe://Cluster.local/x', 'cluster.local/ns/demo', 'spiffe://td/a/../b', '']) {
      thrownBy(() => fakePeer(id), 'ERR_SPIFFE_ID_INVALID');
      thrownBy(() => fakePeer({ id }), 'ERR_SPIFFE_ID_INVALID');
    }
  });

  it('refuses an unknown option, an SVID that is not one, and an ID that contradicts the SVID', () => {
    const unknown = thrownBy(() => fakePeer({ id: UI, mtls: true } as FakePeerOptions), 'ERR_OPTION_INVALID');
    expect(unknown.detail.field).toBe('mtls');
    expect(unknown.message).toContain('"mtls"');
    expect(thrownBy(() => fakePeer({ svid: { id: UI } as never }), 'ERR_OPTION_INVALID').detail.field).toBe(
      'svid',
    );
    expect(
      thrownBy(() => fakePeer({ svid: ca.issue('/x'), id: UI }), 'ERR_OPTION_INVALID').detail.field,
    ).toBe('id');
    thrownBy(() => fakePeer(42 as never), 'ERR_OPTION_INVALID');
    thrownBy(() => fakePeer([UI] as never), 'ERR_OPTION_INVALID');
  });

  it('is frozen, with a frozen chain', () => {
    const peer = fakePeer({ svid: ca.issue('/x') });
    expect(Object.isFrozen(peer)).toBe(true);
    expect(Object.isFrozen(peer.chain)).toBe(true);
    expect(() => {
      (peer as { mtls: boolean }).mtls = false;
    }).toThrow(TypeError);
    expect(peer.mtls).toBe(true);
  });

  it('inspect() summarises the peer', () => {
    expect(inspect(fakePeer(UI))).toBe(`Peer(mTLS ${UI})`);
    expect(inspect(fakePeer(null))).toBe('Peer(plaintext)');
    expect(inspect(fakePeer({ tls: true }))).toBe('Peer(TLS, no client certificate)');
  });
});
