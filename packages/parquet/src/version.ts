/**
 * The writer's identity in `FileMetaData.created_by`, in the `<name> version <x.y.z> (build <id>)` form
 * readers parse (parquet-mr, DuckDB and Arrow use it to recognise a writer's known quirks).
 */
import { createRequire } from 'node:module';

/** Set by the build (tsup `define`) to the commit it was built from; `dev` when run from source. */
declare const __BACKHAUL_BUILD__: string | undefined;

// src/ and dist/ both sit one level under the package root.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export const PACKAGE_VERSION: string = version;
export const BUILD: string = typeof __BACKHAUL_BUILD__ === 'string' ? __BACKHAUL_BUILD__ : 'dev';
export const DEFAULT_CREATED_BY = `backhaul version ${PACKAGE_VERSION} (build ${BUILD})`;
