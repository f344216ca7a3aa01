// `sidecarless describe <url>` as a spawned process against a real server in the test process:
// a PERMISSIVE sidecarless server with mTLS and plaintext callers, a dispatcher, and the
// statusHandler() they are described by on a loopback admin port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../../src/testing/index.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { listen } from '../helpers/server.js';
import { BOARDS, HOSTILE_PATH, startStatusWorld, UI } from '../helpers/status-world.js';

const ca = createTestCa();
afterAll(() => ca.close());

describe('sidecarless describe', () => {
  it('prints the listener and outbound tables, the rules and the edges', async () => {
    const world = await startStatusWorld(ca);
    const result = await runCli(['describe', world.adminUrl]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    const header = lines.findIndex((l) => /^HOST:PORT\s+CERTIFICATE\s+VALIDATE PEER CERTIFICATE$/.test(l));
    expect(header).toBeGreaterThan(-1);
    expect(lines[header + 1]).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:${world.port}\\s+${BOARDS} \\(expires in \\d+m\\)\\s+when presented: plaintext is accepted too \\(PERMISSIVE\\)$`,
      ),
    );
    const outbound = lines.findIndex((l) =>
      /^HOST:PORT\s+CERTIFICATE\s+VALIDATE PEER CERTIFICATE\s+CLIENT$/.test(l),
    );
    expect(lines[outbound + 1]).toMatch(
      new RegExp(`^127\\.0\\.0\\.1:${world.port}\\s+${UI}\\s+yes: ${BOARDS}\\s+ui-dispatcher$`),
    );
    expect(result.stdout).toMatch(
      /authorize\s+\/items\s+\[spiffe:\/\/cluster\.local\/ns\/demo\/sa\/app-ui, unauthenticated\]/,
    );
    expect(result.stdout).toMatch(
      new RegExp(
        `in\\s+127\\.0\\.0\\.1:${world.port}\\s+${UI} -> ${BOARDS}\\s+mTLS\\s+3\\s+1\\s+ERR_NOT_AUTHORIZED`,
      ),
    );
    expect(result.stdout).toMatch(
      new RegExp(
        `in\\s+127\\.0\\.0\\.1:${world.port}\\s+unauthenticated -> ${BOARDS}\\s+plaintext\\s+2\\s+1`,
      ),
    );
    expect(result.stdout).toContain(HOSTILE_PATH);
    expect(result.stdout).not.toContain('secret-query');
    expect(result.stdout).toMatch(new RegExp(`SVID ${BOARDS} \\(expires in \\d+m\\)`));
    expect(result.stdout).toContain('last error: none');
  });

  it('--json carries the status document', async () => {
    const world = await startStatusWorld(ca);
    const { code, json } = await runCliJson<{
      ok: boolean;
      report: { servers: { mode: string; id: string }[] };
    }>(['describe', world.adminUrl]);
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.report.servers[0]).toMatchObject({ mode: 'PERMISSIVE', id: BOARDS });
  });

  it('exits 1 for an endpoint that is down, refuses, or is no status page; 2 for bad usage', async () => {
    const other = http.createServer((req, res) => {
      if (req.url?.startsWith('/forbidden')) {
        res.statusCode = 403;
        res.end('the status page answers loopback callers only\n');
      } else res.end('{"hello":"world"}');
    });
    const { port } = await listen(other);
    const notStatus = await runCliJson<{ ok: boolean; problem: { kind: string } }>([
      'describe',
      `http://127.0.0.1:${port}/`,
    ]);
    expect(notStatus.code).toBe(1);
    expect(notStatus.json.problem.kind).toBe('not-a-status-document');
    const forbidden = await runCli(['describe', `http://127.0.0.1:${port}/forbidden`]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('HTTP 403');

    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const down = await runCliJson<{ problem: { kind: string } }>([
      'describe',
      `http://127.0.0.1:${closedPort}/`,
    ]);
    expect(down.code).toBe(1);
    expect(down.json.problem.kind).toBe('unreachable');

    expect((await runCli(['describe'])).code).toBe(2);
    expect((await runCli(['describe', 'ftp://x/'])).code).toBe(2);
    expect((await runCli(['describe', 'not a url'])).code).toBe(2);
    const help = await runCli(['describe', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0');
  });
});
