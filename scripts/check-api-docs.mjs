// Every public export must have TSDoc with an @example, and every @example must compile
// against the published types. Reads api-extractor's doc model (temp/*.api.json).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const models = [
  'sidecarless',
  'sidecarless-testing',
  'sidecarless-istio',
  'sidecarless-grpc',
  'sidecarless-metrics',
];
const missing = [];
const examples = [];

function walk(item, path, topLevel) {
  const doc = item.docComment ?? '';
  const name = [...path, item.name].filter(Boolean).join('.');
  if (topLevel && !/@example/.test(doc)) missing.push(name);
  for (const [, code] of doc.matchAll(/```ts\n([\s\S]*?)```/g)) {
    examples.push({ name, code: code.replace(/^\s*\* ?/gm, '') });
  }
  for (const member of item.members ?? []) walk(member, [...path, item.name], false);
}

for (const model of models) {
  const json = JSON.parse(readFileSync(join(root, 'temp', `${model}.api.json`), 'utf8'));
  for (const entry of json.members) for (const item of entry.members) walk(item, [], true);
}

// The README's TypeScript snippets are held to the same standard.
for (const [, code] of readFileSync(join(root, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)) {
  examples.push({ name: 'README.md', code });
}

if (missing.length > 0) {
  console.error(`exports without an @example in their TSDoc:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}

const dir = join(root, 'temp', 'examples');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
examples.forEach(({ name, code }, i) => {
  writeFileSync(join(dir, `example-${i}.ts`), `// ${name}\n${code}\nexport {};\n`);
});
writeFileSync(
  join(dir, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(root, 'node_modules/@types')],
      paths: {
        sidecarless: [join(root, 'dist/index.d.ts')],
        'sidecarless/testing': [join(root, 'dist/testing/index.d.ts')],
        'sidecarless/istio': [join(root, 'dist/istio/index.d.ts')],
        'sidecarless/grpc': [join(root, 'dist/grpc/index.d.ts')],
        'sidecarless/metrics': [join(root, 'dist/metrics/index.d.ts')],
      },
      // Examples show usage, not error handling: `err` in a catch is unknown.
      useUnknownInCatchVariables: false,
    },
    include: ['*.ts'],
  }),
);
try {
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', dir], { stdio: 'inherit' });
} catch {
  console.error(`some @example blocks do not compile (files in ${dir}; the first line names the API item)`);
  process.exit(1);
}
console.log(`${examples.length} @example and README blocks compile; every export has one`);
