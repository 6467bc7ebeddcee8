import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/**
 * Debian's headless Chromium (the package `chromium`) driven by playwright-core, for tests of the
 * pages the server serves. No browser is downloaded: a machine without the package skips the
 * suites that need it (and fails them in CI, BACKHAUL_REQUIRE_SERVICES=1).
 */

/** The binary, from BACKHAUL_CHROMIUM or where the Debian package puts it; undefined when not installed. */
export function findChromium(): string | undefined {
  const candidates = [process.env.BACKHAUL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((path): path is string => path !== undefined && path !== '' && existsSync(path));
}

export interface RunningChromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh headless Chromium with its own profile: nothing from an earlier run, no network of its own. */
export async function launchChromium(executablePath: string): Promise<RunningChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'backhaul-chromium-'));
  // Playwright takes the profile directory itself (it refuses `--user-data-dir` among the args).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    viewport: { width: 1280, height: 900 },
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
