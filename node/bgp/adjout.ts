/**
 * The Adj-RIB-Out of one update group (one address family): what the group's peers should have
 * (WANT), what was sent (SENT), and a queue of prefixes whose two differ. Draining groups the
 * queued prefixes by outgoing attribute set and packs each into as few 4 KB UPDATEs as possible;
 * the messages are encoded once and written to every member (update-group.ts).
 *
 * Split horizon: a route is never sent back to the peer it came from. Each outgoing attribute set
 * carries the source it was learned from (`exclude`), so the drain can keep those announcements
 * from that one member, and instead withdraw what it had from us for those prefixes (a route from
 * another source, sent earlier). Withdrawals of a route the member never got are kept from it too,
 * and a member's start-up dump skips its own routes.
 */
import { Afi, AFI_IPV4 } from './codec/constants.js';
import { PathAttrs, encodeAttrs } from './codec/attrs.js';
import { buildAnnouncements, buildWithdrawals } from './codec/update.js';
import { ShardedPrefixTable as PrefixTable, KeyQueue } from './table.js';
import { wordsFor, PrefixWords } from './codec/prefix.js';

const C_SENT = 0;
const C_WANT = 1;
const C_DIRTY = 2;

/** No member is excluded (local routes). */
export const NO_EXCLUDE = -1;

interface OutAttr { attrs: PathAttrs; nextHop: string; exclude: number; bytes?: Buffer }

/** What one drain produced: messages for everyone, and per excluded source the two variants. */
export interface DrainOutput {
  common: Buffer[];
  /** source id -> messages for every member but that source's peer, and messages for it alone. */
  exclusive: Map<number, { others: Buffer[]; mine: Buffer[] }>;
  prefixes: number;
}

export class AdjRibOut {
  private readonly table: PrefixTable;
  private readonly queue: KeyQueue;
  private readonly width: number;
  private readonly outAttrs: OutAttr[] = [{ attrs: { origin: 0, asPath: [], nextHop: '' }, nextHop: '', exclude: NO_EXCLUDE }];
  private readonly outByKey = new Map<string, number>();
  /** Same attributes object -> same id, without serialising (the export policy caches its results). */
  private readonly byObject = new WeakMap<PathAttrs, Map<string, number>>();
  announced = 0;
  withdrawn = 0;

  constructor(readonly afi: Afi, private readonly as4: boolean, private readonly localNextHop: string) {
    this.width = wordsFor(afi);
    this.table = new PrefixTable(this.width, 3);
    this.queue = new KeyQueue(this.width);
  }

  /** Interns an outgoing attribute set (with its concrete next hop and the source to exclude). */
  outId(attrs: PathAttrs, nextHop: string, exclude: number): number {
    const sub = `${exclude}|${nextHop}`;
    let m = this.byObject.get(attrs);
    const known = m?.get(sub);
    if (known !== undefined) return known;
    const key = JSON.stringify(attrs, (_k, v) => (v instanceof Buffer ? v.toString('hex') : v)) + '|' + sub;
    let id = this.outByKey.get(key);
    if (id === undefined) {
      id = this.outAttrs.length;
      this.outAttrs.push({ attrs, nextHop, exclude });
      this.outByKey.set(key, id);
    }
    if (!m) { m = new Map(); this.byObject.set(attrs, m); }
    m.set(sub, id);
    return id;
  }

  /** Records what the group's peers should have for a prefix (0 = nothing). */
  want(w: PrefixWords, outId: number): void {
    const t = this.table;
    let slot = t.find(w);
    if (slot < 0) {
      if (outId === 0) return;
      slot = t.insert(w);
    }
    t.set(slot, C_WANT, outId);
    if (t.get(slot, C_SENT) !== outId && !t.get(slot, C_DIRTY)) {
      t.set(slot, C_DIRTY, 1);
      this.queue.push(w);
    }
  }

  get queued(): number {
    return this.queue.length;
  }

  get size(): number {
    return this.table.size;
  }

  /** Takes up to `max` queued prefixes and returns the UPDATEs that bring the members up to date. */
  drain(max: number): DrainOutput {
    const out: DrainOutput = { common: [], exclusive: new Map(), prefixes: 0 };
    const t = this.table;
    /** Announcements by out id; for excluded sources also the prefixes that source must lose. */
    const announce = new Map<number, { prefixes: PrefixWords[]; unsend: PrefixWords[] }>();
    /** Withdrawals by the source excluded from what was sent before (NO_EXCLUDE: everyone). */
    const withdraw = new Map<number, PrefixWords[]>();
    const w = new Uint32Array(this.width);
    let budget = max;
    while (budget > 0 && this.queue.shift(w)) {
      budget--;
      const slot = t.find(w);
      if (slot < 0) continue;
      t.set(slot, C_DIRTY, 0);
      const want = t.get(slot, C_WANT);
      const sent = t.get(slot, C_SENT);
      if (want === sent) continue;
      const key = w.slice();
      if (want === 0) {
        const ex = this.outAttrs[sent]!.exclude;
        let g = withdraw.get(ex);
        if (!g) { g = []; withdraw.set(ex, g); }
        g.push(key);
        t.deleteSlot(slot);
        continue;
      }
      let g = announce.get(want);
      if (!g) { g = { prefixes: [], unsend: [] }; announce.set(want, g); }
      g.prefixes.push(key);
      // The excluded member had this prefix from us (another source's route): take it back.
      const ex = this.outAttrs[want]!.exclude;
      if (ex !== NO_EXCLUDE && sent > 0 && this.outAttrs[sent]!.exclude !== ex) g.unsend.push(key);
      t.set(slot, C_SENT, want);
    }
    const exclusive = (src: number) => {
      let e = out.exclusive.get(src);
      if (!e) { e = { others: [], mine: [] }; out.exclusive.set(src, e); }
      return e;
    };
    for (const [ex, prefixes] of withdraw) {
      out.prefixes += prefixes.length;
      this.withdrawn += prefixes.length;
      const msgs = buildWithdrawals(this.afi, prefixes);
      if (ex === NO_EXCLUDE) out.common.push(...msgs); else exclusive(ex).others.push(...msgs);
    }
    for (const [id, g] of announce) {
      out.prefixes += g.prefixes.length;
      this.announced += g.prefixes.length;
      const msgs = this.encode(id, g.prefixes);
      const ex = this.outAttrs[id]!.exclude;
      if (ex === NO_EXCLUDE) { out.common.push(...msgs); continue; }
      const e = exclusive(ex);
      e.others.push(...msgs);
      if (g.unsend.length) e.mine.push(...buildWithdrawals(this.afi, g.unsend));
    }
    return out;
  }

  /** Keys of everything sent so far (a new member's start-up dump walks these). */
  sentKeys(): Uint32Array {
    return this.table.snapshotKeys((s) => this.table.get(s, C_SENT) > 0);
  }

  /**
   * UPDATEs for the given keys as they were last sent to the group (a member's dump), leaving out
   * the routes learned from `exclude`. Keys whose state changed since the snapshot are read as
   * they are now; anything still queued reaches the member through the group's next drain.
   */
  dump(keys: Uint32Array, exclude: number): Buffer[] {
    const t = this.table;
    const groups = new Map<number, PrefixWords[]>();
    for (let i = 0; i < keys.length; i += this.width) {
      const w = keys.subarray(i, i + this.width);
      const slot = t.find(w);
      if (slot < 0) continue;
      const sent = t.get(slot, C_SENT);
      if (sent <= 0 || this.outAttrs[sent]!.exclude === exclude) continue;
      let g = groups.get(sent);
      if (!g) { g = []; groups.set(sent, g); }
      g.push(w);
    }
    const out: Buffer[] = [];
    for (const [id, prefixes] of groups) out.push(...this.encode(id, prefixes));
    return out;
  }

  private encode(id: number, prefixes: PrefixWords[]): Buffer[] {
    const oa = this.outAttrs[id]!;
    const nh = oa.nextHop || this.localNextHop;
    oa.bytes ??= encodeAttrs(oa.attrs, { as4: this.as4, classicNextHop: this.afi === AFI_IPV4 ? nh : undefined });
    return buildAnnouncements(this.afi, oa.bytes, nh, prefixes);
  }
}
