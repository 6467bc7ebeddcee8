import type { QueryView, ResultMode } from '@backhaul/core';
import { type BackhaulClient, createBackhaulClient, type QueryEvent } from './backhaul-client.js';
import { type CommandIo, describeError, type ProgramSpec, readCommandLine } from './command-line.js';
import { downloadToFile, formatBytes, formatProgress } from './download-progress.js';
import { liveRows } from './live-rows.js';
import { renderTable } from './text-table.js';

export const callerUsage = `Usage: backhaul <command> [arguments] [--server URL] [--token TOKEN] [--json]

Commands:
  query --gateway G "SQL"     run a query; rows are printed as a table as they arrive
      [--mode rows|file|auto] result mode (default auto: rows until the result passes the row
                              limit, then a Parquet file of every row)
      [--out FILE]            write a file result there, with a progress bar on stderr
  gateways                    gateways this caller may query, connected or not
  tail <query-id>             print a query's live events until it ends
  cancel <query-id>           cancel a query: its database statement and upload stop

--server defaults to BACKHAUL_SERVER_URL, --token to BACKHAUL_TOKEN (a caller token; an admin
token reads every query). --json prints JSON instead of text (one event per line for tail).

Exit status: 0 done, 1 the query failed or the server refused, 2 wrong usage.
`;

const program: ProgramSpec = {
  name: 'backhaul',
  usage: callerUsage,
  arity: { query: 1, gateways: 0, tail: 1, cancel: 1 },
  options: {
    gateway: { type: 'string', short: 'g' },
    mode: { type: 'string' },
    out: { type: 'string', short: 'o' },
  },
  token: { option: 'token', variable: 'BACKHAUL_TOKEN', what: 'a caller token' },
};

export interface CallerCommandOptions {
  /** Whether stderr is a terminal: the progress bar redraws one line instead of printing lines. */
  interactive?: boolean;
}

/** Runs one `backhaul` command against the server's caller API; resolves with the exit status. */
export async function runCallerCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CommandIo,
  options: CallerCommandOptions = {},
): Promise<number> {
  const invocation = readCommandLine(program, argv, env, io);
  if (typeof invocation === 'number') return invocation;
  const { command, args, json } = invocation;
  const client = createBackhaulClient({ url: invocation.server, token: invocation.token });
  try {
    switch (command) {
      case 'query': {
        const gatewayId = invocation.text('gateway');
        const mode = invocation.text('mode') ?? 'auto';
        if (!gatewayId || !['rows', 'file', 'auto'].includes(mode)) {
          io.err(`backhaul: query needs --gateway G, and --mode rows, file or auto\n\n${callerUsage}`);
          return 2;
        }
        return await runQuery(client, io, {
          gatewayId,
          sql: args[0] ?? '',
          mode: mode as ResultMode,
          out: invocation.text('out'),
          json,
          interactive: options.interactive ?? false,
        });
      }
      case 'gateways': {
        const gateways = await client.gateways();
        if (json) io.out(`${JSON.stringify({ gateways })}\n`);
        else
          io.out(
            renderTable(
              ['gateway', 'connected', 'since', 'last seen'],
              gateways.map((g) => [
                g.id,
                g.connected ? 'yes' : 'no',
                g.connectedAt ?? '',
                g.lastSeenAt ?? '',
              ]),
            ),
          );
        return 0;
      }
      case 'cancel': {
        const view = await client.cancel(args[0] ?? '');
        io.out(json ? `${JSON.stringify(view)}\n` : `${view.id}  ${view.state}\n`);
        return 0;
      }
      case 'tail': {
        for await (const event of client.follow(args[0] ?? ''))
          io.out(json ? `${JSON.stringify(event)}\n` : describeEvent(event));
        return 0;
      }
    }
    return 2;
  } catch (error) {
    io.err(`backhaul: ${describeError(error)}\n`);
    return 1;
  }
}

async function runQuery(
  client: BackhaulClient,
  io: CommandIo,
  query: {
    gatewayId: string;
    sql: string;
    mode: ResultMode;
    out: string | undefined;
    json: boolean;
    interactive: boolean;
  },
): Promise<number> {
  const submitted = await client.submit({ gatewayId: query.gatewayId, sql: query.sql, mode: query.mode });
  io.err(`Query ${submitted.id} on ${query.gatewayId}\n`);
  // Text output shows row batches as they arrive (§3.9): rows mode, and auto until it switches to
  // a file. --json prints one document at the end.
  const live = query.json ? undefined : liveRows(io);
  const final = await client.waitFor(submitted.id, { onEvent: live?.onEvent });
  if (final.state !== 'completed' || !final.result) {
    io.err(`backhaul: query ${final.id} ${final.state}${final.error ? `: ${final.error.message}` : ''}\n`);
    return 1;
  }
  const result = final.result;
  if (result.kind === 'rows') {
    if (live && live.printed === result.rowCount) live.finish(result.columns);
    else {
      // --json, or a stream that gave up before the last batch: the kept rows, past those printed.
      const { columns, rows } = await client.rows(final.id);
      if (live) {
        live.print(columns, rows.slice(live.printed));
        live.finish(columns);
      } else io.out(`${JSON.stringify({ columns, rows })}\n`);
    }
    io.err(`${result.rowCount} row${result.rowCount === 1 ? '' : 's'}\n`);
    return 0;
  }
  // A file holds every row, the ones printed live first (final.liveRows of them).
  const printedLive = final.liveRows ? `, the first ${final.liveRows} printed above` : '';
  if (!query.out) {
    // Nothing written without being asked: the link is the answer (valid until expiresAt).
    io.out(query.json ? `${JSON.stringify(final)}\n` : `${result.url}\n`);
    io.err(
      `${result.rowCount} rows in a ${formatBytes(result.size)} Parquet file${printedLive}, until ${result.expiresAt}; --out FILE downloads it\n`,
    );
    return 0;
  }
  return download(io, final, result.url, query.out, query.interactive, query.json);
}

async function download(
  io: CommandIo,
  final: QueryView,
  url: string,
  path: string,
  interactive: boolean,
  json: boolean,
): Promise<number> {
  const response = await fetch(url);
  if (!response.ok) {
    await response.body?.cancel();
    io.err(`backhaul: the download answered ${response.status}\n`);
    return 1;
  }
  let lastLineAt = 0;
  const bytes = await downloadToFile(response, path, (reading, done) => {
    // A terminal gets one line redrawn in place; a log gets a line per second.
    if (interactive) io.err(`\r${formatProgress(reading)}\u001b[K${done ? '\n' : ''}`);
    else if (done || reading.elapsedMs - lastLineAt >= 1000) {
      lastLineAt = reading.elapsedMs;
      io.err(`${formatProgress(reading)}\n`);
    }
  });
  const size = final.result?.kind === 'file' ? final.result.size : undefined;
  if (size !== undefined && bytes !== size) {
    io.err(`backhaul: wrote ${bytes} bytes to ${path}, the server announced ${size}\n`);
    return 1;
  }
  io.out(json ? `${JSON.stringify({ ...final, path, bytes })}\n` : `${path}\n`);
  return 0;
}

function describeEvent(event: QueryEvent): string {
  const at = new Date().toISOString();
  switch (event.type) {
    case 'state':
      return `${at}  state     ${event.query.state}\n`;
    case 'progress': {
      const { rows, bytes, stage } = event.progress;
      const parts = [
        stage,
        rows === undefined ? undefined : `${rows} rows`,
        bytes === undefined ? undefined : formatBytes(bytes),
      ];
      return `${at}  progress  ${parts.filter(Boolean).join(', ')}\n`;
    }
    case 'rows':
      return `${at}  rows      batch ${event.seq}: ${event.rows.length} rows\n`;
    case 'switched':
      return `${at}  switched  to a file after ${event.query.liveRows ?? 0} live rows\n`;
    case 'cancelled':
      return `${at}  cancelled\n`;
    case 'result': {
      const result = event.query.result;
      const what =
        result?.kind === 'rows'
          ? `, ${result.rowCount} rows`
          : result?.kind === 'file'
            ? `, ${result.rowCount} rows in ${formatBytes(result.size)}: ${result.url}`
            : event.query.error
              ? `: ${event.query.error.message}`
              : '';
      return `${at}  result    ${event.query.state}${what}\n`;
    }
  }
}
