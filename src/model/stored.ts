/**
 * The values stored in etcd, exactly in the originals' JSON shapes (Calico v2.6 etcd backend,
 * which is a superset of the Powerstrip-era v0.4 shapes). These are what the node agent, the
 * proxy, IPAM and both calicoctl families read and write; the v1/v3 resource documents that
 * users see are converted to and from these in `resources.ts`.
 */

/** A rule as stored (snake_case, `!`-prefixed negations). Every key is optional; conditions AND. */
export interface StoredRule {
  action?: 'allow' | 'deny' | 'log' | 'pass' | 'next-tier';
  ip_version?: 4 | 6;
  protocol?: string | number;
  '!protocol'?: string | number;
  icmp_type?: number;
  icmp_code?: number;
  '!icmp_type'?: number;
  '!icmp_code'?: number;
  src_tag?: string;
  src_net?: string;
  src_nets?: string[];
  src_selector?: string;
  src_ports?: Array<number | string>;
  dst_tag?: string;
  dst_net?: string;
  dst_nets?: string[];
  dst_selector?: string;
  dst_ports?: Array<number | string>;
  '!src_tag'?: string;
  '!src_net'?: string;
  '!src_nets'?: string[];
  '!src_selector'?: string;
  '!src_ports'?: Array<number | string>;
  '!dst_tag'?: string;
  '!dst_net'?: string;
  '!dst_nets'?: string[];
  '!dst_selector'?: string;
  '!dst_ports'?: Array<number | string>;
  log_prefix?: string;
}

/** `/calico/v1/policy/profile/<name>/rules`. `id` is the Powerstrip-era field, kept when present. */
export interface StoredProfileRules {
  id?: string;
  inbound_rules: StoredRule[];
  outbound_rules: StoredRule[];
}

/** A whole profile as read from its three keys (`rules`, `tags`, `labels`). */
export interface StoredProfile {
  name: string;
  rules: StoredProfileRules;
  tags: string[];
  labels: Record<string, string>;
}

/** `/calico/v1/policy/tier/default/policy/<name>` */
export interface StoredPolicy {
  order?: number;
  selector: string;
  inbound_rules: StoredRule[];
  outbound_rules: StoredRule[];
  untracked?: boolean;
  pre_dnat?: boolean;
  types?: Array<'ingress' | 'egress'>;
  annotations?: Record<string, string>;
}

/** `/calico/v1/host/<node>/workload/<orch>/<workload>/endpoint/<name>` */
export interface StoredWorkloadEndpoint {
  state: 'active' | 'inactive';
  /** Host-side interface: `cali` + first 11 chars of the endpoint id. */
  name: string;
  active_instance_id?: string;
  mac: string | null;
  profile_ids: string[];
  ipv4_nets: string[];
  ipv6_nets: string[];
  ipv4_nat?: Array<{ int_ip: string; ext_ip: string }>;
  ipv6_nat?: Array<{ int_ip: string; ext_ip: string }>;
  labels?: Record<string, string>;
  ipv4_gateway: string | null;
  ipv6_gateway: string | null;
  /** Container-side interface name (v0.4.2+). */
  'container:if_name'?: string;
  /** Legacy (≤ v0.4.5): a single profile. Readers turn it into `profile_ids`. */
  profile_id?: string | null;
}

/** `/calico/v1/host/<node>/endpoint/<name>` */
export interface StoredHostEndpoint {
  name?: string;
  expected_ipv4_addrs: string[];
  expected_ipv6_addrs: string[];
  labels?: Record<string, string>;
  profile_ids: string[];
}

/** `/calico/v1/ipam/v4|v6/pool/<cidr-dashed>` */
export interface StoredPool {
  cidr: string;
  /** `"tunl0"` when IPIP is on, else absent or "". */
  ipip?: string;
  ipip_mode?: '' | 'always' | 'cross-subnet';
  masquerade?: boolean;
  ipam?: boolean;
  disabled?: boolean;
  /** Extension (v3 `blockSize`): IPAM block prefix length; default 26 (v4) / 122 (v6). */
  block_size?: number;
}

/** `/calico/bgp/v1/global/peer_v4/<ip>` and `/calico/bgp/v1/host/<node>/peer_v4/<ip>`. */
export interface StoredBgpPeer {
  ip: string;
  /** Written as a string so that templates never print big numbers in e-notation; read either. */
  as_num: string | number;
}

/** Extension: a v3 BGPPeer defined by selectors, `/calico/bgp/v1/global/peer_selector/<name>`. */
export interface StoredSelectorPeer {
  name: string;
  node?: string;
  peer_ip?: string;
  as_num?: string | number;
  node_selector?: string;
  peer_selector?: string;
}

/** `/calico/bgp/v1/global/node_mesh` */
export interface StoredNodeMesh {
  enabled: boolean;
}

/** IPAM block: `/calico/ipam/v2/assignment/ipv4/block/<cidr-dashed>` */
export interface StoredBlock {
  cidr: string;
  affinity: string | null;
  strictAffinity: boolean;
  allocations: Array<number | null>;
  unallocated: number[];
  attributes: Array<{ handle_id: string | null; secondary: Record<string, string> | null }>;
}

/** `/calico/ipam/v2/handle/<id>` */
export interface StoredHandle {
  block: Record<string, number>;
}

export const DEFAULT_AS = 64512;
export const DEFAULT_IPV4_POOL = '192.168.0.0/16';
export const DEFAULT_IPV6_POOL = 'fd80:24e2:f998:72d6::/64';
export const INTERFACE_PREFIX = 'cali';
/** The container's default gateway: answered by proxy ARP on the host side of the veth. */
export const GATEWAY_V4 = '169.254.1.1';

/** Profile default rules (v0.4.6+): inbound allow from the tag, outbound allow. */
export function defaultProfile(name: string): StoredProfile {
  return {
    name,
    rules: { id: name, inbound_rules: [{ action: 'allow', src_tag: name }], outbound_rules: [{ action: 'allow' }] },
    tags: [name],
    labels: {},
  };
}

/** The host-side interface name of an endpoint id. */
export function interfaceNameFor(endpointId: string): string {
  return INTERFACE_PREFIX + endpointId.slice(0, 11);
}

/** Reads a stored endpoint, accepting the legacy `profile_id` field. */
export function normaliseStoredEndpoint(raw: StoredWorkloadEndpoint): StoredWorkloadEndpoint {
  const ep = { ...raw };
  if (!Array.isArray(ep.profile_ids)) {
    ep.profile_ids = ep.profile_id ? [ep.profile_id] : [];
  }
  delete ep.profile_id;
  ep.ipv4_nets ??= [];
  ep.ipv6_nets ??= [];
  return ep;
}
