/**
 * The fleet page's three files (docs/operations.md, "Fleet page"): static text, no build step and
 * no external asset. The page holds no data: its script asks for the admin token, keeps it in
 * sessionStorage (never in a URL) and polls `GET /v1/admin/fleet` with it. Every value reaches
 * the document through `textContent`, never as markup, so nothing a gateway or caller chose
 * (an ID, an error message) can become HTML. Paths are relative, so the page works under a
 * `basePath` or a framework's mount path.
 */

export const FLEET_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Backhaul fleet</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="fleet.css">
<script src="fleet.js" defer></script>
</head>
<body>
<header>
  <h1>Backhaul fleet</h1>
  <p id="status" role="status">Enter an admin token to open the fleet.</p>
  <button id="sign-out" type="button" hidden>Forget token</button>
</header>
<form id="sign-in" autocomplete="off">
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" spellcheck="false" required>
  <button type="submit">Open</button>
</form>
<main id="fleet" hidden>
  <section>
    <h2>Gateways</h2>
    <table id="gateways">
      <thead><tr><th>Gateway</th><th>Source</th><th>Connection</th><th>Connected since</th><th>Last heartbeat</th><th>Last request</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Queries in flight</h2>
    <table id="queries">
      <thead><tr><th>Query</th><th>Gateway</th><th>Caller</th><th>State</th><th>Mode</th><th>Stage</th><th class="number">Rows</th><th class="number">Bytes</th><th>Started</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Recent failures</h2>
    <table id="failures">
      <thead><tr><th>Query</th><th>Gateway</th><th>Caller</th><th>State</th><th>Code</th><th>Message</th><th>Ended</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Dead letters</h2>
    <table id="dead-letters">
      <thead><tr><th>Query</th><th>Gateway</th><th>Caller</th><th>Reason</th><th>Dead-lettered</th><th></th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;

export const FLEET_PAGE_CSS = `[hidden] { display: none !important; }
:root { color-scheme: light dark; font-family: system-ui, sans-serif; font-size: 14px; }
body { margin: 1.5rem; }
header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
#status { margin: 0; color: GrayText; }
#status.error { color: #c62828; }
form { margin: 1rem 0; display: flex; gap: 0.5rem; align-items: center; }
input { min-width: 24rem; font: inherit; padding: 0.25rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid color-mix(in srgb, currentColor 20%, transparent); white-space: nowrap; }
td.message { white-space: normal; max-width: 32rem; overflow-wrap: anywhere; }
th { font-weight: 600; }
.number { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: GrayText; font-style: italic; }
.connected { color: #2e7d32; font-weight: 600; }
.disconnected { color: #c62828; font-weight: 600; }
code { font-size: 0.95em; }
`;

export const FLEET_PAGE_SCRIPT = `'use strict';
(() => {
  const TOKEN_KEY = 'backhaul.adminToken';
  const POLL_MS = 1000;
  const byId = (id) => document.getElementById(id);
  const status = byId('status');
  const replays = new Map();
  let timer;

  const endpoint = (path) => new URL('../v1/admin/' + path, window.location.href);

  async function call(method, path) {
    const token = window.sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw Object.assign(new Error('No admin token'), { status: 401 });
    const response = await fetch(endpoint(path), {
      method,
      headers: { authorization: 'Bearer ' + token, accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = typeof body.detail === 'string' ? body.detail : 'HTTP ' + response.status;
      throw Object.assign(new Error(message), { status: response.status });
    }
    return body;
  }

  function cell(value, className) {
    const td = document.createElement('td');
    if (value instanceof Node) td.append(value);
    else td.textContent = value === undefined || value === null ? '' : String(value);
    if (className) td.className = className;
    return td;
  }

  function code(text) {
    const element = document.createElement('code');
    element.textContent = text;
    return element;
  }

  function fill(table, rows, emptyText) {
    const body = byId(table).tBodies[0];
    if (rows.length > 0) return body.replaceChildren(...rows);
    const td = cell(emptyText, 'empty');
    td.colSpan = byId(table).tHead.rows[0].cells.length;
    const tr = document.createElement('tr');
    tr.append(td);
    body.replaceChildren(tr);
  }

  function row(cells, attributes) {
    const tr = document.createElement('tr');
    for (const [name, value] of Object.entries(attributes || {})) tr.setAttribute(name, value);
    tr.append(...cells);
    return tr;
  }

  const numbers = new Intl.NumberFormat('en');
  const count = (value) => (typeof value === 'number' ? numbers.format(value) : '');

  function bytes(value) {
    if (typeof value !== 'number') return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let amount = value;
    let unit = 0;
    while (amount >= 1024 && unit < units.length - 1) {
      amount /= 1024;
      unit++;
    }
    return (unit === 0 ? String(amount) : amount.toFixed(1)) + ' ' + units[unit];
  }

  function ago(iso) {
    if (!iso) return '';
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 120) return seconds + ' s ago';
    if (seconds < 7200) return Math.round(seconds / 60) + ' min ago';
    return new Date(iso).toLocaleString();
  }

  function when(iso, className) {
    const td = cell(ago(iso), className);
    if (iso) td.title = iso;
    return td;
  }

  function render(fleet) {
    fill(
      'gateways',
      fleet.gateways.map((gateway) =>
        row(
          [
            cell(code(gateway.id)),
            cell(gateway.source),
            cell(
              gateway.connected ? 'connected' : 'not connected',
              gateway.connected ? 'connected' : 'disconnected',
            ),
            when(gateway.connectedAt),
            when(gateway.lastHeartbeatAt, 'heartbeat'),
            when(gateway.lastSeenAt),
          ],
          { 'data-gateway-id': gateway.id },
        ),
      ),
      'No gateway is configured or enrolled.',
    );
    fill(
      'queries',
      fleet.queries.map((query) => {
        const progress = query.progress || {};
        return row(
          [
            cell(code(query.id)),
            cell(query.gatewayId),
            cell(query.callerId),
            cell(query.state),
            cell(query.mode),
            cell(progress.stage),
            cell(count(progress.rows), 'number rows'),
            cell(bytes(progress.bytes), 'number bytes'),
            when(query.createdAt),
          ],
          { 'data-query-id': query.id },
        );
      }),
      'No query is in flight.',
    );
    fill(
      'failures',
      (fleet.failures || []).map((failure) =>
        row(
          [
            cell(code(failure.id)),
            cell(failure.gatewayId),
            cell(failure.callerId),
            cell(failure.state),
            cell(failure.code),
            cell(failure.message, 'message'),
            when(failure.at),
          ],
          { 'data-query-id': failure.id },
        ),
      ),
      fleet.failures === null ? 'This server’s command store keeps no failure list.' : 'No query failed recently.',
    );
    if (fleet.deadLetters === null) {
      fill('dead-letters', [], 'This server’s command store keeps no dead-letter list.');
    } else {
      fill(
        'dead-letters',
        fleet.deadLetters.map((letter) => {
          const replayedAs = replays.get(letter.id);
          let action;
          if (replayedAs) {
            action = document.createElement('span');
            action.append('replayed as ', code(replayedAs));
          } else {
            action = document.createElement('button');
            action.type = 'button';
            action.textContent = 'Replay';
            action.dataset.replay = letter.id;
            action.disabled = !letter.replayable;
          }
          return row(
            [
              cell(code(letter.id)),
              cell(letter.gatewayId),
              cell(letter.callerId),
              cell(letter.reason, 'message'),
              when(letter.at),
              cell(action, 'action'),
            ],
            { 'data-query-id': letter.id },
          );
        }),
        'No dead letters.',
      );
    }
    status.className = '';
    status.textContent = 'Instance ' + fleet.instanceId + ', updated ' + new Date(fleet.generatedAt).toLocaleTimeString();
  }

  function showError(error) {
    status.className = 'error';
    status.textContent = error.message;
  }

  function signedIn(on) {
    byId('sign-in').hidden = on;
    byId('sign-out').hidden = !on;
    byId('fleet').hidden = !on;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      render(await call('GET', 'fleet'));
    } catch (error) {
      showError(error);
      if (error.status === 401 || error.status === 403) {
        window.sessionStorage.removeItem(TOKEN_KEY);
        signedIn(false);
        return;
      }
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  byId('sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('token');
    window.sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = '';
    signedIn(true);
    void refresh();
  });

  byId('sign-out').addEventListener('click', () => {
    clearTimeout(timer);
    window.sessionStorage.removeItem(TOKEN_KEY);
    signedIn(false);
    status.className = '';
    status.textContent = 'Enter an admin token to open the fleet.';
  });

  byId('dead-letters').addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-replay]');
    if (!button) return;
    const id = button.dataset.replay;
    button.disabled = true;
    try {
      const query = await call('POST', 'dead-letters/' + encodeURIComponent(id) + '/replay');
      replays.set(id, query.id);
      await refresh();
    } catch (error) {
      button.disabled = false;
      showError(error);
    }
  });

  if (window.sessionStorage.getItem(TOKEN_KEY)) {
    signedIn(true);
    void refresh();
  }
})();
`;
