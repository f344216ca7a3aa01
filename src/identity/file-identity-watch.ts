import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** How a file identity learns that its files changed. */
export type WatchMode = 'watch' | 'poll';

/**
 * Watches the directories that hold the files, not the files: fs.watch on a file follows its
 * inode, so a file replaced by an atomic rename, or reached through a symlink that is swapped
 * (Kubernetes' `tls.crt -> ..data/tls.crt`, `..data -> ..2026_…`), would never fire again. Any
 * event in a watched directory asks for a reload, which is cheap when nothing changed.
 *
 * Where fs.watch is not available or fails (some network and FUSE file systems), or when told to,
 * it polls: it stats each file (through symlinks) every `pollInterval` and asks for a reload when
 * one changed. No timer runs while fs.watch works. @internal
 */
export class FileWatcher {
  readonly #paths: readonly string[];
  readonly #pollInterval: number;
  readonly #onChange: () => void;
  readonly #onFallback: (reason: string) => void;
  #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #signatures = new Map<string, string>();
  #polling = false;
  #mode: WatchMode = 'watch';
  #closed = false;

  constructor(
    paths: readonly string[],
    options: { watch: boolean; pollInterval: number },
    onChange: () => void,
    onFallback: (reason: string) => void,
  ) {
    this.#paths = paths;
    this.#pollInterval = options.pollInterval;
    this.#onChange = onChange;
    this.#onFallback = onFallback;
    if (options.watch) this.#watch();
    else this.#startPolling();
  }

  get mode(): WatchMode {
    return this.#mode;
  }

  #watch(): void {
    const dirs = [...new Set(this.#paths.map((p) => dirname(p)))];
    try {
      for (const dir of dirs) {
        // Not persistent: a watcher must not keep a process alive (as timers are unref'd).
        const watcher = watch(dir, { persistent: false }, () => this.#onChange());
        watcher.on('error', (err) => this.#fallback(`watching ${dir} failed: ${err.message}`));
        this.#watchers.push(watcher);
      }
    } catch (err) {
      this.#fallback(`fs.watch is not available: ${(err as Error).message}`);
    }
  }

  #fallback(reason: string): void {
    if (this.#closed || this.#mode === 'poll') return;
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    this.#startPolling();
    this.#onFallback(reason);
    // Changes made while the watch was failing would otherwise wait for the next one.
    this.#onChange();
  }

  #startPolling(): void {
    this.#mode = 'poll';
    void this.#tick();
    this.#poll = setInterval(() => void this.#tick(), this.#pollInterval);
    this.#poll.unref();
  }

  async #tick(): Promise<void> {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    let changed = false;
    try {
      for (const path of this.#paths) {
        let signature: string;
        try {
          const s = await stat(path);
          signature = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
        } catch (err) {
          signature = `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
        }
        if (this.#signatures.get(path) !== signature) changed = true;
        this.#signatures.set(path, signature);
      }
    } finally {
      this.#polling = false;
    }
    // The first tick also reports: a change between the first load and the first stat is not lost.
    if (changed && !this.#closed) this.#onChange();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    clearInterval(this.#poll);
  }
}
