import { checkColumnBatch, type ParquetColumnBatch } from './column-batch.js';
import {
  type ChunkEncoder,
  DEFAULT_DICTIONARY_PAGE_SIZE,
  type EncodedChunk,
  encodeChunk,
} from './column-chunk.js';
import { createColumnEncoder, RowFailure, type Rows } from './column-encoder.js';
import { type ParquetCompression, type ResolvedCompression, resolveCompression } from './compression.js';
import { MAGIC } from './format-constants.js';
import { ListColumnEncoder } from './list-encoder.js';
import {
  type ColumnChunkInfo,
  encodeDataPageHeader,
  encodeDictionaryPageHeader,
  encodeFileMetaData,
  type RowGroupInfo,
} from './parquet-thrift.js';
import { type ColumnSpec, columnPath, normalizeColumns, type ParquetColumn } from './schema.js';
import { DEFAULT_CREATED_BY } from './version.js';

export interface ParquetWriterOptions {
  /** At most this many rows per row group (default 1 048 576, pyarrow's cap). */
  rowGroupSize?: number;
  /**
   * A row group is flushed once its buffered (PLAIN, uncompressed) column data reaches this many bytes
   * (default 128 MiB, parquet-mr's and Spark's `parquet.block.size`). Memory use is bounded by one row group.
   */
  rowGroupBytes?: number;
  /**
   * Page compression: 'none' (default), 'snappy', 'zstd' (level 3) or `{ codec: 'zstd', level }`, or a
   * `{ codec, compress | compressAsync }` codec of your own. zstd is asynchronous: use `writeAsync`,
   * `writeColumnsAsync` and `finishAsync` (or `encodeParquet`), which also compress pages in parallel.
   */
  compression?: ParquetCompression;
  /** Dictionary-encode the columns where it pays (default true; see README). */
  dictionary?: boolean;
  /** A chunk falls back to PLAIN when its dictionary's PLAIN size passes this (default 1 MiB). */
  dictionaryPageSize?: number;
  /** `FileMetaData.created_by` (default `backhaul version <version> (build <build>)`). */
  createdBy?: string;
  /** A data page is closed once its values reach this many uncompressed bytes (default 1 MiB). */
  pageSize?: number;
}

export const DEFAULT_ROW_GROUP_SIZE = 1 << 20;
const DEFAULT_PAGE_SIZE = 1 << 20;
export const DEFAULT_ROW_GROUP_BYTES = 128 << 20;

/** A row group whose pages are encoded but not yet placed in the file. */
interface EncodedRowGroup {
  numRows: number;
  chunks: EncodedChunk[];
  /**
   * With an asynchronous codec: every page body compressed, in `bodiesOf` order. Each chunk's pages are
   * handed to the codec as soon as the chunk is encoded, so the thread pool compresses one column while
   * this thread encodes the next.
   */
  compressed: Promise<Uint8Array[]> | undefined;
}
/**
 * Rows are encoded in slices of at most this many rows: small enough that the byte budget is checked
 * often, large enough that each column's loop stays hot.
 */
const SLICE_ROWS = 4096;

/**
 * Streaming Parquet writer: rows go in with `write()` (or column batches with `writeColumns()`), file
 * bytes come out as soon as a row group is complete, and `finish()` returns the last row group and the
 * footer. Concatenating every returned array, in order, gives the file.
 */
export class ParquetWriter {
  private readonly specs: ColumnSpec[];
  private readonly encoders: ChunkEncoder[];
  private readonly rowGroupSize: number;
  private readonly rowGroupBytes: number;
  private readonly compression: ResolvedCompression;
  private readonly createdBy: string;
  /** 0 when dictionary encoding is off. */
  private readonly dictionaryPageSize: number;
  /** Row groups encoded but not yet compressed and emitted (the async path compresses them later). */
  private encoded: EncodedRowGroup[] = [];
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
    this.createdBy = options.createdBy ?? DEFAULT_CREATED_BY;
    this.dictionaryPageSize =
      options.dictionary === false
        ? 0
        : positiveInteger(options.dictionaryPageSize, DEFAULT_DICTIONARY_PAGE_SIZE, 'dictionaryPageSize');
    this.encoders = this.specs.map((spec) =>
      spec.element ? new ListColumnEncoder(spec, pageSize) : createColumnEncoder(spec, pageSize),
    );
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
    this.assertSync('write');
    this.writeRows(rows);
    return this.drain();
  }

  /** `write()` for any compression: zstd pages are compressed off the main thread, in parallel. */
  async writeAsync(rows: readonly (readonly unknown[])[]): Promise<Uint8Array[]> {
    try {
      this.writeRows(rows);
    } finally {
      await this.settle();
    }
    return this.drain();
  }

  private writeRows(rows: readonly (readonly unknown[])[]): void {
    this.assertOpen();
    if (!Array.isArray(rows)) throw new TypeError('ParquetWriter.write expects an array of rows');
    let start = 0;
    while (start < rows.length) {
      const end = Math.min(rows.length, start + SLICE_ROWS, start + (this.rowGroupSize - this.groupRows));
      this.appendSlice(rows, start, end);
      start = end;
      this.flushIfFull();
    }
    return;
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
    this.assertSync('writeColumns');
    this.appendColumns(batch);
    return this.drain();
  }

  /** `writeColumns()` for any compression (see `writeAsync`). */
  async writeColumnsAsync(batch: ParquetColumnBatch): Promise<Uint8Array[]> {
    try {
      this.appendColumns(batch);
    } finally {
      await this.settle();
    }
    return this.drain();
  }

  private appendColumns(batch: ParquetColumnBatch): void {
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
    return;
  }

  /** Flushes the last row group and writes the footer; returns the remaining bytes. */
  finish(): Uint8Array[] {
    this.assertSync('finish');
    this.assertOpen();
    this.guard(() => this.flushRowGroup());
    return this.writeFooter();
  }

  /** `finish()` for any compression (see `writeAsync`). */
  async finishAsync(): Promise<Uint8Array[]> {
    this.assertOpen();
    this.guard(() => this.flushRowGroup());
    await this.settle();
    return this.writeFooter();
  }

  private writeFooter(): Uint8Array[] {
    this.guard(() => {
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
    });
    this.state = 'finished';
    return this.drain();
  }

  private guard(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.state = 'failed';
      throw error;
    }
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

  /**
   * Encodes the buffered row group into pages (dictionary, statistics) so the encoders can take the next
   * one; with a synchronous codec (or none) it is compressed and emitted at once, else by `settle()`.
   */
  private flushRowGroup(): void {
    if (this.groupRows === 0) return;
    const { compress, compressAsync } = this.compression;
    const deferred = !compress && compressAsync;
    const chunks: EncodedChunk[] = [];
    const pending: Promise<Uint8Array>[] = [];
    for (const encoder of this.encoders) {
      const chunk = encodeChunk(encoder, this.dictionaryPageSize);
      chunks.push(chunk);
      if (deferred) for (const body of bodiesOf([chunk])) pending.push(compressAsync(body));
    }
    let compressed: Promise<Uint8Array[]> | undefined;
    if (deferred) {
      compressed = Promise.all(pending);
      compressed.catch(() => {}); // awaited by settle(); a failure must not surface as unhandled before
    }
    this.encoded.push({ numRows: this.groupRows, chunks, compressed });
    for (const encoder of this.encoders) encoder.reset();
    this.groupRows = 0;
    if (!deferred) {
      for (const group of this.encoded)
        this.place(group, compress ? bodiesOf(group.chunks).map(compress) : bodiesOf(group.chunks));
      this.encoded = [];
    }
  }

  /** Waits for the pending row groups' compression and emits them in order. */
  private async settle(): Promise<void> {
    try {
      while (this.encoded.length > 0) {
        const group = this.encoded[0]!;
        const bodies = group.compressed ? await group.compressed : bodiesOf(group.chunks);
        this.encoded.shift();
        this.place(group, bodies);
      }
    } catch (error) {
      this.state = 'failed';
      throw error;
    }
  }

  /** Lays out a row group's pages (`stored`: their bodies as written, in `bodiesOf` order) and emits it. */
  private place(group: EncodedRowGroup, stored: readonly Uint8Array[]): void {
    const leading = this.produced === 0 ? MAGIC.length : 0;
    const groupStart = this.produced + leading;
    let offset = groupStart;
    let totalByteSize = 0;
    let next = 0;
    const parts: Uint8Array[] = [];
    const chunks: ColumnChunkInfo[] = [];
    for (const chunk of group.chunks) {
      const chunkStart = offset;
      let uncompressedSize = 0;
      let dictionaryPageOffset: number | undefined;
      if (chunk.dictionary) {
        const body = stored[next++]!;
        const header = encodeDictionaryPageHeader({
          uncompressedPageSize: chunk.dictionary.body.length,
          compressedPageSize: body.length,
          numValues: chunk.dictionary.count,
        });
        parts.push(header, body);
        dictionaryPageOffset = offset;
        offset += header.length + body.length;
        uncompressedSize += header.length + chunk.dictionary.body.length;
      }
      const dataPageOffset = offset;
      for (const page of chunk.pages) {
        const body = stored[next++]!;
        const header = encodeDataPageHeader({
          uncompressedPageSize: page.body.length,
          compressedPageSize: body.length,
          numValues: page.rowCount,
          nullCount: page.nullCount,
          encoding: page.encoding,
          minMax: page.minMax,
        });
        parts.push(header, body);
        offset += header.length + body.length;
        uncompressedSize += header.length + page.body.length;
      }
      chunks.push({
        physicalType: chunk.spec.physicalType,
        path: columnPath(chunk.spec),
        codec: this.compression.codec,
        numValues: chunk.numValues,
        totalUncompressedSize: uncompressedSize,
        totalCompressedSize: offset - chunkStart,
        dataPageOffset,
        dictionaryPageOffset,
        nullCount: chunk.nullCount,
        minMax: chunk.minMax,
      });
      totalByteSize += uncompressedSize;
    }

    // One contiguous array per row group: a few large arrays are cheaper for the consumer than
    // thousands of small ones.
    const out = Buffer.allocUnsafeSlow(offset - this.produced);
    let pos = 0;
    if (leading) {
      out.set(MAGIC, 0);
      pos = leading;
    }
    for (const part of parts) {
      out.set(part, pos);
      pos += part.length;
    }
    this.rowGroups.push({
      columns: chunks,
      numRows: group.numRows,
      totalByteSize,
      totalCompressedSize: offset - groupStart,
      fileOffset: groupStart,
    });
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

  private assertSync(method: string): void {
    if (!this.compression.compress && this.compression.compressAsync) {
      throw new TypeError(
        `ParquetWriter.${method}: this compression is asynchronous; use ${method}Async() (or encodeParquet)`,
      );
    }
  }

  private assertOpen(): void {
    if (this.state === 'finished') throw new Error('ParquetWriter is finished');
    if (this.state === 'failed') throw new Error('ParquetWriter failed earlier and cannot continue');
  }
}

/** Every page body of column chunks in file order: per chunk, its dictionary page then its data pages. */
function bodiesOf(chunks: readonly EncodedChunk[]): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (const chunk of chunks) {
    if (chunk.dictionary) bodies.push(chunk.dictionary.body);
    for (const page of chunk.pages) bodies.push(page.body);
  }
  return bodies;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`ParquetWriterOptions.${name} must be a positive integer, got ${value}`);
  }
  return value;
}
