/**
 * The key-value contract every part of the project uses to reach etcd (v3).
 *
 * Values are strings (the originals' JSON). Every entry carries its mod revision so that a
 * read-modify-write can be a transaction "if mod_revision(key) == r then put", the way Calico's
 * etcdv3 backend does it. `mutate` wraps that in a bounded retry loop.
 */
import { ConflictError, CalicoError } from '../errors.js';

export interface KVEntry {
  key: string;
  value: string;
  /** etcd mod_revision of the key. */
  modRevision: string;
}

/** One operation inside an atomic multi-key write. */
export type TxnOp =
  | { op: 'put'; key: string; value: string }
  | { op: 'delete'; key: string }
  | { op: 'deletePrefix'; prefix: string };

/** A guard of an atomic write: the key's mod revision must equal this (`'0'` = must not exist). */
export interface TxnGuard {
  key: string;
  modRevision: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value: string;
  modRevision: string;
}

export interface Watcher {
  close(): Promise<void>;
}

export interface KV {
  readonly endpoints: string[];
  get(key: string): Promise<KVEntry | undefined>;
  /**
   * All keys under a prefix, sorted by key, with the store revision of the read. With `keysOnly`
   * the values are left empty (much less to transfer when only the key's parts are needed).
   */
  list(prefix: string, opts?: { keysOnly?: boolean }): Promise<{ entries: KVEntry[]; revision: string }>;
  /** Create; throws AlreadyExistsError-compatible ConflictError if it exists. */
  create(key: string, value: string): Promise<string>;
  /** Compare-and-swap on the mod revision. Throws ConflictError when it changed. */
  update(key: string, value: string, modRevision: string): Promise<string>;
  /** Unconditional write. */
  put(key: string, value: string): Promise<string>;
  /** Delete a key; with `modRevision`, only if unchanged (ConflictError otherwise). Returns whether it existed. */
  delete(key: string, modRevision?: string): Promise<boolean>;
  /** Delete every key under a prefix. Returns the number deleted. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Atomic: all guards hold and all ops apply, or ConflictError and nothing is written. Returns
   * the store revision of the write, which is the new mod revision of every key it put.
   */
  txn(guards: TxnGuard[], ops: TxnOp[]): Promise<string>;
  /** Watch a prefix from a revision (exclusive of events at or before `afterRevision`). Daemons only. */
  watch?(prefix: string, afterRevision: string, onEvents: (events: WatchEvent[]) => void, onError: (err: Error) => void): Promise<Watcher>;
  close(): void;
}

export const DEFAULT_RETRIES = 100;

/**
 * Read-modify-write of one key with a compare on its mod revision, retried on conflict.
 * `fn` gets the current value (undefined when absent) and returns the new value, or `undefined`
 * to delete, or the symbol `NO_CHANGE` to leave it. Its return value is passed through.
 */
export const NO_CHANGE = Symbol('no-change');
export type MutateResult = string | undefined | typeof NO_CHANGE;
export type MutateOut<T> = MutateResult | { value: MutateResult; result: T };

export async function mutate<T = void>(
  kv: KV,
  key: string,
  fn: (current: string | undefined) => MutateOut<T> | Promise<MutateOut<T>>,
  retries = DEFAULT_RETRIES,
): Promise<T | undefined> {
  for (let attempt = 0; attempt < retries; attempt++) {
    const cur = await kv.get(key);
    const out = await fn(cur?.value);
    const { value, result } =
      typeof out === 'object' && out !== null ? out : { value: out as MutateResult, result: undefined };
    if (value === NO_CHANGE) return result;
    try {
      if (value === undefined) {
        if (cur) await kv.delete(key, cur.modRevision);
      } else if (cur) {
        await kv.update(key, value, cur.modRevision);
      } else {
        await kv.create(key, value);
      }
      return result;
    } catch (err) {
      if (err instanceof ConflictError) {
        await backoff(attempt);
        continue;
      }
      throw err;
    }
  }
  throw new CalicoError(`gave up updating ${key} after ${retries} conflicting writes`, {
    hint: 'too many concurrent writers; try again',
  });
}

/** Jittered backoff so that writers that collided do not collide again in lock-step. */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 1 + attempt) * Math.random();
  return new Promise((r) => setTimeout(r, ms));
}
