/**
 * The calculation step (Felix's calculation graph): reduces the datastore to what this host's
 * dataplane needs, incrementally.
 *
 *  - local workload endpoints (with the ordered policies that select them);
 *  - the profiles and policies those endpoints use ("active" ones only);
 *  - every IP set those rules refer to, filled from endpoints on ALL hosts;
 *  - IP pools (NAT outgoing, IPIP), node addresses (IPIP sources), Felix config.
 *
 * `onUpdate` only records the change and marks what it touches dirty; `recompute` does the
 * work for dirty things only and returns a DesiredState in which every unchanged view is the
 * very same object as last time. The renderer relies on that identity to skip unchanged chains,
 * which is what keeps one change among 1000 endpoints cheap.
 */
import type { Logger } from '../../src/log.js';
import { keys, parseWorkloadEndpointKey, parseHostEndpointKey, parseProfileKey, unesc } from '../../src/datastore/keys.js';
import {
  WorkloadEndpoint, HostEndpoint, ProfileRules, Policy, Pool, Labels, ParsedRule,
  parseWorkloadEndpoint, parseHostEndpoint, parseProfileRules, parseProfileTags, parseProfileLabels, parsePolicy, parsePool, parseNodeIp,
} from './model.js';
import { AgentConfig, resolveConfig } from './config.js';
import { SetId, tagSetId, selectorSet, netAddresses } from './sets.js';
import type { Selector } from '../../src/model/selector.js';
import { errorMessage } from '../../src/errors.js';
import { parseCidr, cidrCovers } from '../../src/net/ip.js';

export interface LocalEndpointView {
  readonly key: string;
  readonly endpointId: string;
  readonly iface: string;
  readonly active: boolean;
  readonly mac?: string;
  readonly nets4: readonly string[];
  readonly nets6: readonly string[];
  readonly profileIds: readonly string[];
  /** Names of the policies that apply, in evaluation order. */
  readonly ingressPolicies: readonly string[];
  readonly egressPolicies: readonly string[];
  readonly ipv6Gateway?: string;
}

export interface ProfileView {
  readonly name: string;
  /** False when the profile's rules key does not exist (its chains then match nothing). */
  readonly exists: boolean;
  readonly inbound: readonly ParsedRule[];
  readonly outbound: readonly ParsedRule[];
}

export interface IpSetView {
  readonly id: SetId;
  readonly members4: ReadonlySet<string>;
  readonly members6: ReadonlySet<string>;
}

export interface PoolsView {
  readonly all4: readonly string[];
  readonly masq4: readonly string[];
  readonly all6: readonly string[];
  readonly masq6: readonly string[];
  /** Some enabled pool asks for IPIP. */
  readonly ipip: boolean;
}

export interface NodesView {
  /** IPv4 addresses of every node (bird_ip / ip_addr_v4): the only accepted IPIP sources. */
  readonly ips4: readonly string[];
}

export interface DesiredState {
  /** By host interface name. */
  readonly localEndpoints: ReadonlyMap<string, LocalEndpointView>;
  readonly profiles: ReadonlyMap<string, ProfileView>;
  readonly policies: ReadonlyMap<string, Policy>;
  readonly ipSets: ReadonlyMap<SetId, IpSetView>;
  readonly pools: PoolsView;
  readonly nodes: NodesView;
  readonly config: AgentConfig;
}

/** An endpoint (workload or host, any node) as a member of IP sets. */
interface Member {
  readonly key: string;
  readonly local: boolean;
  readonly profileIds: readonly string[];
  readonly labels: Labels;
  readonly tags: ReadonlySet<string>;
  readonly addrs4: readonly string[];
  readonly addrs6: readonly string[];
}

interface SetState {
  readonly id: SetId;
  readonly selector?: Selector;
  readonly tag?: string;
  members: Set<string>;
  view?: IpSetView;
  dirty: boolean;
}

const EMPTY_SET: ReadonlySet<string> = new Set();

function byOrderThenName(a: Policy, b: Policy): number {
  if (a.order !== b.order) return a.order < b.order ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class CalcGraph {
  // --- datastore, parsed
  private readonly weps = new Map<string, WorkloadEndpoint>();
  private readonly heps = new Map<string, HostEndpoint>();
  private readonly profRules = new Map<string, ProfileRules>();
  private readonly profTags = new Map<string, readonly string[]>();
  private readonly profLabels = new Map<string, Labels>();
  private readonly policies = new Map<string, Policy>();
  private readonly pools = new Map<string, Pool>();
  private readonly nodeIps = new Map<string, string>();
  private readonly globalConfig = new Map<string, string>();
  private readonly hostConfig = new Map<string, string>();

  // --- dirty marks
  private readonly dirtyMembers = new Set<string>();
  private readonly dirtyProfileRules = new Set<string>();
  private readonly dirtyProfileMeta = new Set<string>();
  private readonly dirtyPolicies = new Set<string>();
  private poolsDirty = true;
  private nodesDirty = true;
  private configDirty = true;

  // --- derived
  private readonly members = new Map<string, Member>();
  private readonly profileMembers = new Map<string, Set<string>>();
  private readonly tagMembers = new Map<string, Set<string>>();
  private readonly localMatches = new Map<string, Set<string>>();
  private readonly sets = new Map<SetId, SetState>();
  private readonly localViews = new Map<string, LocalEndpointView>();
  private readonly profileViews = new Map<string, ProfileView>();
  private poolsView: PoolsView = { all4: [], masq4: [], all6: [], masq6: [], ipip: false };
  private nodesView: NodesView = { ips4: [] };
  private config: AgentConfig = resolveConfig(() => undefined);
  private readonly warned = new Set<string>();

  constructor(private readonly nodeName: string, private readonly log: Logger) {}

  // ------------------------------------------------------------------------------------------
  // Input

  /** Records one datastore change (`value` undefined = deleted). Cheap: no evaluation here. */
  onUpdate(key: string, value: string | undefined): void {
    try {
      this.route(key, value);
    } catch (err) {
      this.log.warn('ignoring invalid datastore value (treated as deleted)', { key, error: errorMessage(err) });
      this.route(key, undefined);
    }
  }

  private route(key: string, value: string | undefined): void {
    const wk = parseWorkloadEndpointKey(key);
    if (wk) {
      if (value === undefined) this.weps.delete(key);
      else this.weps.set(key, parseWorkloadEndpoint(key, wk.node, wk.name, value));
      this.dirtyMembers.add(key);
      return;
    }
    const hk = parseHostEndpointKey(key);
    if (hk) {
      if (value === undefined) this.heps.delete(key);
      else this.heps.set(key, parseHostEndpoint(key, hk.node, value));
      this.dirtyMembers.add(key);
      return;
    }
    const pk = parseProfileKey(key);
    if (pk) {
      if (pk.leaf === 'rules') {
        if (value === undefined) this.profRules.delete(pk.name);
        else this.profRules.set(pk.name, parseProfileRules(value));
        this.dirtyProfileRules.add(pk.name);
      } else if (pk.leaf === 'tags' || pk.leaf === 'labels') {
        if (pk.leaf === 'tags') {
          if (value === undefined) this.profTags.delete(pk.name);
          else this.profTags.set(pk.name, parseProfileTags(value));
        } else if (value === undefined) this.profLabels.delete(pk.name);
        else this.profLabels.set(pk.name, parseProfileLabels(value));
        this.dirtyProfileMeta.add(pk.name);
      }
      return;
    }
    if (key.startsWith(keys.policyPrefix)) {
      const rest = key.slice(keys.policyPrefix.length);
      if (rest.includes('/')) return;
      const name = unesc(rest);
      if (value === undefined) this.policies.delete(name);
      else this.policies.set(name, parsePolicy(name, value));
      this.dirtyPolicies.add(name);
      return;
    }
    for (const v of [4, 6] as const) {
      if (key.startsWith(keys.poolPrefix(v))) {
        if (value === undefined) this.pools.delete(key);
        else this.pools.set(key, parsePool(value, v));
        this.poolsDirty = true;
        return;
      }
    }
    const nodeIp = /^\/calico\/(?:v1\/host\/([^/]+)\/bird_ip|bgp\/v1\/host\/([^/]+)\/ip_addr_v4)$/.exec(key);
    if (nodeIp) {
      const ip = value === undefined ? undefined : parseNodeIp(value);
      if (ip && !ip.includes(':')) this.nodeIps.set(key, ip);
      else this.nodeIps.delete(key);
      this.nodesDirty = true;
      return;
    }
    if (key.startsWith(keys.felixConfigPrefix)) {
      const param = key.slice(keys.felixConfigPrefix.length);
      if (value === undefined) this.globalConfig.delete(param);
      else this.globalConfig.set(param, value);
      this.configDirty = true;
      return;
    }
    const hostCfg = keys.hostConfigPrefix(this.nodeName);
    if (key.startsWith(hostCfg)) {
      const param = key.slice(hostCfg.length);
      if (value === undefined) this.hostConfig.delete(param);
      else this.hostConfig.set(param, value);
      this.configDirty = true;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Evaluation

  recompute(): DesiredState {
    if (this.configDirty) this.refreshConfig();

    // Profile labels/tags feed every member's effective labels.
    for (const p of this.dirtyProfileMeta) for (const k of this.profileMembers.get(p) ?? []) this.dirtyMembers.add(k);

    const changedMembers = this.refreshMembers();
    const listDirty = this.refreshPolicyMatches(changedMembers);
    this.refreshLocalViews(changedMembers, listDirty);

    const activeProfiles = new Set<string>();
    const activePolicies = new Set<string>();
    for (const v of this.localViews.values()) {
      for (const p of v.profileIds) activeProfiles.add(p);
      for (const p of v.ingressPolicies) activePolicies.add(p);
      for (const p of v.egressPolicies) activePolicies.add(p);
    }
    this.refreshProfileViews(activeProfiles);
    const policies = new Map<string, Policy>();
    for (const name of [...activePolicies].sort()) policies.set(name, this.policies.get(name)!);

    this.refreshSets(activeProfiles, policies, changedMembers);

    if (this.poolsDirty) this.refreshPools();
    if (this.nodesDirty) this.refreshNodes();

    this.dirtyMembers.clear();
    this.dirtyProfileRules.clear();
    this.dirtyProfileMeta.clear();
    this.dirtyPolicies.clear();

    const localEndpoints = new Map<string, LocalEndpointView>();
    const keysSorted = [...this.localViews.keys()].sort();
    for (const k of keysSorted) {
      const v = this.localViews.get(k)!;
      const other = localEndpoints.get(v.iface);
      if (other) {
        this.warnOnce(`dup:${v.iface}:${k}`, 'two local endpoints claim one interface; the first (by key) wins', { iface: v.iface, kept: other.key, ignored: k });
        continue;
      }
      localEndpoints.set(v.iface, v);
    }
    const ipSets = new Map<SetId, IpSetView>();
    for (const [id, s] of this.sets) ipSets.set(id, s.view!);
    return { localEndpoints, profiles: new Map(this.profileViews), policies, ipSets, pools: this.poolsView, nodes: this.nodesView, config: this.config };
  }

  private refreshConfig(): void {
    const problems: string[] = [];
    const prev = this.config;
    this.config = resolveConfig((p) => this.hostConfig.get(p) ?? this.globalConfig.get(p), problems);
    for (const p of problems) this.warnOnce(`cfg:${p}`, 'Felix config value ignored', { problem: p });
    if (prev.interfacePrefix !== this.config.interfacePrefix) for (const k of this.weps.keys()) this.dirtyMembers.add(k);
    this.configDirty = false;
  }

  private isLocal(ep: WorkloadEndpoint): boolean {
    if (ep.node !== this.nodeName) return false;
    if (!ep.iface.startsWith(this.config.interfacePrefix)) {
      this.warnOnce(`prefix:${ep.key}`, 'local endpoint ignored: its interface does not start with InterfacePrefix', { key: ep.key, iface: ep.iface });
      return false;
    }
    return true;
  }

  private refreshMembers(): Set<string> {
    const changed = new Set<string>();
    for (const k of this.dirtyMembers) {
      const old = this.members.get(k);
      if (old) {
        for (const p of old.profileIds) this.profileMembers.get(p)?.delete(k);
        for (const t of old.tags) this.tagMembers.get(t)?.delete(k);
      }
      const w = this.weps.get(k);
      const h = w ? undefined : this.heps.get(k);
      const rec = w ?? h;
      changed.add(k);
      if (!rec) {
        this.members.delete(k);
        continue;
      }
      const tags = new Set<string>();
      const labels: Record<string, string> = {};
      for (const p of rec.profileIds) for (const t of this.profTags.get(p) ?? []) tags.add(t);
      // Precedence: endpoint labels, then profile labels (the first profile wins), then tags.
      for (const t of tags) labels[t] = '';
      for (const p of [...rec.profileIds].reverse()) Object.assign(labels, this.profLabels.get(p) ?? {});
      Object.assign(labels, rec.labels);
      const m: Member = {
        key: k,
        local: w ? this.isLocal(w) : false,
        profileIds: rec.profileIds,
        labels,
        tags,
        addrs4: this.addresses(k, rec.nets4),
        addrs6: this.addresses(k, rec.nets6),
      };
      this.members.set(k, m);
      for (const p of m.profileIds) {
        let s = this.profileMembers.get(p);
        if (!s) this.profileMembers.set(p, (s = new Set()));
        s.add(k);
      }
      for (const t of tags) {
        let s = this.tagMembers.get(t);
        if (!s) this.tagMembers.set(t, (s = new Set()));
        s.add(k);
      }
    }
    return changed;
  }

  private addresses(key: string, nets: readonly string[]): string[] {
    const out: string[] = [];
    for (const n of nets) {
      const a = netAddresses(n);
      if (a) out.push(...a);
      else this.warnOnce(`wide:${key}:${n}`, 'endpoint network too wide to put into IP sets; left out', { key, net: n });
    }
    return out;
  }

  /** Re-evaluates policy selectors where needed. Returns local endpoints whose ordered lists may have changed. */
  private refreshPolicyMatches(changedMembers: Set<string>): Set<string> {
    const listDirty = new Set<string>();
    const localKeys: string[] = [];
    for (const m of this.members.values()) if (m.local) localKeys.push(m.key);
    // Dirty policies over every local endpoint.
    if (this.dirtyPolicies.size) {
      for (const k of localKeys) {
        if (changedMembers.has(k)) continue; // done below with all policies
        const matches = this.localMatches.get(k) ?? new Set<string>();
        for (const name of this.dirtyPolicies) {
          const pol = this.policies.get(name);
          const had = matches.has(name);
          const has = pol ? this.evaluate(pol.selector, this.members.get(k)!.labels, name) : false;
          if (has) matches.add(name);
          else matches.delete(name);
          if (had || has) listDirty.add(k);
        }
        this.localMatches.set(k, matches);
      }
    }
    // Changed members against every policy.
    for (const k of changedMembers) {
      const m = this.members.get(k);
      if (!m || !m.local) {
        this.localMatches.delete(k);
        continue;
      }
      const matches = new Set<string>();
      for (const pol of this.policies.values()) if (this.evaluate(pol.selector, m.labels, pol.name)) matches.add(pol.name);
      this.localMatches.set(k, matches);
      listDirty.add(k);
    }
    return listDirty;
  }

  private evaluate(sel: Selector, labels: Labels, what: string): boolean {
    try {
      return sel.evaluate(labels);
    } catch (err) {
      this.warnOnce(`eval:${what}`, 'selector evaluation failed', { what, error: errorMessage(err) });
      return false;
    }
  }

  private refreshLocalViews(changedMembers: Set<string>, listDirty: Set<string>): void {
    const todo = new Set<string>([...changedMembers, ...listDirty]);
    for (const k of todo) {
      const m = this.members.get(k);
      const w = this.weps.get(k);
      if (!m || !m.local || !w) {
        this.localViews.delete(k);
        continue;
      }
      const pols = [...(this.localMatches.get(k) ?? [])].map((n) => this.policies.get(n)!).filter(Boolean).sort(byOrderThenName);
      const ingress = pols.filter((p) => p.ingress).map((p) => p.name);
      const egress = pols.filter((p) => p.egress).map((p) => p.name);
      const prev = this.localViews.get(k);
      if (
        prev && prev.iface === w.iface && prev.active === w.active && prev.mac === w.mac && prev.ipv6Gateway === w.ipv6Gateway &&
        sameList(prev.nets4, w.nets4) && sameList(prev.nets6, w.nets6) && sameList(prev.profileIds, w.profileIds) &&
        sameList(prev.ingressPolicies, ingress) && sameList(prev.egressPolicies, egress)
      ) {
        continue;
      }
      this.localViews.set(k, {
        key: k,
        endpointId: w.endpointId,
        iface: w.iface,
        active: w.active,
        mac: w.mac,
        nets4: w.nets4,
        nets6: w.nets6,
        profileIds: w.profileIds,
        ingressPolicies: ingress,
        egressPolicies: egress,
        ipv6Gateway: w.ipv6Gateway,
      });
    }
  }

  private refreshProfileViews(active: Set<string>): void {
    for (const name of [...this.profileViews.keys()]) if (!active.has(name)) this.profileViews.delete(name);
    for (const name of active) {
      if (this.profileViews.has(name) && !this.dirtyProfileRules.has(name)) continue;
      const r = this.profRules.get(name);
      if (!r) this.warnOnce(`noprof:${name}`, 'an endpoint uses a profile that has no rules (it matches nothing)', { profile: name });
      this.profileViews.set(name, { name, exists: !!r, inbound: r?.inbound ?? [], outbound: r?.outbound ?? [] });
    }
  }

  private refreshSets(activeProfiles: Set<string>, policies: Map<string, Policy>, changedMembers: Set<string>): void {
    // Which sets do the active rules refer to?
    const wanted = new Map<SetId, { selector?: Selector; tag?: string }>();
    const collect = (rules: readonly ParsedRule[]) => {
      for (const pr of rules) {
        if (!pr.ok) continue;
        for (const e of [pr.rule.source, pr.rule.destination]) {
          if (!e) continue;
          for (const t of [e.tag, e.notTag]) if (t !== undefined) wanted.set(tagSetId(t), { tag: t });
          for (const s of [e.selector, e.notSelector]) {
            if (s === undefined) continue;
            const ss = selectorSet(s);
            if (ss) wanted.set(ss.id, { selector: ss.selector });
          }
        }
      }
    };
    for (const p of activeProfiles) {
      const v = this.profileViews.get(p);
      if (v) { collect(v.inbound); collect(v.outbound); }
    }
    for (const p of policies.values()) { collect(p.inbound); collect(p.outbound); }

    for (const id of [...this.sets.keys()]) if (!wanted.has(id)) this.sets.delete(id);
    for (const [id, w] of wanted) {
      let s = this.sets.get(id);
      if (!s) {
        s = { id, selector: w.selector, tag: w.tag, members: new Set(), dirty: true };
        if (w.tag !== undefined) s.members = new Set(this.tagMembers.get(w.tag) ?? []);
        else for (const m of this.members.values()) if (this.evaluate(w.selector!, m.labels, id)) s.members.add(m.key);
        this.sets.set(id, s);
        continue;
      }
      for (const k of changedMembers) {
        const m = this.members.get(k);
        const was = s.members.has(k);
        const is = !!m && (s.tag !== undefined ? m.tags.has(s.tag) : this.evaluate(s.selector!, m.labels, id));
        if (is) s.members.add(k);
        else s.members.delete(k);
        if (was || is) s.dirty = true;
      }
    }
    for (const s of this.sets.values()) {
      if (!s.dirty && s.view) continue;
      const m4 = new Set<string>();
      const m6 = new Set<string>();
      for (const k of s.members) {
        const m = this.members.get(k);
        if (!m) continue;
        for (const a of m.addrs4) m4.add(a);
        for (const a of m.addrs6) m6.add(a);
      }
      const prev = s.view;
      s.view = prev && sameSet(prev.members4, m4) && sameSet(prev.members6, m6)
        ? prev
        : { id: s.id, members4: m4.size ? m4 : EMPTY_SET, members6: m6.size ? m6 : EMPTY_SET };
      s.dirty = false;
    }
  }

  private refreshPools(): void {
    const all4: string[] = [];
    const masq4: string[] = [];
    const all6: string[] = [];
    const masq6: string[] = [];
    let ipip = false;
    for (const p of this.pools.values()) {
      (p.version === 4 ? all4 : all6).push(p.cidr);
      if (p.masquerade) (p.version === 4 ? masq4 : masq6).push(p.cidr);
      if (p.ipip && !p.disabled && p.version === 4) ipip = true;
    }
    // Interval sets refuse overlapping elements: keep only the outermost of nested pools.
    const outer = (l: string[]) => {
      const cs = [...new Set(l)].map((t) => ({ t, c: parseCidr(t) }));
      return cs.filter((a) => !cs.some((b) => b.t !== a.t && cidrCovers(b.c, a.c))).map((x) => x.t).sort();
    };
    const next: PoolsView = { all4: outer(all4), masq4: outer(masq4), all6: outer(all6), masq6: outer(masq6), ipip };
    const prev = this.poolsView;
    if (!(sameList(prev.all4, next.all4) && sameList(prev.masq4, next.masq4) && sameList(prev.all6, next.all6) && sameList(prev.masq6, next.masq6) && prev.ipip === next.ipip)) {
      this.poolsView = next;
    }
    this.poolsDirty = false;
  }

  private refreshNodes(): void {
    const ips4 = [...new Set(this.nodeIps.values())].sort();
    if (!sameList(ips4, this.nodesView.ips4)) this.nodesView = { ips4 };
    this.nodesDirty = false;
  }

  private warnOnce(id: string, msg: string, fields: Record<string, unknown>): void {
    if (this.warned.has(id)) return;
    if (this.warned.size > 10000) this.warned.clear();
    this.warned.add(id);
    this.log.warn(msg, fields);
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
