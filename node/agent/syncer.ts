/**
 * Keeps an in-memory copy of some etcd prefixes and reports every change: a snapshot (list)
 * then a watch from the snapshot's revision, so nothing between the two is missed.
 *
 * If a watch fails (etcd compacted the revision we need - CompactedError - or the stream broke
 * for good), the syncer re-lists every prefix and reports the difference between its copy and
 * the fresh snapshot as ordinary updates (deletions included), then watches again from the new
 * revisions. Consumers therefore never see a gap: after a resync their state equals the store.
 * (The etcd3 client already resumes a watch after a short disconnect on its own, from the last
 * revision it delivered; this path is for when that is impossible.)
 */
import type { KV, WatchEvent, Watcher } from '../../src/datastore/kv.js';
import type { Logger } from '../../src/log.js';
import { errorMessage } from '../../src/errors.js';

export interface KvUpdate {
  key: string;
  /** undefined: deleted. */
  value: string | undefined;
  /** Mod revision of the change (the snapshot revision for a snapshot / resync). */
  revision: bigint;
}

export interface SyncerHandler {
  onUpdates(updates: KvUpdate[]): void;
  /** Called once the first snapshot of every prefix has been delivered, and after each resync. */
  onInSync(revision: bigint): void;
  onResync?(reason: string): void;
}

export interface SyncerOptions {
  /** First retry delay after a failure; doubles up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class DatastoreSyncer {
  private readonly cache = new Map<string, string>();
  private watchers: Watcher[] = [];
  private generation = 0;
  private stopped = false;
  private resyncing = false;
  private resyncTimer?: NodeJS.Timeout;
  private failures = 0;
  /** Highest revision delivered so far. */
  revision = 0n;
  resyncs = 0;

  constructor(
    private readonly kv: KV,
    private readonly prefixes: string[],
    private readonly handler: SyncerHandler,
    private readonly log: Logger,
    private readonly opts: SyncerOptions = {},
  ) {
    if (!kv.watch) throw new Error('the datastore syncer needs a KV with watch (connectKV(cfg, "daemon"))');
  }

  /**
   * Takes the first snapshot and starts watching. Retries (with backoff, logging each failure)
   * until it succeeds or `stop()` is called: a daemon waits for its datastore, as Felix does.
   */
  async start(): Promise<void> {
    for (;;) {
      try {
        await this.snapshotAndWatch();
        return;
      } catch (err) {
        if (this.stopped) throw err;
        this.failures++;
        const delay = Math.min(this.opts.maxBackoffMs ?? 5000, (this.opts.minBackoffMs ?? 100) * 2 ** (this.failures - 1));
        this.log.warn('cannot sync with the datastore yet; retrying', { error: errorMessage(err), attempt: this.failures, retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
        if (this.stopped) throw new Error('syncer stopped');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    await this.closeWatchers();
  }

  /** Number of keys held. */
  get size(): number {
    return this.cache.size;
  }

  private async closeWatchers(): Promise<void> {
    const ws = this.watchers;
    this.watchers = [];
    await Promise.all(ws.map((w) => w.close().catch(() => undefined)));
  }

  private async snapshotAndWatch(): Promise<void> {
    const gen = ++this.generation;
    await this.closeWatchers();
    const updates: KvUpdate[] = [];
    const seen = new Set<string>();
    const revs: bigint[] = [];
    for (const prefix of this.prefixes) {
      const { entries, revision } = await this.kv.list(prefix);
      const rev = BigInt(revision);
      revs.push(rev);
      for (const e of entries) {
        seen.add(e.key);
        if (this.cache.get(e.key) !== e.value) {
          this.cache.set(e.key, e.value);
          updates.push({ key: e.key, value: e.value, revision: BigInt(e.modRevision) });
        }
      }
    }
    // Keys we hold that the snapshot no longer has were deleted while we were not watching.
    for (const k of [...this.cache.keys()]) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        updates.push({ key: k, value: undefined, revision: revs.reduce((a, b) => (a > b ? a : b), 0n) });
      }
    }
    if (gen !== this.generation || this.stopped) return;
    const maxRev = revs.reduce((a, b) => (a > b ? a : b), 0n);
    if (maxRev > this.revision) this.revision = maxRev;
    if (updates.length) this.handler.onUpdates(updates);
    this.handler.onInSync(this.revision);
    // Watch each prefix from its own snapshot revision.
    for (let i = 0; i < this.prefixes.length; i++) {
      const w = await this.kv.watch!(
        this.prefixes[i]!,
        String(revs[i]),
        (events) => { if (gen === this.generation) this.onEvents(events); },
        (err) => { if (gen === this.generation) this.onWatchError(err); },
      );
      if (gen !== this.generation || this.stopped) {
        await w.close().catch(() => undefined);
        return;
      }
      this.watchers.push(w);
    }
    this.failures = 0;
  }

  private onEvents(events: WatchEvent[]): void {
    const updates: KvUpdate[] = [];
    for (const e of events) {
      const rev = BigInt(e.modRevision || '0');
      if (e.type === 'delete') {
        if (!this.cache.has(e.key)) continue;
        this.cache.delete(e.key);
        updates.push({ key: e.key, value: undefined, revision: rev });
      } else {
        this.cache.set(e.key, e.value);
        updates.push({ key: e.key, value: e.value, revision: rev });
      }
      if (rev > this.revision) this.revision = rev;
    }
    if (updates.length) this.handler.onUpdates(updates);
  }

  private onWatchError(err: Error): void {
    if (this.stopped) return;
    this.log.warn('datastore watch failed; resyncing from a fresh snapshot', { error: errorMessage(err), kind: err.constructor.name });
    this.scheduleResync(err.constructor.name);
  }

  /** Forces a resync (also used after errors). */
  scheduleResync(reason: string): void {
    if (this.stopped || this.resyncing || this.resyncTimer) return;
    this.generation++; // ignore anything the old watchers still deliver
    const min = this.opts.minBackoffMs ?? 100;
    const delay = this.failures === 0 ? 0 : Math.min(this.opts.maxBackoffMs ?? 5000, min * 2 ** (this.failures - 1));
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync(reason);
    }, delay);
  }

  private async resync(reason: string): Promise<void> {
    if (this.stopped) return;
    this.resyncing = true;
    this.resyncs++;
    this.handler.onResync?.(reason);
    try {
      await this.snapshotAndWatch();
    } catch (err) {
      this.failures++;
      this.log.warn('datastore resync failed; will retry', { error: errorMessage(err), attempt: this.failures });
      this.resyncing = false;
      this.scheduleResync(reason);
      return;
    }
    this.resyncing = false;
  }
}
