/**
 * Conformance suites, one per adapter interface. Every adapter package runs its interface's
 * suite from its own tests with one call, the way each tus store runs the shared store suite.
 * Beside them, what an adapter's own tests keep needing: a gate for a real service the tests run
 * against, and checks of cursors, errors, refused writes and streaming.
 * These import vitest: install it as a dev dependency where you use them.
 */
export { runAdmissionLedgerConformance } from './admission-ledger-conformance.js';
export { runClusterBusConformance } from './cluster-bus-conformance.js';
export { runCodecConformance } from './codec-conformance.js';
export { runCommandStoreConformance } from './command-store-conformance.js';
export { runCredentialStoreConformance } from './credential-store-conformance.js';
export { batchSizesOf, countRows } from './cursor-reading.js';
export {
  type DataSourceConformanceSetup,
  dataSourceFixture,
  runDataSourceConformance,
} from './data-source-conformance.js';
export { expectBackhaulError } from './expect-backhaul-error.js';
export { runObjectStorageConformance } from './object-storage-conformance.js';
export { runRowLogConformance } from './row-log-conformance.js';
export { probeService, type ServiceProbe, type ServiceProbeOptions } from './service-probe.js';
export { measureStreamedQuery, type StreamedQueryMeasurement } from './streamed-query-measurement.js';
export { runUploadLedgerConformance } from './upload-ledger-conformance.js';
export { itRefusesEachWrite, type WriteRefusalSetup } from './write-refusals.js';
