/**
 * Maps v1 resources onto the stored keys and back, and writes them atomically. This is the one
 * path by which calicoctl's resource commands (create/replace/apply/delete/get) touch etcd; the
 * Powerstrip-era commands use the same keys through `src/datastore/*` helpers, so each family sees
 * what the other wrote.
 */
import { KV, KVEntry, TxnGuard, TxnOp, backoff } from './kv.js';
import { keys, parseWorkloadEndpointKey, parseHostEndpointKey, parseProfileKey, unesc } from './keys.js';
import { Kind } from '../model/kinds.js';
import {
  Resource, ProfileResource, PolicyResource, WorkloadEndpointResource, HostEndpointResource, IpPoolResource,
  BgpPeerResource, NodeResource, BgpConfigurationResource, resourceId,
} from '../model/resources.js';
import { ruleFromStored, ruleToStored } from '../model/rules.js';
import {
  StoredProfileRules, StoredPolicy, StoredWorkloadEndpoint, StoredHostEndpoint, StoredPool, StoredBgpPeer,
  StoredSelectorPeer, normaliseStoredEndpoint,
} from '../model/stored.js';
import { parseCidr, ipVersionOf, keyToCidr, IpVersion, cidrsOverlap } from '../net/ip.js';
import { AlreadyExistsError, NotFoundError, ValidationError, ConflictError, CalicoError } from '../errors.js';

export type WriteMode = 'create' | 'replace' | 'apply';

export interface ResourceFilter {
  name?: string;
  node?: string;
  orchestrator?: string;
  workload?: string;
  scope?: string;
}

/** The keys one resource occupies: `primary` decides whether it exists; `values` are written. */
interface Layout {
  primary: string;
  values: Record<string, string | undefined>;
  /** Prefix deleted on delete (profiles, nodes), else the keys of `values`. */
  deletePrefixes?: string[];
}

const json = (v: unknown) => JSON.stringify(v);
const versionOf = (ip: string): IpVersion => ipVersionOf(ip) ?? 4;
const parseJson = <T>(e: KVEntry | undefined, fallback: T): T => {
  if (!e || e.value === '') return fallback;
  try { return JSON.parse(e.value) as T; } catch { return fallback; }
};

// ------------------------------------------------------------------ resource -> keys

function policyTypes(r: PolicyResource): Array<'ingress' | 'egress'> {
  if (r.spec.types) return r.spec.types;
  const i = (r.spec.ingress?.length ?? 0) > 0;
  const e = (r.spec.egress?.length ?? 0) > 0;
  if (e && !i) return ['egress'];
  if (i && e) return ['ingress', 'egress'];
  return ['ingress'];
}

function layoutOf(r: Resource, existing: Map<string, KVEntry>): Layout {
  switch (r.kind) {
    case 'profile': {
      const rules: StoredProfileRules = {
        id: r.metadata.name,
        inbound_rules: (r.spec.ingress ?? []).map(ruleToStored),
        outbound_rules: (r.spec.egress ?? []).map(ruleToStored),
      };
      return {
        primary: keys.profileRules(r.metadata.name),
        values: {
          [keys.profileRules(r.metadata.name)]: json(rules),
          [keys.profileTags(r.metadata.name)]: json(r.metadata.tags ?? []),
          [keys.profileLabels(r.metadata.name)]: json(r.metadata.labels ?? {}),
        },
        deletePrefixes: [keys.profile(r.metadata.name)],
      };
    }
    case 'policy': {
      const v: StoredPolicy = {
        order: r.spec.order,
        selector: r.spec.selector ?? 'all()',
        inbound_rules: (r.spec.ingress ?? []).map(ruleToStored),
        outbound_rules: (r.spec.egress ?? []).map(ruleToStored),
        untracked: r.spec.doNotTrack ?? false,
        pre_dnat: r.spec.preDNAT ?? false,
        types: policyTypes(r),
      };
      if (r.metadata.annotations) v.annotations = r.metadata.annotations;
      return { primary: keys.policy(r.metadata.name), values: { [keys.policy(r.metadata.name)]: json(v) } };
    }
    case 'workloadEndpoint': {
      const m = r.metadata;
      const key = keys.workloadEndpoint(m.node, m.orchestrator, m.workload, m.name);
      // Fields only the proxy writes (container:if_name, ...) survive a replace/apply.
      const prev = parseJson<Partial<StoredWorkloadEndpoint>>(existing.get(key), {});
      const nets = r.spec.ipNetworks ?? [];
      const nat = (v: IpVersion) => (r.spec.ipNATs ?? []).filter((n) => versionOf(n.internalIP) === v).map((n) => ({ int_ip: n.internalIP, ext_ip: n.externalIP }));
      const v: StoredWorkloadEndpoint = {
        ...prev,
        state: 'active',
        name: r.spec.interfaceName,
        mac: r.spec.mac ?? null,
        profile_ids: r.spec.profiles ?? [],
        ipv4_nets: nets.filter((n) => parseCidr(n).version === 4),
        ipv6_nets: nets.filter((n) => parseCidr(n).version === 6),
        ipv4_gateway: r.spec.ipv4Gateway ?? null,
        ipv6_gateway: r.spec.ipv6Gateway ?? null,
        labels: m.labels ?? {},
      };
      if (m.activeInstanceID !== undefined) v.active_instance_id = m.activeInstanceID;
      if (nat(4).length) v.ipv4_nat = nat(4); else delete v.ipv4_nat;
      if (nat(6).length) v.ipv6_nat = nat(6); else delete v.ipv6_nat;
      return { primary: key, values: { [key]: json(v) } };
    }
    case 'hostEndpoint': {
      const key = keys.hostEndpoint(r.metadata.node, r.metadata.name);
      const ips = r.spec.expectedIPs ?? [];
      const v: StoredHostEndpoint = {
        name: r.spec.interfaceName ?? '',
        expected_ipv4_addrs: ips.filter((i) => versionOf(i) === 4),
        expected_ipv6_addrs: ips.filter((i) => versionOf(i) === 6),
        labels: r.metadata.labels ?? {},
        profile_ids: r.spec.profiles ?? [],
      };
      return { primary: key, values: { [key]: json(v) } };
    }
    case 'ipPool': {
      const c = parseCidr(r.metadata.cidr);
      const key = keys.pool(r.metadata.cidr, c.version);
      const v: StoredPool = {
        cidr: r.metadata.cidr,
        ipip: r.spec.ipip?.enabled ? 'tunl0' : '',
        ipip_mode: r.spec.ipip?.enabled ? (r.spec.ipip.mode ?? 'always') : '',
        masquerade: r.spec['nat-outgoing'] ?? false,
        ipam: true,
        disabled: r.spec.disabled ?? false,
      };
      if (r.spec.blockSize !== undefined) v.block_size = r.spec.blockSize;
      return { primary: key, values: { [key]: json(v) } };
    }
    case 'bgpPeer': {
      const m = r.metadata;
      if (r.spec.nodeSelector !== undefined || r.spec.peerSelector !== undefined) {
        const key = keys.bgpSelectorPeer(m.name!);
        const v: StoredSelectorPeer = { name: m.name! };
        if (m.node) v.node = m.node;
        if (m.peerIP) v.peer_ip = m.peerIP;
        if (r.spec.asNumber !== undefined) v.as_num = String(r.spec.asNumber);
        if (r.spec.nodeSelector) v.node_selector = r.spec.nodeSelector;
        if (r.spec.peerSelector) v.peer_selector = r.spec.peerSelector;
        return { primary: key, values: { [key]: json(v) } };
      }
      const ip = m.peerIP!;
      const key = m.scope === 'node' ? keys.bgpHostPeer(m.node!, ip, versionOf(ip)) : keys.bgpGlobalPeer(ip, versionOf(ip));
      const v: StoredBgpPeer = { ip, as_num: String(r.spec.asNumber) };
      return { primary: key, values: { [key]: json(v) } };
    }
    case 'node': {
      const n = r.metadata.name;
      const bgp = r.spec.bgp ?? {};
      const v4 = bgp.ipv4Address;
      const v6 = bgp.ipv6Address;
      return {
        primary: keys.hostMetadata(n),
        values: {
          [keys.hostMetadata(n)]: '{}',
          [keys.hostLabels(n)]: r.metadata.labels ? json(r.metadata.labels) : undefined,
          [keys.birdIp(n)]: v4 ? v4.split('/')[0] : undefined,
          [keys.bird6Ip(n)]: v6 ? v6.split('/')[0] : undefined,
          // libcalico writes ip_addr_v4/v6 always, blank when unset.
          [keys.bgpHostIpV4(n)]: v4 ? v4.split('/')[0]! : '',
          [keys.bgpHostIpV6(n)]: v6 ? v6.split('/')[0]! : '',
          [keys.bgpHostNetV4(n)]: v4 && v4.split('/')[1] !== '32' ? v4 : undefined,
          [keys.bgpHostNetV6(n)]: v6 && v6.split('/')[1] !== '128' ? v6 : undefined,
          [keys.bgpHostAs(n)]: bgp.asNumber !== undefined ? String(bgp.asNumber) : undefined,
          [keys.bgpHostRrClusterId(n)]: bgp.routeReflectorClusterID,
        },
        deletePrefixes: [keys.host(n), keys.bgpHost(n)],
      };
    }
    case 'bgpConfiguration': {
      const s = r.spec;
      if (r.metadata.name === 'default') {
        return {
          primary: keys.bgpGlobalAs,
          values: {
            [keys.bgpGlobalAs]: s.asNumber !== undefined ? String(s.asNumber) : undefined,
            [keys.bgpNodeMesh]: s.nodeToNodeMeshEnabled !== undefined ? json({ enabled: s.nodeToNodeMeshEnabled }) : undefined,
            [keys.bgpLogLevel]: s.logSeverityScreen,
          },
        };
      }
      const node = r.metadata.name.slice('node.'.length);
      return {
        primary: keys.bgpHostAs(node),
        values: { [keys.bgpHostAs(node)]: s.asNumber !== undefined ? String(s.asNumber) : undefined, [keys.bgpHostLogLevel(node)]: s.logSeverityScreen },
      };
    }
  }
}

// ------------------------------------------------------------------ keys -> resources

async function listProfiles(kv: KV, f: ResourceFilter): Promise<ProfileResource[]> {
  const prefix = f.name ? keys.profile(f.name) : keys.profilePrefix;
  const { entries } = await kv.list(prefix);
  const byName = new Map<string, Map<string, KVEntry>>();
  for (const e of entries) {
    const p = parseProfileKey(e.key);
    if (!p) continue;
    if (!byName.has(p.name)) byName.set(p.name, new Map());
    byName.get(p.name)!.set(p.leaf, e);
  }
  const out: ProfileResource[] = [];
  for (const [name, leaves] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
    if (!leaves.has('rules') && !leaves.has('tags')) continue;
    const rules = parseJson<Partial<StoredProfileRules>>(leaves.get('rules'), {});
    const tags = parseJson<string[]>(leaves.get('tags'), []);
    const labels = parseJson<Record<string, string>>(leaves.get('labels'), {});
    const md: ProfileResource['metadata'] = { name };
    if (Object.keys(labels).length) md.labels = labels;
    if (tags.length) md.tags = tags;
    out.push({
      apiVersion: 'v1', kind: 'profile', metadata: md,
      spec: { ingress: (rules.inbound_rules ?? []).map(ruleFromStored), egress: (rules.outbound_rules ?? []).map(ruleFromStored) },
    });
  }
  return out;
}

async function listPolicies(kv: KV, f: ResourceFilter): Promise<PolicyResource[]> {
  const entries = f.name ? [await kv.get(keys.policy(f.name))].filter((e): e is KVEntry => !!e) : (await kv.list(keys.policyPrefix)).entries;
  return entries.map((e) => {
    const v = parseJson<Partial<StoredPolicy>>(e, {});
    const md: PolicyResource['metadata'] = { name: unesc(e.key.slice(keys.policyPrefix.length)) };
    if (v.annotations) md.annotations = v.annotations;
    const spec: PolicyResource['spec'] = {};
    if (v.order !== undefined && v.order !== null) spec.order = v.order;
    spec.selector = v.selector ?? 'all()';
    spec.ingress = (v.inbound_rules ?? []).map(ruleFromStored);
    spec.egress = (v.outbound_rules ?? []).map(ruleFromStored);
    if (v.types) spec.types = v.types;
    if (v.untracked) spec.doNotTrack = true;
    if (v.pre_dnat) spec.preDNAT = true;
    return { apiVersion: 'v1', kind: 'policy', metadata: md, spec };
  });
}

export function endpointToResource(
  key: string,
  ep: StoredWorkloadEndpoint,
  parsed: ReturnType<typeof parseWorkloadEndpointKey> = parseWorkloadEndpointKey(key),
): WorkloadEndpointResource | undefined {
  const k = parsed;
  if (!k) return undefined;
  const e = normaliseStoredEndpoint(ep);
  const md: WorkloadEndpointResource['metadata'] = { name: k.name, workload: k.workload, orchestrator: k.orchestrator, node: k.node };
  if (e.labels && Object.keys(e.labels).length) md.labels = e.labels;
  if (e.active_instance_id) md.activeInstanceID = e.active_instance_id;
  const spec: WorkloadEndpointResource['spec'] = { ipNetworks: [...e.ipv4_nets, ...e.ipv6_nets], profiles: e.profile_ids, interfaceName: e.name };
  const nats = [...(e.ipv4_nat ?? []), ...(e.ipv6_nat ?? [])].map((n) => ({ internalIP: n.int_ip, externalIP: n.ext_ip }));
  if (nats.length) spec.ipNATs = nats;
  if (e.ipv4_gateway) spec.ipv4Gateway = e.ipv4_gateway;
  if (e.ipv6_gateway) spec.ipv6Gateway = e.ipv6_gateway;
  if (e.mac) spec.mac = e.mac;
  return { apiVersion: 'v1', kind: 'workloadEndpoint', metadata: md, spec };
}

function workloadPrefix(f: ResourceFilter): string {
  if (f.node && f.orchestrator && f.workload) return keys.workloadEndpointsOf(f.node, f.orchestrator, f.workload);
  if (f.node && f.orchestrator) return keys.workloadsOfOrchestrator(f.node, f.orchestrator);
  if (f.node) return keys.workloadsOfHost(f.node);
  return keys.workloadPrefixAll;
}

/**
 * Workload endpoint identities only (node, orchestrator, workload, name), from the keys alone: what
 * `get workloadEndpoint` prints by default, without transferring or parsing 10 000 values.
 */
export async function listWorkloadEndpointIds(kv: KV, f: ResourceFilter): Promise<WorkloadEndpointResource['metadata'][]> {
  const { entries } = await kv.list(workloadPrefix(f), { keysOnly: true });
  const out: WorkloadEndpointResource['metadata'][] = [];
  for (const e of entries) {
    const k = parseWorkloadEndpointKey(e.key);
    if (!k) continue;
    if ((f.orchestrator && k.orchestrator !== f.orchestrator) || (f.workload && k.workload !== f.workload) || (f.name && k.name !== f.name)) continue;
    out.push({ name: k.name, workload: k.workload, orchestrator: k.orchestrator, node: k.node });
  }
  return out;
}

async function listWorkloadEndpoints(kv: KV, f: ResourceFilter): Promise<WorkloadEndpointResource[]> {
  const { entries } = await kv.list(workloadPrefix(f));
  const out: WorkloadEndpointResource[] = [];
  for (const e of entries) {
    const k = parseWorkloadEndpointKey(e.key);
    if (!k) continue;
    if ((f.orchestrator && k.orchestrator !== f.orchestrator) || (f.workload && k.workload !== f.workload) || (f.name && k.name !== f.name)) continue;
    const r = endpointToResource(e.key, parseJson<StoredWorkloadEndpoint>(e, {} as StoredWorkloadEndpoint), k);
    if (r) out.push(r);
  }
  return out;
}

async function listHostEndpoints(kv: KV, f: ResourceFilter): Promise<HostEndpointResource[]> {
  const { entries } = await kv.list(f.node ? keys.hostEndpointsOf(f.node) : keys.hostPrefix);
  const out: HostEndpointResource[] = [];
  for (const e of entries) {
    const k = parseHostEndpointKey(e.key);
    if (!k || (f.name && k.name !== f.name)) continue;
    const v = parseJson<Partial<StoredHostEndpoint>>(e, {});
    const md: HostEndpointResource['metadata'] = { name: k.name, node: k.node };
    if (v.labels && Object.keys(v.labels).length) md.labels = v.labels;
    const spec: HostEndpointResource['spec'] = {};
    if (v.name) spec.interfaceName = v.name;
    const ips = [...(v.expected_ipv4_addrs ?? []), ...(v.expected_ipv6_addrs ?? [])];
    if (ips.length) spec.expectedIPs = ips;
    spec.profiles = v.profile_ids ?? [];
    out.push({ apiVersion: 'v1', kind: 'hostEndpoint', metadata: md, spec });
  }
  return out;
}

export function poolToResource(v: StoredPool): IpPoolResource {
  const spec: IpPoolResource['spec'] = {};
  if (v.ipip) spec.ipip = { enabled: true, mode: v.ipip_mode === 'cross-subnet' ? 'cross-subnet' : 'always' };
  spec['nat-outgoing'] = v.masquerade ?? false;
  if (v.disabled) spec.disabled = true;
  if (v.block_size !== undefined) spec.blockSize = v.block_size;
  return { apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: v.cidr }, spec };
}

async function listPools(kv: KV, f: ResourceFilter): Promise<IpPoolResource[]> {
  const out: IpPoolResource[] = [];
  for (const v of [4, 6] as IpVersion[]) {
    const { entries } = await kv.list(keys.poolPrefix(v));
    for (const e of entries) {
      const p = parseJson<StoredPool | undefined>(e, undefined);
      const cidr = p?.cidr ?? keyToCidr(e.key.slice(keys.poolPrefix(v).length));
      if (f.name && parseCidr(f.name).network !== parseCidr(cidr).network) continue;
      if (f.name && parseCidr(f.name).prefixLength !== parseCidr(cidr).prefixLength) continue;
      out.push(poolToResource({ ...(p ?? { cidr }), cidr }));
    }
  }
  return out;
}

async function listBgpPeers(kv: KV, f: ResourceFilter): Promise<BgpPeerResource[]> {
  const out: BgpPeerResource[] = [];
  const asOf = (v: StoredBgpPeer) => Number(v.as_num);
  if (!f.scope || f.scope === 'global') {
    if (!f.node) {
      for (const v of [4, 6] as IpVersion[]) {
        for (const e of (await kv.list(keys.bgpGlobalPeerPrefix(v))).entries) {
          const p = parseJson<StoredBgpPeer>(e, { ip: e.key.split('/').pop()!, as_num: 0 });
          if (f.name && p.ip !== f.name) continue;
          out.push({ apiVersion: 'v1', kind: 'bgpPeer', metadata: { scope: 'global', peerIP: p.ip }, spec: { asNumber: asOf(p) } });
        }
      }
      for (const e of (await kv.list(keys.bgpSelectorPeerPrefix)).entries) {
        const p = parseJson<StoredSelectorPeer | undefined>(e, undefined);
        if (!p || (f.name && p.name !== f.name && p.peer_ip !== f.name)) continue;
        const md: BgpPeerResource['metadata'] = { scope: p.node ? 'node' : 'global', name: p.name };
        if (p.node) md.node = p.node;
        if (p.peer_ip) md.peerIP = p.peer_ip;
        const spec: BgpPeerResource['spec'] = {};
        if (p.as_num !== undefined) spec.asNumber = Number(p.as_num);
        if (p.node_selector) spec.nodeSelector = p.node_selector;
        if (p.peer_selector) spec.peerSelector = p.peer_selector;
        out.push({ apiVersion: 'v1', kind: 'bgpPeer', metadata: md, spec });
      }
    }
  }
  if (!f.scope || f.scope === 'node') {
    const prefix = f.node ? keys.bgpHost(f.node) : keys.bgpHostPrefix;
    for (const e of (await kv.list(prefix)).entries) {
      const m = /^\/calico\/bgp\/v1\/host\/([^/]+)\/peer_v[46]\/([^/]+)$/.exec(e.key);
      if (!m) continue;
      const p = parseJson<StoredBgpPeer>(e, { ip: m[2]!, as_num: 0 });
      if (f.name && p.ip !== f.name) continue;
      out.push({ apiVersion: 'v1', kind: 'bgpPeer', metadata: { scope: 'node', node: unesc(m[1]!), peerIP: p.ip }, spec: { asNumber: asOf(p) } });
    }
  }
  return out;
}

async function listNodes(kv: KV, f: ResourceFilter): Promise<NodeResource[]> {
  const name = f.name ?? f.node;
  const v1 = (await kv.list(name ? keys.host(name) : keys.hostPrefix)).entries;
  const bgp = (await kv.list(name ? keys.bgpHost(name) : keys.bgpHostPrefix)).entries;
  const nodes = new Map<string, Map<string, string>>();
  const note = (n: string, leaf: string, v: string) => {
    if (!nodes.has(n)) nodes.set(n, new Map());
    nodes.get(n)!.set(leaf, v);
  };
  for (const e of v1) {
    const m = /^\/calico\/v1\/host\/([^/]+)\/(metadata|bird_ip|bird6_ip)$/.exec(e.key);
    if (m) note(unesc(m[1]!), m[2]!, e.value);
  }
  for (const e of bgp) {
    const m = /^\/calico\/bgp\/v1\/host\/([^/]+)\/(ip_addr_v4|ip_addr_v6|network_v4|network_v6|as_num|rr_cluster_id|labels)$/.exec(e.key);
    if (m && nodes.has(unesc(m[1]!))) note(unesc(m[1]!), m[2] === 'labels' ? 'labels' : `bgp:${m[2]!}`, e.value);
  }
  const out: NodeResource[] = [];
  for (const [n, leaves] of [...nodes].sort(([a], [b]) => a.localeCompare(b))) {
    if (!leaves.has('metadata') && !leaves.has('bird_ip')) continue;
    const v4 = leaves.get('bgp:network_v4') || leaves.get('bgp:ip_addr_v4') || leaves.get('bird_ip');
    const v6 = leaves.get('bgp:network_v6') || leaves.get('bgp:ip_addr_v6') || leaves.get('bird6_ip');
    const bgpSpec: NonNullable<NodeResource['spec']['bgp']> = {};
    if (v4) bgpSpec.ipv4Address = v4.includes('/') ? v4 : `${v4}/32`;
    if (v6) bgpSpec.ipv6Address = v6.includes('/') ? v6 : `${v6}/128`;
    if (leaves.get('bgp:as_num')) bgpSpec.asNumber = Number(leaves.get('bgp:as_num'));
    if (leaves.get('bgp:rr_cluster_id')) bgpSpec.routeReflectorClusterID = leaves.get('bgp:rr_cluster_id');
    const md: NodeResource['metadata'] = { name: n };
    const labels = leaves.get('labels');
    if (labels) { try { md.labels = JSON.parse(labels) as Record<string, string>; } catch { /* ignore bad labels */ } }
    out.push({ apiVersion: 'v1', kind: 'node', metadata: md, spec: Object.keys(bgpSpec).length ? { bgp: bgpSpec } : {} });
  }
  return out;
}

async function listBgpConfigurations(kv: KV, f: ResourceFilter): Promise<BgpConfigurationResource[]> {
  const out: BgpConfigurationResource[] = [];
  if (!f.name || f.name === 'default') {
    const [as, mesh, log] = await Promise.all([kv.get(keys.bgpGlobalAs), kv.get(keys.bgpNodeMesh), kv.get(keys.bgpLogLevel)]);
    const spec: BgpConfigurationResource['spec'] = {};
    if (as?.value) spec.asNumber = Number(as.value);
    if (mesh) spec.nodeToNodeMeshEnabled = parseJson<{ enabled?: boolean }>(mesh, {}).enabled !== false;
    if (log?.value) spec.logSeverityScreen = log.value;
    if (Object.keys(spec).length || f.name === 'default') out.push({ apiVersion: 'v1', kind: 'bgpConfiguration', metadata: { name: 'default' }, spec });
  }
  const hosts = (await kv.list(keys.bgpHostPrefix)).entries;
  const per = new Map<string, BgpConfigurationResource['spec']>();
  for (const e of hosts) {
    const m = /^\/calico\/bgp\/v1\/host\/([^/]+)\/(as_num|loglevel)$/.exec(e.key);
    if (!m || !e.value) continue;
    const n = `node.${unesc(m[1]!)}`;
    if (f.name && f.name !== n) continue;
    const s = per.get(n) ?? {};
    if (m[2] === 'as_num') s.asNumber = Number(e.value); else s.logSeverityScreen = e.value;
    per.set(n, s);
  }
  for (const [name, spec] of per) out.push({ apiVersion: 'v1', kind: 'bgpConfiguration', metadata: { name }, spec });
  return out;
}

export async function listResources(kv: KV, kind: Kind, f: ResourceFilter = {}): Promise<Resource[]> {
  switch (kind) {
    case 'profile': return listProfiles(kv, f);
    case 'policy': return listPolicies(kv, f);
    case 'workloadEndpoint': return listWorkloadEndpoints(kv, f);
    case 'hostEndpoint': return listHostEndpoints(kv, f);
    case 'ipPool': return listPools(kv, f);
    case 'bgpPeer': return listBgpPeers(kv, f);
    case 'node': return listNodes(kv, f);
    case 'bgpConfiguration': return listBgpConfigurations(kv, f);
  }
}

// ------------------------------------------------------------------ writes

export interface WriteOutcome {
  written: Resource[];
  skipped: Resource[];
}

/**
 * Writes resources with create / replace / apply semantics, all in one etcd transaction guarded on
 * the mod revision of every key read, so a file is written whole or not at all, and a concurrent
 * writer makes the transaction retry rather than be overwritten. With `skipExists` (create), a
 * resource that already exists is skipped instead of failing the whole file.
 */
export async function writeResources(kv: KV, resources: Resource[], mode: WriteMode, opts: { skipExists?: boolean } = {}): Promise<WriteOutcome> {
  const seen = new Set<string>();
  for (const r of resources) {
    const id = `${r.kind}:${resourceId(r)}`;
    if (seen.has(id)) throw new ValidationError(`${r.kind} ${resourceId(r)} appears twice in the input`, 'metadata');
    seen.add(id);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const existing = new Map<string, KVEntry>();
    const layouts0 = resources.map((r) => layoutOf(r, existing));
    const allKeys = [...new Set(layouts0.flatMap((l) => [l.primary, ...Object.keys(l.values)]))];
    const got = await Promise.all(allKeys.map((k) => kv.get(k)));
    allKeys.forEach((k, i) => { if (got[i]) existing.set(k, got[i]!); });
    await checkPoolOverlaps(kv, resources.filter((r): r is IpPoolResource => r.kind === 'ipPool'));

    const guards: TxnGuard[] = [];
    const ops: TxnOp[] = [];
    const written: Resource[] = [];
    const skipped: Resource[] = [];
    for (const r of resources) {
      const l = layoutOf(r, existing);
      const exists = existing.has(l.primary);
      if (mode === 'create' && exists) {
        if (opts.skipExists) { skipped.push(r); continue; }
        throw new AlreadyExistsError(`resource already exists: ${r.kind} ${resourceId(r)}`, { hint: 'use `calicoctl apply` or `replace` to change it, or --skip-exists' });
      }
      if (mode === 'replace' && !exists) {
        throw new NotFoundError(`resource does not exist: ${r.kind} ${resourceId(r)}`, { hint: 'use `calicoctl create` or `apply` to make it' });
      }
      for (const [k, v] of Object.entries(l.values)) {
        guards.push({ key: k, modRevision: existing.get(k)?.modRevision ?? '0' });
        if (v === undefined) {
          // Apply/replace clears optional leaves the new document leaves out.
          if (existing.has(k) && mode !== 'create') ops.push({ op: 'delete', key: k });
        } else ops.push({ op: 'put', key: k, value: v });
      }
      written.push(r);
    }
    if (ops.length === 0) return { written, skipped };
    try {
      await txnChunked(kv, dedupeGuards(guards), ops);
      return { written, skipped };
    } catch (err) {
      if (err instanceof ConflictError) { await backoff(attempt); continue; }
      throw err;
    }
  }
  throw new CalicoError('gave up writing: the resources kept changing under concurrent writers; try again');
}

function dedupeGuards(g: TxnGuard[]): TxnGuard[] {
  const m = new Map<string, TxnGuard>();
  for (const x of g) m.set(x.key, x);
  return [...m.values()];
}

/** etcd limits a transaction to 128 operations by default; larger writes go in guarded chunks. */
async function txnChunked(kv: KV, guards: TxnGuard[], ops: TxnOp[]): Promise<void> {
  const MAX = 120;
  if (guards.length + ops.length <= MAX * 2 && ops.length <= MAX && guards.length <= MAX) {
    await kv.txn(guards, ops);
    return;
  }
  const guardOf = new Map(guards.map((g) => [g.key, g]));
  for (let i = 0; i < ops.length; i += MAX) {
    const chunk = ops.slice(i, i + MAX);
    const g = chunk.map((o) => (o.op === 'deletePrefix' ? undefined : guardOf.get(o.key))).filter((x): x is TxnGuard => !!x);
    await kv.txn(g, chunk);
  }
}

async function checkPoolOverlaps(kv: KV, pools: IpPoolResource[]): Promise<void> {
  if (pools.length === 0) return;
  const existing = await listPools(kv, {});
  for (const p of pools) {
    const c = parseCidr(p.metadata.cidr);
    for (const e of [...existing, ...pools]) {
      if (e === p || e.metadata.cidr === p.metadata.cidr) continue;
      if (cidrsOverlap(c, parseCidr(e.metadata.cidr))) {
        throw new ValidationError(`IP pool ${p.metadata.cidr} overlaps the existing pool ${e.metadata.cidr}`, 'metadata.cidr', 'pools must not overlap; remove or change one of them');
      }
    }
  }
}

/** Deletes resources; returns those that did not exist (for --skip-not-exists reporting). */
export async function deleteResources(kv: KV, resources: Resource[], opts: { skipNotExists?: boolean } = {}): Promise<{ deleted: Resource[]; missing: Resource[] }> {
  const deleted: Resource[] = [];
  const missing: Resource[] = [];
  const plans: Array<{ r: Resource; l: Layout }> = [];
  for (const r of resources) {
    const l = layoutOf(r, new Map());
    const e = await kv.get(l.primary);
    const exists = e !== undefined || (r.kind === 'node' && (await kv.get(keys.birdIp(r.metadata.name))) !== undefined) ||
      (r.kind === 'bgpConfiguration' && (await Promise.all(Object.keys(l.values).map((k) => kv.get(k)))).some(Boolean));
    if (!exists) {
      if (!opts.skipNotExists) throw new NotFoundError(`resource does not exist: ${r.kind} ${resourceId(r)}`);
      missing.push(r);
      continue;
    }
    plans.push({ r, l });
  }
  for (const { r, l } of plans) {
    if (l.deletePrefixes) for (const p of l.deletePrefixes) await kv.deletePrefix(p);
    else await kv.txn([], Object.keys(l.values).map((key) => ({ op: 'delete' as const, key })));
    deleted.push(r);
  }
  return { deleted, missing };
}
