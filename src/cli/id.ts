// `sidecarless id parse <id>`: the library's own parser, and for a refusal the rule it broke with
// the SPIFFE-ID spec's reason, so "why is this peer refused" has an answer at the command line.
import { isSidecarlessError, SpiffeId } from '../index.js';
import type { Output } from './output.js';
import { positionalArgs } from './usage.js';

/**
 * Why the SPIFFE-ID spec has each rule, by a phrase of the parser's message. Every rule
 * `SpiffeId.parse` states has a row (test/cli/id.test.ts builds an ID breaking each one).
 */
const WHY: readonly (readonly [RegExp, string])[] = [
  [/is empty/, 'an empty string names no workload.'],
  [
    /longer than/,
    'SPIFFE-ID §2.3: an ID is at most 2048 bytes, so a peer cannot make a verifier do unbounded work.',
  ],
  [
    /scheme must be lowercase/,
    'SPIFFE-ID §2: the scheme is exactly "spiffe"; nothing is normalised, so "SPIFFE://" is another string, not the same ID.',
  ],
  [
    /scheme is missing/,
    'SPIFFE-ID §2: an ID is spiffe://<trust domain><path>. An Istio principal (cluster.local/ns/x/sa/y) is written spiffe://cluster.local/ns/x/sa/y.',
  ],
  [/query|fragment/, 'SPIFFE-ID §2: an ID has no query or fragment; "?" and "#" are not allowed anywhere.'],
  [
    /trust domain|port|user info|userinfo/i,
    'SPIFFE-ID §2.1: the trust domain is lower-case letters, digits, dots, dashes and underscores, with no port or user info.',
  ],
  [/leading slash/, 'SPIFFE-ID §2.2: the path starts with "/" after the trust domain.'],
  [
    /trailing slash/,
    'SPIFFE-ID §2.2: a trailing "/" would make two spellings of one ID; it is refused, not trimmed.',
  ],
  [/empty segments/, 'SPIFFE-ID §2.2: "//" would make two spellings of one ID; segments are never empty.'],
  [
    /dot segments/,
    'SPIFFE-ID §2.2: "." and ".." segments could climb out of a path prefix that a rule matches; they are refused.',
  ],
  [
    /percent-encoded/,
    'SPIFFE-ID §2.2: percent-encoding would make two spellings of one ID; it is refused, never decoded.',
  ],
  [
    /characters are limited/,
    'SPIFFE-ID §2.2: path segments use only letters, digits, ".", "-" and "_" (no spaces, no ":", no non-ASCII).',
  ],
];

/** The spec's reason for the broken rule in `message`, or undefined when no row matches. */
export function explainRefusal(message: string): string | undefined {
  return WHY.find(([phrase]) => phrase.test(message))?.[1];
}

export async function runIdParse(
  _values: Record<string, unknown>,
  positionals: string[],
  out: Output,
): Promise<number> {
  const [input] = positionalArgs(positionals, ['id']) as [string];
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(input);
  } catch (err) {
    if (!isSidecarlessError(err)) throw err;
    const why = explainRefusal(err.message);
    out.line(out.colour.red(`refused: ${err.code}`));
    out.line(err.message);
    if (why !== undefined) out.line(`why: ${why}`);
    out.document({
      ok: false,
      error: { code: err.code, message: err.message, ...(why === undefined ? {} : { why }) },
    });
    return 1;
  }
  const segments = id.path === '' ? [] : id.path.slice(1).split('/');
  out.line(`SPIFFE ID     ${id.toString()}`);
  out.line(`trust domain  ${id.trustDomain.name}`);
  out.line(`path          ${id.path === '' ? '(none: the trust domain itself, not a workload)' : id.path}`);
  out.line(
    `segments      ${segments.length === 0 ? '(none)' : segments.map((s) => JSON.stringify(s)).join(' ')}`,
  );
  // Kubernetes-shaped IDs are what Istio issues; naming them helps read a rule written for Istio.
  const k8s = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id.path);
  if (k8s !== null) out.line(`istio         namespace ${k8s[1]}, service account ${k8s[2]}`);
  out.document({
    ok: true,
    id: id.toString(),
    trustDomain: id.trustDomain.name,
    path: id.path,
    segments,
    ...(k8s === null ? {} : { istio: { namespace: k8s[1], serviceAccount: k8s[2] } }),
  });
  return 0;
}
