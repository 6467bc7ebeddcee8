import { execFileSync } from 'node:child_process';

/** The emulated WAN of bench/wanem (wan-up): gateway side in bh_gw, server side in bh_api. */
export const WAN = {
  gatewayNs: 'bh_gw',
  serverNs: 'bh_api',
  serverHost: '198.18.0.2',
  gatewayHost: '198.18.0.1',
};

/** Throws with the commands to run when the namespaces are missing. */
export function requireWan(): void {
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(`--wan needs iproute2 and root (ip netns list failed: ${String(error)})`);
  }
  const names = new Set(list.split('\n').map((line) => line.split(' ')[0]));
  if (!names.has(WAN.gatewayNs) || !names.has(WAN.serverNs)) {
    throw new Error(
      `--wan needs the emulated link's namespaces ${WAN.gatewayNs} and ${WAN.serverNs}, which do not exist. ` +
        'Create them first (as root): bench/wanem/wan-up 40.5   (81 ms RTT; add a rate in Mbit/s ' +
        'as a second argument, e.g. 1000), and remove them afterwards with bench/wanem/wan-down',
    );
  }
}

/** The sysctls that bound one TCP connection's throughput on a long link, as seen in a namespace. */
export function tcpSettings(netns?: string): Record<string, string> {
  const keys = [
    'net.ipv4.tcp_wmem',
    'net.ipv4.tcp_rmem',
    'net.ipv4.tcp_slow_start_after_idle',
    'net.ipv4.tcp_congestion_control',
  ];
  const out: Record<string, string> = {};
  for (const key of keys) {
    try {
      const args = netns ? ['netns', 'exec', netns, 'sysctl', '-n', key] : ['-n', key];
      out[key] = execFileSync(netns ? 'ip' : 'sysctl', args, { encoding: 'utf8' })
        .trim()
        .replace(/\s+/g, ' ');
    } catch {
      out[key] = 'unknown';
    }
  }
  return out;
}
