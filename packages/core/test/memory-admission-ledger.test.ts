import { createMemoryAdmissionLedger } from '../src/index.js';
// Imported from its file, as the other core suites are, so core's tests do not load every suite.
import { runAdmissionLedgerConformance } from '../src/testing/admission-ledger-conformance.js';

runAdmissionLedgerConformance('memory', async () => createMemoryAdmissionLedger());
