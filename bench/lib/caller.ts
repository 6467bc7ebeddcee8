// The caller side of the fleet and bus benches: one `POST /v1/queries` for a gateway.
import { type Agent, request } from 'undici';
import { CALLER_TOKEN, gatewayId } from './tokens.js';

/** Submits `SELECT 1` (rows) for gateway number `gateway` on the server at `url`; resolves with the query ID. */
export async function submitQuery(url: string, gateway: number, dispatcher: Agent): Promise<string> {
  const response = await request(`${url}/v1/queries`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CALLER_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ gatewayId: gatewayId(gateway), sql: 'SELECT 1', mode: 'rows' }),
    dispatcher,
  });
  const text = await response.body.text();
  if (response.statusCode !== 202) throw new Error(`submit: HTTP ${response.statusCode} ${text}`);
  return (JSON.parse(text) as { id: string }).id;
}
