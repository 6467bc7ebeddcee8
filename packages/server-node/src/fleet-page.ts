import type { ServerResponse } from 'node:http';
import { FLEET_PAGE_CSS, FLEET_PAGE_HTML, FLEET_PAGE_SCRIPT } from './fleet-page-assets.js';
import type { Route } from './router.js';

/**
 * Only this origin's script, style and fetches (plus `data:` images, for the empty icon that
 * spares the browser a request for /favicon.ico); no inline code, no frames, no forms posting
 * anywhere: an injected value could not run even if one slipped past `textContent`.
 */
export const FLEET_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * `GET /admin/fleet` and its script and style. They carry no data and need no token (a browser
 * cannot put a bearer token on a navigation): the data comes from `GET /v1/admin/fleet`, which does.
 */
export function fleetPageRoutes(): Route[] {
  // No trailing-slash variant: under `/admin/fleet/` the page's relative links would miss.
  const asset = (path: RegExp, contentType: string, body: string): Route => ({
    method: 'GET',
    pattern: path,
    async handle({ res }) {
      send(res, contentType, body);
    },
  });
  return [
    asset(/^\/admin\/fleet$/, 'text/html; charset=utf-8', FLEET_PAGE_HTML),
    asset(/^\/admin\/fleet\.js$/, 'text/javascript; charset=utf-8', FLEET_PAGE_SCRIPT),
    asset(/^\/admin\/fleet\.css$/, 'text/css; charset=utf-8', FLEET_PAGE_CSS),
  ];
}

function send(res: ServerResponse, contentType: string, body: string): void {
  res.writeHead(200, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'content-security-policy': FLEET_PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': 'no-store',
  });
  res.end(body);
}
