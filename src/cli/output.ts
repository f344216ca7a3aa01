// What the CLI prints: text for people (colours only on a terminal that wants them), or JSON.

/** Where a command writes, and how. */
export interface Output {
  /** Machine-readable output was asked for (`--json`). */
  readonly json: boolean;
  /** Writes one line of text (never in JSON mode). */
  line(text?: string): void;
  /** Writes a JSON document (only in JSON mode). */
  document(value: unknown): void;
  /** Writes to standard error, whatever the mode. */
  error(text: string): void;
  readonly colour: Colours;
}

/** The few colours the CLI uses; identity functions when colours are off. */
export interface Colours {
  bold(text: string): string;
  green(text: string): string;
  red(text: string): string;
  dim(text: string): string;
}

const PLAIN: Colours = { bold: (t) => t, green: (t) => t, red: (t) => t, dim: (t) => t };
const ANSI: Colours = {
  bold: (t) => `\x1b[1m${t}\x1b[22m`,
  green: (t) => `\x1b[32m${t}\x1b[39m`,
  red: (t) => `\x1b[31m${t}\x1b[39m`,
  dim: (t) => `\x1b[2m${t}\x1b[22m`,
};

/** Colours only on a terminal, and never with NO_COLOR set (no-color.org). */
function wantsColour(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
}

export function consoleOutput(json: boolean): Output {
  return {
    json,
    line: (text = '') => {
      if (!json) process.stdout.write(`${text}\n`);
    },
    document: (value) => {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    error: (text) => process.stderr.write(`${text}\n`),
    colour: !json && wantsColour(process.stdout) ? ANSI : PLAIN,
  };
}

/** Lays rows out in columns, as `istioctl` prints its tables. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] as number) + 4)))
      .join('')
      .trimEnd(),
  );
}
