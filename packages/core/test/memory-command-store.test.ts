import { createMemoryCommandStore } from '@backhaul/core';
// Imported from its file rather than `@backhaul/core/testing` so core's own tests do not depend
// on every other suite that index re-exports; adapters use the subpath.
import { runCommandStoreConformance } from '../src/testing/command-store-conformance.js';

runCommandStoreConformance('memory', async () => createMemoryCommandStore());
