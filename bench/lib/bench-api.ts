// The gateway side's view of the bench server's own routes (server-main.ts), with a fallback to a
// plain caller when the server at --server-url is a Backhaul server without them.
import { createBackhaulClient } from '@backhaul/client';
import { createChecksummer, type QueryView, type SubmitQuery } from '@backhaul/core';
import { CALLER_TOKEN } from './tokens.js';

async function call<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

export interface TimedQuery {
  id: string;
  issuedNs: bigint;
  /** Resolves when the caller saw the query end: its final view and when (CLOCK_MONOTONIC ns). */
  done(): Promise<{ view: QueryView; ackedNs?: bigint; completedNs: bigint }>;
}

export interface BenchServer {
  url: string;
  /** True when the server has the bench routes (sinks, caller next to the server, stats). */
  routes: boolean;
  submit(query: SubmitQuery): Promise<TimedQuery>;
  verify(resultUrl: string): Promise<{ size: number; checksum: string }>;
  deleteResult(gatewayId: string, id: string): Promise<void>;
  deleteObject(key: string): Promise<void>;
  /** The storage the server writes to, when it says (bench server), else undefined. */
  storage: string | undefined;
  stats(): Promise<{ pid: number; rssKb: number; cpuS: number; storage: string }>;
}

export async function benchServer(url: string): Promise<BenchServer> {
  const stats = await fetch(`${url}/bench/stats`).then(
    async (response) => (response.ok ? ((await response.json()) as { storage: string }) : undefined),
    () => undefined,
  );
  const routes = stats !== undefined;
  const caller = createBackhaulClient({ url, token: CALLER_TOKEN });
  return {
    url,
    routes,
    storage: stats?.storage,
    async submit(query) {
      if (routes) {
        const timed = await call<{ id: string; issuedNs: string }>(`${url}/bench/submit`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(query),
        });
        return {
          id: timed.id,
          issuedNs: BigInt(timed.issuedNs),
          async done() {
            const result = await call<{
              view?: QueryView;
              ackedNs?: string;
              completedNs?: string;
              error?: string;
            }>(`${url}/bench/query/${timed.id}`);
            if (result.error || !result.view || !result.completedNs)
              throw new Error(result.error ?? 'no result');
            return {
              view: result.view,
              ...(result.ackedNs ? { ackedNs: BigInt(result.ackedNs) } : {}),
              completedNs: BigInt(result.completedNs),
            };
          },
        };
      }
      // A plain server: the caller runs here, on the gateway's side of the link (its trips count).
      const issuedNs = process.hrtime.bigint();
      const view = await caller.submit(query);
      const done = caller
        .waitFor(view.id)
        .then((final) => ({ view: final, completedNs: process.hrtime.bigint() }));
      done.catch(() => {});
      return { id: view.id, issuedNs, done: () => done };
    },
    async verify(resultUrl) {
      if (routes) return call(`${url}/bench/verify?url=${encodeURIComponent(resultUrl)}`);
      const response = await fetch(resultUrl);
      if (!response.ok || !response.body) throw new Error(`download: HTTP ${response.status}`);
      const hash = (await createChecksummer()).stream();
      let size = 0;
      for await (const piece of response.body) {
        hash.update(piece);
        size += piece.length;
      }
      return { size, checksum: hash.digest() };
    },
    async deleteResult(gatewayId, id) {
      if (routes) await call(`${url}/bench/result/${gatewayId}/${id}`, { method: 'DELETE' });
    },
    async deleteObject(key) {
      if (routes) await call(`${url}/bench/object/${key}`, { method: 'DELETE' });
    },
    stats() {
      return call(`${url}/bench/stats`);
    },
  };
}
