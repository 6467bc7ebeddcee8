// pg-cursor ships no types and @types/pg-cursor is not installed: the part of its API this package uses.
declare module 'pg-cursor' {
  import type { CustomTypesConfig, FieldDef } from 'pg';

  interface CursorConfig {
    rowMode?: 'array';
    types?: CustomTypesConfig;
  }

  interface CursorResult {
    fields: FieldDef[];
  }

  class Cursor {
    constructor(text: string, values: readonly unknown[] | null, config?: CursorConfig);
    /** 'initialized' | 'submitted' | 'idle' | 'busy' | 'done' | 'error' */
    state: string;
    read(
      rows: number,
      callback: (error: Error | undefined, rows: unknown[][], result: CursorResult) => void,
    ): void;
    close(): Promise<void>;
    // Lets the cursor be passed to `client.query()` (pg's Submittable).
    submit(connection: unknown): void;
  }

  export default Cursor;
}
