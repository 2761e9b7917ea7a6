/**
 * Update groups (as FRR has them): established sessions whose export result is the same (family,
 * iBGP or not, route-reflector client or not, 4-octet AS, next-hop-self address) share one
 * Adj-RIB-Out. A best-path change is run through the export policy once per group, each UPDATE is
 * encoded once, and the same bytes are written to every member.
 *
 * Why: with one Adj-RIB-Out per peer, every received prefix cost O(peers) work on the input path;
 * a reflector with 500 clients spent ~15 s in one event-loop turn when they all announced, and
 * every session timed out (bench/results/bgp-rr.md). Now a prefix costs O(groups) on input and the
 * per-member cost is a socket write of shared buffers per drain round.
 *
 * A member that joins (or asks for a route refresh) gets a dump of what the group has sent so far,
 * paced by its own socket, while also receiving the group's new UPDATEs; every prefix's last
 * message to it is then the group's current state. End-of-RIB follows once its dump is done and the
 * group has nothing queued.
 *
 * Back-pressure: a drain round waits while any member's socket is over its high-water mark (except
 * a member still taking its dump), so a slow member slows its group (a dead one is removed by its
 * hold timer).
 */
import { Afi } from './codec/constants.js';
import { PathAttrs } from './codec/attrs.js';
import { PrefixWords, wordsFor } from './codec/prefix.js';
import { buildEndOfRib } from './codec/update.js';
import { AdjRibOut, DrainOutput, NO_EXCLUDE } from './adjout.js';
import { Rib } from './rib.js';
import { Session } from './session.js';

/** What decides a group: everything the export policy and the encoding depend on. */
export interface ExportProfile {
  afi: Afi;
  ibgp: boolean;
  rrClient: boolean;
  as4: boolean;
  /** The address "next hop self" means on these sessions. */
  nextHopSelf: string;
}

/** The speaker's export policy, in two parts so the per-attribute-set decision can be cached. */
export interface ExportPolicy {
  /** Whether the prefix may be announced at all (inside an IP pool). */
  prefixAllowed(afi: Afi, w: PrefixWords): boolean;
  /** The attributes to send for a best route from this source with these attributes, or undefined. */
  attrsFor(profile: ExportProfile, srcId: number, attrId: number): { attrs: PathAttrs; nextHop: string } | undefined;
}

/** Prefixes per drain round and per dump slice. */
const DRAIN_CHUNK = 4000;
const FILL_CHUNK = 20000;
const DUMP_CHUNK = 4000;
/** Keep the write rounds to about a third of the CPU: wait twice as long as the last round took. */
const MIN_ROUND_GAP_MS = 1;

export class GroupMember {
  /** Keys still to dump (undefined: in sync). */
  dumpKeys?: Uint32Array;
  dumpPos = 0;
  eorSent = false;
  constructor(readonly group: UpdateGroup, readonly session: Session, readonly sourceId: number) {}

  /** Route refresh: send everything again, then End-of-RIB. */
  refresh(): void {
    this.group.resync(this);
  }

  leave(): void {
    this.group.leave(this);
  }

  get adjOutSize(): number {
    return this.group.adjOut.size;
  }
}

export class UpdateGroup {
  readonly adjOut: AdjRibOut;
  readonly members = new Set<GroupMember>();
  /** attr id -> source id -> out id (0 = not exported). Cleared when the policy changes. */
  private readonly cache = new Map<number, Map<number, number>>();
  private filling = 0;
  private roundScheduled = false;
  private lastRoundEnd = 0;
  private lastRoundMs = 0;
  private closed = false;

  constructor(readonly key: string, readonly profile: ExportProfile, private readonly rib: Rib, private readonly policy: ExportPolicy, private readonly onEmpty: () => void) {
    this.adjOut = new AdjRibOut(profile.afi, profile.as4, profile.nextHopSelf);
    this.fill();
  }

  join(session: Session, sourceId: number): GroupMember {
    const m = new GroupMember(this, session, sourceId);
    this.members.add(m);
    session.on('drain', () => this.onMemberDrain(m));
    this.resync(m);
    return m;
  }

  leave(m: GroupMember): void {
    if (!this.members.delete(m)) return;
    if (this.members.size === 0) {
      this.closed = true;
      this.onEmpty();
    } else {
      this.schedule();
    }
  }

  resync(m: GroupMember): void {
    m.dumpKeys = this.adjOut.sentKeys();
    m.dumpPos = 0;
    m.eorSent = false;
    this.pumpDump(m);
  }

  /** A best-path change (or a re-evaluation): update what the members should have. */
  exportPrefix(w: PrefixWords, srcId: number, attrId: number): void {
    let outId = 0;
    if (srcId >= 0 && this.policy.prefixAllowed(this.profile.afi, w)) {
      let bySrc = this.cache.get(attrId);
      if (!bySrc) { bySrc = new Map(); this.cache.set(attrId, bySrc); }
      const hit = bySrc.get(srcId);
      if (hit !== undefined) outId = hit;
      else {
        const e = this.policy.attrsFor(this.profile, srcId, attrId);
        // Local routes (source 0) go to everyone; learned routes never back to their source.
        if (e) outId = this.adjOut.outId(e.attrs, e.nextHop, srcId === 0 ? NO_EXCLUDE : srcId);
        bySrc.set(srcId, outId);
      }
    }
    this.adjOut.want(w, outId);
    this.schedule();
  }

  /** Forgets cached export decisions (attribute id freed). */
  forgetAttr(attrId: number): void {
    this.cache.delete(attrId);
  }

  /** The export policy changed: re-evaluate the whole Loc-RIB. */
  reexport(): void {
    this.cache.clear();
    this.fill();
  }

  /** Exports the whole Loc-RIB into the group, a slice per turn. */
  private fill(): void {
    const afi = this.profile.afi;
    const keys = this.rib.locKeys(afi);
    const width = wordsFor(afi);
    this.filling++;
    let i = 0;
    const step = () => {
      if (this.closed) return;
      const end = Math.min(keys.length, i + FILL_CHUNK * width);
      for (; i < end; i += width) {
        const w = keys.subarray(i, i + width);
        const b = this.rib.best(afi, w);
        if (b) this.exportPrefix(w, b[0], b[1]);
      }
      if (i < keys.length) setImmediate(step);
      else { this.filling--; this.schedule(); }
    };
    step();
  }

  private schedule(): void {
    if (this.roundScheduled || this.closed) return;
    this.roundScheduled = true;
    const gap = Math.max(MIN_ROUND_GAP_MS, 2 * this.lastRoundMs) - (performance.now() - this.lastRoundEnd);
    const run = () => { this.roundScheduled = false; this.round(); };
    if (gap > 0) setTimeout(run, gap); else setImmediate(run);
  }

  /**
   * A member whose socket is full holds the group back, except one still taking its dump: the dump
   * is what fills its socket, and the group's changes (small next to a dump) must not wait for a
   * new peer to receive a whole table.
   */
  private blocked(): boolean {
    for (const m of this.members) if (!m.dumpKeys && !m.session.writable && m.session.state !== 'Closed') return true;
    return false;
  }

  /** One drain round: encode once, write to every member. */
  private round(): void {
    if (this.closed) return;
    if (this.adjOut.queued > 0) {
      if (this.blocked()) return; // resumed by the blocked member's 'drain'
      const t0 = performance.now();
      const out = this.adjOut.drain(DRAIN_CHUNK);
      if (out.prefixes > 0) this.write(out);
      this.lastRoundEnd = performance.now();
      this.lastRoundMs = this.lastRoundEnd - t0;
      if (this.adjOut.queued > 0) { this.schedule(); return; }
    }
    for (const m of this.members) this.maybeEndOfRib(m);
  }

  /**
   * Writes a round's messages: one buffer shared by all, laid out so that each excluded source's
   * messages are one contiguous range; that member gets the range swapped for its own messages.
   */
  private write(out: DrainOutput): void {
    const parts: Buffer[] = [...out.common];
    const ranges = new Map<number, { start: number; end: number; mine?: Buffer }>();
    let off = 0;
    for (const b of out.common) off += b.length;
    for (const [src, e] of out.exclusive) {
      const start = off;
      for (const b of e.others) { parts.push(b); off += b.length; }
      ranges.set(src, { start, end: off, mine: e.mine.length ? Buffer.concat(e.mine) : undefined });
    }
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, off);
    for (const m of this.members) {
      const r = ranges.get(m.sourceId);
      const s = m.session;
      if (!r) { s.send(all); continue; }
      s.socket.cork();
      if (r.start > 0) s.send(all.subarray(0, r.start));
      if (r.mine) s.send(r.mine);
      if (r.end < all.length) s.send(all.subarray(r.end));
      s.socket.uncork();
    }
  }

  private onMemberDrain(m: GroupMember): void {
    if (!this.members.has(m)) return;
    if (m.dumpKeys) this.pumpDump(m);
    if (this.adjOut.queued > 0) this.schedule();
  }

  /** Sends the next slices of a member's dump while its socket takes them. */
  private pumpDump(m: GroupMember): void {
    const keys = m.dumpKeys;
    if (!keys || !this.members.has(m)) return;
    const width = wordsFor(this.profile.afi);
    while (m.dumpPos < keys.length) {
      if (!m.session.writable) return; // resumed by 'drain'
      const end = Math.min(keys.length, m.dumpPos + DUMP_CHUNK * width);
      const msgs = this.adjOut.dump(keys.subarray(m.dumpPos, end), m.sourceId);
      m.dumpPos = end;
      if (msgs.length) m.session.send(msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs));
    }
    m.dumpKeys = undefined;
    this.maybeEndOfRib(m);
  }

  private maybeEndOfRib(m: GroupMember): void {
    if (m.eorSent || m.dumpKeys || this.filling > 0 || this.adjOut.queued > 0) return;
    m.eorSent = true;
    m.session.send(buildEndOfRib(this.profile.afi));
  }
}

/** The speaker's update groups, by profile. */
export class UpdateGroups {
  private readonly groups = new Map<string, UpdateGroup>();

  constructor(private readonly rib: Rib, private readonly policy: ExportPolicy) {}

  join(profile: ExportProfile, session: Session, sourceId: number): GroupMember {
    const key = `${profile.afi}|${profile.ibgp ? 'i' : 'e'}|${profile.rrClient ? 'c' : '-'}|${profile.as4 ? 4 : 2}|${profile.nextHopSelf}`;
    let g = this.groups.get(key);
    if (!g) {
      g = new UpdateGroup(key, profile, this.rib, this.policy, () => { if (this.groups.get(key) === g) this.groups.delete(key); });
      this.groups.set(key, g);
    }
    return g.join(session, sourceId);
  }

  /** Loc-RIB best-path change. */
  onBestChange(afi: Afi, w: PrefixWords, srcId: number, attrId: number): void {
    for (const g of this.groups.values()) if (g.profile.afi === afi) g.exportPrefix(w, srcId, attrId);
  }

  forgetAttr(attrId: number): void {
    for (const g of this.groups.values()) g.forgetAttr(attrId);
  }

  reexportAll(): void {
    for (const g of this.groups.values()) g.reexport();
  }

  get size(): number {
    return this.groups.size;
  }

  /** For status and tests: group key -> member count. */
  describe(): Array<{ key: string; members: number; routes: number }> {
    return [...this.groups.values()].map((g) => ({ key: g.key, members: g.members.size, routes: g.adjOut.size }));
  }
}
