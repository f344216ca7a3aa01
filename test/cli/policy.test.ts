// `sidecarless policy explain` as a user runs it: the built bin, spawned, on the lab's own YAML
// (the v1alpha1 Policy "default" with STRICT peers and the ISTIO_MUTUAL DestinationRule).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempFiles } from '../helpers/server.js';

const BIN = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));

const LAB_YAML = `apiVersion: authentication.istio.io/v1alpha1
kind: Policy
metadata:
  name: "default"
  namespace: "microservices-demo"
spec:
  peers:
  - mtls:
      mode: STRICT
---
apiVersion: "networking.istio.io/v1alpha3"
kind: "DestinationRule"
metadata:
  name: "destinationrule-mtls-istio-mutual"
  namespace: "microservices-demo"
spec:
  host: "*.microservices-demo.svc.cluster.local"
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
`;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" (npm install does it)`);
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function labFile(contents = LAB_YAML): string {
  return tempFiles({ 'lab.yaml': contents })['lab.yaml'] as string;
}

describe('sidecarless policy explain', () => {
  it("prints the lab's STRICT mode and ISTIO_MUTUAL destination, naming the deciding objects", async () => {
    const file = labFile();
    const { code, stdout, stderr } = await run([
      'policy',
      'explain',
      '-f',
      file,
      '--namespace',
      'microservices-demo',
      '--port',
      '8080',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('STRICT');
    expect(stdout).toContain('Policy/microservices-demo/default');
    expect(stdout).toContain('*.microservices-demo.svc.cluster.local');
  });

  it('--json gives the same report as data', async () => {
    const file = labFile();
    const { code, stdout } = await run([
      'policy',
      'explain',
      `--filename=${file}`,
      '-n',
      'microservices-demo',
      '-p',
      '8080',
      '--json',
    ]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.mode).toMatchObject({ mode: 'STRICT', decidedBy: 'Policy/microservices-demo/default' });
    expect(report.destinations[0]).toMatchObject({
      key: '*.microservices-demo.svc.cluster.local',
      mode: 'mtls',
      source: 'DestinationRule/microservices-demo/destinationrule-mtls-istio-mutual',
    });
  });

  it('a refused document exits 1 with its code and the file named', async () => {
    const file = labFile(
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: demo }\nspec: { mtls: { mode: LOOSE } }\n',
    );
    const { code, stderr } = await run(['policy', 'explain', '-f', file, '-n', 'demo', '-p', '8080']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/ERR_[A-Z_]+/);
    expect(stderr).toContain('LOOSE');
    expect(stderr).toContain(file);
  });

  it('usage errors exit 2; --help and the top-level help list the command', async () => {
    expect((await run(['policy'])).code).toBe(2);
    expect((await run(['policy', 'frobnicate'])).stderr).toContain('unknown command "policy frobnicate"');
    const missing = await run(['policy', 'explain', '-n', 'demo']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('-f is required');
    const help = await run(['policy', 'explain', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: sidecarless policy explain');
    expect((await run(['--help'])).stdout).toMatch(/^ {2}policy explain +the mTLS mode/m);
  });
});
