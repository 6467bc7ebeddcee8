import { parseArgs } from 'node:util';
import {
  BackhaulError,
  type EnrolledCallerView,
  type EnrolledGatewayView,
  errorCatalog,
  type GatewayTokenView,
  type IssuedCallerToken,
  type IssuedGatewayToken,
} from '@backhaul/core';
import { createBackhaulAdminClient } from './admin-client.js';

export const adminUsage = `Usage: backhaul-admin <command> [arguments] [--server URL] [--admin-token TOKEN] [--json]

Commands:
  enrol <gateway-id>              enrol a gateway; prints its token (shown only this once)
  list                            enrolled gateways and their token IDs (never the tokens)
  rotate <gateway-id>             issue one more token; the old ones stay valid until revoked
  revoke <gateway-id> <token-id>  revoke a token: refused at once, its live stream ends
  remove <gateway-id>             remove the gateway and all its tokens

  enrol-caller <caller-id>        enrol a caller; prints its token (shown only this once)
      [--gateways G1,G2]          only these gateways (default: every gateway)
      [--role admin]              an admin instead: the admin API and every query
  callers                         enrolled callers and admins, their gateways and token IDs
  restrict-caller <caller-id> --gateways G1,G2 | --all-gateways
                                  change which gateways a caller may query
  rotate-caller <caller-id>       issue one more token; the old ones stay valid until revoked
  revoke-caller <caller-id> <token-id>
                                  revoke a caller's token: refused at once on every server
  remove-caller <caller-id>       remove the caller and all its tokens (its queries stay)

--server defaults to BACKHAUL_SERVER_URL, --admin-token to BACKHAUL_ADMIN_TOKEN (prefer the
variable: a token on the command line lands in the shell history). --json prints the answer as JSON.

Exit status: 0 done, 1 the server refused or could not be reached, 2 wrong usage.
`;

export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

const arity: Record<string, number> = {
  enrol: 1,
  list: 0,
  rotate: 1,
  revoke: 2,
  remove: 1,
  'enrol-caller': 1,
  callers: 0,
  'restrict-caller': 1,
  'rotate-caller': 1,
  'revoke-caller': 2,
  'remove-caller': 1,
};

/** Runs one admin command against the server's admin API; resolves with the exit status. */
export async function runAdminCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CommandIo,
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`backhaul-admin: ${error instanceof Error ? error.message : String(error)}\n\n${adminUsage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(adminUsage);
    return 0;
  }
  const [command = '', ...rest] = positionals;
  const server = values.server ?? env.BACKHAUL_SERVER_URL;
  const token = values['admin-token'] ?? env.BACKHAUL_ADMIN_TOKEN;
  const usageError =
    arity[command] === undefined
      ? `unknown command '${command}'`
      : rest.length !== arity[command]
        ? `${command} takes ${arity[command]} argument(s), got ${rest.length}`
        : !server
          ? 'give the server URL with --server or BACKHAUL_SERVER_URL'
          : !token
            ? 'give an admin token with BACKHAUL_ADMIN_TOKEN or --admin-token'
            : undefined;
  if (usageError || !server || !token) {
    io.err(`backhaul-admin: ${usageError}\n\n${adminUsage}`);
    return 2;
  }

  const admin = createBackhaulAdminClient({ url: server, token });
  const [gatewayId = '', tokenId = ''] = rest;
  const print = (json: unknown, text: string) => io.out(values.json ? `${JSON.stringify(json)}\n` : text);
  const printIssued = (issued: IssuedGatewayToken | IssuedCallerToken, what: string) => {
    // The token alone on stdout, so `TOKEN=$(backhaul-admin enrol gw-1)` works; the words on stderr.
    const [who, variable] =
      'gatewayId' in issued
        ? [issued.gatewayId, 'give it to the gateway as BACKHAUL_GATEWAY_TOKEN']
        : [issued.callerId, `give it to the ${issued.role} as its bearer token`];
    if (!values.json)
      io.err(`${what} ${who}: token ${issued.tokenId}. It is shown only this once; ${variable}.\n`);
    print(issued, `${issued.token}\n`);
  };
  const gatewayList = (): string[] | null | undefined => {
    if (values['all-gateways']) return null;
    return values.gateways === undefined ? undefined : values.gateways.split(',').filter(Boolean);
  };
  try {
    switch (command) {
      case 'enrol':
        printIssued(await admin.enrol(gatewayId), 'Enrolled');
        break;
      case 'rotate':
        printIssued(await admin.issueToken(gatewayId), 'New token for');
        break;
      case 'list': {
        const gateways = await admin.list();
        print({ gateways }, gateways.map(describeGateway).join(''));
        break;
      }
      case 'revoke': {
        const revoked = await admin.revokeToken(gatewayId, tokenId);
        print(revoked, `Revoked token ${revoked.id} of ${gatewayId} at ${revoked.revokedAt}\n`);
        break;
      }
      case 'remove':
        await admin.remove(gatewayId);
        print({ removed: gatewayId }, `Removed gateway ${gatewayId} and its tokens\n`);
        break;
      case 'enrol-caller': {
        const gateways = gatewayList() ?? undefined;
        const role = values.role === 'admin' ? 'admin' : 'caller';
        printIssued(
          await admin.callers.enrol({ callerId: gatewayId, role, ...(gateways ? { gateways } : {}) }),
          role === 'admin' ? 'Enrolled admin' : 'Enrolled caller',
        );
        break;
      }
      case 'callers': {
        const callers = await admin.callers.list();
        print({ callers }, callers.map(describeCaller).join(''));
        break;
      }
      case 'restrict-caller': {
        const gateways = gatewayList();
        if (gateways === undefined) {
          io.err(`backhaul-admin: restrict-caller needs --gateways G1,G2 or --all-gateways\n\n${adminUsage}`);
          return 2;
        }
        const changed = await admin.callers.restrict(gatewayId, gateways);
        print(changed, describeCaller(changed));
        break;
      }
      case 'rotate-caller':
        printIssued(await admin.callers.issueToken(gatewayId), 'New token for');
        break;
      case 'revoke-caller': {
        const revoked = await admin.callers.revokeToken(gatewayId, tokenId);
        print(revoked, `Revoked token ${revoked.id} of ${gatewayId} at ${revoked.revokedAt}\n`);
        break;
      }
      case 'remove-caller':
        await admin.callers.remove(gatewayId);
        print({ removed: gatewayId }, `Removed caller ${gatewayId} and its tokens\n`);
        break;
    }
    return 0;
  } catch (error) {
    io.err(`backhaul-admin: ${describeError(error)}\n`);
    return 1;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      'admin-token': { type: 'string' },
      json: { type: 'boolean' },
      gateways: { type: 'string' },
      'all-gateways': { type: 'boolean' },
      role: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function describeGateway(gateway: EnrolledGatewayView): string {
  return `${gateway.gatewayId}  enrolled ${gateway.createdAt}\n${describeTokens(gateway.tokens)}`;
}

function describeCaller(caller: EnrolledCallerView): string {
  const reach = caller.role === 'admin' ? 'admin' : `gateways: ${caller.gateways?.join(', ') ?? 'all'}`;
  return `${caller.callerId}  ${reach}  enrolled ${caller.createdAt}\n${describeTokens(caller.tokens)}`;
}

function describeTokens(tokens: readonly GatewayTokenView[]): string {
  return tokens
    .map(
      (token) =>
        `  ${token.id}  created ${token.createdAt}  ${token.revokedAt ? `revoked ${token.revokedAt}` : 'valid'}\n`,
    )
    .join('');
}

/** A refusal reads as the problem's title and detail, e.g. "No such resource: Gateway 'x' is not enrolled". */
function describeError(error: unknown): string {
  if (BackhaulError.isInstance(error)) return `${errorCatalog[error.code].title}: ${error.message}`;
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error instanceof Error ? error.message : String(error)}${cause}`;
}
