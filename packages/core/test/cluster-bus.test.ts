import { createMemoryClusterBus, createMemoryRowLog } from '@backhaul/core';
// Imported from their files rather than `@backhaul/core/testing`, as memory-command-store.test.ts does.
import { runClusterBusConformance } from '../src/testing/cluster-bus-conformance.js';
import { runRowLogConformance } from '../src/testing/row-log-conformance.js';

// One process is one instance: both "instances" of the suites are the same bus and log.
const bus = createMemoryClusterBus();
runClusterBusConformance('memory', async () => bus);
const log = createMemoryRowLog();
runRowLogConformance('memory', async () => log);
