// Istio YAML as the labs and `kubectl get -o yaml` write it: multi-document files, `kind: List`
// exports, and folders (a ConfigMap mount's `..data` copies skipped). Parsed with `yaml`, the
// well-kept YAML 1.2 parser; only this subpath loads it, never the main entry point.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { SidecarlessError } from '../errors.js';
import { quote, show } from '../internal/show.js';

/**
 * Where a document came from, for messages.
 * @example
 * ```ts
 * import { parseIstioYaml, type IstioSource } from 'sidecarless/istio';
 * const source: IstioSource | undefined = parseIstioYaml('kind: Policy\n', { file: 'p.yaml' }).documents[0]?.source;
 * source?.file; // 'p.yaml'
 * ```
 */
export interface IstioSource {
  /** The file, or `null` for text or objects given directly. */
  readonly file: string | null;
  /** The document's position in its file (0-based; `---` separates documents). */
  readonly index: number;
  /** The position in a `kind: List` document's `items`, when it came from one. */
  readonly item?: number;
}

/**
 * One parsed document and where it came from.
 * @example
 * ```ts
 * import { parseIstioYaml, type IstioDocument } from 'sidecarless/istio';
 * const [first]: readonly IstioDocument[] = parseIstioYaml('kind: Policy\n').documents;
 * first?.source.index; // 0
 * ```
 */
export interface IstioDocument {
  /** The document as plain data (mappings are plain objects). */
  readonly object: unknown;
  /** Where it came from. */
  readonly source: IstioSource;
}

/**
 * Parsed Istio documents, as {@link parseIstioYaml} and {@link readIstioFiles} return them and
 * `fromIstio()` takes them. Frozen.
 * @example
 * ```ts
 * import { type IstioDocuments, parseIstioYaml } from 'sidecarless/istio';
 * const docs: IstioDocuments = parseIstioYaml('kind: Policy\n---\nkind: DestinationRule\n');
 * docs.documents.length; // 2
 * ```
 */
export class IstioDocuments {
  /** The documents, in file order. */
  readonly documents: readonly IstioDocument[];

  /** @internal */
  constructor(documents: readonly IstioDocument[]) {
    this.documents = Object.freeze([...documents]);
    Object.freeze(this);
  }
}

/**
 * The most text one call parses (8 MiB): policy files are kilobytes; more is a mistake or an attack.
 * @example
 * ```ts
 * import { MAX_ISTIO_YAML_BYTES } from 'sidecarless/istio';
 * console.log(`policy files up to ${MAX_ISTIO_YAML_BYTES} bytes`);
 * ```
 */
export const MAX_ISTIO_YAML_BYTES = 8 * 1024 * 1024;
const MAX_DOCUMENTS = 10_000;
// Aliases let a few bytes of YAML expand into gigabytes ("billion laughs"); real policies use none.
const MAX_ALIASES = 100;

function yamlError(message: string, file: string | null, index: number): SidecarlessError {
  return new SidecarlessError(
    'ERR_ISTIO_INVALID',
    `${file === null ? 'YAML' : file}: document ${index + 1}: ${message}`,
    { ...(file === null ? {} : { file }), index },
  );
}

/**
 * Parses YAML text (one or more documents separated by `---`; JSON too). Empty documents are
 * skipped; a `kind: List` document stands for its `items`.
 *
 * @param text - the YAML
 * @param options - `file`: the name messages give the text
 * @returns the documents, frozen
 * @throws SidecarlessError `ERR_ISTIO_INVALID` for a syntax error (with its line), a duplicate key,
 *   too many aliases, a document that is not a mapping, or text over 8 MiB
 * @example
 * ```ts
 * import { parseIstioYaml } from 'sidecarless/istio';
 * const docs = parseIstioYaml(`
 * apiVersion: authentication.istio.io/v1alpha1
 * kind: Policy
 * metadata: { name: default, namespace: microservices-demo }
 * spec:
 *   peers:
 *   - mtls: { mode: STRICT }
 * `, { file: 'policy-mtls.yaml' });
 * docs.documents[0]?.source.file; // 'policy-mtls.yaml'
 * ```
 */
export function parseIstioYaml(text: string, options: { readonly file?: string } = {}): IstioDocuments {
  const file = typeof options?.file === 'string' ? options.file : null;
  if (typeof text !== 'string') {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `parseIstioYaml: text must be a string, got ${show(text)}`,
      {
        field: 'text',
      },
    );
  }
  return new IstioDocuments(parseText(text, file));
}

function parseText(text: string, file: string | null): IstioDocument[] {
  if (Buffer.byteLength(text) > MAX_ISTIO_YAML_BYTES) {
    throw yamlError(`is larger than ${MAX_ISTIO_YAML_BYTES} bytes`, file, 0);
  }
  let parsed: ReturnType<typeof parseAllDocuments>;
  try {
    parsed = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  } catch (err) {
    throw yamlError(`cannot be parsed: ${(err as Error).message}`, file, 0);
  }
  const docs = Array.isArray(parsed) ? parsed : [];
  if (!Array.isArray(parsed)) {
    // An EmptyStream (no documents) carries its own errors.
    const errors = (parsed as { errors?: { message: string }[] }).errors ?? [];
    if (errors.length > 0) throw yamlError(firstLine(errors[0]?.message ?? ''), file, 0);
  }
  if (docs.length > MAX_DOCUMENTS) throw yamlError(`has more than ${MAX_DOCUMENTS} documents`, file, 0);
  const out: IstioDocument[] = [];
  docs.forEach((doc, index) => {
    const error = doc.errors[0];
    if (error !== undefined) {
      const line = error.linePos?.[0];
      throw yamlError(
        `${line === undefined ? '' : `line ${line.line}: `}${firstLine(error.message)}`,
        file,
        index,
      );
    }
    let object: unknown;
    try {
      object = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      throw yamlError(`cannot be read: ${firstLine((err as Error).message)}`, file, index);
    }
    if (object === null || object === undefined) return; // an empty document ("---" then nothing)
    pushObject(out, object, { file, index });
  });
  return out;
}

/** The rule of a parser message, without its position and source excerpt (shown as "line N"). */
function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

function pushObject(out: IstioDocument[], object: unknown, source: IstioSource): void {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw yamlError(
      `must be a mapping (an object with apiVersion and kind), got ${show(object)}`,
      source.file,
      source.index,
    );
  }
  const { kind, items } = object as { kind?: unknown; items?: unknown };
  // `kubectl get ... -o yaml` writes a List: its items are the objects.
  if (kind === 'List' && Array.isArray(items)) {
    items.forEach((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw yamlError(
          `item ${i + 1} of the List must be a mapping, got ${show(item)}`,
          source.file,
          source.index,
        );
      }
      out.push(Object.freeze({ object: item, source: Object.freeze({ ...source, item: i }) }));
    });
    return;
  }
  out.push(Object.freeze({ object, source: Object.freeze(source) }));
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Reads Istio YAML from files and folders, in order. A folder contributes its `.yaml`, `.yml` and
 * `.json` files in name order (not its subfolders, as `kubectl apply -f` without `-R`), skipping
 * entries whose names start with `..`: a ConfigMap mount holds each file twice, once through its
 * `..data` link.
 *
 * @param paths - a file or folder, or a list of them
 * @returns the documents of every file, frozen
 * @throws SidecarlessError `ERR_FILE_UNREADABLE` naming a path that cannot be read;
 *   `ERR_ISTIO_INVALID` for YAML that cannot be parsed (naming the file and line)
 * @example
 * ```ts
 * import { readIstioFiles } from 'sidecarless/istio';
 * const docs = readIstioFiles(process.env.ISTIO_CONFIG ?? '/etc/istio-policies');
 * console.log(`${docs.documents.length} Istio documents`);
 * ```
 */
export function readIstioFiles(paths: string | readonly string[]): IstioDocuments {
  const list = typeof paths === 'string' ? [paths] : paths;
  if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string' && p !== '')) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `readIstioFiles: paths must be a path or a non-empty list of paths, got ${show(paths)}`,
      { field: 'paths' },
    );
  }
  const out: IstioDocument[] = [];
  for (const path of list) {
    for (const file of filesOf(path)) out.push(...parseText(readText(file), file));
  }
  return new IstioDocuments(out);
}

function unreadable(path: string, err: unknown): SidecarlessError {
  const code = (err as { code?: unknown }).code;
  return new SidecarlessError(
    'ERR_FILE_UNREADABLE',
    `cannot read ${quote(path)}${typeof code === 'string' ? ` (${code})` : ''}`,
    { file: path },
    { cause: err },
  );
}

function filesOf(path: string): string[] {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (err) {
    throw unreadable(path, err);
  }
  if (!isDirectory) return [path];
  let names: string[];
  try {
    names = readdirSync(path).sort();
  } catch (err) {
    throw unreadable(path, err);
  }
  const files: string[] = [];
  for (const name of names) {
    if (name.startsWith('..') || !EXTENSIONS.has(extname(name).toLowerCase())) continue;
    const full = join(path, name);
    try {
      // ConfigMap files are symbolic links into ..data: stat follows them.
      if (statSync(full).isFile()) files.push(full);
    } catch (err) {
      throw unreadable(full, err);
    }
  }
  return files;
}

function readText(file: string): string {
  try {
    if (statSync(file).size > MAX_ISTIO_YAML_BYTES) {
      throw yamlError(`is larger than ${MAX_ISTIO_YAML_BYTES} bytes`, file, 0);
    }
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SidecarlessError) throw err;
    throw unreadable(file, err);
  }
}

/**
 * What the Istio functions take: YAML text, documents from {@link parseIstioYaml} or
 * {@link readIstioFiles}, or objects already parsed (`JSON.parse` of `kubectl get -o json`).
 * @example
 * ```ts
 * import type { IstioInput } from 'sidecarless/istio';
 * const input: IstioInput = [{ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication',
 *   metadata: { name: 'default', namespace: 'demo' }, spec: { mtls: { mode: 'STRICT' } } }];
 * ```
 */
export type IstioInput = string | IstioDocuments | readonly object[];

/** The documents of any input form. */
export function documentsOf(input: IstioInput): readonly IstioDocument[] {
  if (input instanceof IstioDocuments) return input.documents;
  if (typeof input === 'string') return parseText(input, null);
  if (!Array.isArray(input)) {
    throw new SidecarlessError(
      'ERR_OPTION_INVALID',
      `Istio documents must be YAML text, IstioDocuments or a list of objects, got ${show(input)}`,
      { field: 'docs' },
    );
  }
  const out: IstioDocument[] = [];
  for (const [index, object] of input.entries()) pushObject(out, object, { file: null, index });
  return out;
}
