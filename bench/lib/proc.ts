import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** Resident set size of a process in KiB, from /proc/<pid>/status (VmRSS). */
export function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces or parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / 100;
}

/** Samples RSS every `intervalMs` until stopped: baseline, peak, and every sample. */
export class RssSampler {
  readonly samples: { t: number; kb: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #start = Date.now();

  constructor(
    readonly pid: number,
    readonly intervalMs = 50,
  ) {}

  start(): this {
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  sample(): number {
    const kb = rssKb(this.pid);
    this.samples.push({ t: Date.now() - this.#start, kb });
    return kb;
  }

  stop(): { firstKb: number; peakKb: number; lastKb: number; count: number } {
    if (this.#timer) clearInterval(this.#timer);
    this.sample();
    const kbs = this.samples.map((s) => s.kb);
    return { firstKb: kbs[0]!, peakKb: Math.max(...kbs), lastKb: kbs.at(-1)!, count: kbs.length };
  }
}

/** The load at the time of a run: every result carries it, so a noisy figure says so. */
export function machine(): Record<string, unknown> {
  const [one, five] = loadavg();
  return {
    load1: Math.round(one! * 100) / 100,
    load5: Math.round(five! * 100) / 100,
    cpus: cpus().length,
    node: process.version,
  };
}
