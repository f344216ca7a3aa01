import { inspect } from 'node:util';
import { isSidecarlessError, SidecarlessError } from '../errors.js';
import { buildFileIdentity, type IdentityFiles, readIdentityFiles } from './file-identity-load.js';
import { type FileIdentityOptions, fileIdentityFiles } from './file-identity-options.js';
import { FileWatcher, type WatchMode } from './file-identity-watch.js';
import { DEFAULT_READY_TIMEOUT, IdentityPublisher } from './publisher.js';
import type { ReadyOptions, WorkloadIdentity } from './source.js';
import { ExpiryGuard, type IdentitySourceEvents, SourceEvents } from './source-events.js';
import type { ObservedIdentitySource } from './workload-api-identity.js';

export {
  type FileIdentityOptions,
  type FileIdentityPreset,
  fileIdentityPresets,
} from './file-identity-options.js';

/** Coalesces the burst of events one rotation makes (create, rename, delete) into one read. */
const DEBOUNCE = 5;
/**
 * A cert and key written a moment apart read as a mismatched pair: read again this soon, then
 * wait for the next change. The failure is reported once these retries are spent.
 */
const RETRY_DELAYS = [20, 40, 80, 160, 320];

/** The identity source on watched certificate, key and bundle files. */
class FileIdentity implements ObservedIdentitySource {
  readonly #files: IdentityFiles;
  readonly #publisher: IdentityPublisher;
  readonly #events = new SourceEvents<IdentitySourceEvents>();
  readonly #expiry: ExpiryGuard;
  readonly #watcher: FileWatcher;
  #timer: NodeJS.Timeout | undefined;
  #loading = false;
  #again = false;
  #retries = 0;
  #digest: string | undefined;
  #lastError: SidecarlessError | undefined;
  #settled: SidecarlessError | undefined;
  #reported: string | undefined;
  #loads = 0;

  constructor(files: IdentityFiles, watch: boolean, pollInterval: number, expiryWarning: number) {
    this.#files = files;
    this.#publisher = new IdentityPublisher(() => this.#missing(), {
      source: `fileIdentity ${files.certChain}`,
      events: this.#events,
      expiryWarning,
    });
    this.#expiry = new ExpiryGuard(this.#publisher, (reason) =>
      this.#events.emit(
        'withdrawn',
        new SidecarlessError('ERR_NO_IDENTITY', `identity withdrawn: ${reason}`, {}),
      ),
    );
    const paths = [files.certChain, files.key, files.bundle, ...files.federated.map((f) => f.path)];
    this.#watcher = new FileWatcher(
      paths,
      { watch, pollInterval },
      () => this.#request(DEBOUNCE),
      (reason) => {
        const err = new SidecarlessError(
          'ERR_FILE_UNREADABLE',
          `fileIdentity: ${reason}; polling every ${pollInterval} ms instead`,
          { file: files.certChain },
        );
        // Deferred: a fallback found in the constructor must reach listeners added right after it.
        queueMicrotask(() => this.#publisher.error(err));
      },
    );
    this.#request(0);
  }

  /** How changes are noticed: `watch` (fs.watch on the directories) or `poll`. @internal */
  get watchMode(): WatchMode {
    return this.#watcher.mode;
  }

  /** Loads so far (for tests of the "no polling" claim). @internal */
  get loads(): number {
    return this.#loads;
  }

  #missing(): string {
    const why = this.#lastError === undefined ? 'not loaded yet' : this.#lastError.message;
    return `no valid identity from ${this.#files.certChain}: ${why}`;
  }

  /** Asks for a read after `delay`; a change cancels a pending retry and renews the retry budget. */
  #request(delay: number): void {
    if (this.#publisher.closed) return;
    if (this.#loading) {
      this.#again = true;
      return;
    }
    this.#retries = 0;
    this.#settled = undefined;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#load(), delay);
    this.#timer.unref();
  }

  async #load(): Promise<void> {
    this.#timer = undefined;
    this.#loading = true;
    this.#loads++;
    try {
      const contents = await readIdentityFiles(this.#files);
      if (this.#publisher.closed || contents.digest === this.#digest) {
        // Closed meanwhile, or the files hold what is already current (an event for another file,
        // or a bad write undone): nothing to parse.
        contents.key.fill(0);
        this.#lastError = undefined;
        this.#reported = undefined;
        return;
      }
      const { svid, bundles } = buildFileIdentity(this.#files, contents);
      const identity = this.#publisher.publish([svid], bundles);
      this.#digest = contents.digest;
      this.#lastError = undefined;
      this.#settled = undefined;
      this.#reported = undefined;
      this.#retries = 0;
      this.#expiry.arm(identity);
      this.#events.emit('update', identity);
    } catch (err) {
      if (this.#publisher.closed) return;
      if (!isSidecarlessError(err)) throw err;
      this.#failed(err);
    } finally {
      this.#loading = false;
      if (this.#again && !this.#publisher.closed) {
        this.#again = false;
        this.#request(DEBOUNCE);
      }
    }
  }

  #failed(err: SidecarlessError): void {
    this.#lastError = err;
    const starting = this.#digest === undefined;
    // Missing files at start are a configuration error: say so now rather than at the timeout.
    if (starting && err.code === 'ERR_FILE_UNREADABLE') this.#settle(err);
    const delay = RETRY_DELAYS[this.#retries];
    if (delay === undefined) {
      // Retries spent: the files stay bad until they change again.
      if (starting) this.#settle(err);
      this.#report(err);
      return;
    }
    this.#retries++;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#load(), delay);
    this.#timer.unref();
  }

  /** There is no identity and the files say why: `ready()` rejects with it until they change. */
  #settle(err: SidecarlessError): void {
    this.#settled = err;
    this.#publisher.fail(err);
    this.#report(err);
  }

  /** Reports a failure once per distinct message, not once per retry. */
  #report(err: SidecarlessError): void {
    if (this.#reported === err.message) return;
    this.#reported = err.message;
    this.#publisher.error(err);
  }

  async ready(options: ReadyOptions = {}): Promise<WorkloadIdentity> {
    const settled = this.#settled;
    if (this.#publisher.peek() === undefined && settled !== undefined) throw settled;
    try {
      return await this.#publisher.ready(options);
    } catch (err) {
      const latest = this.#lastError;
      if (!isSidecarlessError(err, 'ERR_TIMEOUT') || latest === undefined) throw err;
      throw new SidecarlessError(
        latest.code,
        `no identity after ${options.timeout ?? DEFAULT_READY_TIMEOUT} ms: ${latest.message}`,
        latest.detail,
        { cause: latest },
      );
    }
  }

  current(): WorkloadIdentity {
    this.#expiry.check();
    return this.#publisher.current();
  }

  subscribe(listener: (identity: WorkloadIdentity) => void): () => void {
    return this.#publisher.subscribe(listener);
  }

  onWithdrawn(listener: (error: SidecarlessError) => void): () => void {
    return this.#publisher.onWithdrawn(listener);
  }

  on<K extends keyof IdentitySourceEvents & string>(
    event: K,
    listener: (...args: IdentitySourceEvents[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  off<K extends keyof IdentitySourceEvents & string>(
    event: K,
    listener: (...args: IdentitySourceEvents[K]) => void,
  ): void {
    this.#events.off(event, listener);
  }

  async close(): Promise<void> {
    if (this.#publisher.closed) return;
    clearTimeout(this.#timer);
    this.#watcher.close();
    this.#expiry.cancel();
    this.#publisher.close();
    this.#events.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [inspect.custom](): string {
    const identity = this.#publisher.peek();
    const state =
      identity === undefined ? 'no identity' : `${identity.svid.id}, generation ${identity.generation}`;
    return `FileIdentity(${this.#files.certChain}, ${this.#watcher.mode}, ${state})`;
  }
}

/**
 * An identity source on files written by an agent: Istio's `OUTPUT_CERTS`, cert-manager's
 * csi-driver-spiffe, spiffe-helper, or any writer of a PEM chain, key and bundle.
 *
 * - Watches the directories holding the files (fs.watch on a symlinked file follows the old inode),
 *   so atomic renames and Kubernetes' `..data` symlink swap are seen; where fs.watch fails, or with
 *   `watch: false`, it polls every `pollInterval`. No timer runs while fs.watch works.
 * - Every read is validated whole: the key must match the chain, the chain must verify to the
 *   bundle of the SVID's trust domain. A certificate and key written a moment apart are read again
 *   shortly; the last good identity stays meanwhile, and a failure that lasts is reported.
 * - Bundles: PEM, DER or SPIFFE JSON. `bundle` must hold only the authorities of the SVID's own
 *   trust domain (spiffe-helper: leave `include_federated_domains` off); federated bundles go in
 *   `federatedBundles`, each trusted for its trust domain only.
 * - When the SVID expires and no newer one was written, `current()` throws `ERR_NO_IDENTITY`.
 *
 * @param options - file paths, or a preset and a directory; watch settings
 * @throws SidecarlessError `ERR_OPTION_INVALID` for bad options. `ready()` rejects with
 *   `ERR_FILE_UNREADABLE` (naming the path and the reason) when a file is missing or unreadable
 *   at start (the source keeps watching: a later `ready()` resolves once the files are there), or
 *   at its timeout with the code of the last failed read (`ERR_KEY_MISMATCH`, `ERR_SVID_*`, …).
 * @example
 * ```ts
 * import { fileIdentity } from 'sidecarless';
 * // cert-manager csi-driver-spiffe: tls.crt, tls.key, ca.crt in the mounted volume
 * const identity = fileIdentity({ preset: 'cert-manager', dir: '/var/run/secrets/spiffe.io' });
 * const { svid } = await identity.ready();
 * identity.on('error', (err) => console.warn(err.code, err.message));
 * // or any files:
 * const other = fileIdentity({ certChain: './svid.pem', key: './svid_key.pem', bundle: './bundle.json' });
 * ```
 */
export function fileIdentity(options: FileIdentityOptions): ObservedIdentitySource {
  const { files, watch, pollInterval, expiryWarning } = fileIdentityFiles(options);
  return new FileIdentity(files, watch, pollInterval, expiryWarning);
}
