// undici, loaded on first use. An app that only serves never builds a dispatcher, so it never
// pays for undici's ~110 modules (bench/README.md, "Import cost"). require() rather than
// import(): the factories that need it are synchronous, and the package is one ESM build without
// top-level await (so that require('sidecarless') works on Node 20.19+).
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/** undici's module, as `import * as undici from 'undici'` gives it. */
export type UndiciModule = typeof Undici;

let loaded: UndiciModule | undefined;

/** undici, required once, on the first call: the same module object every later call returns. */
export function loadUndici(): UndiciModule {
  loaded ??= createRequire(import.meta.url)('undici') as UndiciModule;
  return loaded;
}
