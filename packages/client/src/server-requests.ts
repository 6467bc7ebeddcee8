import { fromProblem, parseRetryAfter } from '@backhaul/core';

export interface ServerConnectionOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The bearer token: a caller token for the caller API, an admin token for the admin API. */
  token: string;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/**
 * Sends requests to a Backhaul server with a bearer token; an error answer becomes the typed
 * `BackhaulError` rebuilt from its problem+json. Shared by the caller and the admin client.
 */
export function serverRequests(options: ServerConnectionOptions) {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const authorization = `Bearer ${options.token}`;

  async function call(path: string, init: RequestInit = {}): Promise<Response> {
    const response = await doFetch(`${base}${path}`, {
      ...init,
      redirect: 'manual',
      headers: { authorization, accept: 'application/json', ...init.headers },
    });
    if (response.status >= 400) {
      const body = await response.json().catch(() => undefined);
      throw fromProblem(response.status, body, parseRetryAfter(response.headers.get('retry-after')));
    }
    return response;
  }
  const json = async <T>(path: string, init?: RequestInit) => (await (await call(path, init)).json()) as T;
  const postJson = <T>(
    path: string,
    body: unknown,
    { headers, signal }: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ) =>
    json<T>(path, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
      signal,
    });
  return { call, json, postJson };
}
