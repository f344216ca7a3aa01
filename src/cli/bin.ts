#!/usr/bin/env node
// The `sidecarless` executable: runs the CLI and exits with its code.
import { EXIT, main } from './main.js';

// A reader that went away (`sidecarless demo | head -3`) is no failure of the command: stop
// quietly, as other command-line tools do, instead of crashing on an unhandled EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? EXIT.ok);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`sidecarless: ${err.message}\n`);
    process.exitCode = EXIT.failed;
  },
);
