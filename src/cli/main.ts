// The `sidecarless` command. Each subcommand is a row of COMMANDS: its name (one word, or a group
// and a word: `ca init`), one line of help, its usage, its options (parsed with node:util's
// parseArgs; unknown options are refused), its help text and its exit codes. A command's code is
// imported only when it runs, so `--help` loads none of the library.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { consoleOutput, type Output } from './output.js';
import { UsageError } from './usage.js';

/** Exit codes, documented in `sidecarless --help` and in each command's help. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2 });

type Options = NonNullable<ParseArgsConfig['options']>;

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  /** Lines after the usage in `--help`: each option, then what the exit codes mean here. */
  readonly help: readonly string[];
  /** The command parses its own arguments (repeatable flags, k=v lists): it gets them all as positionals. */
  readonly ownParser?: true;
  run(values: Record<string, unknown>, positionals: string[], out: Output): Promise<number>;
}

const JSON_OPTION = { json: { type: 'boolean', default: false } } as const;

const COMMANDS: Record<string, Command> = {
  demo: {
    summary:
      'replay the service-mesh lab on loopback: DISABLE, STRICT, secure naming, authorization, PERMISSIVE, rotation, check',
    usage: 'sidecarless demo [--json]',
    options: JSON_OPTION,
    help: ['Exit codes: 0 every step behaved as in the lab, 1 a step did not, 2 bad usage.'],
    run: async (_values, _positionals, out) => (await import('./demo.js')).runDemo(out),
  },
  check: {
    summary:
      "probe a server's port and infer its mTLS mode (STRICT, PERMISSIVE, DISABLE), as the lab's listener table",
    usage:
      'sidecarless check <host:port> [--path /] [--cert-dir DIR | --workload-api ADDR] [--expect ID] [--timeout 5s] [--json]',
    options: {
      ...JSON_OPTION,
      path: { type: 'string' },
      'cert-dir': { type: 'string' },
      'workload-api': { type: 'string' },
      expect: { type: 'string' },
      timeout: { type: 'string' },
    },
    help: [
      'Three probes on the path: plaintext HTTP; TLS without a client certificate; mTLS with our identity.',
      "The server certificate is verified against our identity's bundle; without an identity it is shown",
      'as UNVERIFIED and the mTLS probe is skipped. A probe cannot see remote rules: RBAC is "unknown".',
      '',
      'Options:',
      '  --path P            the request path of every probe (default /)',
      "  --cert-dir DIR      our identity from files in Istio's names: cert-chain.pem, key.pem, root-cert.pem",
      '  --workload-api A    our identity from the SPIFFE Workload API (unix:///path or tcp://ip:port);',
      '                      default: $SPIFFE_ENDPOINT_SOCKET when neither flag is given',
      '  --expect ID         the SPIFFE ID (or peer matcher) the server must prove (default: any ID our bundle trusts)',
      '  --timeout D         per probe (default 5s)',
      '',
      'Exit codes: 0 a mode was inferred (and, with an identity, the server verified and accepted it),',
      '            1 no mode could be inferred, the server certificate did not verify, our identity was',
      '              refused, or the identity could not be loaded, 2 bad usage.',
    ],
    run: async (values, positionals, out) => (await import('./check.js')).runCheck(values, positionals, out),
  },
  describe: {
    summary:
      "read a running process's status endpoint (statusHandler): listener and outbound tables, rules, edges, identities",
    usage: 'sidecarless describe <url> [--timeout 5s] [--json]',
    options: { ...JSON_OPTION, timeout: { type: 'string' } },
    help: [
      'Reads the JSON of the statusHandler() the process serves on its admin port (it answers loopback',
      'callers only unless mounted behind an authorization rule), as ?format=json, and prints:',
      '  listeners: HOST:PORT  CERTIFICATE  VALIDATE PEER CERTIFICATE (from the mTLS mode)',
      '  outbound:  HOST:PORT  CERTIFICATE  VALIDATE PEER CERTIFICATE (the SPIFFE ID the server proved)',
      "  each server's authorization rules, every edge (the listener or client it used, lock, requests,",
      '  refusals, last refusal),',
      "  and each identity source's SVIDs, bundle authorities, last rotation and last error.",
      'With --json: { ok, url, report } (the status document as served), or { ok: false, url, problem }.',
      '',
      'Options:',
      '  --timeout D         for the request (default 5s)',
      '',
      'Exit codes: 0 the status was read and printed, 1 the endpoint was unreachable, answered other than',
      '            200 (403: not a loopback caller) or did not send a status document, 2 bad usage.',
    ],
    run: async (values, positionals, out) =>
      (await import('./describe.js')).runDescribe(values, positionals, out),
  },
  'ca init': {
    summary: 'create a development CA in a directory (Istio cacerts names), optionally under a plug-in root',
    usage:
      'sidecarless ca init --dir D [--trust-domain cluster.local] [--ttl 24h] [--intermediate] [--root-cert F --root-key F | --root-cert F --ca-cert F --ca-key F] [--json]',
    options: {
      ...JSON_OPTION,
      dir: { type: 'string' },
      'trust-domain': { type: 'string' },
      ttl: { type: 'string' },
      'root-ttl': { type: 'string' },
      intermediate: { type: 'boolean', default: false },
      'root-cert': { type: 'string' },
      'root-key': { type: 'string' },
      'ca-cert': { type: 'string' },
      'ca-key': { type: 'string' },
    },
    help: [
      'Writes ca.json, root-cert.pem, ca-cert.pem, ca-key.pem (0600) and cert-chain.pem in D (created 0700),',
      "the layout of Istio's cacerts secret; with a generated intermediate also root-key.pem (0600).",
      'Refuses a directory that already holds a CA.',
      '',
      'Options:',
      '  --dir D             the CA directory (required)',
      '  --trust-domain TD   the trust domain of issued SVIDs (default cluster.local)',
      '  --ttl D             default lifetime of SVIDs from "ca issue" (default 24h, as Istio)',
      '  --root-ttl D        lifetime of a generated root or intermediate (default 365d)',
      '  --intermediate      sign SVIDs with a generated intermediate under the root',
      '  --root-cert F       a plug-in root certificate (PEM) instead of a generated root',
      '  --root-key F        its private key: the root signs (or, with --intermediate, signs the intermediate)',
      '  --ca-cert F         a plug-in intermediate (PEM, itself first, then any further intermediates)',
      '  --ca-key F          its private key',
      '',
      'Exit codes: 0 the CA was written, 1 a file was unreadable or refused (code shown), 2 bad usage.',
    ],
    run: async (values, positionals, out) => (await import('./ca.js')).runCaInit(values, positionals, out),
  },
  'ca issue': {
    summary: 'issue an X509-SVID from a CA directory, written as cert-chain.pem, key.pem, root-cert.pem',
    usage: 'sidecarless ca issue --dir D --id spiffe://td/ns/x/sa/y --out DIR [--ttl 24h] [--json]',
    options: {
      ...JSON_OPTION,
      dir: { type: 'string' },
      id: { type: 'string' },
      out: { type: 'string' },
      ttl: { type: 'string' },
    },
    help: [
      "The files are Istio's names, read by fileIdentity({ preset: 'istio', dir }) and check --cert-dir.",
      'Each file is replaced atomically (written aside, then renamed); key.pem is mode 0600.',
      '',
      'Options:',
      '  --dir D             the CA directory written by "ca init" (required)',
      "  --id ID             the SVID's SPIFFE ID, or its path (/ns/x/sa/y), in the CA's trust domain (required)",
      '  --out DIR           where to write the three files (required; created when missing)',
      "  --ttl D             lifetime (default: the CA's --ttl), clamped to the CA certificate's",
      '',
      'Exit codes: 0 the SVID was written, 1 the CA could not be read or refused the ID (code shown), 2 bad usage.',
    ],
    run: async (values, positionals, out) => (await import('./ca.js')).runCaIssue(values, positionals, out),
  },
  'ca bundle': {
    summary: "print a CA directory's trust bundle as PEM or as a SPIFFE bundle (JWKS)",
    usage: 'sidecarless ca bundle --dir D [--format pem|spiffe] [--json]',
    options: { ...JSON_OPTION, dir: { type: 'string' }, format: { type: 'string' } },
    help: [
      'Options:',
      '  --dir D             the CA directory written by "ca init" (required)',
      '  --format F          pem (default: root-cert.pem as it is) or spiffe (the SPIFFE bundle JSON document)',
      '',
      'Exit codes: 0 printed, 1 the CA could not be read (code shown), 2 bad usage.',
    ],
    run: async (values, positionals, out) => (await import('./ca.js')).runCaBundle(values, positionals, out),
  },
  'id parse': {
    summary: 'parse a SPIFFE ID: its trust domain and path segments, or why it is refused',
    usage: 'sidecarless id parse <id> [--json]',
    options: JSON_OPTION,
    help: [
      'Parses exactly as servers and clients do (SPIFFE-ID spec, nothing normalised).',
      '',
      'Exit codes: 0 a valid SPIFFE ID, 1 refused (the error code and the broken rule are shown), 2 bad usage.',
    ],
    run: async (values, positionals, out) => (await import('./id.js')).runIdParse(values, positionals, out),
  },
  'policy explain': {
    summary: "the mTLS mode, authorization rules and client destinations Istio's YAML gives a workload",
    usage:
      'sidecarless policy explain -f <file|dir> [-f ...] --namespace <ns> [--labels k=v,...] --port <port> [--json]',
    options: JSON_OPTION,
    ownParser: true,
    help: [
      'Reads Istio YAML (PeerAuthentication or v1alpha1 Policy, AuthorizationPolicy, DestinationRule) as',
      'sidecarless/istio does, and names the object that decided each answer.',
      '',
      'Options:',
      '  -f, --filename F      a YAML file or a folder of them (repeatable; required)',
      '  -n, --namespace NS    the workload namespace (required)',
      '  -l, --labels k=v,...  the workload labels',
      '  -p, --port P          the workload port (required)',
      '  --trust-domain TD     default cluster.local',
      '  --root-namespace NS   default istio-system',
      '',
      'Exit codes: 0 explained, 1 a document was refused (code shown), 2 bad usage.',
    ],
    run: async (_values, positionals) => {
      // Loaded on demand: the YAML parser stays out of every other command.
      const { runPolicyExplain } = await import('../istio/explain-command.js');
      return runPolicyExplain(positionals, {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
      });
    },
  },
};

const GROUPS = new Set(Object.keys(COMMANDS).flatMap((n) => (n.includes(' ') ? [n.split(' ')[0]] : [])));

function help(names = Object.keys(COMMANDS)): string {
  const width = Math.max(...names.map((n) => n.length));
  return [
    'sidecarless — in-process SPIFFE mTLS for Node.js',
    '',
    'Usage: sidecarless <command> [options]',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]?.summary}`),
    '',
    'Options (every command):',
    '  --json   machine-readable output',
    "  --help   this help, or a command's",
    '',
    `Exit codes: ${EXIT.ok} success, ${EXIT.failed} the command ran and something failed, ${EXIT.usage} bad usage.`,
  ].join('\n');
}

function commandHelp(command: Command): string {
  return [command.summary, '', `Usage: ${command.usage}`, '', ...command.help].join('\n');
}

/** A command failed for a reason with a stable code (a library error): the code and the message. */
function failure(err: unknown): { code: string; message: string } | undefined {
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  if (e?.name === 'SidecarlessError' && typeof e.code === 'string' && typeof e.message === 'string') {
    return { code: e.code, message: e.message };
  }
  return undefined;
}

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(`${help()}\n`);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  const grouped = second !== undefined && COMMANDS[`${first} ${second}`] !== undefined;
  const name = grouped ? `${first} ${second}` : first;
  const rest = argv.slice(grouped ? 2 : 1);
  const command = COMMANDS[name];
  if (command === undefined) {
    if (GROUPS.has(first)) {
      // `sidecarless ca` or `sidecarless ca --help`: the group's commands.
      const names = Object.keys(COMMANDS).filter((n) => n.startsWith(`${first} `));
      const asked = second === '--help' || second === '-h';
      const text = help(names);
      if (asked) process.stdout.write(`${text}\n`);
      else
        process.stderr.write(
          `sidecarless: ${second === undefined ? `"${first}" needs a command` : `unknown command "${first} ${second}"`}\n\n${text}\n`,
        );
      return asked ? EXIT.ok : EXIT.usage;
    }
    process.stderr.write(`sidecarless: unknown command "${name}"\n\n${help()}\n`);
    return EXIT.usage;
  }
  if (command.ownParser === true) {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return EXIT.ok;
    }
    return command.run({}, [...rest], consoleOutput(rest.includes('--json')));
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: 'boolean', short: 'h', default: false } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`sidecarless ${name}: ${(err as Error).message}\nUsage: ${command.usage}\n`);
    return EXIT.usage;
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return EXIT.ok;
  }
  const out = consoleOutput(parsed.values.json === true);
  try {
    return await command.run(parsed.values, parsed.positionals, out);
  } catch (err) {
    if (err instanceof UsageError) {
      out.error(`sidecarless ${name}: ${err.message}\nUsage: ${command.usage}`);
      out.document({ ok: false, usage: { flag: err.flag, message: err.message } });
      return EXIT.usage;
    }
    const known = failure(err);
    if (known === undefined) throw err;
    out.error(`sidecarless ${name}: ${known.code}: ${known.message}`);
    out.document({ ok: false, error: known });
    return EXIT.failed;
  }
}
