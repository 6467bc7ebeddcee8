import { type ReadyProcess, startReadyProcess } from './ready-process.js';

/** Starts test/support/gateway-process.ts as a child process: a real gateway a test can SIGKILL. */
export interface GatewayProcessOptions {
  serverUrl: string;
  token: string;
  sqlitePath: string;
  chunksInFlight?: number;
  /** Log the gateway's messages to this process's stderr. */
  log?: boolean;
}

export type GatewayProcess = ReadyProcess<{ ready: true; pid: number }>;

export function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  return startReadyProcess({
    script: new URL('./gateway-process.ts', import.meta.url),
    env: {
      SERVER_URL: options.serverUrl,
      TOKEN: options.token,
      SQLITE_PATH: options.sqlitePath,
      CHUNKS_IN_FLIGHT: options.chunksInFlight === undefined ? undefined : String(options.chunksInFlight),
      LOG: options.log ? '1' : '',
    },
    log: options.log,
  });
}
