import type { S3Client } from '@aws-sdk/client-s3';

export interface RecordedRequest {
  /** e.g. 'UploadPartCommand'. */
  command: string;
  input: Record<string, unknown>;
  /** Bytes of the request body, for PutObject and UploadPart. */
  bodyLength: number | undefined;
}

export interface RecorderOptions {
  /** Throw instead of sending, to inject a failure. */
  failWhen?: (request: RecordedRequest) => boolean;
  /** Hold every UploadPart this long before sending, so parts overlap measurably. */
  partDelayMs?: number;
  /** Answer UploadPart without sending it (for the 10,000-part limit, without moving 50 GB). */
  fakeUploadParts?: boolean;
}

/**
 * Watches what the adapter actually asks S3 for, from inside the client: the sizes of parts are
 * checked on the outgoing requests because s3rver accepts parts of any size.
 */
export function recordRequests(client: S3Client, options: RecorderOptions = {}) {
  const requests: RecordedRequest[] = [];
  let partsInFlight = 0;
  let maxPartsInFlight = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      const body = input.Body;
      const request: RecordedRequest = {
        command: context.commandName ?? 'unknown',
        input,
        bodyLength: body instanceof Uint8Array ? body.byteLength : undefined,
      };
      requests.push(request);
      if (options.failWhen?.(request)) throw new Error(`injected failure of ${request.command}`);
      if (request.command !== 'UploadPartCommand') return next(args);
      partsInFlight++;
      maxPartsInFlight = Math.max(maxPartsInFlight, partsInFlight);
      try {
        if (options.partDelayMs) await new Promise((resolve) => setTimeout(resolve, options.partDelayMs));
        if (options.fakeUploadParts) {
          return {
            output: { ETag: `"fake-${String(input.PartNumber)}"`, $metadata: {} },
            response: {},
          } as never;
        }
        return await next(args);
      } finally {
        partsInFlight--;
      }
    },
    // initialize: before the SDK's retries, so one call of the adapter is one record.
    { step: 'initialize', name: 'backhaulRequestRecorder' },
  );
  return {
    requests,
    of: (command: string) => requests.filter((request) => request.command === command),
    get partsInFlight() {
      return partsInFlight;
    },
    get maxPartsInFlight() {
      return maxPartsInFlight;
    },
  };
}
