/**
 * Adj-RIB-Out of one session: what we want the peer to have (WANT), what we sent (SENT), and a
 * queue of prefixes whose two differ. Draining groups the queued prefixes by attribute set and
 * packs each group into as few 4 KB UPDATEs as possible, honouring socket back-pressure.
 */
import { Afi, AFI_IPV4, AFI_IPV6 } from './codec/constants.js';
import { PathAttrs, encodeAttrs } from './codec/attrs.js';
import { buildAnnouncements, buildWithdrawals } from './codec/update.js';
import { ShardedPrefixTable as PrefixTable, KeyQueue } from './table.js';
import { wordsFor, PrefixWords } from './codec/prefix.js';

const C_SENT = 0;
const C_WANT = 1;
const C_DIRTY = 2;
const RESEND = -1;

interface OutAttr { attrs: PathAttrs; nextHop: string; bytes?: Buffer }

export class AdjRibOut {
  private readonly tables: Record<number, PrefixTable> = {};
  private readonly queues: Record<number, KeyQueue> = {};
  private readonly outAttrs: OutAttr[] = [{ attrs: { origin: 0, asPath: [], nextHop: '' }, nextHop: '' }];
  private readonly outByKey = new Map<string, number>();
  /** (source, attr id) -> out id, so the export policy runs once per attribute set. */
  readonly exportCache = new Map<number, number>();
  announced = 0;
  withdrawn = 0;

  constructor(readonly families: Afi[], private readonly as4: boolean) {
    for (const afi of families) {
      this.tables[afi] = new PrefixTable(wordsFor(afi), 3);
      this.queues[afi] = new KeyQueue(wordsFor(afi));
    }
  }

  /** Same attributes object -> same id, without serialising (the export policy caches its results). */
  private readonly byObject = new WeakMap<PathAttrs, Map<string, number>>();

  /** Interns an outgoing attribute set (with its concrete next hop). */
  outId(attrs: PathAttrs, nextHop: string): number {
    let m = this.byObject.get(attrs);
    const known = m?.get(nextHop);
    if (known !== undefined) return known;
    const id = this.outIdByContent(attrs, nextHop);
    if (!m) { m = new Map(); this.byObject.set(attrs, m); }
    m.set(nextHop, id);
    return id;
  }

  private outIdByContent(attrs: PathAttrs, nextHop: string): number {
    const key = JSON.stringify(attrs, (_k, v) => (v instanceof Buffer ? v.toString('hex') : v)) + '|' + nextHop;
    let id = this.outByKey.get(key);
    if (id === undefined) {
      id = this.outAttrs.length;
      this.outAttrs.push({ attrs, nextHop });
      this.outByKey.set(key, id);
    }
    return id;
  }

  /** Records what the peer should have for a prefix (0 = nothing). */
  want(afi: Afi, w: PrefixWords, outId: number): void {
    const t = this.tables[afi];
    if (!t) return;
    let slot = t.find(w);
    if (slot < 0) {
      if (outId === 0) return;
      slot = t.insert(w);
    }
    t.set(slot, C_WANT, outId);
    if (t.get(slot, C_SENT) !== outId && !t.get(slot, C_DIRTY)) {
      t.set(slot, C_DIRTY, 1);
      this.queues[afi]!.push(w);
    }
  }

  /** Route refresh: everything we have sent goes out again. */
  resendAll(): void {
    for (const afi of this.families) {
      const t = this.tables[afi]!;
      const w = new Uint32Array(wordsFor(afi));
      t.forEachSlot((s) => {
        if (t.get(s, C_WANT) === 0) return;
        t.set(s, C_SENT, RESEND);
        if (!t.get(s, C_DIRTY)) { t.set(s, C_DIRTY, 1); this.queues[afi]!.push(t.keyAt(s, w)); }
      });
    }
  }

  get queued(): number {
    let n = 0;
    for (const afi of this.families) n += this.queues[afi]!.length;
    return n;
  }

  size(afi: Afi): number {
    return this.tables[afi]?.size ?? 0;
  }

  /**
   * Takes up to `max` queued prefixes and returns the UPDATE messages that bring the peer up to
   * date for them. `localNextHop(afi)` fills in "next hop self".
   */
  drain(max: number, localNextHop: (afi: Afi) => string): Buffer[] {
    const out: Buffer[] = [];
    let budget = max;
    for (const afi of this.families) {
      if (budget <= 0) break;
      const t = this.tables[afi]!;
      const q = this.queues[afi]!;
      const width = wordsFor(afi);
      const groups = new Map<number, PrefixWords[]>();
      const w = new Uint32Array(width);
      while (budget > 0 && q.shift(w)) {
        budget--;
        const slot = t.find(w);
        if (slot < 0) continue;
        t.set(slot, C_DIRTY, 0);
        const want = t.get(slot, C_WANT);
        const sent = t.get(slot, C_SENT);
        if (want === sent) continue;
        if (want === 0 && sent === 0) { t.deleteSlot(slot); continue; }
        let g = groups.get(want);
        if (!g) { g = []; groups.set(want, g); }
        g.push(w.slice());
        if (want === 0) t.deleteSlot(slot);
        else t.set(slot, C_SENT, want);
      }
      for (const [id, prefixes] of groups) {
        if (id === 0) {
          out.push(...buildWithdrawals(afi, prefixes));
          this.withdrawn += prefixes.length;
          continue;
        }
        const oa = this.outAttrs[id]!;
        const nh = oa.nextHop || localNextHop(afi);
        oa.bytes ??= encodeAttrs(oa.attrs, { as4: this.as4, classicNextHop: afi === AFI_IPV4 ? nh : undefined });
        out.push(...buildAnnouncements(afi, oa.bytes, nh, prefixes));
        this.announced += prefixes.length;
      }
    }
    return out;
  }
}

export { AFI_IPV6 };
