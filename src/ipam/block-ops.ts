/**
 * The changes IPAM makes to a block, as `BlockOp`s for the block writer: each is pure, sees the
 * block (or its absence) and the handles it needs, and returns the new state. Together with
 * block-writer.ts they are the only code that writes blocks, handles and host-affinity keys.
 */
import { TxnOp } from '../datastore/kv.js';
import { keys } from '../datastore/keys.js';
import { IpVersion, parseCidr } from '../net/ip.js';
import { StoredBlock, StoredHandle } from '../model/stored.js';
import {
  Attributes, addressAt, affinityHost, assignNext, assignOrdinal, handleOfOrdinal, isEmpty, newBlock, releaseOrdinals,
} from './block.js';
import { adjustHandle } from './handle.js';
import { BlockOp, BlockState } from './block-writer.js';
import { AddressInUseError, AffinityConflictError } from './errors.js';

/** Go writes `{}` into a host-affinity key; readers accept anything (Python wrote ""). */
const AFFINITY_VALUE = '{}';

const claimAffinity = (node: string, cidr: string, v: IpVersion): TxnOp =>
  ({ op: 'put', key: keys.ipamAffinity(node, cidr, v), value: AFFINITY_VALUE });
const dropAffinity = (node: string, cidr: string, v: IpVersion): TxnOp =>
  ({ op: 'delete', key: keys.ipamAffinity(node, cidr, v) });

function withHandleDelta(state: BlockState, handleId: string | null, blockCidr: string, delta: number): ReadonlyMap<string, StoredHandle | undefined> {
  if (handleId === null || delta === 0) return state.handles;
  const next = new Map(state.handles);
  next.set(handleId, adjustHandle(state.handles.get(handleId), blockCidr, delta));
  return next;
}

export type AssignMode =
  /** A block this host is affine to (its affinity key exists). Rebuilt if the block went missing. */
  | 'affine'
  /** A block that did not exist when the host looked: created with this host's affinity. */
  | 'claim'
  /** Another host's (or nobody's) block: only free ordinals, never a new block. */
  | 'borrow';

export type AssignOutcome =
  /** `freeAfter`: free ordinals left in the block afterwards. */
  | { ordinals: number[]; created: boolean; freeAfter: number }
  | { skipped: 'missing' | 'taken' | 'strict' };

export interface AssignNextArgs {
  blockCidr: string;
  version: IpVersion;
  num: number;
  node: string;
  handleId: string | null;
  attrs?: Attributes;
  mode: AssignMode;
  /** `strictAffinity` recorded in a block this op creates (the cluster setting). */
  strictAffinity: boolean;
}

/** Take up to `num` addresses from one block (creating it for 'affine'/'claim' when absent). */
export function assignNextOp(a: AssignNextArgs): BlockOp<AssignOutcome> {
  const handles = a.handleId === null ? [] : [a.handleId];
  return {
    handlesBefore: handles,
    handlesLikelyNew: true,
    handlesNeeded: () => handles,
    apply(state) {
      let block = state.block;
      const extraOps: TxnOp[] = [];
      let created = false;
      if (block === undefined) {
        if (a.mode === 'borrow') return { state, result: { skipped: 'missing' } };
        // Claiming: the block and the host's affinity key are written in one transaction, so a
        // crash cannot leave an affinity without its block (Calico 1.x's two-step window).
        block = newBlock(a.blockCidr, a.node, a.strictAffinity);
        extraOps.push(claimAffinity(a.node, a.blockCidr, a.version));
        created = true;
      } else {
        const owner = affinityHost(block);
        if (a.mode !== 'borrow' && owner !== a.node) {
          // Another host owns it. For 'affine' our affinity key is stale: drop it so that routes
          // are not advertised for a block that is not ours.
          if (a.mode === 'affine') extraOps.push(dropAffinity(a.node, a.blockCidr, a.version));
          return { state, result: { skipped: 'taken' }, extraOps };
        }
        if (a.mode === 'borrow' && block.strictAffinity && owner !== null && owner !== a.node) {
          return { state, result: { skipped: 'strict' } };
        }
      }
      const { block: next, ordinals } = assignNext(block, a.num, a.handleId, a.attrs);
      const freeAfter = next.unallocated.length;
      if (!created && ordinals.length === 0) return { state, result: { ordinals, created, freeAfter } };
      return {
        state: { block: next, handles: withHandleDelta(state, a.handleId, next.cidr, ordinals.length) },
        result: { ordinals, created, freeAfter },
        extraOps,
      };
    },
  };
}

export interface AssignOrdinalArgs {
  blockCidr: string;
  version: IpVersion;
  ip: string;
  ordinal: number;
  node: string;
  handleId: string | null;
  attrs?: Attributes;
  strictAffinity: boolean;
}

/** Assign one given address; its block is created with this host's affinity when absent. */
export function assignOrdinalOp(a: AssignOrdinalArgs): BlockOp<void> {
  const handles = a.handleId === null ? [] : [a.handleId];
  return {
    handlesBefore: handles,
    handlesLikelyNew: true,
    handlesNeeded: () => handles,
    apply(state) {
      let block = state.block;
      const extraOps: TxnOp[] = [];
      if (block === undefined) {
        block = newBlock(a.blockCidr, a.node, a.strictAffinity);
        extraOps.push(claimAffinity(a.node, a.blockCidr, a.version));
      } else {
        const owner = affinityHost(block);
        if (block.strictAffinity && owner !== null && owner !== a.node) throw new AffinityConflictError(a.ip, block.cidr, owner, a.node);
      }
      const next = assignOrdinal(block, a.ordinal, a.handleId, a.attrs);
      if (next === undefined) throw new AddressInUseError(a.ip, handleOfOrdinal(block, a.ordinal) ?? null);
      return { state: { block: next, handles: withHandleDelta(state, a.handleId, next.cidr, 1) }, result: undefined, extraOps };
    },
  };
}

export interface ReleaseOutcome {
  released: Array<{ ip: string; handleId: string | null }>;
  notAssigned: string[];
}

function releaseIn(state: BlockState, block: StoredBlock, ordinals: number[]): { state: BlockState; result: ReleaseOutcome } {
  const cidr = parseCidr(block.cidr);
  const r = releaseOrdinals(block, ordinals);
  let handles = state.handles;
  const perHandle = new Map<string, number>();
  for (const x of r.released) if (x.handleId !== null) perHandle.set(x.handleId, (perHandle.get(x.handleId) ?? 0) + 1);
  if (perHandle.size > 0) {
    const next = new Map(handles);
    for (const [id, n] of perHandle) next.set(id, adjustHandle(handles.get(id), block.cidr, -n));
    handles = next;
  }
  return {
    state: { block: r.block, handles },
    result: {
      released: r.released.map((x) => ({ ip: addressAt(cidr, x.ordinal), handleId: x.handleId })),
      notAssigned: r.notAssigned.map((o) => addressAt(cidr, o)),
    },
  };
}

/** Release given ordinals. An absent block means none of them was assigned. */
export function releaseOrdinalsOp(blockCidr: string, ordinals: number[]): BlockOp<ReleaseOutcome> {
  return {
    handlesBefore: [],
    handlesNeeded(block) {
      if (block === undefined) return [];
      const ids = new Set<string>();
      for (const o of ordinals) { const h = handleOfOrdinal(block, o); if (h) ids.add(h); }
      return [...ids];
    },
    apply(state) {
      if (state.block === undefined) {
        const cidr = parseCidr(blockCidr);
        return { state, result: { released: [], notAssigned: ordinals.map((o) => addressAt(cidr, o)) } };
      }
      return releaseIn(state, state.block, ordinals);
    },
  };
}

/**
 * Release every address of `handleId` in this block, and drop the handle's entry for the block
 * even if it over-counted (a handle left by an older non-transactional writer), so that
 * release-by-handle always ends with the handle gone.
 */
export function releaseHandleOp(blockCidr: string, handleId: string): BlockOp<ReleaseOutcome> {
  return {
    handlesBefore: [handleId],
    handlesNeeded: () => [handleId],
    apply(state) {
      const block = state.block;
      const ordinals: number[] = [];
      if (block) block.allocations.forEach((_, o) => { if (handleOfOrdinal(block, o) === handleId) ordinals.push(o); });
      const out = block && ordinals.length > 0 ? releaseIn(state, block, ordinals) : { state, result: { released: [], notAssigned: [] } };
      const h = out.state.handles.get(handleId);
      if (h?.block[blockCidr] === undefined) return out;
      const handles = new Map(out.state.handles);
      handles.set(handleId, adjustHandle(h, blockCidr, -h.block[blockCidr]!));
      return { state: { block: out.state.block, handles }, result: out.result };
    },
  };
}

export type AffinityReleaseOutcome = 'deleted' | 'released' | 'not-owner' | 'missing';

/**
 * Give up `node`'s affinity to a block: an empty block is deleted, a non-empty one keeps its
 * addresses with no owner. The host-affinity key goes in the same transaction.
 */
export function releaseAffinityOp(blockCidr: string, version: IpVersion, node: string): BlockOp<AffinityReleaseOutcome> {
  return {
    handlesBefore: [],
    handlesNeeded: () => [],
    apply(state) {
      const extraOps = [dropAffinity(node, blockCidr, version)];
      const block = state.block;
      if (block === undefined) return { state, result: 'missing', extraOps };
      if (affinityHost(block) !== node) return { state, result: 'not-owner', extraOps };
      if (isEmpty(block)) return { state: { block: undefined, handles: state.handles }, result: 'deleted', extraOps };
      return { state: { block: { ...block, affinity: null }, handles: state.handles }, result: 'released', extraOps };
    },
  };
}
