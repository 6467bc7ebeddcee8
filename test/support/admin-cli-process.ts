import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
const script = (name: string) =>
  fileURLToPath(new URL(`../../packages/client/src/${name}.ts`, import.meta.url));

export interface CliOutcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `backhaul-admin` as an operator would, as a process of its own: from the TypeScript source
 * through tsx (as test/support/server-process.ts runs the server), so no stale dist/ is tested.
 */
export function runBackhaulAdmin(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliOutcome> {
  return runProgram('admin-cli', args, env);
}

/** Runs the `backhaul` program the same way. */
export function runBackhaulCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliOutcome> {
  return runProgram('cli', args, env);
}

function runProgram(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<CliOutcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', script(name), ...args], {
    cwd: repositoryRoot,
    env: {
      ...process.env,
      BACKHAUL_SERVER_URL: undefined,
      BACKHAUL_ADMIN_TOKEN: undefined,
      BACKHAUL_TOKEN: undefined,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
