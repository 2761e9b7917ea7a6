/**
 * The routing tables: one Adj-RIB-In per route source (the local node is source 0, each BGP
 * session another), a Loc-RIB with the best source per prefix, and the FIB bookkeeping (which
 * next-hop set the kernel should have and which it has). All keyed by compact prefix words in
 * PrefixTables; attribute sets and next-hop sets are interned and referenced by small ints.
 *
 * Decision process (RFC 4271 §9.1.2.2, in BIRD's order): local routes first, then highest
 * LOCAL_PREF, shortest AS_PATH, lowest ORIGIN, lowest MED (same neighbour AS), eBGP over iBGP —
 * routes equal so far form the ECMP set — then lowest router id (ORIGINATOR_ID when present),
 * shortest CLUSTER_LIST, lowest peer address.
 */
import { AFI_IPV4, AFI_IPV6, Afi } from './codec/constants.js';
import { PathAttrs, asPathLength, firstAs } from './codec/attrs.js';
import { ShardedPrefixTable as PrefixTable, KeyQueue } from './table.js';
import { wordsFor, PrefixWords, prefixCovers } from './codec/prefix.js';

export interface RouteSource {
  id: number;
  kind: 'local' | 'peer';
  ibgp: boolean;
  rrClient: boolean;
  routerId: number;
  /** Peer address as a comparable string (zero-padded) for the last tie-break. */
  addressKey: string;
  address: string;
}

/** How a route from a source is programmed into the kernel. */
export type FibKind = 'via' | 'blackhole' | 'none';

interface AttrEntry {
  attrs: PathAttrs; key: string; refs: number; fib: FibKind;
  /** Kernel next-hop set ids for a single best path with these attributes, plain and IPIP (0 = not computed). */
  nhPlain: number; nhTunnel: number;
}

/** Interned attribute sets: id -> attrs, with reference counts so unused sets are freed. */
export class AttrStore {
  private byKey = new Map<string, number>();
  /** Told when an id is freed (it will be reused for other attributes): caches keyed by id must drop it. */
  onFree: (id: number) => void = () => undefined;
  private entries: Array<AttrEntry | undefined> = [undefined];
  private free: number[] = [];

  intern(key: string, make: () => PathAttrs, fib: FibKind = 'via'): number {
    const id = this.byKey.get(key);
    if (id !== undefined) return id;
    const entry: AttrEntry = { attrs: make(), key, refs: 0, fib, nhPlain: 0, nhTunnel: 0 };
    const nid = this.free.pop() ?? this.entries.length;
    this.entries[nid] = entry;
    this.byKey.set(key, nid);
    return nid;
  }
  get(id: number): PathAttrs {
    return this.entries[id]!.attrs;
  }
  fibKind(id: number): FibKind {
    return this.entries[id]!.fib;
  }
  entry(id: number): AttrEntry {
    return this.entries[id]!;
  }
  ref(id: number): void {
    this.entries[id]!.refs++;
  }
  unref(id: number): void {
    const e = this.entries[id]!;
    if (--e.refs <= 0) {
      this.byKey.delete(e.key);
      this.entries[id] = undefined;
      this.free.push(id);
      this.onFree(id);
    }
  }
  get count(): number {
    return this.byKey.size;
  }
  /** Drops cached kernel specs (IP pools or own addresses changed). */
  forgetNexthops(): void {
    for (const e of this.entries) if (e) { e.nhPlain = 0; e.nhTunnel = 0; }
  }
}

/** Interned kernel next-hop specs ('blackhole', 'via 10.0.0.2', multipath...). 0 = no route. */
export class NextHopStore {
  private byText = new Map<string, number>();
  private texts: string[] = [''];
  intern(text: string): number {
    let id = this.byText.get(text);
    if (id === undefined) {
      id = this.texts.length;
      this.texts.push(text);
      this.byText.set(text, id);
    }
    return id;
  }
  text(id: number): string {
    return this.texts[id]!;
  }
}

// Loc-RIB columns
const C_SRC = 0; // (best source id + 1) | DIRTY
const C_DESIRED = 1;
const C_INSTALLED = 2;
const DIRTY = 1 << 30;
const SRC_MASK = DIRTY - 1;

/** Pool-derived FIB decoration: whether a destination is in an IPIP pool. */
export type IpipLookup = (afi: Afi, words: PrefixWords) => boolean;

export type BestListener = (afi: Afi, words: PrefixWords, bestSrc: number, bestAttr: number) => void;

interface AfiTables {
  loc: PrefixTable;
  dirty: KeyQueue;
  /** Adj-RIB-In per source id: value = attr id, negative when stale (graceful restart). */
  adjIn: Map<number, PrefixTable>;
  /** The same as parallel arrays: iterating a Map per route shows up in profiles. */
  srcIds: number[];
  srcTables: PrefixTable[];
}

export class Rib {
  readonly attrs = new AttrStore();
  readonly nexthops = new NextHopStore();
  private readonly sources: Array<RouteSource | undefined> = [];
  private readonly afis: Record<number, AfiTables>;
  private readonly listeners = new Set<BestListener>();
  /** Called when the FIB has work (dirty prefixes). */
  onFibDirty: () => void = () => undefined;
  ipip: IpipLookup = () => false;
  /** Next hops that are this node's own addresses: never installed. */
  private ownAddresses = new Set<string>();

  setOwnAddresses(list: string[]): void {
    const next = new Set(list);
    if (next.size === this.ownAddresses.size && [...next].every((a) => this.ownAddresses.has(a))) return;
    this.ownAddresses = next;
    this.attrs.forgetNexthops();
  }

  constructor() {
    const mk = (afi: Afi): AfiTables => ({ loc: new PrefixTable(wordsFor(afi), 3), dirty: new KeyQueue(wordsFor(afi)), adjIn: new Map(), srcIds: [], srcTables: [] });
    this.afis = { [AFI_IPV4]: mk(AFI_IPV4), [AFI_IPV6]: mk(AFI_IPV6) };
    this.addSource({ kind: 'local', ibgp: false, rrClient: false, routerId: 0, addressKey: '', address: 'local' }, 0);
  }

  onBestChange(fn: BestListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  addSource(s: Omit<RouteSource, 'id'>, want?: number): RouteSource {
    let id = want ?? this.sources.findIndex((x, i) => x === undefined && i > 0);
    if (id < 0) id = this.sources.length;
    const src: RouteSource = { ...s, id };
    this.sources[id] = src;
    return src;
  }

  source(id: number): RouteSource | undefined {
    return this.sources[id];
  }

  private adj(afi: Afi, src: number, create: boolean): PrefixTable | undefined {
    const t = this.afis[afi]!;
    let a = t.adjIn.get(src);
    if (!a && create) {
      a = new PrefixTable(wordsFor(afi), 1);
      t.adjIn.set(src, a);
      this.reindex(t);
    }
    return a;
  }

  private reindex(t: AfiTables): void {
    t.srcIds = [...t.adjIn.keys()];
    t.srcTables = [...t.adjIn.values()];
  }

  /** Routes held from a source for a family (for status and tests). */
  count(afi: Afi, src: number): number {
    return this.afis[afi]!.adjIn.get(src)?.size ?? 0;
  }

  locSize(afi: Afi): number {
    return this.afis[afi]!.loc.size;
  }

  /** Announce (or replace) a route from a source. */
  announce(src: number, afi: Afi, w: PrefixWords, attrId: number): void {
    const a = this.adj(afi, src, true)!;
    const slot = a.insert(w);
    const old = a.get(slot, 0);
    if (old !== 0) {
      const oldId = Math.abs(old);
      if (oldId === attrId) {
        if (old < 0) a.set(slot, 0, attrId); // refreshed after a restart: no longer stale
        return;
      }
      this.attrs.unref(oldId);
    }
    this.attrs.ref(attrId);
    a.set(slot, 0, attrId);
    this.recompute(afi, w, src, attrId);
  }

  withdraw(src: number, afi: Afi, w: PrefixWords): void {
    const a = this.adj(afi, src, false);
    if (!a) return;
    const slot = a.find(w);
    if (slot < 0) return;
    this.attrs.unref(Math.abs(a.get(slot, 0)));
    a.deleteSlot(slot);
    this.recompute(afi, w);
  }

  /** Withdraws a route only if it is still stale (a purge must not remove a route re-announced since). */
  withdrawIfStale(src: number, afi: Afi, w: PrefixWords): void {
    const a = this.adj(afi, src, false);
    if (!a) return;
    const slot = a.find(w);
    if (slot < 0 || a.get(slot, 0) > 0) return;
    this.attrs.unref(-a.get(slot, 0));
    a.deleteSlot(slot);
    this.recompute(afi, w);
  }

  /** Current best for a prefix: [source id, attr id] or undefined. */
  best(afi: Afi, w: PrefixWords): [number, number] | undefined {
    const t = this.afis[afi]!;
    const s = t.loc.find(w);
    if (s < 0) return undefined;
    const src = (t.loc.get(s, C_SRC) & SRC_MASK) - 1;
    if (src < 0) return undefined;
    const at = this.adj(afi, src, false)?.find(w) ?? -1;
    if (at < 0) return undefined;
    return [src, Math.abs(this.adj(afi, src, false)!.get(at, 0))];
  }

  private better(sa: RouteSource, a: PathAttrs, sb: RouteSource, b: PathAttrs): number {
    // Returns <0 when (sa, a) is preferred, >0 when (sb, b), 0 when equal for ECMP purposes.
    if (sa.kind !== sb.kind) return sa.kind === 'local' ? -1 : 1;
    const lpa = a.localPref ?? 100;
    const lpb = b.localPref ?? 100;
    if (lpa !== lpb) return lpb - lpa;
    const la = asPathLength(a.asPath);
    const lb = asPathLength(b.asPath);
    if (la !== lb) return la - lb;
    if (a.origin !== b.origin) return a.origin - b.origin;
    if (firstAs(a.asPath) === firstAs(b.asPath) && (a.med ?? 0) !== (b.med ?? 0)) return (a.med ?? 0) - (b.med ?? 0);
    if (sa.ibgp !== sb.ibgp) return sa.ibgp ? 1 : -1;
    return 0;
  }

  private tieBreak(sa: RouteSource, a: PathAttrs, sb: RouteSource, b: PathAttrs): number {
    const ida = a.originatorId ?? sa.routerId;
    const idb = b.originatorId ?? sb.routerId;
    if (ida !== idb) return (ida >>> 0) - (idb >>> 0);
    const ca = a.clusterList?.length ?? 0;
    const cb = b.clusterList?.length ?? 0;
    if (ca !== cb) return ca - cb;
    return sa.addressKey < sb.addressKey ? -1 : sa.addressKey > sb.addressKey ? 1 : 0;
  }

  /**
   * Re-runs the decision for one prefix. `knownSrc`/`knownAttr`: the route just announced, which
   * lets the common case (a single source of routes for the family) skip every table lookup.
   */
  private recompute(afi: Afi, w: PrefixWords, knownSrc = -1, knownAttr = 0): void {
    const t = this.afis[afi]!;
    let bestSrc = -1;
    let bestAttr = 0;
    let bestS: RouteSource | undefined;
    let bestA: PathAttrs | undefined;
    let ecmp: string[] | undefined;
    const ids = t.srcIds;
    const tables = t.srcTables;
    if (knownSrc >= 0 && ids.length === 1) {
      bestSrc = knownSrc;
      bestAttr = knownAttr;
      bestS = this.sources[knownSrc]!;
      bestA = this.attrs.get(knownAttr);
    }
    for (let i = bestS ? ids.length : 0; i < ids.length; i++) {
      const table = tables[i]!;
      const srcId = ids[i]!;
      if (table.size === 0) continue;
      const slot = table.find(w);
      if (slot < 0) continue;
      const attrId = Math.abs(table.get(slot, 0));
      const s = this.sources[srcId]!;
      const a = this.attrs.get(attrId);
      if (!bestS) { bestSrc = srcId; bestAttr = attrId; bestS = s; bestA = a; ecmp = undefined; continue; }
      const c = this.better(s, a, bestS, bestA!);
      if (c < 0 || (c === 0 && this.tieBreak(s, a, bestS, bestA!) < 0)) {
        if (c === 0 && s.kind === 'peer') ecmp = [...(ecmp ?? [bestA!.nextHop]), a.nextHop];
        else ecmp = undefined;
        bestSrc = srcId; bestAttr = attrId; bestS = s; bestA = a;
      } else if (c === 0 && s.kind === 'peer') {
        ecmp = [...(ecmp ?? [bestA!.nextHop]), a.nextHop];
      }
    }
    let desired = 0;
    if (bestS) {
      const kind = this.attrs.fibKind(bestAttr);
      if (kind === 'blackhole') desired = this.nexthops.intern('blackhole');
      else if (kind === 'via') {
        if (ecmp) desired = this.nexthopSpec(afi, w, ecmp);
        else {
          // One best path: its kernel spec depends only on the attributes and the IPIP decision.
          const e = this.attrs.entry(bestAttr);
          const tunnel = afi === AFI_IPV4 && this.ipip(afi, w);
          desired = tunnel ? (e.nhTunnel ||= this.nexthopSpec(afi, w, [bestA!.nextHop]) || -1) : (e.nhPlain ||= this.nexthopSpec(afi, w, [bestA!.nextHop]) || -1);
          if (desired < 0) desired = 0;
        }
      }
    }
    const slot = bestS ? t.loc.insert(w) : t.loc.find(w);
    if (slot < 0) return;
    const oldRaw = t.loc.get(slot, C_SRC);
    const oldSrc = (oldRaw & SRC_MASK) - 1;
    const changedBest = oldSrc !== bestSrc || t.loc.lastInsertNew;
    t.loc.set(slot, C_SRC, (oldRaw & DIRTY) | (bestSrc + 1));
    if (t.loc.get(slot, C_DESIRED) !== desired || t.loc.get(slot, C_INSTALLED) !== desired) {
      t.loc.set(slot, C_DESIRED, desired);
      this.markDirty(t, slot, w);
    } else if (bestSrc < 0 && t.loc.get(slot, C_INSTALLED) === 0) {
      t.loc.deleteSlot(slot);
    }
    void changedBest;
    // Exporters compare with what they sent, so they are told on every change, including a
    // change of attributes from the same best source.
    for (const l of this.listeners) l(afi, w, bestSrc, bestAttr);
  }

  private nexthopSpec(afi: Afi, w: PrefixWords, hops: string[]): number {
    const uniq = [...new Set(hops.filter((h) => h && !this.ownAddresses.has(h)))].sort();
    if (uniq.length === 0) return 0;
    const tunnel = afi === AFI_IPV4 && this.ipip(afi, w);
    const hop = (h: string) => (tunnel ? `via ${h} dev tunl0 onlink` : `via ${h}`);
    if (uniq.length === 1) return this.nexthops.intern(hop(uniq[0]!));
    return this.nexthops.intern(uniq.slice(0, 16).map((h) => `nexthop ${hop(h)} weight 1`).join(' '));
  }

  private markDirty(t: AfiTables, slot: number, w: PrefixWords): void {
    const raw = t.loc.get(slot, C_SRC);
    if (raw & DIRTY) return;
    t.loc.set(slot, C_SRC, raw | DIRTY);
    t.dirty.push(w);
    this.onFibDirty();
  }

  get fibPending(): number {
    return this.afis[AFI_IPV4]!.dirty.length + this.afis[AFI_IPV6]!.dirty.length;
  }

  /**
   * Hands up to `max` kernel changes to `emit(afi, prefix, spec)` (spec '' = delete) and records
   * them as installed. Returns how many prefixes were looked at.
   */
  drainFib(max: number, emit: (afi: Afi, w: PrefixWords, spec: string, prev: string) => void): number {
    let n = 0;
    for (const afi of [AFI_IPV4, AFI_IPV6] as Afi[]) {
      const t = this.afis[afi]!;
      const w = new Uint32Array(wordsFor(afi));
      while (n < max && t.dirty.shift(w)) {
        n++;
        const slot = t.loc.find(w);
        if (slot < 0) continue;
        const raw = t.loc.get(slot, C_SRC);
        t.loc.set(slot, C_SRC, raw & ~DIRTY);
        const desired = t.loc.get(slot, C_DESIRED);
        const installed = t.loc.get(slot, C_INSTALLED);
        if (desired !== installed) {
          emit(afi, w, this.nexthops.text(desired), this.nexthops.text(installed));
          t.loc.set(slot, C_INSTALLED, desired);
        }
        if (desired === 0 && (raw & SRC_MASK) === 0) t.loc.deleteSlot(slot);
      }
    }
    return n;
  }

  /** The kernel refused a change: remember that nothing is installed so a later change retries. */
  fibFailed(afi: Afi, w: PrefixWords): void {
    const t = this.afis[afi]!;
    const slot = t.loc.find(w);
    if (slot >= 0) t.loc.set(slot, C_INSTALLED, 0);
  }

  /** A route found in the kernel at start-up (ours from a previous run): remember it as installed. */
  adoptInstalled(afi: Afi, w: PrefixWords, spec: string): void {
    const t = this.afis[afi]!;
    const slot = t.loc.insert(w);
    if (t.loc.lastInsertNew) t.loc.set(slot, C_DESIRED, 0);
    t.loc.set(slot, C_INSTALLED, this.nexthops.intern(spec));
    if (t.loc.get(slot, C_DESIRED) === t.loc.get(slot, C_INSTALLED)) return;
  }

  /** Ends the start-up grace period: kernel routes nobody wants any more are removed. */
  sweepFib(): void {
    for (const afi of [AFI_IPV4, AFI_IPV6] as Afi[]) {
      const t = this.afis[afi]!;
      const keys = t.loc.snapshotKeys((s) => t.loc.get(s, C_DESIRED) !== t.loc.get(s, C_INSTALLED));
      const width = wordsFor(afi);
      for (let i = 0; i < keys.length; i += width) {
        const w = keys.subarray(i, i + width);
        const slot = t.loc.find(w);
        if (slot >= 0) this.markDirty(t, slot, w);
      }
    }
  }

  /**
   * Recomputes every prefix's kernel next hops (after IP pools changed the IPIP decision), a slice
   * at a time so that a big table never stalls the event loop.
   */
  refreshNexthops(done: () => void = () => undefined): void {
    this.attrs.forgetNexthops();
    const work: Array<[Afi, Uint32Array]> = [AFI_IPV4, AFI_IPV6].map((afi) => [afi as Afi, this.afis[afi]!.loc.snapshotKeys()]);
    let wi = 0;
    let i = 0;
    const step = () => {
      let budget = 20000;
      while (wi < work.length && budget > 0) {
        const [afi, keys] = work[wi]!;
        const width = wordsFor(afi);
        for (; i < keys.length && budget > 0; i += width, budget--) this.recompute(afi, keys.slice(i, i + width));
        if (i >= keys.length) { wi++; i = 0; }
      }
      if (wi < work.length) setImmediate(step); else done();
    };
    step();
  }

  /** Marks every route of a source stale (graceful restart helper, RFC 4724 §4.2). */
  markStale(src: number, afi: Afi): number {
    const a = this.adj(afi, src, false);
    if (!a) return 0;
    let n = 0;
    a.forEachSlot((s) => { const v = a.get(s, 0); if (v > 0) { a.set(s, 0, -v); n++; } });
    return n;
  }

  /** Keys of routes from a source, all of them or only the stale ones. */
  keysOf(src: number, afi: Afi, onlyStale: boolean): Uint32Array {
    const a = this.adj(afi, src, false);
    if (!a) return new Uint32Array(0);
    return a.snapshotKeys(onlyStale ? (s) => a.get(s, 0) < 0 : undefined);
  }

  /** Drops the per-source table once it is empty (after a purge). */
  dropSourceIfEmpty(src: number): void {
    for (const afi of [AFI_IPV4, AFI_IPV6] as Afi[]) {
      const t = this.afis[afi]!;
      const a = t.adjIn.get(src);
      if (a && a.size === 0) { t.adjIn.delete(src); this.reindex(t); }
    }
  }

  removeSource(src: number): void {
    if (src === 0) return;
    for (const afi of [AFI_IPV4, AFI_IPV6] as Afi[]) if ((this.afis[afi]!.adjIn.get(src)?.size ?? 0) > 0) throw new Error(`source ${src} still has routes`);
    this.dropSourceIfEmpty(src);
    this.sources[src] = undefined;
  }

  /** Every Loc-RIB prefix with a best route (for an initial dump to a new peer). */
  locKeys(afi: Afi): Uint32Array {
    const t = this.afis[afi]!;
    return t.loc.snapshotKeys((s) => (t.loc.get(s, C_SRC) & SRC_MASK) !== 0);
  }

  /** Loc-RIB entries for status/tests: prefix words, best source, kernel spec. */
  forEachBest(afi: Afi, fn: (w: PrefixWords, src: number, spec: string) => void): void {
    const t = this.afis[afi]!;
    const w = new Uint32Array(wordsFor(afi));
    t.loc.forEachSlot((s) => {
      const src = (t.loc.get(s, C_SRC) & SRC_MASK) - 1;
      if (src < 0) return;
      t.loc.keyAt(s, w);
      fn(w, src, this.nexthops.text(t.loc.get(s, C_DESIRED)));
    });
  }

  /** Bytes held by the route tables (typed arrays only). */
  get tableBytes(): number {
    let n = 0;
    for (const afi of [AFI_IPV4, AFI_IPV6]) {
      const t = this.afis[afi]!;
      n += t.loc.bytes;
      for (const a of t.adjIn.values()) n += a.bytes;
    }
    return n;
  }
}

/** True when a prefix lies inside any of `pools`. */
export function inAnyPool(pools: PrefixWords[], w: PrefixWords): boolean {
  for (const p of pools) if (prefixCovers(p, w)) return true;
  return false;
}
