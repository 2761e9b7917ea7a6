/**
 * Every change to a block goes through here: read the block (and the handles the change touches),
 * apply the change to copies, then one etcd transaction that compares the mod revision of the
 * block and of each touched handle and writes them all (plus any host-affinity key) together, so
 * a crash can never leave a block and its handles disagreeing. A lost compare re-reads and
 * re-applies, at most DEFAULT_RETRIES (100) times per request, as Calico does.
 *
 * Within one process, requests for the same block are queued and applied in batches ("group
 * commit"): N containers starting at once on one host then cost one transaction per batch instead
 * of N transactions that all but one lose. Results are handed out only after the write succeeded.
 *
 * The last version of each block this process read or wrote is kept (with its mod revision), so
 * the next change to the same block (the next container on this host, in its affine block) goes
 * straight to the transaction without reading first. A copy that another writer made stale only
 * makes the compare fail; the block is then read and the change re-applied at once, without
 * counting it as a conflict.
 */
import { KV, TxnGuard, TxnOp, DEFAULT_RETRIES, backoff } from '../datastore/kv.js';
import { keys } from '../datastore/keys.js';
import { ConflictError } from '../errors.js';
import { IpVersion } from '../net/ip.js';
import { StoredBlock, StoredHandle } from '../model/stored.js';
import { affinityHost, isEmpty, parseBlock, serialiseBlock } from './block.js';
import { parseHandle } from './handle.js';
import { IpamContentionError } from './errors.js';

/** What a block operation sees and produces. Treated as immutable: ops return new objects. */
export interface BlockState {
  readonly block: StoredBlock | undefined;
  readonly handles: ReadonlyMap<string, StoredHandle | undefined>;
}

export interface BlockOpOutcome<R> {
  state: BlockState;
  result: R;
  /** Writes of other keys (host-affinity keys) that belong in the same transaction. */
  extraOps?: TxnOp[];
}

export interface BlockOp<R> {
  /** Handles known before the block is read; fetched together with it. */
  readonly handlesBefore: readonly string[];
  /**
   * The `handlesBefore` are most likely absent (a new container's handle): the first attempt
   * skips reading them and guards them as "must not exist"; if one does exist the compare fails
   * and the retry reads them. Saves a read per assignment in the common case.
   */
  readonly handlesLikelyNew?: boolean;
  /** Every handle the op reads or writes, given the block it will be applied to. */
  handlesNeeded(block: StoredBlock | undefined): string[];
  /** Pure. Throwing rejects this request only (and leaves the state as it was). */
  apply(state: BlockState): BlockOpOutcome<R>;
}

/**
 * etcd rejects transactions with more than 128 compares or operations (`--max-txn-ops`); a batch
 * stays well below that. Ops that would overflow wait for the next batch.
 */
const MAX_HANDLES_PER_TXN = 50;
const MAX_OPS_PER_TXN = 110;
const MAX_BATCH_LOOKAHEAD = 256;

interface Pending {
  op: BlockOp<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  conflicts: number;
}

interface Queue {
  pending: Pending[];
  running: boolean;
}

const queues = new WeakMap<KV, Map<string, Queue>>();

interface CachedBlock {
  block: StoredBlock;
  modRevision: string;
}

/** Per store: the block as this process last read or wrote it (treated as immutable, like all block states). */
const blockCaches = new WeakMap<KV, Map<string, CachedBlock>>();

function blockCache(kv: KV): Map<string, CachedBlock> {
  let c = blockCaches.get(kv);
  if (!c) { c = new Map(); blockCaches.set(kv, c); }
  return c;
}

/** Applies `op` to the block `blockCidr` and stores the result atomically. */
export function runBlockOp<R>(kv: KV, blockCidr: string, version: IpVersion, op: BlockOp<R>): Promise<R> {
  let perKv = queues.get(kv);
  if (!perKv) { perKv = new Map(); queues.set(kv, perKv); }
  const key = keys.ipamBlock(blockCidr, version);
  let queue = perKv.get(key);
  if (!queue) { queue = { pending: [], running: false }; perKv.set(key, queue); }
  const q = queue;
  const done = new Promise<R>((resolve, reject) => {
    q.pending.push({ op: op as BlockOp<unknown>, resolve: resolve as (v: unknown) => void, reject, conflicts: 0 });
  });
  kick(kv, perKv, key, q);
  return done;
}

function kick(kv: KV, perKv: Map<string, Queue>, key: string, queue: Queue): void {
  if (queue.running) return;
  queue.running = true;
  void drain(kv, key, queue).finally(() => {
    queue.running = false;
    // A request queued between the drain's last look and now must not be stranded.
    if (queue.pending.length > 0) kick(kv, perKv, key, queue);
    else if (perKv.get(key) === queue) perKv.delete(key);
  });
}

async function drain(kv: KV, blockKey: string, queue: Queue): Promise<void> {
  let round = 0;
  let trustCache = true;
  while (queue.pending.length > 0) {
    // A bounded look-ahead keeps each round's work small however long the queue grows.
    const batch = queue.pending.slice(0, MAX_BATCH_LOOKAHEAD);
    let served: Pending[];
    try {
      served = await commitBatch(kv, blockKey, batch, trustCache);
      round = 0;
      trustCache = true;
    } catch (err) {
      if (err instanceof BatchConflict) {
        if (err.fromCache) {
          // Our copy was stale (another host or process wrote the block): read it and retry now.
          trustCache = false;
          continue;
        }
        for (const p of err.batch) {
          p.conflicts++;
          if (p.conflicts >= DEFAULT_RETRIES) { remove(queue, p); p.reject(new IpamContentionError(blockKey, p.conflicts)); }
        }
        await backoff(round++);
        continue;
      }
      // Not a conflict (etcd unreachable, corrupt record): every request of this batch fails with it.
      blockCache(kv).delete(blockKey);
      for (const p of batch) { remove(queue, p); p.reject(err); }
      continue;
    }
    for (const p of served) remove(queue, p);
  }
}

function remove(queue: Queue, p: Pending): void {
  const i = queue.pending.indexOf(p);
  if (i >= 0) queue.pending.splice(i, 1);
}

class BatchConflict extends Error {
  constructor(readonly batch: Pending[], readonly fromCache: boolean) { super('batch conflict'); }
}

async function fetchHandles(kv: KV, ids: Iterable<string>, into: Map<string, StoredHandle | undefined>, revs: Map<string, string>): Promise<void> {
  const list = [...ids].filter((id) => !revs.has(id));
  const entries = await Promise.all(list.map((id) => kv.get(keys.ipamHandle(id))));
  list.forEach((id, i) => {
    const e = entries[i];
    revs.set(id, e?.modRevision ?? '0');
    into.set(id, e ? parseHandle(e.key, e.value) : undefined);
  });
}

/**
 * One read-apply-write round for as many queued requests as fit. Returns the requests it settled;
 * throws BatchConflict (with the requests that took part) when the compare lost.
 */
async function commitBatch(kv: KV, blockKey: string, batch: Pending[], trustCache: boolean): Promise<Pending[]> {
  const cache = blockCache(kv);
  const handleRevs = new Map<string, string>();
  const read = new Map<string, StoredHandle | undefined>();
  const before = new Set<string>();
  const guessed = new Set<string>();
  for (const p of batch) {
    for (const h of p.op.handlesBefore) {
      if (before.size + guessed.size >= MAX_HANDLES_PER_TXN) break;
      (p.op.handlesLikelyNew && p.conflicts === 0 ? guessed : before).add(h);
    }
  }
  for (const h of guessed) if (!before.has(h)) { handleRevs.set(h, '0'); read.set(h, undefined); }
  const cached = trustCache ? cache.get(blockKey) : undefined;
  let initialBlock: StoredBlock | undefined;
  let blockRev: string;
  if (cached) {
    await fetchHandles(kv, before, read, handleRevs);
    initialBlock = cached.block;
    blockRev = cached.modRevision;
  } else {
    const [entry] = await Promise.all([kv.get(blockKey), fetchHandles(kv, before, read, handleRevs)]);
    initialBlock = entry ? parseBlock(blockKey, entry.value) : undefined;
    blockRev = entry?.modRevision ?? '0';
    if (initialBlock) cache.set(blockKey, { block: initialBlock, modRevision: blockRev });
    else cache.delete(blockKey);
  }

  // Handles the ops will need that depend on the block's content (a release learns them from
  // the ordinals' attributes): fetch them all in one more round trip, not one per op.
  const later = new Set<string>();
  for (const p of batch) {
    for (const h of p.op.handlesNeeded(initialBlock)) {
      if (!handleRevs.has(h) && later.size + handleRevs.size < MAX_HANDLES_PER_TXN) later.add(h);
    }
  }
  if (later.size > 0) await fetchHandles(kv, later, read, handleRevs);

  // `read` holds handles as read (it grows if a later op needs more); `changed` what ops wrote.
  const changed = new Map<string, StoredHandle | undefined>();
  let block = initialBlock;
  const touched = new Set<string>();
  const extraOps: TxnOp[] = [];
  const settled: Array<{ p: Pending; ok: boolean; value: unknown }> = [];
  for (const p of batch) {
    const need = new Set([...p.op.handlesBefore, ...p.op.handlesNeeded(block)]);
    const unread = [...need].filter((h) => !handleRevs.has(h));
    const wouldTouch = new Set([...touched, ...need]).size;
    if (settled.length > 0 && (unread.length > 0 || wouldTouch > MAX_HANDLES_PER_TXN || wouldTouch + extraOps.length + 1 >= MAX_OPS_PER_TXN)) break;
    if (unread.length > 0) await fetchHandles(kv, unread, read, handleRevs);
    const view = new Map([...read, ...changed]);
    try {
      const out = p.op.apply({ block, handles: view });
      block = out.state.block;
      for (const [id, h] of out.state.handles) if (!view.has(id) || view.get(id) !== h) changed.set(id, h);
      extraOps.push(...(out.extraOps ?? []));
      for (const h of need) touched.add(h);
      settled.push({ p, ok: true, value: out.result });
    } catch (err) {
      settled.push({ p, ok: false, value: err });
    }
  }

  const { ops, block: written } = writesFor(blockKey, initialBlock, block, read, changed, extraOps);
  if (ops.length > 0) {
    // Guard the block even when only other keys change: every decision was made from its content.
    const guards: TxnGuard[] = [{ key: blockKey, modRevision: blockRev }];
    for (const id of changed.keys()) guards.push({ key: keys.ipamHandle(id), modRevision: handleRevs.get(id) ?? '0' });
    let revision: string;
    try {
      revision = await kv.txn(guards, ops);
    } catch (err) {
      if (err instanceof ConflictError) {
        cache.delete(blockKey);
        throw new BatchConflict(settled.map((s) => s.p), cached !== undefined);
      }
      throw err;
    }
    if (written !== initialBlock) {
      if (written === undefined) cache.delete(blockKey);
      else cache.set(blockKey, { block: written, modRevision: revision });
    }
  }
  for (const s of settled) (s.ok ? s.p.resolve : s.p.reject)(s.value);
  return settled.map((s) => s.p);
}

function writesFor(
  blockKey: string,
  initialBlock: StoredBlock | undefined,
  finalBlock: StoredBlock | undefined,
  read: ReadonlyMap<string, StoredHandle | undefined>,
  changed: ReadonlyMap<string, StoredHandle | undefined>,
  extraOps: TxnOp[],
): { ops: TxnOp[]; block: StoredBlock | undefined } {
  const ops: TxnOp[] = [];
  let block = finalBlock;
  // Calico's rule: a block nobody is affine to is deleted as soon as it holds no address.
  if (block !== undefined && block !== initialBlock && affinityHost(block) === null && isEmpty(block)) block = undefined;
  if (block !== initialBlock) {
    if (block === undefined) ops.push({ op: 'delete', key: blockKey });
    else ops.push({ op: 'put', key: blockKey, value: serialiseBlock(block) });
  }
  for (const [id, h] of changed) {
    if (h === undefined) { if (read.get(id) !== undefined) ops.push({ op: 'delete', key: keys.ipamHandle(id) }); }
    else ops.push({ op: 'put', key: keys.ipamHandle(id), value: JSON.stringify(h) });
  }
  return { ops: [...ops, ...extraOps], block };
}
