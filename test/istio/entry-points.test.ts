// The main entry point must not load `yaml` (nor anything of src/istio): only sidecarless/istio
// does. Walks the static import graph of the sources, as the bundler does.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every module reachable from `entry`: relative files resolved, packages by name. */
function graph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    // Type-only imports vanish from the build; value imports and re-exports stay.
    for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gms)) {
      if (m[1] !== undefined) continue;
      const spec = m[2] as string;
      if (spec.startsWith('.')) todo.push(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      else
        packages.add(
          spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string),
        );
    }
  }
  return { files, packages };
}

describe('entry points', () => {
  it('the main entry point does not reach yaml or src/istio', () => {
    const main = graph(join(src, 'index.ts'));
    expect(main.files.size).toBeGreaterThan(50);
    expect([...main.packages]).not.toContain('yaml');
    expect([...main.files].filter((f) => f.includes(`${join(src, 'istio')}/`))).toEqual([]);
    expect(graph(join(src, 'testing/index.ts')).packages).not.toContain('yaml');
  });

  it('sidecarless/istio does load yaml (the control: the walk finds it)', () => {
    expect([...graph(join(src, 'istio/index.ts')).packages]).toContain('yaml');
  });
});
