// Node's built-in modules that the package takes as CommonJS exports rather than through an ES
// import. Importing a built-in as ESM builds its namespace, which reads every export, lazy ones
// included: on Node 24 `node:http`'s namespace reads `http.WebSocket` and so loads Node's own
// bundled undici, http2, zlib and web streams (about 9 MB of RSS, bench/README.md "Import cost").
// process.getBuiltinModule (Node 20.16+) returns the exports object and reads nothing.

/** `node:http`, as `require('node:http')` gives it. */
export const nodeHttp = process.getBuiltinModule('node:http');

/** `node:tls`, as `require('node:tls')` gives it (its namespace computes `tls.rootCertificates`). */
export const nodeTls = process.getBuiltinModule('node:tls');
