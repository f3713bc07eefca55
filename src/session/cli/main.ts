#!/usr/bin/env node
import 'reflect-metadata';
import { runCli } from './cli.js';

/** The `nest-pg-session` command (package.json `bin`); `nest-pg-session --help` lists the commands and exit codes. */
runCli(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
