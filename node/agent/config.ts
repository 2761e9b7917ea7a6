/**
 * Felix configuration the agent honours, from /calico/v1/config/<Param> with per-node overrides
 * at /calico/v1/host/<node>/config/<Param>.
 */
import { parseIp, formatIp } from '../../src/net/ip.js';

export type EndpointToHostAction = 'DROP' | 'RETURN' | 'ACCEPT';

export interface AgentConfig {
  /** What happens to traffic from a workload to its own host (after DHCP/DNS): Felix default DROP. */
  readonly endpointToHostAction: EndpointToHostAction;
  /** Interfaces of local workloads start with this (Felix InterfacePrefix). */
  readonly interfacePrefix: string;
  /** IpInIpEnabled: false turns tunl0 management off even when a pool asks for IPIP. */
  readonly ipipEnabled: boolean;
  readonly ipipMtu: number;
  readonly ipipTunnelAddr?: string;
}

export const DEFAULT_CONFIG: AgentConfig = {
  endpointToHostAction: 'DROP',
  interfacePrefix: 'cali',
  ipipEnabled: true,
  ipipMtu: 1440,
};

/** Resolves the effective config; `problems` collects values that were ignored and why. */
export function resolveConfig(get: (param: string) => string | undefined, problems: string[] = []): AgentConfig {
  let action: EndpointToHostAction = DEFAULT_CONFIG.endpointToHostAction;
  const a = get('DefaultEndpointToHostAction')?.trim().toUpperCase();
  if (a !== undefined && a !== '') {
    if (a === 'DROP' || a === 'RETURN' || a === 'ACCEPT') action = a;
    else problems.push(`DefaultEndpointToHostAction '${a}' is not DROP, RETURN or ACCEPT; using DROP`);
  }
  let prefix = DEFAULT_CONFIG.interfacePrefix;
  const p = get('InterfacePrefix')?.split(',')[0]?.trim();
  if (p) {
    if (/^[A-Za-z0-9_.-]{1,10}$/.test(p)) prefix = p;
    else problems.push(`InterfacePrefix '${p}' is not usable; using cali`);
  }
  const en = get('IpInIpEnabled')?.trim().toLowerCase();
  const ipipEnabled = en === undefined || en === '' ? true : !['false', '0', 'no', 'off'].includes(en);
  let mtu = DEFAULT_CONFIG.ipipMtu;
  const m = get('IpInIpMtu');
  if (m !== undefined && m.trim() !== '') {
    const n = Number(m);
    if (Number.isInteger(n) && n >= 576 && n <= 9000) mtu = n;
    else problems.push(`IpInIpMtu '${m}' is out of range; using ${mtu}`);
  }
  let addr: string | undefined;
  const t = get('IpInIpTunnelAddr')?.trim();
  if (t) {
    try {
      const ip = parseIp(t);
      if (ip.version === 4) addr = formatIp(ip);
      else problems.push(`IpInIpTunnelAddr '${t}' is not IPv4`);
    } catch {
      problems.push(`IpInIpTunnelAddr '${t}' is not an address`);
    }
  }
  return { endpointToHostAction: action, interfacePrefix: prefix, ipipEnabled, ipipMtu: mtu, ipipTunnelAddr: addr };
}
