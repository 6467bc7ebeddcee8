import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as testing from '@backhaul/core/testing';
import { describe, expect, it } from 'vitest';

/**
 * STYLE.md, habit 1: every adapter implements an interface declared in core and passes that
 * interface's conformance suite from `@backhaul/core/testing`. This test keeps the promise
 * checkable: a package that implements an interface (its src sets `specificationVersion: 'v1'`)
 * must be listed below, and its tests must call the suite of each interface it is listed under.
 */
type AdapterInterface = 'Codec' | 'ObjectStorage' | 'CommandStore' | 'CredentialStore' | 'DataSource';

const adapterInterfaces: Record<string, AdapterInterface[]> = {
  // identityCodec, createMemoryCommandStore and createMemoryCredentialStore live in core itself.
  core: ['Codec', 'CommandStore', 'CredentialStore'],
  'codec-lz4': ['Codec'],
  'codec-zstd': ['Codec'],
  'source-mysql': ['DataSource'],
  'source-postgres': ['DataSource'],
  'source-sqlite': ['DataSource'],
  'storage-fs': ['ObjectStorage'],
  'storage-minio': ['ObjectStorage'],
  'store-redis': ['CommandStore', 'CredentialStore'],
};

const packagesDir = fileURLToPath(new URL('../packages/', import.meta.url));
const packageNames = readdirSync(packagesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(packagesDir, entry.name, 'package.json')))
  .map((entry) => entry.name)
  .sort();

/** The TypeScript files under a package's folder, each with its comments removed. */
function sources(packageName: string, folder: 'src' | 'test', pattern = /\.ts$/): Map<string, string> {
  const root = join(packagesDir, packageName, folder);
  const files = new Map<string, string>();
  if (!existsSync(root)) return files;
  for (const path of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
    if (!pattern.test(path) || path.split(/[\\/]/).includes('node_modules')) continue;
    files.set(path, withoutComments(readFileSync(join(root, path), 'utf8')));
  }
  return files;
}

// A call that was commented out must not count; `//` after a colon or quote is a URL, not a comment.
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const implementsAnInterface = /\bspecificationVersion\s*[:=]\s*['"]v1['"]/;
const suiteName = (adapterInterface: AdapterInterface) => `run${adapterInterface}Conformance`;
const adapterRows = Object.entries(adapterInterfaces).flatMap(([packageName, interfaces]) =>
  interfaces.map((adapterInterface): [string, AdapterInterface] => [packageName, adapterInterface]),
);

describe('every package whose src implements an adapter interface is listed in the adapter table', () => {
  const implementers = packageNames.filter((name) =>
    [...sources(name, 'src').values()].some((source) => implementsAnInterface.test(source)),
  );

  it('finds the adapters at all (the scan itself works)', () => {
    expect(implementers).toEqual(expect.arrayContaining(['core', 'source-sqlite', 'storage-fs']));
  });

  it.each(implementers)('%s is listed', (packageName) => {
    expect(
      adapterInterfaces[packageName],
      `packages/${packageName}/src sets specificationVersion: 'v1': add it to adapterInterfaces`,
    ).toBeDefined();
  });
});

describe('every listed adapter exists and its src names the interface it is listed under', () => {
  it.each(adapterRows)('%s implements %s', (packageName, adapterInterface) => {
    const src = [...sources(packageName, 'src').values()];
    expect(src.length, `packages/${packageName}/src has no TypeScript files`).toBeGreaterThan(0);
    expect(src.some((source) => implementsAnInterface.test(source))).toBe(true);
    expect(src.some((source) => new RegExp(`\\b${adapterInterface}\\b`).test(source))).toBe(true);
  });
});

describe('every adapter interface has its conformance suite in @backhaul/core/testing', () => {
  const interfaces = [...new Set(adapterRows.map(([, adapterInterface]) => adapterInterface))];
  it.each(interfaces)('%s', (adapterInterface) => {
    expect(typeof (testing as Record<string, unknown>)[suiteName(adapterInterface)]).toBe('function');
  });
});

describe("every adapter's tests call the conformance suite of its interface", () => {
  it.each(adapterRows)('packages/%s/test calls the %s conformance suite', (packageName, adapterInterface) => {
    const call = new RegExp(`\\b${suiteName(adapterInterface)}\\s*\\(`);
    const callers = [...sources(packageName, 'test', /\.test\.ts$/)]
      .filter(([, source]) => call.test(source))
      .map(([path]) => path);
    expect(
      callers,
      `no *.test.ts under packages/${packageName}/test calls ${suiteName(adapterInterface)}(`,
    ).not.toHaveLength(0);
  });
});
