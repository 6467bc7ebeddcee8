import { createMemoryCredentialStore } from '@backhaul/core';
// Imported from its file rather than `@backhaul/core/testing`, as memory-command-store.test.ts does.
import { runCredentialStoreConformance } from '../src/testing/credential-store-conformance.js';

runCredentialStoreConformance('memory', async () => createMemoryCredentialStore());
