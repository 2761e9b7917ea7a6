/**
 * An open-addressing hash table keyed by prefixes (runs of 32-bit words, see codec/prefix.ts)
 * with typed-array value columns. A JS Map with string keys costs well over 100 bytes per entry;
 * this costs (4 * width + 4 * columns + 1) bytes per slot at a load between 0.53 and 0.8 (growth
 * by 1.5x, not 2x, which keeps the slack ~1.5 slots per key instead of ~2), which is what lets a
 * million routes fit in tens of megabytes (BIRD needs ~92 B/route; see bench/bgp).
 * Linear probing with backward-shift deletion, so there are no tombstones.
 */
export class PrefixTable {
  readonly width: number;
  readonly columns: number;
  private keys: Uint32Array;
  private used: Uint8Array;
  private vals: Int32Array[];
  private cap: number;
  size = 0;

  constructor(width: number, columns: number, initialCapacity = 16) {
    this.width = width;
    this.columns = columns;
    const cap = Math.max(16, initialCapacity);
    this.cap = cap;
    this.keys = new Uint32Array(cap * width);
    this.used = new Uint8Array(cap);
    this.vals = Array.from({ length: columns }, () => new Int32Array(cap));
  }

  get capacity(): number {
    return this.cap;
  }

  /** Bytes held by the arrays (for memory accounting in the benchmark and status). */
  get bytes(): number {
    return this.keys.byteLength + this.used.byteLength + this.vals.reduce((n, v) => n + v.byteLength, 0);
  }

  private hash(k: ArrayLike<number>, off: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.width; i++) {
      h = Math.imul(h ^ k[off + i]!, 0x01000193);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
    return ((h ^ (h >>> 15)) >>> 0) % this.cap;
  }

  private eq(slot: number, k: ArrayLike<number>, off: number): boolean {
    const base = slot * this.width;
    for (let i = 0; i < this.width; i++) if (this.keys[base + i] !== k[off + i]) return false;
    return true;
  }

  /** Slot of the key, or -1. */
  find(k: ArrayLike<number>, off = 0): number {
    let s = this.hash(k, off);
    while (this.used[s]) {
      if (this.eq(s, k, off)) return s;
      s = s + 1 === this.cap ? 0 : s + 1;
    }
    return -1;
  }

  /** Slot of the key, inserting it (values zeroed) when absent. `isNew` tells which. */
  insert(k: ArrayLike<number>, off = 0): number {
    if ((this.size + 1) * 10 > this.cap * 8) this.grow();
    let s = this.hash(k, off);
    while (this.used[s]) {
      if (this.eq(s, k, off)) { this.lastInsertNew = false; return s; }
      s = s + 1 === this.cap ? 0 : s + 1;
    }
    this.used[s] = 1;
    const base = s * this.width;
    for (let i = 0; i < this.width; i++) this.keys[base + i] = k[off + i]!;
    for (let c = 0; c < this.columns; c++) this.vals[c]![s] = 0;
    this.size++;
    this.lastInsertNew = true;
    return s;
  }

  /** Whether the last insert() created the key. */
  lastInsertNew = false;

  get(slot: number, column: number): number {
    return this.vals[column]![slot]!;
  }

  set(slot: number, column: number, value: number): void {
    this.vals[column]![slot] = value;
  }

  /** Copies the key in `slot` into `out` at `off`. */
  keyAt(slot: number, out: Uint32Array, off = 0): Uint32Array {
    const base = slot * this.width;
    for (let i = 0; i < this.width; i++) out[off + i] = this.keys[base + i]!;
    return out;
  }

  isUsed(slot: number): boolean {
    return this.used[slot] === 1;
  }

  /** Deletes the key in `slot` (backward-shift: later entries of the same cluster move up). */
  deleteSlot(slot: number): void {
    let hole = slot;
    const cap = this.cap;
    let s = slot + 1 === cap ? 0 : slot + 1;
    const w = this.width;
    while (this.used[s]) {
      const home = this.hash(this.keys, s * w);
      // Move s into the hole if its home position is not in (hole, s].
      const dist = (s - home + cap) % cap;
      const holeDist = (s - hole + cap) % cap;
      if (dist >= holeDist) {
        for (let i = 0; i < w; i++) this.keys[hole * w + i] = this.keys[s * w + i]!;
        for (let c = 0; c < this.columns; c++) this.vals[c]![hole] = this.vals[c]![s]!;
        hole = s;
      }
      s = s + 1 === cap ? 0 : s + 1;
    }
    this.used[hole] = 0;
    this.size--;
  }

  delete(k: ArrayLike<number>, off = 0): boolean {
    const s = this.find(k, off);
    if (s < 0) return false;
    this.deleteSlot(s);
    return true;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldUsed = this.used;
    const oldVals = this.vals;
    const oldCap = this.cap;
    const cap = Math.ceil(oldCap * 1.5);
    this.cap = cap;
    this.keys = new Uint32Array(cap * this.width);
    this.used = new Uint8Array(cap);
    this.vals = Array.from({ length: this.columns }, () => new Int32Array(cap));
    const w = this.width;
    for (let old = 0; old < oldCap; old++) {
      if (!oldUsed[old]) continue;
      let s = this.hash(oldKeys, old * w);
      while (this.used[s]) s = s + 1 === cap ? 0 : s + 1;
      this.used[s] = 1;
      for (let i = 0; i < w; i++) this.keys[s * w + i] = oldKeys[old * w + i]!;
      for (let c = 0; c < this.columns; c++) this.vals[c]![s] = oldVals[c]![old]!;
    }
  }

  /** Copies out every key (width words each) whose row passes `filter`; safe against later mutation. */
  snapshotKeys(filter?: (slot: number) => boolean): Uint32Array {
    const w = this.width;
    let n = 0;
    for (let s = 0; s < this.capacity; s++) if (this.used[s] && (!filter || filter(s))) n++;
    const out = new Uint32Array(n * w);
    let o = 0;
    for (let s = 0; s < this.capacity; s++) {
      if (!this.used[s] || (filter && !filter(s))) continue;
      for (let i = 0; i < w; i++) out[o++] = this.keys[s * w + i]!;
    }
    return out;
  }

  /** Visits every used slot. Do not insert or delete during the walk. */
  forEachSlot(fn: (slot: number) => void): void {
    for (let s = 0; s < this.capacity; s++) if (this.used[s]) fn(s);
  }

  clear(): void {
    this.cap = 16;
    this.keys = new Uint32Array(16 * this.width);
    this.used = new Uint8Array(16);
    this.vals = Array.from({ length: this.columns }, () => new Int32Array(16));
    this.size = 0;
  }
}

/** A growable list of prefix keys (a work queue that survives table resizes). */
export class KeyQueue {
  private buf: Uint32Array;
  private head = 0;
  private tail = 0;
  constructor(readonly width: number) {
    this.buf = new Uint32Array(64 * width);
  }
  get length(): number {
    return (this.tail - this.head) / this.width;
  }
  push(k: ArrayLike<number>, off = 0): void {
    if (this.tail + this.width > this.buf.length) {
      const live = this.tail - this.head;
      const next = new Uint32Array(Math.max(this.buf.length, live * 2 + 64 * this.width));
      next.set(this.buf.subarray(this.head, this.tail));
      this.buf = next;
      this.head = 0;
      this.tail = live;
    }
    for (let i = 0; i < this.width; i++) this.buf[this.tail++] = k[off + i]!;
  }
  /** Pops the oldest key into `out`; false when empty. */
  shift(out: Uint32Array): boolean {
    if (this.head >= this.tail) return false;
    for (let i = 0; i < this.width; i++) out[i] = this.buf[this.head++]!;
    if (this.head === this.tail) { this.head = 0; this.tail = 0; if (this.buf.length > 4096 * this.width) this.buf = new Uint32Array(64 * this.width); }
    return true;
  }
}

const SHARD_BITS = 3;
const SHARDS = 1 << SHARD_BITS;
const SLOT_BITS = 28;
const SLOT_MASK = (1 << SLOT_BITS) - 1;

/**
 * A PrefixTable split into 8 sub-tables by a hash of the key. Each sub-table grows on its own, so
 * the longest synchronous rehash is 1/8 of the table (a 2M-slot rehash takes ~80 ms here, which
 * at ten million routes would stall keepalives for a second). More shards would shorten it further
 * but cost memory at 100k routes: 32 shards mean many small arrays whose growth fragments the C
 * heap (measured ~200 B/route at 100k vs ~140-200 with 8). Slot handles are (shard << 28) | slot;
 * the API is PrefixTable's.
 */
export class ShardedPrefixTable {
  private readonly shards: PrefixTable[];
  lastInsertNew = false;

  constructor(readonly width: number, readonly columns: number) {
    this.shards = Array.from({ length: SHARDS }, () => new PrefixTable(width, columns, 16));
  }

  private shardOf(k: ArrayLike<number>, off: number): number {
    let h = 0x9e3779b9;
    for (let i = 0; i < this.width; i++) h = Math.imul(h ^ k[off + i]!, 0x85ebca6b) ^ (h >>> 13);
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
    return (h >>> (32 - SHARD_BITS)) & (SHARDS - 1);
  }

  get size(): number {
    let n = 0;
    for (const s of this.shards) n += s.size;
    return n;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.shards) n += s.bytes;
    return n;
  }

  find(k: ArrayLike<number>, off = 0): number {
    const sh = this.shardOf(k, off);
    const s = this.shards[sh]!.find(k, off);
    return s < 0 ? -1 : (sh << SLOT_BITS) | s;
  }

  insert(k: ArrayLike<number>, off = 0): number {
    const sh = this.shardOf(k, off);
    const t = this.shards[sh]!;
    const s = t.insert(k, off);
    this.lastInsertNew = t.lastInsertNew;
    return (sh << SLOT_BITS) | s;
  }

  get(h: number, column: number): number {
    return this.shards[h >>> SLOT_BITS]!.get(h & SLOT_MASK, column);
  }

  set(h: number, column: number, value: number): void {
    this.shards[h >>> SLOT_BITS]!.set(h & SLOT_MASK, column, value);
  }

  keyAt(h: number, out: Uint32Array, off = 0): Uint32Array {
    return this.shards[h >>> SLOT_BITS]!.keyAt(h & SLOT_MASK, out, off);
  }

  deleteSlot(h: number): void {
    this.shards[h >>> SLOT_BITS]!.deleteSlot(h & SLOT_MASK);
  }

  delete(k: ArrayLike<number>, off = 0): boolean {
    return this.shards[this.shardOf(k, off)]!.delete(k, off);
  }

  snapshotKeys(filter?: (h: number) => boolean): Uint32Array {
    const parts = this.shards.map((t, sh) => t.snapshotKeys(filter ? (s) => filter((sh << SLOT_BITS) | s) : undefined));
    const out = new Uint32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  forEachSlot(fn: (h: number) => void): void {
    this.shards.forEach((t, sh) => t.forEachSlot((s) => fn((sh << SLOT_BITS) | s)));
  }
}
