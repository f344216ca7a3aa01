// The `sidecarless policy explain` command, for the CLI: parses its arguments, reads the files,
// prints the report (text or --json). Returns the exit code instead of exiting.
import { isSidecarlessError } from '../errors.js';
import { readIstioFiles } from './documents.js';
import { explainIstio, formatIstioExplanation } from './explain.js';

/** Where the command writes. */
export interface CommandOutput {
  out(text: string): void;
  err(text: string): void;
}

export const POLICY_EXPLAIN_USAGE = `usage: sidecarless policy explain -f <file|dir> [-f ...] --namespace <ns> [--labels k=v,k=v] --port <port>
                                  [--trust-domain cluster.local] [--root-namespace istio-system] [--json]
Prints the mTLS mode, the authorization rules and the client destinations Istio's YAML gives a workload.
`;

interface Parsed {
  readonly files: string[];
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly port: number;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly json: boolean;
}

/** Parses the arguments after `policy explain`; a string is the usage error. */
export function parsePolicyExplainArgs(argv: readonly string[]): Parsed | string {
  const files: string[] = [];
  const labels: Record<string, string> = {};
  let namespace: string | undefined;
  let port: number | undefined;
  let trustDomain = 'cluster.local';
  let rootNamespace = 'istio-system';
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '-f':
      case '--filename': {
        const v = value();
        if (v === undefined) return `${flag} needs a file or folder`;
        files.push(v);
        break;
      }
      case '-n':
      case '--namespace':
        namespace = value();
        break;
      case '-l':
      case '--labels': {
        const v = value() ?? '';
        for (const pair of v.split(',').filter(Boolean)) {
          const eq = pair.indexOf('=');
          if (eq <= 0) return `--labels takes k=v pairs separated by commas, got ${JSON.stringify(pair)}`;
          labels[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        break;
      }
      case '-p':
      case '--port': {
        const v = value();
        port = v !== undefined && /^\d{1,5}$/.test(v) ? Number(v) : Number.NaN;
        if (!(port >= 1 && port <= 65_535)) return `--port takes a port number, got ${JSON.stringify(v)}`;
        break;
      }
      case '--trust-domain':
        trustDomain = value() ?? '';
        break;
      case '--root-namespace':
        rootNamespace = value() ?? '';
        break;
      case '--json':
        json = true;
        break;
      default:
        return `unknown argument ${JSON.stringify(arg)}`;
    }
  }
  if (files.length === 0) return '-f is required';
  if (namespace === undefined) return '--namespace is required';
  if (port === undefined) return '--port is required';
  return { files, namespace, labels, port, trustDomain, rootNamespace, json };
}

/** Runs `sidecarless policy explain`: 0 on success, 2 for a usage error, 1 for a refused document. */
export function runPolicyExplain(argv: readonly string[], output: CommandOutput): number {
  const parsed = parsePolicyExplainArgs(argv);
  if (typeof parsed === 'string') {
    output.err(`sidecarless policy explain: ${parsed}\n${POLICY_EXPLAIN_USAGE}`);
    return 2;
  }
  try {
    const report = explainIstio(readIstioFiles(parsed.files), {
      namespace: parsed.namespace,
      labels: parsed.labels,
      port: parsed.port,
      trustDomain: parsed.trustDomain,
      rootNamespace: parsed.rootNamespace,
    });
    output.out(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : formatIstioExplanation(report));
    return 0;
  } catch (err) {
    if (!isSidecarlessError(err)) throw err;
    output.err(`sidecarless policy explain: ${err.code}: ${err.message}\n`);
    return 1;
  }
}
