import { isSidecarlessError, SidecarlessError } from '../errors.js';
import { quote } from '../internal/show.js';
import type { SpiffeId } from '../spiffe/spiffe-id.js';
import { TrustDomain } from '../spiffe/trust-domain.js';
import { X509Bundle } from '../x509/bundle.js';
import { BundleSet } from '../x509/bundle-set.js';
import { looksLikePem } from '../x509/pem.js';
import { X509Svid } from '../x509/svid.js';
import { validateIdentityUpdate } from './publisher.js';
import type {
  X509BundlesResponseMessage,
  X509SvidMessage,
  X509SvidResponseMessage,
} from './workload-api-proto.js';

// Pure checks of Workload API messages: a message is accepted whole or discarded whole, with an
// error naming the field at fault. Messages name fields and IDs, never the bytes of a key.

function invalid(what: string, field: string, rule: string, cause?: unknown): SidecarlessError {
  return new SidecarlessError(
    'ERR_WORKLOAD_API_RESPONSE_INVALID',
    `Workload API ${what} discarded: ${field} ${rule}`,
    { field },
    cause === undefined ? undefined : { cause },
  );
}

/** `why` of a lower-level error, for a message; the error itself becomes the cause. */
function reason(err: unknown): string {
  return isSidecarlessError(err) ? `${err.message} (${err.code})` : 'could not be read';
}

const SVID_RESPONSE = 'X509SVIDResponse';
const BUNDLES_RESPONSE = 'X509BundlesResponse';

/** Workload API §4.5: a mandatory field with its default value makes the message invalid. */
function required(what: string, field: string, value: string | Uint8Array): void {
  if (value.length === 0) {
    throw invalid(what, field, 'is required and was empty (Workload API §4.5: the message is discarded)');
  }
}

/** The wire carries ASN.1 DER; PEM (which the parsers would otherwise accept) is refused. */
function der(what: string, field: string, value: Uint8Array): Uint8Array {
  if (looksLikePem(value)) throw invalid(what, field, 'must be ASN.1 DER, got PEM text');
  return value;
}

/** A map key must be a trust domain's SPIFFE ID, `spiffe://<trust domain>`. */
function trustDomainKey(what: string, field: string, key: string): TrustDomain {
  const fieldName = `${field}[${quote(key)}]`;
  if (!key.startsWith('spiffe://')) {
    throw invalid(what, fieldName, 'key must be a trust domain SPIFFE ID (spiffe://<trust domain>)');
  }
  try {
    return TrustDomain.parse(key);
  } catch (err) {
    throw invalid(what, fieldName, `key is not a trust domain SPIFFE ID: ${reason(err)}`, err);
  }
}

function parseBundle(what: string, field: string, td: TrustDomain, bytes: Uint8Array): X509Bundle {
  required(what, field, bytes);
  try {
    return X509Bundle.parse(td, der(what, field, bytes), { format: 'der', source: field });
  } catch (err) {
    if (isSidecarlessError(err, 'ERR_WORKLOAD_API_RESPONSE_INVALID')) throw err;
    throw invalid(what, field, `is not a valid bundle: ${reason(err)}`, err);
  }
}

function parseSvid(entry: X509SvidMessage, index: number): X509Svid {
  const at = `svids[${index}]`;
  required(SVID_RESPONSE, `${at}.spiffe_id`, entry.spiffe_id);
  required(SVID_RESPONSE, `${at}.x509_svid`, entry.x509_svid);
  required(SVID_RESPONSE, `${at}.x509_svid_key`, entry.x509_svid_key);
  required(SVID_RESPONSE, `${at}.bundle`, entry.bundle);
  der(SVID_RESPONSE, `${at}.x509_svid`, entry.x509_svid);
  der(SVID_RESPONSE, `${at}.x509_svid_key`, entry.x509_svid_key);
  let svid: X509Svid;
  try {
    svid = X509Svid.parse(entry.x509_svid, entry.x509_svid_key, {
      source: `${at}.x509_svid`,
      ...(entry.hint === '' ? {} : { hint: entry.hint }),
    });
  } catch (err) {
    throw invalid(SVID_RESPONSE, at, `is not a valid X509-SVID: ${reason(err)}`, err);
  }
  if (entry.spiffe_id !== svid.id.toString()) {
    throw invalid(
      SVID_RESPONSE,
      `${at}.spiffe_id`,
      `${quote(entry.spiffe_id)} is not the certificate's URI SAN ${svid.id}`,
    );
  }
  return svid;
}

/**
 * Checks a whole `X509SVIDResponse` and builds what it says: the SVIDs in order, and the bundles
 * (each SVID's trust domain, plus federated ones). Every SVID must verify against the bundle of
 * its trust domain at `now`. CRLs are not enforced.
 *
 * @throws SidecarlessError `ERR_WORKLOAD_API_RESPONSE_INVALID` naming the field; `cause` is the
 *   lower-level error
 */
export function parseX509SvidResponse(
  message: X509SvidResponseMessage,
  now = Date.now(),
): { svids: X509Svid[]; bundles: BundleSet } {
  if (message.svids.length === 0) {
    throw invalid(SVID_RESPONSE, 'svids', 'must hold at least one X509SVID (Workload API §5.2.1)');
  }
  const svids = message.svids.map((entry, i) => parseSvid(entry, i));
  const own = new Map<string, X509Bundle>();
  message.svids.forEach((entry, i) => {
    const td = (svids[i] as X509Svid).id.trustDomain;
    const bundle = parseBundle(SVID_RESPONSE, `svids[${i}].bundle`, td, entry.bundle);
    const seen = own.get(td.name);
    if (seen !== undefined && !seen.equals(bundle)) {
      throw invalid(SVID_RESPONSE, `svids[${i}].bundle`, `differs from an earlier bundle for ${td.name}`);
    }
    own.set(td.name, bundle);
  });
  const federated: X509Bundle[] = [];
  for (const [key, bytes] of Object.entries(message.federated_bundles)) {
    const td = trustDomainKey(SVID_RESPONSE, 'federated_bundles', key);
    const field = `federated_bundles[${quote(key)}]`;
    if (own.has(td.name)) {
      // A federated entry must never replace the bundle that anchors our own SVIDs.
      throw invalid(SVID_RESPONSE, field, "is the workload's own trust domain; refused");
    }
    federated.push(parseBundle(SVID_RESPONSE, field, td, bytes));
  }
  const bundles = BundleSet.of(...own.values(), ...federated);
  svids.forEach((svid, i) => {
    try {
      validateIdentityUpdate([svid], bundles, now);
    } catch (err) {
      throw invalid(SVID_RESPONSE, `svids[${i}]`, `(${svid.id}) does not verify: ${reason(err)}`, err);
    }
  });
  return { svids, bundles };
}

/**
 * Checks a whole `X509BundlesResponse`: at least one bundle, each keyed by a trust domain ID.
 * @throws SidecarlessError `ERR_WORKLOAD_API_RESPONSE_INVALID` naming the field
 */
export function parseX509BundlesResponse(message: X509BundlesResponseMessage): BundleSet {
  const entries = Object.entries(message.bundles);
  if (entries.length === 0) {
    throw invalid(
      BUNDLES_RESPONSE,
      'bundles',
      "must hold at least the bundle of the server's trust domain (Workload API §5.2.2)",
    );
  }
  const bundles = entries.map(([key, bytes]) => {
    const td = trustDomainKey(BUNDLES_RESPONSE, 'bundles', key);
    return parseBundle(BUNDLES_RESPONSE, `bundles[${quote(key)}]`, td, bytes);
  });
  return BundleSet.of(...bundles);
}

/**
 * Which SVID a workload presents: the first one (the Workload API's default), or the one picked
 * by hint or SPIFFE ID.
 * @example
 * ```ts
 * import { workloadApiIdentity, type SvidPick } from 'sidecarless';
 * const pick: SvidPick = { hint: 'internal' };
 * workloadApiIdentity({ pick });
 * ```
 */
export type SvidPick = { readonly hint: string } | { readonly id: string | SpiffeId };

/**
 * Orders the SVIDs so the picked one comes first; undefined when it is not there (removed).
 * Workload API §5.2.1: on a duplicate hint, the first one wins.
 */
export function pickSvid(svids: readonly X509Svid[], pick: SvidPick | undefined): X509Svid[] | undefined {
  if (pick === undefined) return [...svids];
  const index =
    'hint' in pick
      ? svids.findIndex((s) => s.hint === pick.hint)
      : svids.findIndex((s) => s.id.toString() === pick.id.toString());
  if (index === -1) return undefined;
  const chosen = svids[index] as X509Svid;
  return [chosen, ...svids.filter((_, i) => i !== index)];
}

/** Describes a pick for messages. */
export function describePick(pick: SvidPick): string {
  return 'hint' in pick ? `the SVID with hint ${quote(pick.hint)}` : `the SVID ${pick.id}`;
}
