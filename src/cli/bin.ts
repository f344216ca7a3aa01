#!/usr/bin/env node
// The `sidecarless` executable: runs the CLI and exits with its code.
import { EXIT, main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`sidecarless: ${err.message}\n`);
    process.exitCode = EXIT.failed;
  },
);
