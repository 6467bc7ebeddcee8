import { expect, it } from 'vitest';
import type { DataSource } from '../data-source.js';
import type { BackhaulError } from '../errors.js';
import { countRows } from './cursor-reading.js';
import { expectBackhaulError } from './expect-backhaul-error.js';

export interface WriteRefusalSetup {
  /** The source under test; called inside the tests, so it may be created in `beforeAll`. */
  source: () => DataSource;
  /** The statements to refuse, as [what it is, its SQL], in the order they run (on one session if the pool has one). */
  refused: readonly (readonly [what: string, sql: () => string])[];
  /** Rows of the fixture table, counted outside the source (an admin connection). */
  tableRows: () => Promise<number>;
  /** How many rows the fixture table holds before, and so after, every refusal. */
  rowCount: number;
  /** More to check after each refusal, e.g. that no row changed its value. */
  unchanged?: () => Promise<void>;
}

/**
 * One test per write a SQL source must refuse: the gateway must never change the database it was
 * given, whatever the SQL looks like. Each refusal is a `BackhaulError` 'query-failed' (the server
 * refused) or 'bad-request' (the source refused before sending it), and the table is unchanged.
 */
export function itRefusesEachWrite(setup: WriteRefusalSetup): void {
  for (const [what, sql] of setup.refused) {
    it(`refuses ${what} with 'query-failed' or 'bad-request', table unchanged`, async () => {
      const before = await setup.tableRows();
      const failure: BackhaulError = await expectBackhaulError(() => countRows(setup.source(), sql()));
      expect(['query-failed', 'bad-request']).toContain(failure.code);
      expect(await setup.tableRows()).toBe(before);
      expect(before).toBe(setup.rowCount);
      await setup.unchanged?.();
    });
  }
}
