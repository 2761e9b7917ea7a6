/**
 * What the speaker should do, derived from etcd: local AS and router id, the peers (node-to-node
 * mesh, global, node-specific, selector peers, route reflector roles), the IP pools and the local
 * routes to announce (affine IPAM blocks and borrowed workload addresses). `deriveConfig` is a
 * pure function of a key snapshot, so every rule is unit-testable; `ConfigWatcher` keeps the
 * snapshot current with list + watch and calls back on every change (no periodic scan).
 *
 * Key layout (src/datastore/keys.ts):
 *   /calico/bgp/v1/global/{as_num,node_mesh}, /global/peer_v4|v6/<ip>, /global/peer_selector/<name>
 *   /calico/bgp/v1/host/<node>/{ip_addr_v4,ip_addr_v6,as_num,rr_cluster_id}, /host/<node>/peer_v4|v6/<ip>
 *   /calico/v1/ipam/v4|v6/pool/<cidr>   /calico/ipam/v2/host/<node>/ipv4|ipv6/block/<cidr>
 *   /calico/v1/host/<node>/workload/<orch>/<wl>/endpoint/<id>
 * Extensions read from peer JSON (not in Calico v2.6): `port` (number) and `passive` (boolean).
 */
import { KV, WatchEvent, Watcher } from '../../src/datastore/kv.js';
import { keys, unesc } from '../../src/datastore/keys.js';
import { DEFAULT_AS, StoredBgpPeer, StoredPool, StoredSelectorPeer, StoredWorkloadEndpoint } from '../../src/model/stored.js';
import { keyToCidr } from '../../src/net/ip.js';
import { parseSelector } from '../../src/model/selector.js';
import { Logger } from '../../src/log.js';
import { AFI_IPV4, AFI_IPV6, Afi } from './codec/constants.js';
import { parsePrefix, parseAddress, prefixCovers, PrefixWords } from './codec/prefix.js';
import { PeerConfig, PeerType } from './peer.js';
import { BgpConfigError } from './errors.js';

export interface PoolInfo { cidr: string; afi: Afi; words: PrefixWords; ipip: boolean }
export interface LocalRoute { prefix: string; afi: Afi; kind: 'block' | 'host' }

export interface DesiredConfig {
  nodeName: string;
  localAs: number;
  routerId: number;
  ipv4?: string;
  ipv6?: string;
  meshEnabled: boolean;
  /** Our route-reflector cluster id (as a 32-bit number) when this node is a reflector. */
  clusterId?: number;
  peers: PeerConfig[];
  pools: PoolInfo[];
  localRoutes: LocalRoute[];
  /** Problems found in the data (bad AS numbers, addresses): logged by the speaker. */
  problems: string[];
}

export interface DeriveOptions {
  nodeName: string;
  routerId?: string;
  defaultPort?: number;
}

const BGP = '/calico/bgp/v1/';

export function parseAsNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff) return v;
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  const dot = /^(\d+)\.(\d+)$/.exec(t); // asdot notation, e.g. 1.10 = 65546
  if (dot) {
    const hi = Number(dot[1]);
    const lo = Number(dot[2]);
    return hi <= 0xffff && lo <= 0xffff ? hi * 65536 + lo : undefined;
  }
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n > 0 && n <= 0xffffffff ? n : undefined;
}

function jsonOf<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try { return JSON.parse(text) as T; } catch { return undefined; }
}

/** A 32-bit id from a dotted quad or a number; undefined when neither. */
export function parseRouterId(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const a = parseAddress(text.trim());
  if (a && a.afi === AFI_IPV4) return a.words[0];
  const n = Number(text);
  return Number.isInteger(n) && n > 0 && n <= 0xffffffff ? n : undefined;
}

/** CALICO_ROUTER_ID=hash style id for nodes without an IPv4 address. */
export function hashRouterId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h = (h >>> 0) & 0xdfffffff; // keep it out of the multicast/reserved range
  return h === 0 ? 1 : h;
}

interface NodeInfo { name: string; ipv4?: string; ipv6?: string; asNum?: number; rrClusterId?: string; labels: Record<string, string> }

export function protocolName(type: PeerType, address: string): string {
  const p = type === 'node-to-node mesh' ? 'Mesh' : type === 'global' ? 'Global' : 'Node';
  return `${p}_${address.replace(/[.:]/g, '_')}`;
}

export function deriveConfig(kvs: ReadonlyMap<string, string>, o: DeriveOptions): DesiredConfig {
  const problems: string[] = [];
  const nodes = new Map<string, NodeInfo>();
  const node = (name: string) => {
    let n = nodes.get(name);
    if (!n) { n = { name, labels: {} }; nodes.set(name, n); }
    return n;
  };
  const hostRe = /^\/calico\/bgp\/v1\/host\/([^/]+)\/(ip_addr_v4|ip_addr_v6|as_num|rr_cluster_id|labels)$/;
  for (const [k, v] of kvs) {
    const m = hostRe.exec(k);
    if (!m) continue;
    const n = node(unesc(m[1]!));
    const val = v.trim();
    if (m[2] === 'ip_addr_v4' && val) n.ipv4 = val.replace(/\/\d+$/, '');
    else if (m[2] === 'ip_addr_v6' && val) n.ipv6 = val.replace(/\/\d+$/, '');
    else if (m[2] === 'as_num' && val) {
      n.asNum = parseAsNumber(val);
      if (n.asNum === undefined) problems.push(`node ${n.name}: as_num '${val}' is not an AS number`);
    } else if (m[2] === 'rr_cluster_id' && val) n.rrClusterId = val;
    else if (m[2] === 'labels') n.labels = jsonOf<Record<string, string>>(val) ?? {};
  }
  const globalAsText = kvs.get(keys.bgpGlobalAs);
  let globalAs = DEFAULT_AS;
  if (globalAsText !== undefined && globalAsText.trim() !== '') {
    const g = parseAsNumber(globalAsText);
    if (g === undefined) problems.push(`global as_num '${globalAsText}' is not an AS number; using ${DEFAULT_AS}`);
    else globalAs = g;
  }
  const asOf = (n: NodeInfo | undefined) => n?.asNum ?? globalAs;
  const me = nodes.get(o.nodeName) ?? { name: o.nodeName, labels: {} };
  const localAs = asOf(me);
  const routerId = parseRouterId(o.routerId) ?? parseRouterId(me.ipv4) ?? hashRouterId(o.nodeName);
  const meshEnabled = jsonOf<{ enabled?: boolean }>(kvs.get(keys.bgpNodeMesh))?.enabled !== false;
  const clusterIdText = me.rrClusterId;
  const clusterId = clusterIdText ? parseRouterId(clusterIdText) ?? hashRouterId(clusterIdText) : undefined;
  const port = o.defaultPort ?? 179;

  const byAddr = new Map<string, NodeInfo>();
  for (const n of nodes.values()) {
    if (n.ipv4) byAddr.set(n.ipv4, n);
    if (n.ipv6) byAddr.set(n.ipv6, n);
  }
  /** Calico: a reflector treats a same-AS peer as its client unless it is a reflector of the same cluster. */
  const isClient = (addr: string, remoteAs: number): boolean => {
    if (!clusterIdText || remoteAs !== localAs) return false;
    const other = byAddr.get(addr);
    return !other?.rrClusterId || other.rrClusterId !== clusterIdText;
  };

  const peers = new Map<string, PeerConfig>();
  const rank: Record<PeerType, number> = { 'node-to-node mesh': 0, global: 1, 'node specific': 2 };
  const add = (type: PeerType, address: string, remoteAs: number, extra: { port?: unknown; passive?: unknown } = {}) => {
    const a = parseAddress(address);
    if (!a) { problems.push(`${type} peer '${address}' is not an IP address`); return; }
    if (address === me.ipv4 || address === me.ipv6) return; // never peer with ourselves
    const existing = peers.get(address);
    if (existing && rank[existing.type] >= rank[type]) return;
    const p = typeof extra.port === 'number' && extra.port > 0 && extra.port < 65536 ? extra.port : port;
    peers.set(address, {
      address, afi: a.afi, remoteAs, localAs, type, name: protocolName(type, address), port: p,
      passive: extra.passive === true, rrClient: isClient(address, remoteAs),
      sourceAddress: a.afi === AFI_IPV4 ? me.ipv4 : me.ipv6,
    });
  };

  if (meshEnabled) {
    const reflectors = [...nodes.values()].filter((n) => n.rrClusterId);
    for (const n of nodes.values()) {
      if (n.name === o.nodeName) continue;
      // With reflectors present, clients peer only with reflectors; reflectors with everyone.
      if (reflectors.length && !me.rrClusterId && !n.rrClusterId) continue;
      if (n.ipv4 && me.ipv4) add('node-to-node mesh', n.ipv4, asOf(n));
      if (n.ipv6 && me.ipv6) add('node-to-node mesh', n.ipv6, asOf(n));
    }
  }

  const peerRe = /^\/calico\/bgp\/v1\/(global|host\/([^/]+))\/peer_v([46])\/([^/]+)$/;
  for (const [k, v] of kvs) {
    const m = peerRe.exec(k);
    if (!m) continue;
    const forNode = m[2] !== undefined ? unesc(m[2]) : undefined;
    if (forNode !== undefined && forNode !== o.nodeName) continue;
    const doc = jsonOf<StoredBgpPeer & { port?: number; passive?: boolean }>(v);
    const ip = doc?.ip ?? unesc(m[4]!);
    const asn = parseAsNumber(doc?.as_num);
    if (asn === undefined) { problems.push(`peer ${k}: as_num '${String(doc?.as_num)}' is not an AS number`); continue; }
    add(forNode !== undefined ? 'node specific' : 'global', ip, asn, { port: doc?.port, passive: doc?.passive });
  }

  for (const [k, v] of kvs) {
    if (!k.startsWith(keys.bgpSelectorPeerPrefix)) continue;
    const doc = jsonOf<StoredSelectorPeer & { port?: number; passive?: boolean }>(v);
    if (!doc) { problems.push(`selector peer ${k}: not JSON`); continue; }
    let applies: boolean;
    try {
      applies = doc.node ? doc.node === o.nodeName : doc.node_selector ? parseSelector(doc.node_selector).evaluate(me.labels) : true;
    } catch (err) { problems.push(`selector peer ${doc.name}: ${(err as Error).message}`); continue; }
    if (!applies) continue;
    const type: PeerType = doc.node || doc.node_selector ? 'node specific' : 'global';
    if (doc.peer_ip) {
      const asn = parseAsNumber(doc.as_num);
      if (asn === undefined) { problems.push(`selector peer ${doc.name}: as_num '${String(doc.as_num)}' is not an AS number`); continue; }
      add(type, doc.peer_ip, asn, doc);
    } else if (doc.peer_selector) {
      let sel;
      try { sel = parseSelector(doc.peer_selector); } catch (err) { problems.push(`selector peer ${doc.name}: ${(err as Error).message}`); continue; }
      for (const n of nodes.values()) {
        if (n.name === o.nodeName || !sel.evaluate(n.labels)) continue;
        const asn = parseAsNumber(doc.as_num) ?? asOf(n);
        if (n.ipv4 && me.ipv4) add(type, n.ipv4, asn, doc);
        if (n.ipv6 && me.ipv6) add(type, n.ipv6, asn, doc);
      }
    }
  }

  // Pools
  const pools: PoolInfo[] = [];
  const poolRe = /^\/calico\/v1\/ipam\/v([46])\/pool\/([^/]+)$/;
  for (const [k, v] of kvs) {
    const m = poolRe.exec(k);
    if (!m) continue;
    const doc = jsonOf<StoredPool>(v);
    let cidr: string;
    try { cidr = doc?.cidr ?? keyToCidr(m[2]!); } catch { problems.push(`pool ${k}: bad CIDR`); continue; }
    try {
      const p = parsePrefix(cidr);
      pools.push({ cidr, afi: p.afi, words: p.words, ipip: !!doc?.ipip });
    } catch { problems.push(`pool ${k}: bad CIDR '${cidr}'`); }
  }
  const inPool = (w: PrefixWords) => pools.some((p) => prefixCovers(p.words, w));

  // Local routes: affine blocks (aggregates) and borrowed workload addresses.
  const localRoutes: LocalRoute[] = [];
  const blocks: PrefixWords[] = [];
  const affRe = /^\/calico\/ipam\/v2\/host\/([^/]+)\/ipv([46])\/block\/([^/]+)$/;
  for (const k of kvs.keys()) {
    const m = affRe.exec(k);
    if (!m || unesc(m[1]!) !== o.nodeName) continue;
    let cidr: string;
    try { cidr = keyToCidr(unesc(m[3]!)); } catch { problems.push(`block affinity ${k}: bad CIDR`); continue; }
    const p = parsePrefix(cidr);
    blocks.push(p.words);
    if (inPool(p.words)) localRoutes.push({ prefix: cidr, afi: p.afi, kind: 'block' });
  }
  const wepPrefix = keys.workloadsOfHost(o.nodeName);
  const seenHost = new Set<string>();
  for (const [k, v] of kvs) {
    if (!k.startsWith(wepPrefix) || !k.includes('/endpoint/')) continue;
    const ep = jsonOf<StoredWorkloadEndpoint>(v);
    if (!ep) continue;
    for (const net of [...(ep.ipv4_nets ?? []), ...(ep.ipv6_nets ?? [])]) {
      let p;
      try { p = parsePrefix(net); } catch { problems.push(`endpoint ${k}: bad address '${net}'`); continue; }
      if (!inPool(p.words) || blocks.some((b) => prefixCovers(b, p.words))) continue;
      const text = net.includes('/') ? net : `${net}/${p.afi === AFI_IPV4 ? 32 : 128}`;
      if (seenHost.has(text)) continue;
      seenHost.add(text);
      localRoutes.push({ prefix: text, afi: p.afi, kind: 'host' });
    }
  }

  return {
    nodeName: o.nodeName, localAs, routerId, ipv4: me.ipv4, ipv6: me.ipv6, meshEnabled, clusterId,
    peers: [...peers.values()].sort((a, b) => a.address.localeCompare(b.address)), pools, localRoutes, problems,
  };
}

/** The etcd prefixes the speaker depends on. */
export function watchedPrefixes(nodeName: string): string[] {
  return [BGP, '/calico/v1/ipam/', keys.ipamAffinityPrefix(nodeName, 4).replace(/ipv4\/block\/$/, ''), keys.workloadsOfHost(nodeName)];
}

/** Keeps a snapshot of the watched keys and reports changes (debounced to one callback per tick). */
export class ConfigWatcher {
  readonly snapshot = new Map<string, string>();
  private watchers: Watcher[] = [];
  private pending = false;
  private stopped = false;

  constructor(private readonly kv: KV, private readonly nodeName: string, private readonly log: Logger, private readonly onChange: () => void) {}

  async start(): Promise<void> {
    if (!this.kv.watch) throw new BgpConfigError('the BGP speaker needs a KV with watch (connectKV(cfg, "daemon"))');
    for (const prefix of watchedPrefixes(this.nodeName)) await this.follow(prefix);
  }

  private async follow(prefix: string): Promise<void> {
    const { entries, revision } = await this.kv.list(prefix);
    for (const k of [...this.snapshot.keys()]) if (k.startsWith(prefix)) this.snapshot.delete(k);
    for (const e of entries) this.snapshot.set(e.key, e.value);
    this.changed();
    const w = await this.kv.watch!(prefix, revision, (events: WatchEvent[]) => {
      for (const e of events) {
        if (e.type === 'put') this.snapshot.set(e.key, e.value);
        else this.snapshot.delete(e.key);
      }
      this.changed();
    }, (err) => {
      if (this.stopped) return;
      // Compaction or a broken stream: start over from a fresh list.
      this.log.warn('etcd watch failed; re-listing', { prefix, error: err.message });
      void w.close().catch(() => undefined);
      this.watchers = this.watchers.filter((x) => x !== w);
      setTimeout(() => { if (!this.stopped) this.follow(prefix).catch((e2) => this.log.error('re-list failed', { prefix, error: e2 as Error })); }, 1000);
    });
    this.watchers.push(w);
  }

  private changed(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => { this.pending = false; if (!this.stopped) this.onChange(); });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.watchers.map((w) => w.close().catch(() => undefined)));
    this.watchers = [];
  }
}

export { AFI_IPV6 };
