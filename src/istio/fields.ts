// Reading Istio documents field by field: every refusal names the object (kind namespace/name),
// the field path inside it and the rule broken, so a user can find the line to fix.
import { SidecarlessError } from '../errors.js';
import { quote, show } from '../internal/show.js';
import type { IstioSource } from './documents.js';

/** The object a field belongs to, as messages name it. */
export interface ObjectRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly source: IstioSource;
}

/** `kind/namespace/name`: how decisions and reports name an object. */
export function refName(ref: ObjectRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

function where(source: IstioSource): string {
  const doc = `document ${source.index + 1}${source.item === undefined ? '' : `, item ${source.item + 1}`}`;
  return source.file === null ? ` (${doc})` : ` (${source.file}, ${doc})`;
}

/** A position inside an object: its path, and the errors that name it. */
export class At {
  readonly ref: ObjectRef;
  readonly path: string;

  constructor(ref: ObjectRef, path: string) {
    this.ref = ref;
    this.path = path;
  }

  key(name: string): At {
    return new At(this.ref, this.path === '' ? name : `${this.path}.${name}`);
  }

  item(index: number | string): At {
    return new At(
      this.ref,
      typeof index === 'number' ? `${this.path}[${index}]` : `${this.path}[${quote(index)}]`,
    );
  }

  #error(code: 'ERR_ISTIO_INVALID' | 'ERR_ISTIO_UNSUPPORTED' | 'ERR_ISTIO_CONFLICT', rule: string) {
    const { kind, namespace, name, source } = this.ref;
    const path = this.path === '' ? '' : `: ${this.path}`;
    return new SidecarlessError(code, `${kind} ${namespace}/${name}${path} ${rule}${where(source)}`, {
      field: `${refName(this.ref)}${this.path === '' ? '' : `:${this.path}`}`,
      ...(source.file === null ? {} : { file: source.file }),
      index: source.index,
    });
  }

  /** The value breaks Istio's own schema or validation. */
  invalid(rule: string): SidecarlessError {
    return this.#error('ERR_ISTIO_INVALID', rule);
  }

  /** Valid Istio that sidecarless refuses to translate (refused, never ignored). */
  unsupported(rule: string): SidecarlessError {
    return this.#error('ERR_ISTIO_UNSUPPORTED', rule);
  }

  /** Two objects that Istio would not let stand together. */
  conflict(rule: string): SidecarlessError {
    return this.#error('ERR_ISTIO_CONFLICT', rule);
  }
}

/** A plain object (YAML mapping) or undefined; anything else is refused. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A mapping whose keys are all known (a misspelt field must not be silently ignored). `refused`
 * lists fields Istio has that sidecarless refuses, each with the reason.
 */
export function mapping(
  value: unknown,
  at: At,
  known: readonly string[],
  refused: Readonly<Record<string, string>> = {},
): Record<string, unknown> {
  if (!isPlainObject(value)) throw at.invalid(`must be a mapping, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    const why = refused[key];
    if (why !== undefined && value[key] !== undefined && value[key] !== null) {
      throw at.key(key).unsupported(`is not supported: ${why} (refused, not ignored)`);
    }
    if (why === undefined && !known.includes(key)) {
      throw at.invalid(`has an unknown field ${quote(key)} (known: ${known.join(', ')})`);
    }
  }
  return value;
}

/** A mapping, or undefined when the field is absent or null. */
export function optionalMapping(
  value: unknown,
  at: At,
  known: readonly string[],
  refused: Readonly<Record<string, string>> = {},
): Record<string, unknown> | undefined {
  return value === undefined || value === null ? undefined : mapping(value, at, known, refused);
}

/** A non-empty string. */
export function str(value: unknown, at: At): string {
  if (typeof value !== 'string' || value === '')
    throw at.invalid(`must be a non-empty string, got ${show(value)}`);
  return value;
}

/** An optional string (absent, null or a non-empty string). */
export function optionalStr(value: unknown, at: At): string | undefined {
  return value === undefined || value === null ? undefined : str(value, at);
}

/**
 * A list of non-empty strings, or undefined when absent. Istio's validation refuses empty values
 * in every list of a rule; an empty list is the same as no list (proto3 has no difference).
 * Integers are taken as their decimal text: `ports: [8080]` means `ports: ["8080"]`.
 */
export function stringList(value: unknown, at: At, numbers = false): readonly string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw at.invalid(`must be a list of strings, got ${show(value)}`);
  const out: string[] = [];
  value.forEach((item, i) => {
    if (numbers && typeof item === 'number' && Number.isSafeInteger(item)) out.push(String(item));
    else if (typeof item === 'string' && item !== '') out.push(item);
    else throw at.item(i).invalid(`must be a non-empty string, got ${show(item)}`);
  });
  return out.length === 0 ? undefined : out;
}

/** A list (absent or null: undefined). */
export function list(value: unknown, at: At): readonly unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw at.invalid(`must be a list, got ${show(value)}`);
  return value;
}

/** A port number 1-65535 from a number or its decimal text. */
export function portNumber(value: unknown, at: At, allowZero = false): number {
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\d{1,5}$/.test(value)
        ? Number(value)
        : NaN;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65_535) {
    throw at.invalid(`must be a port number ${allowZero ? 0 : 1}-65535, got ${show(value)}`);
  }
  return n;
}
