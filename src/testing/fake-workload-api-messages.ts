import type {
  ResponseOf,
  WorkloadApiMethod,
  X509BundlesResponseMessage,
  X509SvidMessage,
  X509SvidResponseMessage,
} from '../identity/workload-api-proto.js';
import type { X509Bundle } from '../x509/bundle.js';
import type { X509Svid } from '../x509/svid.js';
import type { BadSvidKind } from './bad-svid-kinds.js';

/**
 * Every kind of malformed message {@link FakeWorkloadApi.sendMalformed} can send, with the
 * stream it goes to (`FetchX509SVID`, `FetchX509Bundles` or both) and what is wrong with it. A
 * client must discard each one whole and keep its last good identity.
 *
 * @example
 * ```ts
 * import { malformedResponseKinds } from 'sidecarless/testing';
 * for (const [kind, { stream, description }] of Object.entries(malformedResponseKinds)) {
 *   console.log(kind, stream, description);
 * }
 * ```
 */
export const malformedResponseKinds = Object.freeze({
  'not-protobuf': { stream: 'both', description: 'bytes that do not decode as a protobuf message' },
  'no-svids': { stream: 'FetchX509SVID', description: 'an X509SVIDResponse with an empty svids list' },
  'missing-spiffe-id': { stream: 'FetchX509SVID', description: 'an SVID without spiffe_id' },
  'missing-certificate': { stream: 'FetchX509SVID', description: 'an SVID without x509_svid' },
  'missing-key': { stream: 'FetchX509SVID', description: 'an SVID without x509_svid_key' },
  'missing-bundle': { stream: 'FetchX509SVID', description: 'an SVID without its bundle' },
  'id-mismatch': {
    stream: 'FetchX509SVID',
    description: "spiffe_id names another workload than the certificate's URI SAN",
  },
  'key-mismatch': { stream: 'FetchX509SVID', description: 'a new certificate with the old private key' },
  'garbage-certificate': { stream: 'FetchX509SVID', description: 'x509_svid bytes that are no certificate' },
  'garbage-key': { stream: 'FetchX509SVID', description: 'x509_svid_key bytes that are no private key' },
  'pem-certificate': { stream: 'FetchX509SVID', description: 'x509_svid as PEM text instead of DER' },
  'encrypted-key': { stream: 'FetchX509SVID', description: 'x509_svid_key as encrypted PKCS#8' },
  'expired-svid': { stream: 'FetchX509SVID', description: 'an SVID whose certificate has expired' },
  'leaf-is-ca': { stream: 'FetchX509SVID', description: 'an SVID whose leaf is a CA certificate' },
  'untrusted-chain': {
    stream: 'FetchX509SVID',
    description: 'an SVID signed by another CA of the same trust domain (not in the bundle)',
  },
  'second-svid-invalid': {
    stream: 'FetchX509SVID',
    description: 'a good default SVID followed by an SVID without its key',
  },
  'federated-own-trust-domain': {
    stream: 'FetchX509SVID',
    description: "a federated bundle for the workload's own trust domain",
  },
  'federated-bad-key': {
    stream: 'FetchX509SVID',
    description: 'a federated bundle keyed by a workload ID, not a trust domain ID',
  },
  'federated-garbage-bundle': {
    stream: 'FetchX509SVID',
    description: 'a federated bundle whose bytes are no certificates',
  },
  'no-bundles': { stream: 'FetchX509Bundles', description: 'an X509BundlesResponse with no bundle' },
  'bundles-bad-key': {
    stream: 'FetchX509Bundles',
    description: 'a bundle keyed by a trust domain name without spiffe://',
  },
  'bundles-garbage': { stream: 'FetchX509Bundles', description: 'a bundle whose bytes are no certificates' },
} as const);

/**
 * A kind of malformed message (see {@link malformedResponseKinds}).
 * @example
 * ```ts
 * import type { MalformedResponseKind } from 'sidecarless/testing';
 * const kind: MalformedResponseKind = 'id-mismatch';
 * ```
 */
export type MalformedResponseKind = keyof typeof malformedResponseKinds;

/** What the fake serves, as the builder needs it. */
export interface FakeState {
  readonly svids: readonly X509Svid[];
  readonly bundle: X509Bundle;
  readonly federated: Readonly<Record<string, Buffer>>;
  /** A fresh SVID for a path, under the fake's CA. */
  issue(path: string): X509Svid;
  /** A chain that breaks one rule, signed by the fake's CA (or a rogue one). */
  bad(
    kind: BadSvidKind,
    path: string,
  ): { certificates: readonly { raw: Buffer }[]; privateKey: X509Svid['privateKey'] };
}

/** A bundle's authorities as concatenated DER, the Workload API's encoding. */
export function derOf(bundle: X509Bundle): Buffer {
  return Buffer.concat(bundle.authorities.map((c) => c.raw));
}

/** The wire form of one SVID. */
export function svidEntry(svid: X509Svid, bundle: X509Bundle): X509SvidMessage {
  return {
    spiffe_id: svid.id.toString(),
    x509_svid: Buffer.concat(svid.certChainDer()),
    x509_svid_key: svid.privateKey.export({ format: 'der', type: 'pkcs8' }),
    bundle: derOf(bundle),
    hint: svid.hint ?? '',
  };
}

/** The well-formed message of a method: the full state, as an agent sends it. */
export function goodResponse(method: WorkloadApiMethod, state: FakeState): ResponseOf[WorkloadApiMethod] {
  if (method === 'FetchX509SVID') {
    return {
      svids: state.svids.map((svid) => svidEntry(svid, state.bundle)),
      crl: [],
      federated_bundles: state.federated,
    };
  }
  const own = `spiffe://${state.bundle.trustDomain.name}`;
  return { crl: [], bundles: { [own]: derOf(state.bundle), ...state.federated } };
}

// A DER SEQUENCE { INTEGER 1 }: well-formed ASN.1, but neither a certificate nor a key.
const GARBAGE = Buffer.from('3003020101', 'hex');
// A length-delimited field 1 that claims 5 bytes and has 3: no protobuf decoder accepts it.
export const NOT_PROTOBUF = Buffer.from('0a05ffffff', 'hex');

/** Builds the malformed X509SVIDResponse of a kind. */
export function malformedSvidResponse(
  kind: MalformedResponseKind,
  state: FakeState,
): X509SvidResponseMessage | Buffer {
  const first = state.svids[0] as X509Svid;
  const good = svidEntry(first, state.bundle);
  const td = first.id.trustDomain.name;
  const path = first.id.path;
  const response = (svids: X509SvidMessage[], federated = state.federated): X509SvidResponseMessage => ({
    svids,
    crl: [],
    federated_bundles: federated,
  });
  const fromBad = (badKind: BadSvidKind): X509SvidMessage => {
    const bad = state.bad(badKind, path);
    return {
      ...good,
      x509_svid: Buffer.concat(bad.certificates.map((c) => c.raw)),
      x509_svid_key: bad.privateKey.export({ format: 'der', type: 'pkcs8' }),
    };
  };
  switch (kind) {
    case 'not-protobuf':
      return NOT_PROTOBUF;
    case 'no-svids':
      return response([]);
    case 'missing-spiffe-id':
      return response([{ ...good, spiffe_id: '' }]);
    case 'missing-certificate':
      return response([{ ...good, x509_svid: Buffer.alloc(0) }]);
    case 'missing-key':
      return response([{ ...good, x509_svid_key: Buffer.alloc(0) }]);
    case 'missing-bundle':
      return response([{ ...good, bundle: Buffer.alloc(0) }]);
    case 'id-mismatch':
      return response([{ ...good, spiffe_id: `spiffe://${td}/ns/other/sa/impostor` }]);
    case 'key-mismatch':
      return response([{ ...good, x509_svid: Buffer.concat(state.issue(path).certChainDer()) }]);
    case 'garbage-certificate':
      return response([{ ...good, x509_svid: GARBAGE }]);
    case 'garbage-key':
      return response([{ ...good, x509_svid_key: GARBAGE }]);
    case 'pem-certificate':
      return response([{ ...good, x509_svid: Buffer.from(first.certChainPem()) }]);
    case 'encrypted-key':
      return response([
        {
          ...good,
          x509_svid_key: first.privateKey.export({
            format: 'der',
            type: 'pkcs8',
            cipher: 'aes-256-cbc',
            passphrase: 'sidecarless',
          }),
        },
      ]);
    case 'expired-svid':
      return response([fromBad('expired')]);
    case 'leaf-is-ca':
      return response([fromBad('leaf-is-ca')]);
    case 'untrusted-chain':
      return response([fromBad('wrong-root')]);
    case 'second-svid-invalid':
      return response([
        good,
        { ...svidEntry(state.issue(`${path}-second`), state.bundle), x509_svid_key: Buffer.alloc(0) },
      ]);
    case 'federated-own-trust-domain':
      return response([good], { ...state.federated, [`spiffe://${td}`]: derOf(state.bundle) });
    case 'federated-bad-key':
      return response([good], { ...state.federated, 'spiffe://partner.example/ns/x': derOf(state.bundle) });
    case 'federated-garbage-bundle':
      return response([good], { ...state.federated, 'spiffe://partner.example': GARBAGE });
    default:
      throw new Error(`${kind} is not a kind for FetchX509SVID`);
  }
}

/** Builds the malformed X509BundlesResponse of a kind. */
export function malformedBundlesResponse(
  kind: MalformedResponseKind,
  state: FakeState,
): X509BundlesResponseMessage | Buffer {
  const td = state.bundle.trustDomain.name;
  switch (kind) {
    case 'not-protobuf':
      return NOT_PROTOBUF;
    case 'no-bundles':
      return { crl: [], bundles: {} };
    case 'bundles-bad-key':
      return { crl: [], bundles: { [td]: derOf(state.bundle) } };
    case 'bundles-garbage':
      return { crl: [], bundles: { [`spiffe://${td}`]: GARBAGE } };
    default:
      throw new Error(`${kind} is not a kind for FetchX509Bundles`);
  }
}
