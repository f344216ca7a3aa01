// Request-target normalisation: the one spelling of a path that authorization matches and the
// handler then routes, so no router can read a request differently from how it was authorised.
//
// Order (each step sees the previous one's output): strip the query; decode percent-encoded
// unreserved characters (RFC 3986 §2.3: they are equivalent to the raw ones); merge `//`; resolve
// `.` and `..` (RFC 3986 §5.2.4). Anything a router could read two ways is refused instead, as a
// bad request: an encoded `/` or `\`, NUL and other control characters (raw or encoded), a raw
// backslash, a `;` path parameter, a `#`, raw non-ASCII, an encoded character that case-folds to
// ASCII, a `..` above the root, malformed percent-encoding, and every target that is not
// origin-form (`OPTIONS *`, `GET http://host/x`). Reserved characters other than `/` and `\` stay
// encoded (hex uppercased), and `%25` is never decoded, so nothing is decoded twice.

/** A request-target in its one normal spelling. */
export interface NormalizedRequestTarget {
  readonly ok: true;
  /** The method, uppercased: routers (Express) match methods case-insensitively. */
  readonly method: string;
  /** The normalised path: what authorization matched, and what the handler must receive. */
  readonly path: string;
  /** The query exactly as received, with its `?` (`''` when there is none): not normalised. */
  readonly query: string;
}

/** A request-target refused before any rule is looked at. */
export interface BadRequestTarget {
  readonly ok: false;
  readonly reason: 'bad_request';
  /** The method, uppercased, or `''` when the method itself is not a token. */
  readonly method: string;
  /** What was wrong, in words (a fixed string: never an echo of the request). */
  readonly problem: string;
}

/** A request-target in normal form, or the reason it was refused. */
export type NormalizeResult = NormalizedRequestTarget | BadRequestTarget;

/** Why a path cannot be normalised safely. */
export interface PathProblem {
  readonly problem: string;
}

function bad(problem: string): PathProblem {
  return Object.freeze({ problem });
}

const BAD = {
  method: bad('the method is not an HTTP token'),
  asterisk: bad('asterisk-form request-target ("OPTIONS *") has no path to authorize'),
  absolute: bad('absolute-form request-target ("scheme://host/path"): send the path only'),
  origin: bad('the request-target must start with "/"'),
  char: bad('the path holds a control character, a space or a raw non-ASCII byte'),
  fragment: bad('the path holds a fragment ("#")'),
  param: bad('the path holds a ";" path parameter'),
  backslash: bad('the path holds a backslash'),
  escape: bad('the path holds malformed percent-encoding'),
  slash: bad('the path holds an encoded "/" or "\\"'),
  control: bad('the path holds an encoded control character'),
  aboveRoot: bad('a ".." segment climbs above the root'),
  fold: bad('the path holds an encoded character that case-folds to ASCII (U+0130, U+017F, U+212A)'),
} as const;

// A path that needs no work: segments of allowed characters, none starting with "." (maybe a dot
// segment) or "/" (an empty one), no "%", and maybe a trailing "/". Regexes, not a charCodeAt
// loop: V8 runs them several times faster, and this runs on every request.
const CLEAN = /^(?:\/[!"$&-\-0-:<-[\]-~][!"$&-.0-:<-[\]-~]*)*\/?$/;
// Characters refused anywhere in a path: all but printable ASCII, and "#", ";" and the backslash
// (each of these three has a refusal of its own).
const REFUSED_CHAR = /[^!"$-:<-[\]-~]/;

function refusalOf(c: number): PathProblem {
  return c === 0x23 ? BAD.fragment : c === 0x3b ? BAD.param : c === 0x5c ? BAD.backslash : BAD.char;
}

// RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". Only these are decoded:
// decoding a reserved character would change what the path means.
const UNRESERVED = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) UNRESERVED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) UNRESERVED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) UNRESERVED[c] = 1;
for (const c of '-._~') UNRESERVED[c.charCodeAt(0)] = 1;

// RFC 9110 §5.6.2 tchar, for methods.
const TCHAR = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;

// The UTF-8 of the only non-ASCII code points whose toLowerCase() or simple case folding holds
// an ASCII letter: U+0130 (lowercases to "i" + U+0307), U+017F (folds to "s"), U+212A (to "k").
// Escapes are uppercased by now.
const FOLDS_TO_ASCII = /%C4%B0|%C5%BF|%E2%84%AA/;

const UPPER_HEX = Array.from({ length: 256 }, (_, b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`);

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * The method, uppercased, or `undefined` when it is not a token. Express routes `get` as GET, so
 * rules must see it as GET too.
 */
export function normalizeMethod(method: string): string | undefined {
  if (typeof method !== 'string' || method.length === 0) return undefined;
  let lower = false;
  for (let i = 0; i < method.length; i++) {
    const c = method.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return undefined;
    if (c >= 0x61 && c <= 0x7a) lower = true;
  }
  return lower ? method.toUpperCase() : method;
}

/**
 * Normalises the path part of a request-target (no query): the normal path, or the refusal.
 * Clean paths (the common case) are matched by one regex and returned as they are, not copied.
 */
export function normalizePath(path: string): string | PathProblem {
  if (CLEAN.test(path)) return path;
  const refused = REFUSED_CHAR.exec(path);
  if (refused !== null) return refusalOf(refused[0].charCodeAt(0));
  return rewrite(path);
}

/** Decodes unreserved escapes, then merges empty segments and resolves dot segments. */
function rewrite(path: string): string | PathProblem {
  let decoded = path;
  let at = path.indexOf('%');
  if (at !== -1) {
    decoded = '';
    let last = 0;
    let leadByte = false; // an escape that could begin one of FOLDS_TO_ASCII's sequences
    for (; at !== -1; at = path.indexOf('%', at)) {
      const high = hexDigit(path.charCodeAt(at + 1));
      const low = hexDigit(path.charCodeAt(at + 2));
      if (high < 0 || low < 0) return BAD.escape;
      const byte = high * 16 + low;
      // An encoded separator is where routers disagree most: some decode it before splitting.
      if (byte === 0x2f || byte === 0x5c) return BAD.slash;
      if (byte < 0x20 || byte === 0x7f) return BAD.control;
      if (byte === 0xc4 || byte === 0xc5 || byte === 0xe2) leadByte = true;
      // `%25` stays `%25`: decoding it would turn `%252e` into `%2e`, a dot for the next decoder.
      decoded +=
        path.slice(last, at) + (UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : UPPER_HEX[byte]);
      at += 3;
      last = at;
    }
    decoded += path.slice(last);
    // Case-insensitive routers decode, then lowercase or case-fold: "%E2%84%AA" (KELVIN SIGN) becomes
    // "k" in find-my-way, so "/%E2%84%AAube" would route to "/kube" while rules see another path.
    if (leadByte && FOLDS_TO_ASCII.test(decoded)) return BAD.fold;
  }
  return resolve(decoded);
}

// The kept segments ("/seg", as [start, end) in the path), for "..": shared, as resolve() never
// re-enters and holds no reference to them once it returns.
const segmentStart: number[] = [];
const segmentEnd: number[] = [];

/**
 * Merges empty segments and resolves dot segments in one pass, without splitting: kept segments
 * are recorded as ranges, and runs of adjacent ones are copied out with one slice each.
 */
function resolve(path: string): string | PathProblem {
  let kept = 0;
  let trailing = false;
  // path[0] is "/"; each turn takes the segment between the "/" at `at` and the next one.
  for (let at = 0; at < path.length; ) {
    let next = path.indexOf('/', at + 1);
    if (next === -1) next = path.length;
    const length = next - at - 1;
    const dot = length > 0 && length < 3 && path.charCodeAt(at + 1) === 0x2e;
    if (length === 0 || (dot && length === 1)) {
      trailing = true;
    } else if (dot && path.charCodeAt(at + 2) === 0x2e) {
      // Refused, not clamped: a conforming client resolves dot segments before sending, so a
      // ".." above the root is a probe, and a static-file handler might resolve it otherwise.
      if (kept === 0) return BAD.aboveRoot;
      kept--;
      trailing = true;
    } else {
      segmentStart[kept] = at;
      segmentEnd[kept] = next;
      kept++;
      trailing = false;
    }
    at = next;
  }
  if (kept === 0) return '/';
  let out = '';
  for (let k = 0; k < kept; ) {
    const start = segmentStart[k] as number;
    let end = segmentEnd[k] as number;
    for (k++; k < kept && segmentStart[k] === end; k++) end = segmentEnd[k] as number;
    out += path.slice(start, end);
  }
  return trailing ? `${out}/` : out;
}

/**
 * Normalises a request as received (`req.method`, `req.url`): the uppercased method, the
 * normalised path and the untouched query, or a `bad_request` refusal naming the problem.
 *
 * A server rewrites `req.url` to `path + query` before its handler runs, so the application routes
 * exactly the path that was authorised.
 */
export function normalizeRequestTarget(method: string, target: string): NormalizeResult {
  const m = normalizeMethod(method);
  if (m === undefined) return refuse('', BAD.method);
  if (typeof target !== 'string' || target.charCodeAt(0) !== 0x2f) {
    if (target === '*') return refuse(m, BAD.asterisk);
    // RFC 9112 §3.2.2 asks origin servers to accept absolute-form; refused here because its
    // authority can disagree with Host/:authority and each router picks one differently.
    if (typeof target === 'string' && /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target))
      return refuse(m, BAD.absolute);
    return refuse(m, BAD.origin);
  }
  const q = target.indexOf('?');
  const path = normalizePath(q === -1 ? target : target.slice(0, q));
  if (typeof path !== 'string') return refuse(m, path);
  return { ok: true, method: m, path, query: q === -1 ? '' : target.slice(q) };
}

function refuse(method: string, { problem }: PathProblem): BadRequestTarget {
  return { ok: false, reason: 'bad_request', method, problem };
}
