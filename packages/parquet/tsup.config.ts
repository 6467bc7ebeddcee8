import { execSync } from 'node:child_process';
import { defineConfig } from 'tsup';

/** The commit in `created_by`; a build outside a git checkout says so. */
function build(): string {
  try {
    return execSync('git rev-parse --short=10 HEAD', {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  shims: true,
  define: { __BACKHAUL_BUILD__: JSON.stringify(build()) },
});
