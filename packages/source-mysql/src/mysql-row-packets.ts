import type { Query } from 'mysql2';
import type { RowPacket } from './mysql-column-decoding.js';

/** A state of mysql2's command state machine: handles one packet, returns the next state (or null). */
type CommandState = (this: unknown, packet: RowPacket & { isEOF(): boolean }, connection: unknown) => unknown;

/**
 * Hands each row packet of `query`'s result to `onRow`, undecoded, instead of mysql2's row parser.
 *
 * Why this route: mysql2 runs a query as a Command whose states each handle one packet; the state
 * that reads rows is looked up as `this.row` once the column definitions end. Replacing that one
 * state on this query keeps everything else mysql2 does for the row path — parameter escaping, the
 * result header and column definitions, errors, pause/resume, the end of the result (EOF or OK
 * packet) and further result sets — so the two paths differ only in how a row's cells are read.
 * The alternatives were worse: a `typeCast` is called per cell with a wrapper whose `string()` and
 * `buffer()` make a value per cell (what this avoids), and a Command of our own would re-implement
 * COM_QUERY's whole result-set protocol. The cursor fails loudly if a future mysql2 stops reading
 * rows through `this.row` (it would receive parsed rows as 'result' events instead).
 *
 * Call before the query's first packet arrives, i.e. right after `connection.query()`.
 */
export function readRowPackets(query: Query, onRow: (packet: RowPacket) => void): void {
  const command = query as unknown as { row?: CommandState };
  const parsedRow = command.row;
  if (typeof parsedRow !== 'function') throw new Error('mysql2 query has no row state to read rows from');
  const rawRow: CommandState = function (this: unknown, packet, connection) {
    // The end of the rows is mysql2's: the next result set, or the end of the command.
    if (packet.isEOF()) return parsedRow.call(this, packet, connection);
    onRow(packet);
    return rawRow;
  };
  command.row = rawRow;
}
