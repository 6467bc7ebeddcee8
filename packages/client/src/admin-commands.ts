import type {
  EnrolledCallerView,
  EnrolledGatewayView,
  GatewayTokenView,
  IssuedCallerToken,
  IssuedGatewayToken,
} from '@backhaul/core';
import { createBackhaulAdminClient } from './admin-client.js';
import { type CommandIo, describeError, type ProgramSpec, readCommandLine } from './command-line.js';
import { describeFleet } from './fleet-report.js';

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

  fleet                           gateways, queries in flight, recent failures, dead letters
  replay <query-id>               submit a dead letter again; prints the new query's ID

--server defaults to BACKHAUL_SERVER_URL, --admin-token to BACKHAUL_ADMIN_TOKEN (prefer the
variable: a token on the command line lands in the shell history). --json prints the answer as JSON.

Exit status: 0 done, 1 the server refused or could not be reached, 2 wrong usage.
`;

export type { CommandIo };

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
  fleet: 0,
  replay: 1,
};

const program: ProgramSpec = {
  name: 'backhaul-admin',
  usage: adminUsage,
  arity,
  options: { gateways: { type: 'string' }, 'all-gateways': { type: 'boolean' }, role: { type: 'string' } },
  token: { option: 'admin-token', variable: 'BACKHAUL_ADMIN_TOKEN', what: 'an admin token' },
};

/** Runs one admin command against the server's admin API; resolves with the exit status. */
export async function runAdminCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CommandIo,
): Promise<number> {
  const invocation = readCommandLine(program, argv, env, io);
  if (typeof invocation === 'number') return invocation;
  const { command, args: rest, server, token } = invocation;
  const values = {
    json: invocation.json,
    gateways: invocation.text('gateways'),
    'all-gateways': invocation.flag('all-gateways'),
    role: invocation.text('role'),
  };

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
      case 'fleet': {
        const fleet = await admin.fleet();
        print(fleet, describeFleet(fleet));
        break;
      }
      case 'replay': {
        // The argument is a query ID here; the new ID alone on stdout, for scripts.
        const replayed = await admin.replayDeadLetter(gatewayId);
        if (!values.json) io.err(`Replayed ${gatewayId} as ${replayed.id} (${replayed.state})\n`);
        print(replayed, `${replayed.id}\n`);
        break;
      }
    }
    return 0;
  } catch (error) {
    io.err(`backhaul-admin: ${describeError(error)}\n`);
    return 1;
  }
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
