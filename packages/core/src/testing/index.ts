/**
 * Conformance suites, one per adapter interface. Every adapter package runs its interface's
 * suite from its own tests with one call, the way each tus store runs the shared store suite.
 * These import vitest: install it as a dev dependency where you use them.
 */
export { runCodecConformance } from './codec-conformance.js';
export { runCommandStoreConformance } from './command-store-conformance.js';
export {
  type DataSourceConformanceSetup,
  dataSourceFixture,
  runDataSourceConformance,
} from './data-source-conformance.js';
export { runObjectStorageConformance } from './object-storage-conformance.js';
