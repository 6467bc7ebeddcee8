import type { IncomingMessage, ServerResponse } from 'node:http';
import { BackhaulError } from '@backhaul/core';

/** What a route handler gets: the raw request/response plus the decoded path parameters. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  query: URLSearchParams;
}

export type RouteHandler = (context: RouteContext) => Promise<void>;

export interface Route {
  method: string;
  /** Anchored; capture groups become `params`, percent-decoded (a `rest` route keeps slashes). */
  pattern: RegExp;
  handle: RouteHandler;
  /** Leave the captures encoded (the download key is decoded per segment by its handler). */
  raw?: boolean;
}

export type RouteMatch =
  | { kind: 'route'; handle: RouteHandler; params: string[] }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'none' };

/** A flat table of routes: the protocol has a dozen endpoints, a tree would only hide them. */
export function createRouter(routes: readonly Route[]) {
  return {
    match(method: string, path: string): RouteMatch {
      const allow: string[] = [];
      for (const route of routes) {
        const found = route.pattern.exec(path);
        if (!found) continue;
        if (route.method !== method) {
          allow.push(route.method);
          continue;
        }
        const captures = found.slice(1).map((value) => value ?? '');
        let params: string[];
        try {
          params = route.raw ? captures : captures.map((value) => decodeURIComponent(value));
        } catch {
          throw new BackhaulError('bad-request', 'The path is not valid percent-encoding');
        }
        return { kind: 'route', handle: route.handle, params };
      }
      return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'none' };
    },
  };
}
