// After tsup: the published .d.ts files import Node's modules as namespaces, so that consumers do
// not need esModuleInterop (a default import of 'node:http' in a .d.ts does). The JavaScript keeps
// default imports: they read Node's live module object, which tests and tools patch (dns.lookup).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIST = new URL('../dist/', import.meta.url).pathname;

function* declarations(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* declarations(path);
    else if (entry.name.endsWith('.d.ts')) yield path;
  }
}

let rewritten = 0;
for (const file of declarations(DIST)) {
  const text = readFileSync(file, 'utf8');
  const next = text
    // import http from 'node:http';  ->  import * as http from 'node:http';
    .replace(/^import ([A-Za-z_$][\w$]*) from '(node:[\w/]+)';$/gm, "import * as $1 from '$2';")
    // import tls, { TLSSocket } from 'node:tls';  ->  two imports
    .replace(
      /^import ([A-Za-z_$][\w$]*), (\{[^}]*\}) from '(node:[\w/]+)';$/gm,
      "import * as $1 from '$3';\nimport $2 from '$3';",
    );
  if (next !== text) {
    writeFileSync(file, next);
    rewritten++;
  }
}
console.log(`dts-node-imports: ${rewritten} declaration files use namespace imports of node: modules`);
