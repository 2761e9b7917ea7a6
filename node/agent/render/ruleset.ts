/**
 * DesiredState -> the full content of table `inet calico` as a model (chains with their rules,
 * sets, verdict maps). Rendering is memoised on the identity of the calc views, so after one
 * change only the chains of the changed profile / policy / endpoint are rendered again.
 *
 * Packet path:
 *   forward hook  filter-FORWARD: in cali* -> from-wl-dispatch, out cali* -> to-wl-dispatch, then
 *                                 accept (the endpoint chains returned with the accept mark)
 *   from-wl-dispatch: anti-spoofing (interface . source address, interface . source MAC must be
 *                     a local endpoint's, from sets), then iifname vmap -> its class chain, else drop
 *   to-wl-dispatch:   oifname vmap -> its class chain, else drop (unknown interface: fail closed)
 *   input hook    filter-INPUT:   IPIP only from known nodes; in cali* -> wl-to-host
 *                                 (NDP, DHCP, DNS, then DefaultEndpointToHostAction)
 *   postrouting   nat-POSTROUTING: from a masquerade pool to outside all pools -> masquerade
 * Class chains (one per distinct policy+profile sequence, shared by the endpoints that have it):
 * ct invalid drop; established accept; policies in order (a policy that applies but neither
 * accepts nor passes drops, as in Felix 2.x); profiles in order; drop. Admin-down and
 * profile-less endpoints go to wl-drop.
 *
 * Why classes rather than Felix's per-endpoint chains: nft re-reads the table's chain list before
 * every transaction, so its cost grows with the number of chains; with 1000 endpoints in 100
 * profiles this is ~200 chains instead of ~2000, and a new endpoint in an existing class is only
 * set and map elements.
  */
import { DesiredState, LocalEndpointView, ProfileView, IpSetView, PoolsView, NodesView } from '../calc.js';
import { Policy } from '../model.js';
import { AgentConfig } from '../config.js';
import { hash64 } from './hash.js';
import * as N from './names.js';
import { renderRules, CLEAR_MARKS, IF_ACCEPTED, IF_NOT_PASSED } from './rules.js';
import { netAddresses } from '../sets.js';

export interface BaseChain {
  readonly type: 'filter' | 'nat';
  readonly hook: 'forward' | 'input' | 'output' | 'postrouting' | 'prerouting';
  readonly priority: number;
  readonly policy: 'accept';
}

export interface ChainSpec {
  readonly name: string;
  readonly base?: BaseChain;
  /** Full rule texts, each ending in `comment "<hash>"`. */
  readonly rules: readonly string[];
  /** The comment of each rule: what the drift check compares with the kernel. */
  readonly hashes: readonly string[];
}

export interface SetSpec {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr' | 'ifname' | 'ifname . ipv4_addr' | 'ifname . ipv6_addr' | 'ifname . ether_addr';
  /** Interval sets hold CIDRs (pools); plain sets hold single addresses. */
  readonly interval: boolean;
  readonly elements: ReadonlySet<string>;
}

export interface MapSpec {
  readonly name: string;
  /** ifname -> verdict text, e.g. `goto fw-cali123`. */
  readonly elements: ReadonlyMap<string, string>;
}

export interface Ruleset {
  readonly chains: ReadonlyMap<string, ChainSpec>;
  readonly sets: ReadonlyMap<string, SetSpec>;
  readonly maps: ReadonlyMap<string, MapSpec>;
}

export function makeChain(name: string, bodies: string[], base?: BaseChain): ChainSpec {
  const hashes = bodies.map((b, i) => hash64(`${name}\n${i}\n${b}`));
  return { name, base, rules: bodies.map((b, i) => `${b} comment "${hashes[i]}"`), hashes };
}

const FILTER_FORWARD: BaseChain = { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' };
const FILTER_INPUT: BaseChain = { type: 'filter', hook: 'input', priority: 0, policy: 'accept' };
/** srcnat (100) + 10, as Calico's nftables mode, so we run after other source NAT. */
const NAT_POSTROUTING: BaseChain = { type: 'nat', hook: 'postrouting', priority: 110, policy: 'accept' };

const EMPTY: ReadonlySet<string> = new Set();

interface EndpointRender {
  /** Class chains (verdict targets) of traffic from and to the endpoint. */
  readonly from: string;
  readonly to: string;
  readonly chains: readonly ChainSpec[];
  /** Anti-spoofing set elements, in nft syntax: `"cali..." . 10.65.0.1`. */
  readonly addr4: readonly string[];
  readonly addr6: readonly string[];
  readonly mac?: string;
}

export class RulesetRenderer {
  /** Class chains by name (the name encodes the class), pruned to the ones in use. */
  private classCache = new Map<string, ChainSpec>();
  private readonly endpointCache = new WeakMap<LocalEndpointView, EndpointRender>();
  private readonly profileCache = new WeakMap<ProfileView, readonly [ChainSpec, ChainSpec]>();
  private readonly policyCache = new WeakMap<Policy, readonly [ChainSpec, ChainSpec]>();
  private readonly setCache = new WeakMap<IpSetView, readonly [SetSpec, SetSpec]>();
  private staticKey?: readonly [AgentConfig, PoolsView, NodesView];
  private staticChains: ChainSpec[] = [];
  private staticSets: SetSpec[] = [];

  render(d: DesiredState): Ruleset {
    const chains = new Map<string, ChainSpec>();
    const sets = new Map<string, SetSpec>();
    const add = (c: ChainSpec) => chains.set(c.name, c);

    for (const c of this.statics(d.config, d.pools, d.nodes)) add(c);
    for (const s of this.staticSets) sets.set(s.name, s);

    const fromWl = new Map<string, string>();
    const toWl = new Map<string, string>();
    const addr4 = new Set<string>();
    const addr6 = new Set<string>();
    const macs = new Set<string>();
    const noMac = new Set<string>();
    const classes = new Map<string, ChainSpec>();
    for (const ep of d.localEndpoints.values()) {
      const e = this.endpoint(ep);
      for (const c of e.chains) classes.set(c.name, c);
      fromWl.set(ep.iface, `goto ${e.from}`);
      toWl.set(ep.iface, `goto ${e.to}`);
      for (const a of e.addr4) addr4.add(a);
      for (const a of e.addr6) addr6.add(a);
      if (e.mac) macs.add(e.mac);
      else noMac.add(`"${ep.iface}"`);
    }
    this.classCache = classes;
    for (const c of classes.values()) add(c);
    sets.set(N.SET_WL_ADDR(4), { name: N.SET_WL_ADDR(4), type: 'ifname . ipv4_addr', interval: false, elements: addr4 });
    sets.set(N.SET_WL_ADDR(6), { name: N.SET_WL_ADDR(6), type: 'ifname . ipv6_addr', interval: false, elements: addr6 });
    sets.set(N.SET_WL_MAC, { name: N.SET_WL_MAC, type: 'ifname . ether_addr', interval: false, elements: macs });
    sets.set(N.SET_WL_NO_MAC, { name: N.SET_WL_NO_MAC, type: 'ifname', interval: false, elements: noMac });
    for (const p of d.profiles.values()) for (const c of this.profileChains(p)) add(c);
    for (const p of d.policies.values()) for (const c of this.policyChains(p)) add(c);
    for (const s of d.ipSets.values()) for (const ss of this.ipSets(s)) sets.set(ss.name, ss);

    const maps = new Map<string, MapSpec>([
      [N.MAP_FROM_WL, { name: N.MAP_FROM_WL, elements: fromWl }],
      [N.MAP_TO_WL, { name: N.MAP_TO_WL, elements: toWl }],
    ]);
    return { chains, sets, maps };
  }

  private statics(cfg: AgentConfig, pools: PoolsView, nodes: NodesView): ChainSpec[] {
    const k = this.staticKey;
    if (k && k[0] === cfg && k[1] === pools && k[2] === nodes) return this.staticChains;
    this.staticKey = [cfg, pools, nodes];
    const wl = `"${cfg.interfacePrefix}*"`;
    const forward = makeChain(N.CHAIN_FORWARD, [
      `iifname ${wl} jump ${N.CHAIN_FROM_WL_DISPATCH}`,
      `oifname ${wl} jump ${N.CHAIN_TO_WL_DISPATCH}`,
      `iifname ${wl} ${CLEAR_MARKS} accept`,
      `oifname ${wl} ${CLEAR_MARKS} accept`,
    ], FILTER_FORWARD);
    // Anti-spoofing, then the class chain; interfaces the agent does not know (yet) are dropped.
    const fromDispatch = makeChain(N.CHAIN_FROM_WL_DISPATCH, [
      `iifname != @${N.SET_WL_NO_MAC} iifname . ether saddr != @${N.SET_WL_MAC} drop`,
      `meta nfproto ipv4 iifname . ip saddr != @${N.SET_WL_ADDR(4)} drop`,
      `meta nfproto ipv6 iifname . ip6 saddr != @${N.SET_WL_ADDR(6)} drop`,
      `iifname vmap @${N.MAP_FROM_WL}`,
      'drop',
    ]);
    const toDispatch = makeChain(N.CHAIN_TO_WL_DISPATCH, [`oifname vmap @${N.MAP_TO_WL}`, 'drop']);
    const input: string[] = [];
    if (pools.ipip) input.push(`meta l4proto 4 ip saddr != @${N.SET_ALL_HOSTS4} drop`);
    input.push(`iifname ${wl} goto ${N.CHAIN_WL_TO_HOST}`);
    const toHost = [
      'meta l4proto 58 icmpv6 type { 130, 131, 132, 133, 135, 136 } accept',
      'ct state invalid drop',
      'ct state established,related accept',
      'meta nfproto ipv4 udp sport 68 udp dport 67 accept',
      'meta nfproto ipv6 udp sport 546 udp dport 547 accept',
      'udp dport 53 accept',
    ];
    if (cfg.endpointToHostAction === 'DROP') toHost.push('drop');
    else {
      // The workload's egress policy decides first (an unknown interface is dropped there).
      toHost.push(`jump ${N.CHAIN_FROM_WL_DISPATCH}`);
      toHost.push(`${CLEAR_MARKS} ${cfg.endpointToHostAction === 'ACCEPT' ? 'accept' : 'return'}`);
    }
    const post: string[] = [];
    if (pools.masq4.length) post.push(`ip saddr @${N.SET_MASQ_POOLS(4)} ip daddr != @${N.SET_ALL_POOLS(4)} masquerade fully-random`);
    if (pools.masq6.length) post.push(`ip6 saddr @${N.SET_MASQ_POOLS(6)} ip6 daddr != @${N.SET_ALL_POOLS(6)} masquerade fully-random`);
    this.staticChains = [
      forward, fromDispatch, toDispatch, makeChain(N.CHAIN_WL_DROP, ['drop']),
      makeChain(N.CHAIN_INPUT, input, FILTER_INPUT),
      makeChain(N.CHAIN_WL_TO_HOST, toHost),
      makeChain(N.CHAIN_POSTROUTING, post, NAT_POSTROUTING),
    ];
    const iset = (name: string, type: SetSpec['type'], elements: readonly string[]): SetSpec => ({ name, type, interval: true, elements: new Set(elements) });
    this.staticSets = [
      iset(N.SET_ALL_POOLS(4), 'ipv4_addr', pools.all4),
      iset(N.SET_MASQ_POOLS(4), 'ipv4_addr', pools.masq4),
      iset(N.SET_ALL_POOLS(6), 'ipv6_addr', pools.all6),
      iset(N.SET_MASQ_POOLS(6), 'ipv6_addr', pools.masq6),
      { name: N.SET_ALL_HOSTS4, type: 'ipv4_addr', interval: false, elements: new Set(nodes.ips4) },
    ];
    return this.staticChains;
  }

  /** What one endpoint contributes: its class chains and its anti-spoofing set elements. */
  private endpoint(ep: LocalEndpointView): EndpointRender {
    const hit = this.endpointCache.get(ep);
    if (hit) return hit;
    const q = `"${ep.iface}"`;
    const addr4 = ep.nets4.flatMap((n) => (netAddresses(n) ?? [])).map((a) => `${q} . ${a}`);
    const addr6 = ep.nets6.flatMap((n) => (netAddresses(n) ?? [])).map((a) => `${q} . ${a}`);
    const mac = ep.mac ? `${q} . ${ep.mac}` : undefined;
    let out: EndpointRender;
    if (!ep.active || ep.profileIds.length === 0) {
      // Admin down, or no profile: Felix does not consider such an endpoint ready.
      out = { from: N.CHAIN_WL_DROP, to: N.CHAIN_WL_DROP, chains: [], addr4, addr6, mac };
    } else {
      const fw = this.classChainFor('from', ep.egressPolicies, ep.profileIds);
      const tw = this.classChainFor('to', ep.ingressPolicies, ep.profileIds);
      out = { from: fw.name, to: tw.name, chains: [fw, tw], addr4, addr6, mac };
    }
    this.endpointCache.set(ep, out);
    return out;
  }

  private classChainFor(dir: 'from' | 'to', policies: readonly string[], profiles: readonly string[]): ChainSpec {
    const name = N.classChain(dir, policies, profiles);
    const hit = this.classCache.get(name);
    if (hit) return hit;
    const rules = ['ct state invalid drop', 'ct state established,related accept', CLEAR_MARKS];
    policySteps(rules, policies, dir === 'from' ? 'out' : 'in');
    for (const p of profiles) rules.push(`jump ${N.profileChain(p, dir === 'from' ? 'out' : 'in')}`, `${IF_ACCEPTED} return`);
    rules.push('drop');
    const c = makeChain(name, rules);
    this.classCache.set(name, c);
    return c;
  }

  private profileChains(p: ProfileView): readonly [ChainSpec, ChainSpec] {
    let hit = this.profileCache.get(p);
    if (!hit) {
      hit = [makeChain(N.profileChain(p.name, 'in'), renderRules(p.inbound, 'profile')), makeChain(N.profileChain(p.name, 'out'), renderRules(p.outbound, 'profile'))];
      this.profileCache.set(p, hit);
    }
    return hit;
  }

  private policyChains(p: Policy): readonly [ChainSpec, ChainSpec] {
    let hit = this.policyCache.get(p);
    if (!hit) {
      hit = [makeChain(N.policyChain(p.name, 'in'), renderRules(p.inbound, 'policy')), makeChain(N.policyChain(p.name, 'out'), renderRules(p.outbound, 'policy'))];
      this.policyCache.set(p, hit);
    }
    return hit;
  }

  private ipSets(s: IpSetView): readonly [SetSpec, SetSpec] {
    let hit = this.setCache.get(s);
    if (!hit) {
      hit = [
        { name: N.ipSetName(s.id, 4), type: 'ipv4_addr', interval: false, elements: s.members4 ?? EMPTY },
        { name: N.ipSetName(s.id, 6), type: 'ipv6_addr', interval: false, elements: s.members6 ?? EMPTY },
      ];
      this.setCache.set(s, hit);
    }
    return hit;
  }
}

/** Felix's policy sequence: jump each policy unless a pass was seen; return once accepted; drop if none passed. */
function policySteps(out: string[], policies: readonly string[], dir: 'in' | 'out'): void {
  if (!policies.length) return;
  for (const name of policies) {
    out.push(`${IF_NOT_PASSED} jump ${N.policyChain(name, dir)}`, `${IF_ACCEPTED} return`);
  }
  out.push(`${IF_NOT_PASSED} drop`);
}
