// The `sidecarless` command. Each subcommand is a row of COMMANDS: its name, one line of help,
// its usage and its options, parsed with node:util's parseArgs (unknown options are refused).
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { runDemo } from './demo.js';
import { consoleOutput, type Output } from './output.js';

/** Exit codes, documented in `sidecarless --help`. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2 });

/** A command whose options parseArgs reads. */
interface ParsedCommand {
  readonly summary: string;
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, unknown>, positionals: string[], out: Output): Promise<number>;
}

/** A command with subcommands and its own parser: it takes the raw arguments. */
interface RawCommand {
  readonly summary: string;
  readonly usage: string;
  runRaw(argv: readonly string[]): Promise<number>;
}

type Command = ParsedCommand | RawCommand;

const JSON_OPTION = { json: { type: 'boolean', default: false } } as const;

const COMMANDS: Record<string, Command> = {
  demo: {
    summary:
      'replay the service-mesh lab on loopback: DISABLE, STRICT, secure naming, authorization, PERMISSIVE, rotation',
    usage: 'sidecarless demo [--json]',
    options: JSON_OPTION,
    run: (_values, _positionals, out) => runDemo(out),
  },
  policy: {
    summary:
      "policy explain: the mTLS mode, authorization rules and destinations Istio's YAML gives a workload",
    usage:
      'sidecarless policy explain -f <file|dir> [-f ...] --namespace <ns> [--labels k=v,...] --port <port> [--json]',
    runRaw: async (argv) => {
      const [sub, ...rest] = argv;
      if (sub !== 'explain') {
        process.stderr.write(
          `sidecarless policy: ${sub === undefined ? 'a subcommand is needed' : `unknown subcommand "${sub}"`}\n` +
            `Usage: ${COMMANDS.policy?.usage}\n`,
        );
        return EXIT.usage;
      }
      // Loaded on demand: the YAML parser stays out of every other command.
      const { runPolicyExplain, POLICY_EXPLAIN_USAGE } = await import('../istio/explain-command.js');
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(POLICY_EXPLAIN_USAGE);
        return EXIT.ok;
      }
      return runPolicyExplain(rest, {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
      });
    },
  },
};

function help(): string {
  const names = Object.keys(COMMANDS);
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

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help()}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`sidecarless: unknown command "${name}"\n\n${help()}\n`);
    return EXIT.usage;
  }
  if ('runRaw' in command) return command.runRaw(rest);
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
    process.stdout.write(`${command.summary}\n\nUsage: ${command.usage}\n`);
    return EXIT.ok;
  }
  return command.run(parsed.values, parsed.positionals, consoleOutput(parsed.values.json === true));
}
