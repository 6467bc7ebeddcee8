/**
 * A list column's buffered row group: the standard three-level LIST, whose one leaf (`element`) holds
 * every element of every row, with repetition and definition levels saying where rows start and what is
 * missing (https://github.com/apache/parquet-format/blob/master/Dremel.md).
 *
 * Each row becomes one or more leaf slots: a slot per element, or a single valueless slot for a NULL or
 * empty list. The leaf's values go through the element type's own flat encoder, which sees a slot as a
 * row and a valueless slot as a NULL; so the values, the dictionary and the statistics of a list chunk
 * are exactly those of a flat column of its elements. What a flat column does not have is kept here:
 *
 * - repetition level per slot: 0 where a row starts, 1 for the next elements of the same row;
 * - definition level per slot (for a nullable list): 0 NULL list, 1 empty list, 2 NULL element,
 *   3 element present (one less each for a required list, which has no NULL);
 * - page cuts, which fall between rows only (a row split over two pages trips readers that skip pages).
 */
import type { ParquetColumnVector } from './column-batch.js';
import {
  type ColumnEncoder,
  createColumnEncoder,
  type PageSlice,
  RowFailure,
  type Rows,
  slicePages,
} from './column-encoder.js';
import { describeValue } from './decimal.js';
import { PhysicalType } from './format-constants.js';
import { GrowableBuffer } from './growable-buffer.js';
import { bitWidthFor, writeHybrid } from './rle-hybrid.js';
import { type ColumnSpec, nullInRequired } from './schema.js';

/** The leaf encoder never cuts pages itself: this encoder cuts them at row boundaries. */
const NO_PAGE_LIMIT = Number.MAX_SAFE_INTEGER;

export class ListColumnEncoder {
  /** Leaf slots of the current row group (what a page header and the chunk count as values). */
  rowCount = 0;
  /** Elements present among them. */
  valueCount = 0;
  readonly spec: ColumnSpec;
  readonly #leaf: ColumnEncoder;
  readonly #pageSizeLimit: number;
  readonly #maxDefinition: number;
  readonly #fixedWidth: number;
  #repetition = new Uint32Array(8192);
  #definition = new Uint32Array(8192);
  /** Where the leaf's PLAIN values end, in the unit its page slices use (values for BOOLEAN, else bytes). */
  #leafEnd = 0;
  #pageStart = 0;
  /** Page boundaries as flat (slotEnd, valueEnd, leafEnd) triples, as `ColumnEncoder` keeps them. */
  #cuts: number[] = [];
  #saved = [0, 0, 0, 0, 0];
  /** Leaf slots reserved since `snapshot()`, including those of a failed append. */
  #attempted = 0;

  constructor(spec: ColumnSpec, pageSizeLimit: number) {
    if (!spec.element) throw new TypeError(`Parquet column "${spec.name}" is not a list`);
    this.spec = spec;
    this.#leaf = createColumnEncoder(spec.element, NO_PAGE_LIMIT);
    this.#maxDefinition = spec.nullable ? 3 : 2;
    const physical = spec.element.physicalType;
    // Unit widths of the walk in #cutPages; 0 for BYTE_ARRAY, whose values carry their length.
    this.#fixedWidth =
      physical === PhysicalType.BOOLEAN
        ? 1
        : physical === PhysicalType.INT32
          ? 4
          : physical === PhysicalType.FIXED_LEN_BYTE_ARRAY
            ? spec.element.typeLength
            : physical === PhysicalType.BYTE_ARRAY
              ? 0
              : 8;
    // A boolean page holds 8 values per byte, as BooleanEncoder counts them.
    this.#pageSizeLimit = physical === PhysicalType.BOOLEAN ? pageSizeLimit * 8 : pageSizeLimit;
  }

  /** Appends `rows[start..end)[col]`, each an array or NULL; throws RowFailure for the first bad row. */
  append(rows: Rows, col: number, start: number, end: number): void {
    const empty = this.#maxDefinition - 2;
    const slots: unknown[][] = [];
    const slotRows: number[] = [];
    let failure: RowFailure | undefined;
    let first = this.rowCount;
    for (let i = start; i < end; i++) {
      const list = rows[i]![col];
      let count = 0;
      if (list === null || list === undefined) {
        if (!this.spec.nullable) {
          failure = new RowFailure(i, nullInRequired());
          break;
        }
      } else if (!Array.isArray(list)) {
        failure = new RowFailure(i, new TypeError(`expected an array (a list), got ${describeValue(list)}`));
        break;
      } else {
        count = list.length;
      }
      this.#reserveLevels(first + Math.max(1, count));
      if (count === 0) {
        this.#repetition[first] = 0;
        this.#definition[first++] = list === null || list === undefined ? 0 : empty;
        slots.push([null]);
        slotRows.push(i);
        continue;
      }
      for (let k = 0; k < count; k++) {
        const element = (list as unknown[])[k];
        this.#repetition[first] = k === 0 ? 0 : 1;
        this.#definition[first++] =
          element === null || element === undefined ? this.#maxDefinition - 1 : this.#maxDefinition;
        slots.push([element]);
        slotRows.push(i);
      }
    }
    this.#attempted += slots.length;
    try {
      this.#leaf.append(slots, 0, 0, slots.length);
    } catch (error) {
      if (!(error instanceof RowFailure)) throw error;
      throw new RowFailure(slotRows[error.index]!, error.error);
    }
    this.#commit(slots.length);
    if (failure) throw failure;
  }

  /**
   * Appends a list vector of `rowCount` rows, checked by `checkColumnBatch`: `data` holds a uint32
   * element count per non-null row, `elements` the elements of those rows in order (a vector of the
   * element type, one row per element).
   */
  appendVector(vector: ParquetColumnVector, rowCount: number): void {
    const elements = vector.elements!;
    const counts = new DataView(vector.data.buffer, vector.data.byteOffset, vector.data.byteLength);
    const slotCount = rowCount - vector.valueCount + countSlots(counts, vector.valueCount);
    const present = new Uint8Array((slotCount + 7) >>> 3);
    this.#reserveLevels(this.rowCount + slotCount);
    const rep = this.#repetition;
    const def = this.#definition;
    const max = this.#maxDefinition;
    const { validity } = vector;
    const elementValidity = elements.validity;
    let slot = 0;
    let listIndex = 0;
    let element = 0;
    for (let r = 0; r < rowCount; r++) {
      const at = this.rowCount + slot;
      if (validity && (validity[r >>> 3]! & (1 << (r & 7))) === 0) {
        rep[at] = 0;
        def[at] = 0;
        slot++;
        continue;
      }
      const count = counts.getUint32(4 * listIndex++, true);
      if (count === 0) {
        rep[at] = 0;
        def[at] = max - 2;
        slot++;
        continue;
      }
      for (let k = 0; k < count; k++, element++, slot++) {
        rep[at + k] = k === 0 ? 0 : 1;
        if (elementValidity && (elementValidity[element >>> 3]! & (1 << (element & 7))) === 0) {
          def[at + k] = max - 1;
        } else {
          def[at + k] = max;
          present[slot >>> 3]! |= 1 << (slot & 7);
        }
      }
    }
    this.#attempted += slotCount;
    this.#leaf.appendVector(
      { data: elements.data, valueCount: elements.valueCount, validity: present },
      slotCount,
    );
    this.#commit(slotCount);
  }

  /** Takes `slotCount` new slots whose levels are written and whose values the leaf holds; cuts pages. */
  #commit(slotCount: number): void {
    const def = this.#definition;
    const rep = this.#repetition;
    const max = this.#maxDefinition;
    const width = this.#fixedWidth;
    const limit = this.#pageSizeLimit;
    const bytes = this.#leaf.plainBytes;
    let unit = this.#leafEnd;
    let values = this.valueCount;
    for (let s = this.rowCount, end = this.rowCount + slotCount; s < end; s++) {
      if (rep[s] === 0 && unit - this.#pageStart >= limit) {
        this.#cuts.push(s, values, unit);
        this.#pageStart = unit;
      }
      if (def[s] === max) {
        unit += width === 0 ? 4 + bytes.readUInt32LE(unit) : width;
        values++;
      }
    }
    this.#leafEnd = unit;
    this.rowCount += slotCount;
    this.valueCount = values;
  }

  #reserveLevels(slots: number): void {
    if (slots <= this.#repetition.length) return;
    const size = Math.max(slots, this.#repetition.length * 2);
    const rep = new Uint32Array(size);
    rep.set(this.#repetition);
    const def = new Uint32Array(size);
    def.set(this.#definition);
    this.#repetition = rep;
    this.#definition = def;
  }

  /** The page's repetition then definition levels, each RLE/bit-packed and prefixed by its byte length. */
  pageLevels(page: PageSlice): Uint8Array {
    const out = new GrowableBuffer(64 + (page.rowCount >>> 1));
    writeLevels(this.#repetition, page, 1, out);
    writeLevels(this.#definition, page, bitWidthFor(this.#maxDefinition + 1), out);
    return out.bytes.subarray(0, out.length);
  }

  get bufferedBytes(): number {
    return this.#leaf.bufferedBytes + this.rowCount;
  }

  get plainBytes(): Buffer {
    return this.#leaf.plainBytes;
  }

  pageValueBytes(page: PageSlice): number {
    return this.#leaf.pageValueBytes(page);
  }

  writePageValues(page: PageSlice, out: Uint8Array, offset: number): number {
    return this.#leaf.writePageValues(page, out, offset);
  }

  pages(): PageSlice[] {
    return slicePages(this.#cuts, this.rowCount, this.valueCount, this.#leafEnd);
  }

  reset(): void {
    this.#leaf.reset();
    this.rowCount = 0;
    this.valueCount = 0;
    this.#leafEnd = 0;
    this.#pageStart = 0;
    this.#cuts = [];
  }

  snapshot(): void {
    this.#leaf.snapshot();
    this.#saved = [this.rowCount, this.valueCount, this.#leafEnd, this.#cuts.length, this.#pageStart];
    this.#attempted = 0;
  }

  /** Undoes the appends since `snapshot()` (the writer's rows count is of no use here: slots differ). */
  rollback(_sliceRows: number): void {
    this.#leaf.rollback(this.#attempted);
    [this.rowCount, this.valueCount, this.#leafEnd] = this.#saved as [number, number, number];
    this.#cuts.length = this.#saved[3]!;
    this.#pageStart = this.#saved[4]!;
    this.#attempted = 0;
  }
}

/** Total elements of `lists` non-null rows, from their uint32 counts. */
function countSlots(counts: DataView, lists: number): number {
  let total = 0;
  for (let k = 0; k < lists; k++) total += Math.max(1, counts.getUint32(4 * k, true));
  return total;
}

function writeLevels(levels: Uint32Array, page: PageSlice, bitWidth: number, out: GrowableBuffer): void {
  out.reserve(4);
  const lengthAt = out.length;
  out.length += 4;
  writeHybrid(levels, page.rowStart, page.rowCount, bitWidth, out);
  out.view.setUint32(lengthAt, out.length - lengthAt - 4, true);
}
