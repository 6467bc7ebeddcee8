// The gateway side of the transfer and memory benches: Backhaul's own gateway code (its command
// stream client, its server API and its chunk uploader), fed bytes that are already a file instead
// of rows to encode, so the figure is the transport alone: gateway-node's public upload path.
import {
  type Codec,
  CodecRegistry,
  createChecksummer,
  defaultRetryPolicy,
  type Hello,
  silentLogger,
} from '@backhaul/core';
import {
  AUTO_CODEC,
  type CodecChoice,
  CommandStreamClient,
  createConnectionPool,
  type ProgressState,
  ServerApi,
  uploadBytes,
} from '@backhaul/gateway-node';
import { monotonicNs } from './timing.js';

export interface ByteGatewayOptions {
  serverUrl: string;
  token: string;
  codecs: Codec[];
  /** identity, zstd, lz4 or auto (`preferredCodec: 'auto'`: zstd per stretch where it pays, else identity). */
  codec: string;
  chunksInFlight: number;
}

export interface UploadTimes {
  commandNs: bigint;
  ackedNs: bigint;
  firstChunkNs: bigint;
  lastChunkNs: bigint;
  completedNs: bigint;
}

export async function connectByteGateway(options: ByteGatewayOptions) {
  const registry = new CodecRegistry(options.codecs);
  const checksummer = await createChecksummer();
  // The pool createGateway uses: sized for the window, the stream and small POSTs.
  const dispatcher = createConnectionPool(options.chunksInFlight);
  const api = new ServerApi({
    serverUrl: options.serverUrl,
    token: options.token,
    dispatcher,
    retry: defaultRetryPolicy,
    logger: silentLogger,
  });
  let hello: Hello | undefined;
  let helloResolve!: () => void;
  let helloReject!: (error: unknown) => void;
  const helloSeen = new Promise<void>((resolve, reject) => {
    helloResolve = resolve;
    helloReject = reject;
  });
  const waiting: ((command: { id: string; receivedNs: bigint }) => void)[] = [];
  const queued: { id: string; receivedNs: bigint }[] = [];
  const stream = new CommandStreamClient({
    api,
    heartbeatTimeoutMs: 45_000,
    reconnect: { baseDelayMs: 250, maxDelayMs: 15_000 },
    logger: silentLogger,
    handlers: {
      onHello(h) {
        hello = h;
        helloResolve();
      },
      onCommand(data) {
        const received = { id: (JSON.parse(data) as { id: string }).id, receivedNs: monotonicNs() };
        const waiter = waiting.shift();
        if (waiter) waiter(received);
        else queued.push(received);
      },
      onDisconnected() {},
      onFatal: (error) => helloReject(error),
    },
  });
  stream.start();
  await helloSeen;

  return {
    get hello() {
      return hello!;
    },
    nextCommand(): Promise<{ id: string; receivedNs: bigint }> {
      const next = queued.shift();
      if (next) return Promise.resolve(next);
      return new Promise((resolve) => waiting.push(resolve));
    },
    /** Ack (§5.1), upload the bytes (§6), complete (§6.4); the completion answer carries the URL. */
    async serve(command: { id: string; receivedNs: bigint }, bytes: AsyncIterable<Uint8Array>, rowCount = 0) {
      const auto = options.codec === AUTO_CODEC;
      const codec = registry.get(auto ? 'zstd' : options.codec);
      let choice: CodecChoice | undefined;
      if (!hello!.codecs.includes(codec.name))
        throw new Error(`the server does not accept codec ${codec.name}`);
      // As the gateway's runner does: the ack goes out at once and the work does not wait for it.
      let ackedNs = 0n;
      const acked = api.ack(command.id).then(() => {
        ackedNs = monotonicNs();
      });
      let firstChunkNs: bigint | undefined;
      let lastChunkNs = 0n;
      let wireBytes = 0;
      // Times the first chunk sent and the last chunk stored, around the very same request code.
      const putChunk = ServerApi.prototype.putChunk;
      api.putChunk = async function (this: ServerApi, ...args) {
        firstChunkNs ??= monotonicNs();
        wireBytes += args[1].body.length;
        const status = await putChunk.apply(this, args);
        lastChunkNs = monotonicNs();
        return status;
      };
      const progress: ProgressState = { rows: 0, bytes: 0, stage: 'uploading' };
      const completion = await uploadBytes({
        api,
        commandId: command.id,
        bytes,
        rowCount: () => rowCount,
        hello: hello!,
        codec,
        ...(auto
          ? {
              autoCodec: {
                identity: registry.get('identity'),
                onChoice: (c: CodecChoice) => {
                  choice = c;
                },
              },
            }
          : {}),
        checksummer,
        chunksInFlight: options.chunksInFlight,
        retry: defaultRetryPolicy,
        progress,
        logger: silentLogger,
        signal: new AbortController().signal,
      });
      await acked;
      const view = (await api.complete(command.id, completion)) as {
        state: string;
        result?: { url: string; size: number; checksum: string };
      };
      const times: UploadTimes = {
        commandNs: command.receivedNs,
        ackedNs,
        firstChunkNs: firstChunkNs ?? ackedNs,
        lastChunkNs,
        completedNs: monotonicNs(),
      };
      return { completion, view, times, wireBytes, codec: choice?.codec ?? codec.name, choice };
    },
    async stop() {
      await stream.stop();
      await dispatcher.close();
    },
  };
}

export type ByteGateway = Awaited<ReturnType<typeof connectByteGateway>>;
