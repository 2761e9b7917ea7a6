/**
 * A per-connection memory of which blocks were full when last written. It only orders the affine
 * blocks a host tries (known-full ones last), so a host with many full blocks does not read each
 * of them before reaching the one with room. It is a hint, never trusted: every block is still
 * read and compared before anything is taken from it, and a full-marked block is still tried.
 */
import { KV } from '../datastore/kv.js';

const hints = new WeakMap<KV, Map<string, boolean>>();

export function noteBlockFull(kv: KV, blockCidr: string, full: boolean): void {
  let m = hints.get(kv);
  if (!m) { m = new Map(); hints.set(kv, m); }
  if (full) m.set(blockCidr, true);
  else m.delete(blockCidr);
}

export function seenFull(kv: KV, blockCidr: string): boolean {
  return hints.get(kv)?.get(blockCidr) === true;
}
