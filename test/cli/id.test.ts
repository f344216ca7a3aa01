// `sidecarless id parse` as a spawned process: the library's parser, and for each refusal the
// code, the broken rule and the spec's reason.
import { describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../helpers/cli.js';

describe('sidecarless id parse', () => {
  it('prints the trust domain and the path segments of a valid ID', async () => {
    const { code, json } = await runCliJson(['id', 'parse', 'spiffe://cluster.local/ns/demo/sa/boards']);
    expect(code).toBe(0);
    expect(json).toEqual({
      ok: true,
      id: 'spiffe://cluster.local/ns/demo/sa/boards',
      trustDomain: 'cluster.local',
      path: '/ns/demo/sa/boards',
      segments: ['ns', 'demo', 'sa', 'boards'],
      istio: { namespace: 'demo', serviceAccount: 'boards' },
    });
    const text = await runCli(['id', 'parse', 'spiffe://example.org/web']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^trust domain +example\.org$/m);
    expect(text.stdout).toMatch(/^segments +"web"$/m);
  });

  // One row per rule the parser states: each refused with the code, the rule and a reason.
  const refused: [string, RegExp, RegExp][] = [
    ['cluster.local/ns/demo/sa/boards', /scheme is missing/, /Istio principal/],
    ['SPIFFE://cluster.local/x', /scheme must be lowercase/, /nothing is normalised/],
    ['spiffe://Cluster.local/x', /trust domain characters/, /§2\.1/],
    ['spiffe://cluster.local:8080/x', /port/, /§2\.1/],
    ['spiffe://user@cluster.local/x', /userinfo/, /§2\.1/],
    ['spiffe:///ns/x', /trust domain is missing/, /§2\.1/],
    ['spiffe://cluster.local/ns/../sa', /dot segments/, /climb out/],
    ['spiffe://cluster.local/ns//sa', /empty segments/, /never empty/],
    ['spiffe://cluster.local/ns/', /trailing slash/, /trailing/],
    ['spiffe://cluster.local/ns/a%2Fb', /percent-encoded/, /never decoded/],
    ['spiffe://cluster.local/ns/a b', /characters are limited/, /letters, digits/],
    ['spiffe://cluster.local/x?y=1', /query/, /no query or fragment/],
    ['spiffe://cluster.local/x#y', /fragment/, /no query or fragment/],
    [`spiffe://cluster.local/${'a'.repeat(2100)}`, /longer than 2048 bytes/, /§2\.3/],
    ['', /empty/, /names no workload/],
  ];
  for (const [input, rule, why] of refused) {
    it(`refuses ${JSON.stringify(input.slice(0, 40))} with ERR_SPIFFE_ID_INVALID and why`, async () => {
      const { code, json } = await runCliJson<{
        ok: boolean;
        error: { code: string; message: string; why: string };
      }>(['id', 'parse', input]);
      expect(code).toBe(1);
      expect(json.ok).toBe(false);
      expect(json.error.code).toBe('ERR_SPIFFE_ID_INVALID');
      expect(json.error.message).toMatch(rule);
      expect(json.error.why).toMatch(why);
    });
  }

  it('shows the refusal as text too, with exit code 1', async () => {
    const { code, stdout } = await runCli(['id', 'parse', 'spiffe://cluster.local/ns/../sa']);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^refused: ERR_SPIFFE_ID_INVALID$/m);
    expect(stdout).toMatch(/^why: SPIFFE-ID §2\.2/m);
  });

  it('is a usage error (2) without exactly one ID', async () => {
    const none = await runCli(['id', 'parse']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/missing <id>/);
    expect((await runCli(['id', 'parse', 'spiffe://a/b', 'spiffe://a/c'])).code).toBe(2);
    expect((await runCli(['id'])).code).toBe(2);
  });

  it('--help documents the exit codes', async () => {
    const { code, stdout } = await runCli(['id', 'parse', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Usage: sidecarless id parse <id>/);
    expect(stdout).toMatch(/Exit codes: 0 .* 1 refused/);
  });
});
