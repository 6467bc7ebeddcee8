import { checkColumnBatch, type ParquetColumnBatch } from './column-batch.js';
import {
  type ColumnEncoder,
  createColumnEncoder,
  type PageSlice,
  RowFailure,
  type Rows,
} from './column-encoder.js';
import { type ParquetCompression, type ResolvedCompression, resolveCompression } from './compression.js';
import { definitionLevelsSize, writeDefinitionLevels } from './definition-levels.js';
import { MAGIC } from './format-constants.js';
import {
  type ColumnChunkInfo,
  encodeDataPageHeader,
  encodeFileMetaData,
  type RowGroupInfo,
} from './parquet-thrift.js';
import { type ColumnSpec, normalizeColumns, type ParquetColumn } from './schema.js';

export interface ParquetWriterOptions {
  /** Rows per row group (default 65 536). Memory use is bounded by one row group. */
  rowGroupSize?: number;
  /** 'none' (default), or a `{ codec, compress }` page compressor supplied by the caller. */
  compression?: ParquetCompression;
  /** `FileMetaData.created_by` (default 'backhaul'). */
  createdBy?: string;
  /** A data page is closed once its values reach this many uncompressed bytes (default 1 MiB). */
  pageSize?: number;
  /**
   * A row group is also flushed early once its buffered column data reaches this many bytes
   * (default 64 MiB), so wide text/JSON rows cannot make one row group unbounded.
   */
  rowGroupBytes?: number;
}

const DEFAULT_ROW_GROUP_SIZE = 65_536;
const DEFAULT_PAGE_SIZE = 1 << 20;
const DEFAULT_ROW_GROUP_BYTES = 64 << 20;
/**
 * Rows are encoded in slices of at most this many rows: small enough that the byte budget is checked
 * often, large enough that each column's loop stays hot.
 */
const SLICE_ROWS = 4096;

interface PlannedPage {
  encoder: ColumnEncoder;
  page: PageSlice;
  header: Uint8Array;
  /** Definition-level bytes (length prefix included), 0 for a required column. */
  levelBytes: number;
  /** The compressed body, when a codec is in use; otherwise the body is copied from the encoder. */
  compressedBody: Uint8Array | undefined;
}

/**
 * Streaming Parquet writer: rows go in with `write()` (or column batches with `writeColumns()`), file
 * bytes come out as soon as a row group is complete, and `finish()` returns the last row group and the
 * footer. Concatenating every returned array, in order, gives the file.
 */
export class ParquetWriter {
  private readonly specs: ColumnSpec[];
  private readonly encoders: ColumnEncoder[];
  private readonly rowGroupSize: number;
  private readonly rowGroupBytes: number;
  private readonly compression: ResolvedCompression;
  private readonly createdBy: string;
  private readonly rowGroups: RowGroupInfo[] = [];
  /** Bytes produced so far, i.e. the file offset of the next byte. */
  private produced = 0;
  private returned = 0;
  /** Bytes produced but not yet handed out (a write() that throws leaves its finished row groups here). */
  private pending: Uint8Array[] = [];
  private groupRows = 0;
  private totalRows = 0;
  private state: 'open' | 'finished' | 'failed' = 'open';

  constructor(columns: ParquetColumn[], options: ParquetWriterOptions = {}) {
    this.specs = normalizeColumns(columns);
    this.rowGroupSize = positiveInteger(options.rowGroupSize, DEFAULT_ROW_GROUP_SIZE, 'rowGroupSize');
    this.rowGroupBytes = positiveInteger(options.rowGroupBytes, DEFAULT_ROW_GROUP_BYTES, 'rowGroupBytes');
    const pageSize = positiveInteger(options.pageSize, DEFAULT_PAGE_SIZE, 'pageSize');
    this.compression = resolveCompression(options.compression);
    this.createdBy = options.createdBy ?? 'backhaul';
    this.encoders = this.specs.map((spec) => createColumnEncoder(spec, pageSize));
  }

  /** Rows accepted so far (buffered or already flushed). */
  get rowCount(): number {
    return this.totalRows;
  }

  /** Bytes returned so far by write() and finish(). */
  get bytesWritten(): number {
    return this.returned;
  }

  /**
   * Appends rows (each an array aligned with the columns). Returns the bytes that became ready: empty
   * until a row group fills, then that row group (preceded by "PAR1" the first time).
   *
   * On a bad value it throws a TypeError (RangeError when out of range) naming the column and row; the
   * rows before the bad one are kept, the bad row and the rest of the batch are not, and any bytes already
   * produced by this call are returned by the next write() or finish().
   */
  write(rows: readonly (readonly unknown[])[]): Uint8Array[] {
    this.assertOpen();
    if (!Array.isArray(rows)) throw new TypeError('ParquetWriter.write expects an array of rows');
    let start = 0;
    while (start < rows.length) {
      const end = Math.min(rows.length, start + SLICE_ROWS, start + (this.rowGroupSize - this.groupRows));
      this.appendSlice(rows, start, end);
      start = end;
      this.flushIfFull();
    }
    return this.drain();
  }

  /**
   * Appends a column batch: one vector per column, values already in their PLAIN byte layout, so they are
   * copied in bulk instead of converted one by one. Same contract as `write()`: returns the bytes that
   * became ready. A batch is never split, so the row group it fills may overshoot `rowGroupSize` by less
   * than one batch (both limits are checked after each batch); batches whose sizes divide `rowGroupSize`
   * give the same file as `write()` with the same rows. `write()` and `writeColumns()` can be mixed.
   *
   * The whole batch is checked before anything is appended: a malformed one throws a TypeError (RangeError
   * for counts and lengths that do not add up) naming the column, nothing of it is kept, and the writer
   * stays usable.
   */
  writeColumns(batch: ParquetColumnBatch): Uint8Array[] {
    this.assertOpen();
    checkColumnBatch(this.specs, batch, this.totalRows);
    const { rowCount, vectors } = batch;
    if (rowCount > 0) {
      try {
        for (let c = 0; c < this.encoders.length; c++) this.encoders[c]!.appendVector(vectors[c]!, rowCount);
      } catch (error) {
        this.state = 'failed'; // only an allocation can fail here, after some columns took the batch
        throw error;
      }
      this.groupRows += rowCount;
      this.totalRows += rowCount;
      this.flushIfFull();
    }
    return this.drain();
  }

  /** Flushes the last row group and writes the footer; returns the remaining bytes. */
  finish(): Uint8Array[] {
    this.assertOpen();
    try {
      this.flushRowGroup();
      const footer = encodeFileMetaData({
        columns: this.specs,
        numRows: this.totalRows,
        rowGroups: this.rowGroups,
        createdBy: this.createdBy,
      });
      const leading = this.produced === 0 ? MAGIC.length : 0; // a file without row groups still opens with PAR1
      const out = new Uint8Array(leading + footer.length + 8);
      if (leading) out.set(MAGIC, 0);
      out.set(footer, leading);
      new DataView(out.buffer).setUint32(leading + footer.length, footer.length, true); // footer length, LE
      out.set(MAGIC, leading + footer.length + 4);
      this.emit(out);
    } catch (error) {
      this.state = 'failed';
      throw error;
    }
    this.state = 'finished';
    return this.drain();
  }

  private appendSlice(rows: Rows, start: number, end: number): void {
    const columnCount = this.encoders.length;
    let stop = end;
    let failure: RowFailure | undefined;
    for (let i = start; i < end; i++) {
      const row = rows[i];
      if (!Array.isArray(row) || row.length !== columnCount) {
        const shape = Array.isArray(row) ? `${row.length} values` : typeof row;
        failure = new RowFailure(
          i,
          new TypeError(`expected an array of ${columnCount} values, got ${shape}`),
        );
        stop = i;
        break;
      }
    }
    for (const encoder of this.encoders) encoder.snapshot();
    let column = 0;
    try {
      for (; column < columnCount; column++) this.encoders[column]!.append(rows, column, start, stop);
    } catch (error) {
      if (!(error instanceof RowFailure)) {
        this.state = 'failed';
        throw error;
      }
      // Columns before `column` took the whole slice; undo everything, then re-take only the good prefix
      // so every column holds the same rows.
      for (const encoder of this.encoders) encoder.rollback(stop - start);
      stop = error.index;
      failure = error;
      try {
        for (let c = 0; c < columnCount; c++) this.encoders[c]!.append(rows, c, start, stop);
      } catch (retryError) {
        this.state = 'failed'; // the values changed under us (getters, proxies): the buffers are inconsistent
        throw retryError instanceof RowFailure ? retryError.error : retryError;
      }
    }
    this.groupRows += stop - start;
    this.totalRows += stop - start;
    if (failure) throw this.describeFailure(failure, column, failure.index);
  }

  private describeFailure(failure: RowFailure, column: number, batchIndex: number): Error {
    const spec = this.specs[column];
    const where = spec
      ? `Parquet column "${spec.name}" (${spec.type}), row ${this.totalRows} (batch index ${batchIndex})`
      : `Parquet row ${this.totalRows} (batch index ${batchIndex})`;
    const cause = failure.error;
    const message = `${where}: ${cause instanceof Error ? cause.message : String(cause)}`;
    return cause instanceof RangeError
      ? new RangeError(message, { cause })
      : new TypeError(message, { cause });
  }

  private flushIfFull(): void {
    if (this.groupRows >= this.rowGroupSize || this.bufferedBytes() >= this.rowGroupBytes) {
      this.flushRowGroup();
    }
  }

  private bufferedBytes(): number {
    let total = 0;
    for (const encoder of this.encoders) total += encoder.bufferedBytes;
    return total;
  }

  /** Lays out the buffered row group as column chunks of data pages and emits it as one array. */
  private flushRowGroup(): void {
    if (this.groupRows === 0) return;
    const compress = this.compression.compress;
    const leading = this.produced === 0 ? MAGIC.length : 0;
    const groupStart = this.produced + leading;
    let offset = groupStart;
    let totalByteSize = 0;
    const plan: PlannedPage[] = [];
    const chunks: ColumnChunkInfo[] = [];

    for (const encoder of this.encoders) {
      const spec = encoder.spec;
      const chunkStart = offset;
      let uncompressedSize = 0;
      for (const page of encoder.pages()) {
        const nullCount = page.rowCount - page.valueCount;
        const levelBytes = spec.nullable ? definitionLevelsSize(page.rowCount, nullCount) : 0;
        const bodySize = levelBytes + encoder.pageValueBytes(page);
        let compressedBody: Uint8Array | undefined;
        if (compress) {
          const body = new Uint8Array(bodySize);
          writePageBody(encoder, page, levelBytes, body, 0);
          compressedBody = compress(body);
        }
        const header = encodeDataPageHeader({
          uncompressedPageSize: bodySize,
          compressedPageSize: compressedBody ? compressedBody.length : bodySize,
          numValues: page.rowCount,
          nullCount,
        });
        plan.push({ encoder, page, header, levelBytes, compressedBody });
        offset += header.length + (compressedBody ? compressedBody.length : bodySize);
        uncompressedSize += header.length + bodySize;
      }
      chunks.push({
        physicalType: spec.physicalType,
        path: spec.name,
        codec: this.compression.codec,
        numValues: encoder.rowCount,
        totalUncompressedSize: uncompressedSize,
        totalCompressedSize: offset - chunkStart,
        dataPageOffset: chunkStart,
        nullCount: encoder.rowCount - encoder.valueCount,
      });
      totalByteSize += uncompressedSize;
    }

    // One contiguous copy per row group: the encoders' buffers are reused right away, and a few large
    // arrays are cheaper for the consumer than thousands of small ones.
    const out = Buffer.allocUnsafeSlow(offset - this.produced);
    let pos = 0;
    if (leading) {
      out.set(MAGIC, 0);
      pos = leading;
    }
    for (const { encoder, page, header, levelBytes, compressedBody } of plan) {
      out.set(header, pos);
      pos += header.length;
      if (compressedBody) {
        out.set(compressedBody, pos);
        pos += compressedBody.length;
      } else {
        pos += writePageBody(encoder, page, levelBytes, out, pos);
      }
    }

    this.rowGroups.push({
      columns: chunks,
      numRows: this.groupRows,
      totalByteSize,
      totalCompressedSize: offset - groupStart,
      fileOffset: groupStart,
    });
    for (const encoder of this.encoders) encoder.reset();
    this.groupRows = 0;
    this.emit(out);
  }

  private emit(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.produced += bytes.length;
  }

  private drain(): Uint8Array[] {
    const ready = this.pending;
    this.pending = [];
    for (const bytes of ready) this.returned += bytes.length;
    return ready;
  }

  private assertOpen(): void {
    if (this.state === 'finished') throw new Error('ParquetWriter is finished');
    if (this.state === 'failed') throw new Error('ParquetWriter failed earlier and cannot continue');
  }
}

/** Page body of data page v1: definition levels (if the column is nullable), then the PLAIN values. */
function writePageBody(
  encoder: ColumnEncoder,
  page: PageSlice,
  levelBytes: number,
  out: Uint8Array,
  offset: number,
): number {
  let pos = offset;
  if (levelBytes > 0) {
    pos += writeDefinitionLevels(
      out,
      pos,
      encoder.definitionBits,
      page.rowStart,
      page.rowCount,
      page.rowCount - page.valueCount,
    );
  }
  pos += encoder.writePageValues(page, out, pos);
  return pos - offset;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`ParquetWriterOptions.${name} must be a positive integer, got ${value}`);
  }
  return value;
}
