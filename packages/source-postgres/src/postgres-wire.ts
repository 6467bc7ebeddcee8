import pg from 'pg';

/**
 * The few pieces of PostgreSQL's frontend/backend protocol (version 3) that the columnar reader
 * speaks itself, on a connection pg opened and authenticated. pg's own parser turns every field of
 * every DataRow into a JS string before anything can look at it; reading the messages here lets
 * the decoder take each field's bytes where they lie.
 */

/** Backend message type bytes ("Message Formats" in the PostgreSQL docs). */
export const Backend = {
  ParseComplete: 0x31, // '1'
  BindComplete: 0x32, // '2'
  ParameterDescription: 0x74, // 't'
  RowDescription: 0x54, // 'T'
  NoData: 0x6e, // 'n'
  DataRow: 0x44, // 'D'
  PortalSuspended: 0x73, // 's'
  CommandComplete: 0x43, // 'C'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  ReadyForQuery: 0x5a, // 'Z'
} as const;

/** One whole backend message: its type byte and its body `bytes[start, end)`. */
export type MessageHandler = (type: number, bytes: Buffer, start: number, end: number) => void;

/**
 * Cuts a byte stream into whole messages. A message split across socket reads is kept until the
 * rest arrives; everything else is handed over in place, without a copy.
 */
export class MessageFramer {
  /** The pieces of a message that a socket read cut off, and how many bytes of it have arrived. */
  #partial: Buffer[] = [];
  #partialLength = 0;
  /** The cut-off message's whole size, once its header has arrived. */
  #partialSize = 0;

  constructor(private readonly onMessage: MessageHandler) {}

  push(chunk: Buffer): void {
    let at = 0;
    if (this.#partialLength > 0) {
      at = this.#completePartial(chunk);
      if (this.#partialLength > 0) return;
    }
    while (chunk.length - at >= 5) {
      const end = at + 1 + messageLength(chunk, at);
      if (end > chunk.length) break;
      this.onMessage(chunk[at]!, chunk, at + 5, end);
      at = end;
    }
    if (at < chunk.length) {
      this.#partial = [chunk.subarray(at)];
      this.#partialLength = chunk.length - at;
    }
  }

  /** Bytes received past the last whole message (none, once a conversation ended cleanly). */
  get heldBytes(): number {
    return this.#partialLength;
  }

  /**
   * Feeds the cut-off message from the start of `chunk` and hands it out once whole; returns how
   * many bytes of `chunk` it took. Only that message is copied, once, and what is held follows what
   * arrived, never what a header claims.
   */
  #completePartial(chunk: Buffer): number {
    let taken = 0;
    if (this.#partialLength < 5) {
      taken = Math.min(5 - this.#partialLength, chunk.length);
      this.#take(chunk.subarray(0, taken));
      if (this.#partialLength < 5) return taken;
    }
    if (this.#partialSize === 0) {
      const first = this.#partial[0]!;
      this.#partialSize = 1 + messageLength(first.length >= 5 ? first : Buffer.concat(this.#partial), 0);
    }
    const size = this.#partialSize;
    const more = Math.min(size - this.#partialLength, chunk.length - taken);
    this.#take(chunk.subarray(taken, taken + more));
    taken += more;
    if (this.#partialLength === size) {
      const message = Buffer.concat(this.#partial, size);
      this.#partial = [];
      this.#partialLength = 0;
      this.#partialSize = 0;
      this.onMessage(message[0]!, message, 5, size);
    }
    return taken;
  }

  #take(piece: Buffer): void {
    this.#partial.push(piece);
    this.#partialLength += piece.length;
  }
}

/**
 * PostgreSQL allocates no message above 1 GiB (MaxAllocSize); a longer length is a broken or
 * hostile stream, refused before anything is held for it.
 */
const MAX_MESSAGE_LENGTH = 0x40000000;

function messageLength(bytes: Buffer, at: number): number {
  const length = bytes.readInt32BE(at + 1);
  if (length < 4 || length > MAX_MESSAGE_LENGTH) {
    throw new Error(`PostgreSQL sent a message with length ${length}`);
  }
  return length;
}

/** A frontend message: type byte, int32 length (itself included), body. */
function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

const cstring = (text: string) => Buffer.from(`${text}\0`, 'utf8');
const int16 = (value: number) => {
  const out = Buffer.allocUnsafe(2);
  out.writeInt16BE(value);
  return out;
};
const int32 = (value: number) => {
  const out = Buffer.allocUnsafe(4);
  out.writeInt32BE(value);
  return out;
};

/** Parse (unnamed statement, parameter types left to the server) + Describe it + Flush. */
export function parseAndDescribe(sql: string): Buffer {
  return Buffer.concat([
    message(0x50, Buffer.concat([cstring(''), cstring(sql), int16(0)])), // 'P'
    message(0x44, Buffer.from('S\0')), // 'D' Describe statement ''
    FLUSH,
  ]);
}

export type SqlParameter = string | number | boolean | null;

/**
 * Bind the unnamed statement to the unnamed portal: parameters as text (what pg sends for the same
 * values), and one result format per column, 1 = binary where the decoder reads the binary form.
 */
export function bind(params: readonly SqlParameter[], resultFormats: readonly (0 | 1)[]): Buffer {
  const parts: Buffer[] = [cstring(''), cstring(''), int16(0), int16(params.length)];
  for (const value of params) {
    if (value === null) {
      parts.push(int32(-1));
    } else {
      const text = Buffer.from(String(value), 'utf8');
      parts.push(int32(text.length), text);
    }
  }
  parts.push(int16(resultFormats.length));
  for (const format of resultFormats) parts.push(int16(format));
  return message(0x42, Buffer.concat(parts)); // 'B'
}

/** Execute the unnamed portal for at most `rows` rows (then PortalSuspended), and Flush. */
export function execute(rows: number): Buffer {
  return Buffer.concat([message(0x45, Buffer.concat([cstring(''), int32(rows)])), FLUSH]); // 'E'
}

export const FLUSH = message(0x48, Buffer.alloc(0)); // 'H'
export const SYNC = message(0x53, Buffer.alloc(0)); // 'S'

/** A field of a RowDescription: what `columnFromField` needs. */
export interface DescribedField {
  name: string;
  dataTypeID: number;
  dataTypeModifier: number;
}

export function readRowDescription(bytes: Buffer, start: number): DescribedField[] {
  const count = bytes.readInt16BE(start);
  const fields: DescribedField[] = [];
  let at = start + 2;
  for (let i = 0; i < count; i++) {
    const nameEnd = bytes.indexOf(0, at);
    const name = bytes.toString('utf8', at, nameEnd);
    at = nameEnd + 1;
    // table OID (4), attribute number (2), type OID (4), type size (2), type modifier (4), format (2)
    fields.push({
      name,
      dataTypeID: bytes.readUInt32BE(at + 6),
      dataTypeModifier: bytes.readInt32BE(at + 12),
    });
    at += 18;
  }
  return fields;
}

/** ParameterDescription: how many parameters the statement takes. */
export function readParameterCount(bytes: Buffer, start: number): number {
  return bytes.readInt16BE(start);
}

/** ErrorResponse as pg's own `DatabaseError`, so callers see one error type whichever path read the rows. */
export function readErrorResponse(bytes: Buffer, start: number, end: number): pg.DatabaseError {
  const fields = new Map<string, string>();
  let at = start;
  while (at < end && bytes[at] !== 0) {
    const code = String.fromCharCode(bytes[at]!);
    const valueEnd = bytes.indexOf(0, at + 1);
    fields.set(code, bytes.toString('utf8', at + 1, valueEnd));
    at = valueEnd + 1;
  }
  const error = new pg.DatabaseError(fields.get('M') ?? 'PostgreSQL reported an error', end - start, 'error');
  error.severity = fields.get('S');
  error.code = fields.get('C');
  error.detail = fields.get('D');
  error.hint = fields.get('H');
  error.position = fields.get('P');
  error.where = fields.get('W');
  return error;
}

/** ParameterStatus: a run-time parameter's name and its new value. */
export function readParameterStatus(bytes: Buffer, start: number, end: number): [string, string] {
  const nameEnd = bytes.indexOf(0, start);
  const valueEnd = bytes.indexOf(0, nameEnd + 1);
  if (nameEnd < 0 || nameEnd >= end || valueEnd < 0 || valueEnd >= end) return ['', ''];
  return [bytes.toString('utf8', start, nameEnd), bytes.toString('utf8', nameEnd + 1, valueEnd)];
}
