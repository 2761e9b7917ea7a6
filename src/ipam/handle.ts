/**
 * Handles: `/calico/ipam/v2/handle/<id>` `{block: {<block cidr>: <count>}}`, a secondary index
 * from an owner (a container) to the blocks holding its addresses, so release-by-handle need not
 * scan every block. Pure functions; the writes happen in the same transaction as the block's.
 */
import { StoredHandle } from '../model/stored.js';
import { CorruptIpamDataError } from './errors.js';

export function parseHandle(key: string, text: string): StoredHandle {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { throw new CorruptIpamDataError(key, 'not JSON'); }
  const block = (raw as Partial<StoredHandle> | null)?.block;
  if (typeof block !== 'object' || block === null) return { block: {} };
  const out: Record<string, number> = {};
  for (const [cidr, n] of Object.entries(block)) if (typeof n === 'number' && n > 0) out[cidr] = n;
  return { block: out };
}

/**
 * Adds `delta` (may be negative) to the handle's count for a block. Returns undefined when the
 * handle ends up empty, meaning "delete the key". A count never goes below zero: a handle that
 * undercounts (written by an older, non-transactional client) must not block a release.
 */
export function adjustHandle(handle: StoredHandle | undefined, blockCidr: string, delta: number): StoredHandle | undefined {
  const block = { ...(handle?.block ?? {}) };
  const n = (block[blockCidr] ?? 0) + delta;
  if (n > 0) block[blockCidr] = n;
  else delete block[blockCidr];
  return Object.keys(block).length === 0 ? undefined : { block };
}

export function handleTotal(handle: StoredHandle): number {
  return Object.values(handle.block).reduce((a, b) => a + b, 0);
}
