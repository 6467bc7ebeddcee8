/** What a running command has done so far; read by the progress reporter (docs/protocol.md §5.2). */
export interface ProgressState {
  rows: number;
  bytes: number;
  stage: 'querying' | 'encoding' | 'uploading';
}
