/** Resource kinds and their aliases, case-insensitive, singular and plural (calicoctl v1.6). */
import { ValidationError } from '../errors.js';

export type Kind =
  | 'profile'
  | 'policy'
  | 'workloadEndpoint'
  | 'hostEndpoint'
  | 'ipPool'
  | 'bgpPeer'
  | 'node'
  | 'bgpConfiguration';

export const KINDS: Kind[] = ['node', 'bgpPeer', 'bgpConfiguration', 'hostEndpoint', 'workloadEndpoint', 'ipPool', 'policy', 'profile'];

const ALIASES: Record<Kind, string[]> = {
  node: ['node', 'nodes', 'no', 'nos'],
  bgpPeer: ['bgppeer', 'bgppeers', 'bgpp', 'bgpps', 'bp', 'bps'],
  bgpConfiguration: ['bgpconfiguration', 'bgpconfigurations', 'bgpconfig', 'bgpconfigs'],
  hostEndpoint: ['hostendpoint', 'hostendpoints', 'hep', 'heps'],
  workloadEndpoint: ['workloadendpoint', 'workloadendpoints', 'wep', 'weps'],
  ipPool: ['ippool', 'ippools', 'ipp', 'ipps', 'pool', 'pools'],
  policy: ['policy', 'policies', 'pol', 'pols', 'globalnetworkpolicy', 'globalnetworkpolicies', 'gnp'],
  profile: ['profile', 'profiles', 'pro', 'pros'],
};

const LOOKUP = new Map<string, Kind>();
for (const [kind, names] of Object.entries(ALIASES) as [Kind, string[]][]) for (const n of names) LOOKUP.set(n, kind);

export function resolveKind(text: string): Kind {
  const k = LOOKUP.get(text.toLowerCase());
  if (!k) {
    throw new ValidationError(
      `resource type '${text}' is not supported`,
      'kind',
      `known kinds: ${KINDS.join(', ')} (and aliases such as pool, bgpp, wep, hep, pol, pro)`,
    );
  }
  return k;
}
