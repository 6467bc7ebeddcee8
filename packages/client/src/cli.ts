#!/usr/bin/env node
import { runCallerCommand } from './caller-commands.js';

// The `backhaul` program: the caller API from a shell (docs/operations.md, "CLI").
void runCallerCommand(
  process.argv.slice(2),
  process.env,
  { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
  { interactive: process.stderr.isTTY === true },
).then((status) => {
  process.exitCode = status;
});
