#!/usr/bin/env node
import { runAdminCommand } from './admin-commands.js';

// The `backhaul-admin` program: the admin API from a shell (docs/deploy.md, "Enrolling gateways").
void runAdminCommand(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then((status) => {
  process.exitCode = status;
});
