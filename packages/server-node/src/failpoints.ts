/**
 * Failpoints: named places in the server where a fault-injection test can make the process
 * crash, to prove that what was written before that point is enough to recover (docs/protocol.md
 * §4, §7). They exist only so tests can kill a real server process at an exact step —
 * between persisting a command and sending it, after sending it, before an ack is recorded, in the
 * middle of assembling a file — which no timing trick can hit reliably.
 *
 * Inert in production: unless the environment variable `BACKHAUL_TEST_FAILPOINTS` lists a
 * failpoint's name (comma-separated, read once when this module loads), `failpoint()` returns at
 * once and does nothing. When it is listed, the process is killed with SIGKILL on the spot: a
 * crash (no `exit` handlers, no flushing, no socket shutdown), not a clean exit.
 */
export type FailpointName = 'after-persist' | 'after-send' | 'before-ack-recorded' | 'mid-assembly';

const armed: ReadonlySet<string> = new Set(
  (process.env.BACKHAUL_TEST_FAILPOINTS ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0),
);

export function failpoint(name: FailpointName): void {
  if (armed.size === 0 || !armed.has(name)) return;
  process.kill(process.pid, 'SIGKILL');
}
