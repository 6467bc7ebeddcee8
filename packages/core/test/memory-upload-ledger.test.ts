import { createMemoryUploadLedger } from '@backhaul/core';
// Imported from its file rather than `@backhaul/core/testing`, as memory-command-store.test.ts does.
import { runUploadLedgerConformance } from '../src/testing/upload-ledger-conformance.js';

runUploadLedgerConformance('memory', async () => createMemoryUploadLedger());
