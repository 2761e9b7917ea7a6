/**
 * The etcd key layout: Calico v2.6's (`/calico/v1/...`, `/calico/bgp/v1/...`, `/calico/ipam/v2/...`)
 * stored in the etcd v3 keyspace, with the originals' JSON values. Every module builds keys here and
 * nowhere else. Names inside keys are URL-escaped (`/` becomes `%2f`), as libcalico-go did.
 */
import { cidrToKey, IpVersion } from '../net/ip.js';

const esc = (s: string): string => encodeURIComponent(s).replace(/%20/g, ' ');
// Most names need no unescaping; skipping decodeURIComponent for them matters when listing 10k keys.
export const unesc = (s: string): string => (s.includes('%') ? decodeURIComponent(s) : s);

export const ROOT = '/calico/';
export const V1 = '/calico/v1';
export const BGP = '/calico/bgp/v1';
export const IPAM = '/calico/ipam/v2';

export const keys = {
  ready: `${V1}/Ready`,

  // --- Felix configuration: /calico/v1/config/<Param>, per node /calico/v1/host/<node>/config/<Param>
  felixConfig: (param: string) => `${V1}/config/${param}`,
  felixConfigPrefix: `${V1}/config/`,
  hostConfig: (node: string, param: string) => `${V1}/host/${esc(node)}/config/${param}`,
  hostConfigPrefix: (node: string) => `${V1}/host/${esc(node)}/config/`,

  // --- Hosts (nodes)
  hostPrefix: `${V1}/host/`,
  host: (node: string) => `${V1}/host/${esc(node)}/`,
  hostMetadata: (node: string) => `${V1}/host/${esc(node)}/metadata`,
  /** The node's IPv4 address, read by Felix (IPIP) and by the original BIRD templates. */
  birdIp: (node: string) => `${V1}/host/${esc(node)}/bird_ip`,
  bird6Ip: (node: string) => `${V1}/host/${esc(node)}/bird6_ip`,
  /** Extension: node labels (JSON object), read by the BGP speaker for peer selectors. */
  hostLabels: (node: string) => `${BGP}/host/${esc(node)}/labels`,

  // --- Workload endpoints: /calico/v1/host/<node>/workload/<orch>/<workload>/endpoint/<name>
  workloadPrefixAll: `${V1}/host/`,
  workloadsOfHost: (node: string) => `${V1}/host/${esc(node)}/workload/`,
  workloadsOfOrchestrator: (node: string, orch: string) => `${V1}/host/${esc(node)}/workload/${esc(orch)}/`,
  workloadEndpointsOf: (node: string, orch: string, workload: string) =>
    `${V1}/host/${esc(node)}/workload/${esc(orch)}/${esc(workload)}/endpoint/`,
  workloadEndpoint: (node: string, orch: string, workload: string, name: string) =>
    `${V1}/host/${esc(node)}/workload/${esc(orch)}/${esc(workload)}/endpoint/${esc(name)}`,

  // --- Host endpoints: /calico/v1/host/<node>/endpoint/<name>
  hostEndpointsOf: (node: string) => `${V1}/host/${esc(node)}/endpoint/`,
  hostEndpoint: (node: string, name: string) => `${V1}/host/${esc(node)}/endpoint/${esc(name)}`,

  // --- Profiles: /calico/v1/policy/profile/<name>/{rules,tags,labels}
  profilePrefix: `${V1}/policy/profile/`,
  profile: (name: string) => `${V1}/policy/profile/${esc(name)}/`,
  profileRules: (name: string) => `${V1}/policy/profile/${esc(name)}/rules`,
  profileTags: (name: string) => `${V1}/policy/profile/${esc(name)}/tags`,
  profileLabels: (name: string) => `${V1}/policy/profile/${esc(name)}/labels`,

  // --- Policies: /calico/v1/policy/tier/default/policy/<name>
  policyPrefix: `${V1}/policy/tier/default/policy/`,
  policy: (name: string) => `${V1}/policy/tier/default/policy/${esc(name)}`,

  // --- IP pools: /calico/v1/ipam/v4/pool/<a.b.c.d-len>
  poolPrefix: (v: IpVersion) => `${V1}/ipam/v${v}/pool/`,
  pool: (cidr: string, v: IpVersion) => `${V1}/ipam/v${v}/pool/${cidrToKey(cidr)}`,

  // --- BGP (libcalico layout)
  bgpGlobalAs: `${BGP}/global/as_num`,
  bgpNodeMesh: `${BGP}/global/node_mesh`,
  bgpLogLevel: `${BGP}/global/loglevel`,
  bgpGlobalPeerPrefix: (v: IpVersion) => `${BGP}/global/peer_v${v}/`,
  bgpGlobalPeer: (ip: string, v: IpVersion) => `${BGP}/global/peer_v${v}/${ip}`,
  /** Extension for v3 BGPPeers defined by selectors (they have no single peer IP). */
  bgpSelectorPeerPrefix: `${BGP}/global/peer_selector/`,
  bgpSelectorPeer: (name: string) => `${BGP}/global/peer_selector/${esc(name)}`,
  bgpHostPrefix: `${BGP}/host/`,
  bgpHost: (node: string) => `${BGP}/host/${esc(node)}/`,
  bgpHostIpV4: (node: string) => `${BGP}/host/${esc(node)}/ip_addr_v4`,
  bgpHostIpV6: (node: string) => `${BGP}/host/${esc(node)}/ip_addr_v6`,
  bgpHostNetV4: (node: string) => `${BGP}/host/${esc(node)}/network_v4`,
  bgpHostNetV6: (node: string) => `${BGP}/host/${esc(node)}/network_v6`,
  bgpHostAs: (node: string) => `${BGP}/host/${esc(node)}/as_num`,
  bgpHostLogLevel: (node: string) => `${BGP}/host/${esc(node)}/loglevel`,
  bgpHostRrClusterId: (node: string) => `${BGP}/host/${esc(node)}/rr_cluster_id`,
  bgpHostPeerPrefix: (node: string, v: IpVersion) => `${BGP}/host/${esc(node)}/peer_v${v}/`,
  bgpHostPeer: (node: string, ip: string, v: IpVersion) => `${BGP}/host/${esc(node)}/peer_v${v}/${ip}`,

  // --- IPAM (block IPAM, libcalico-go 1.7 layout)
  ipamConfig: `${IPAM}/config`,
  ipamBlockPrefix: (v: IpVersion) => `${IPAM}/assignment/ipv${v}/block/`,
  ipamBlock: (blockCidr: string, v: IpVersion) => `${IPAM}/assignment/ipv${v}/block/${cidrToKey(blockCidr)}`,
  ipamAffinityPrefix: (node: string, v: IpVersion) => `${IPAM}/host/${esc(node)}/ipv${v}/block/`,
  ipamAffinity: (node: string, blockCidr: string, v: IpVersion) => `${IPAM}/host/${esc(node)}/ipv${v}/block/${cidrToKey(blockCidr)}`,
  ipamHandlePrefix: `${IPAM}/handle/`,
  ipamHandle: (handle: string) => `${IPAM}/handle/${esc(handle)}`,

  // --- Status written by the node (Felix-style)
  felixStatus: (node: string) => `/calico/felix/v1/host/${esc(node)}/status`,
};

/** Splits a workload endpoint key into its parts, or undefined if the key is not one. */
export function parseWorkloadEndpointKey(key: string):
  | { node: string; orchestrator: string; workload: string; name: string }
  | undefined {
  const m = /^\/calico\/v1\/host\/([^/]+)\/workload\/([^/]+)\/([^/]+)\/endpoint\/([^/]+)$/.exec(key);
  if (!m) return undefined;
  return { node: unesc(m[1]!), orchestrator: unesc(m[2]!), workload: unesc(m[3]!), name: unesc(m[4]!) };
}

export function parseHostEndpointKey(key: string): { node: string; name: string } | undefined {
  const m = /^\/calico\/v1\/host\/([^/]+)\/endpoint\/([^/]+)$/.exec(key);
  if (!m) return undefined;
  return { node: unesc(m[1]!), name: unesc(m[2]!) };
}

/** `/calico/v1/policy/profile/<name>/<leaf>` -> { name, leaf } */
export function parseProfileKey(key: string): { name: string; leaf: string } | undefined {
  const m = /^\/calico\/v1\/policy\/profile\/([^/]+)\/([^/]+)$/.exec(key);
  if (!m) return undefined;
  return { name: unesc(m[1]!), leaf: m[2]! };
}
