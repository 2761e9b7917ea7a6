/**
 * One allocation block, as pure functions over the stored JSON (`StoredBlock`, exactly Calico's
 * shape). Nothing here mutates its input: every change returns a new block, so a caller can
 * discard it when the compare-and-swap that was to store it loses, and no half-applied state
 * survives a conflict.
 */
import { Cidr, IpAddr, bitsOf, cidrContains, formatCidr, formatIp, parseCidr } from '../net/ip.js';
import { StoredBlock } from '../model/stored.js';
import { CorruptIpamDataError } from './errors.js';

export type Attributes = Record<string, string>;

export interface BlockAttribute {
  handle_id: string | null;
  secondary: Attributes | null;
}

const AFFINITY_PREFIX = 'host:';

export function affinityOf(node: string): string {
  return AFFINITY_PREFIX + node;
}

/** The host a block is affine to, or null (no affinity, or a form this code does not know). */
export function affinityHost(block: Pick<StoredBlock, 'affinity'>): string | null {
  const a = block.affinity;
  return typeof a === 'string' && a.startsWith(AFFINITY_PREFIX) ? a.slice(AFFINITY_PREFIX.length) : null;
}

/** Number of addresses in a block of this CIDR. Block sizes are capped (see pools.ts) so this fits a number. */
export function blockCapacity(cidr: Cidr): number {
  return 2 ** (bitsOf(cidr.version) - cidr.prefixLength);
}

export function newBlock(cidr: string, node: string | null, strictAffinity: boolean): StoredBlock {
  const c = parseCidr(cidr);
  const size = blockCapacity(c);
  return {
    cidr: formatCidr(c),
    affinity: node === null ? null : affinityOf(node),
    strictAffinity,
    allocations: new Array<number | null>(size).fill(null),
    // Ascending at first; afterwards released ordinals go to the tail (FIFO reuse).
    unallocated: Array.from({ length: size }, (_, i) => i),
    attributes: [],
  };
}

/** Offset of `ip` inside the block, or -1 when the block does not contain it. */
export function ordinalOf(block: Cidr, ip: IpAddr): number {
  if (!cidrContains(block, ip)) return -1;
  return Number(ip.value - block.network);
}

export function addressAt(block: Cidr, ordinal: number): string {
  return formatIp({ version: block.version, value: block.network + BigInt(ordinal) });
}

export function inUseCount(block: StoredBlock): number {
  let n = 0;
  for (const a of block.allocations) if (a !== null) n++;
  return n;
}

export function freeCount(block: StoredBlock): number {
  return block.unallocated.length;
}

export function isEmpty(block: StoredBlock): boolean {
  return inUseCount(block) === 0;
}

function sameAttributes(a: Attributes | null, b: Attributes | null): boolean {
  const norm = (x: Attributes | null) =>
    x === null ? 'null' : JSON.stringify(Object.keys(x).sort().map((k) => [k, x[k]]));
  return norm(a) === norm(b);
}

/**
 * Index of the attribute entry for (handle, secondary), appending one when absent. Entries are
 * shared by every ordinal with the same handle and attributes, as Calico does, which keeps a
 * block holding one container's many addresses small.
 */
function attributeIndex(attributes: BlockAttribute[], handleId: string | null, secondary: Attributes | null): { attributes: BlockAttribute[]; index: number } {
  const found = attributes.findIndex((a) => a.handle_id === handleId && sameAttributes(a.secondary, secondary));
  if (found >= 0) return { attributes, index: found };
  return { attributes: [...attributes, { handle_id: handleId, secondary }], index: attributes.length };
}

const secondaryOf = (attrs: Attributes | undefined): Attributes | null => (attrs === undefined ? null : { ...attrs });

/** Takes up to `n` ordinals from the head of `unallocated` (the ones free the longest). */
export function assignNext(
  block: StoredBlock,
  n: number,
  handleId: string | null,
  attrs?: Attributes,
): { block: StoredBlock; ordinals: number[] } {
  const count = Math.min(n, block.unallocated.length);
  if (count <= 0) return { block, ordinals: [] };
  const ordinals = block.unallocated.slice(0, count);
  const { attributes, index } = attributeIndex(block.attributes, handleId, secondaryOf(attrs));
  const allocations = block.allocations.slice();
  for (const o of ordinals) allocations[o] = index;
  return { block: { ...block, allocations, unallocated: block.unallocated.slice(count), attributes }, ordinals };
}

/** Assigns one given ordinal. Returns undefined when it is already in use. */
export function assignOrdinal(
  block: StoredBlock,
  ordinal: number,
  handleId: string | null,
  attrs?: Attributes,
): StoredBlock | undefined {
  if (block.allocations[ordinal] !== null) return undefined;
  const { attributes, index } = attributeIndex(block.attributes, handleId, secondaryOf(attrs));
  const allocations = block.allocations.slice();
  allocations[ordinal] = index;
  return { ...block, allocations, unallocated: block.unallocated.filter((o) => o !== ordinal), attributes };
}

/** The handle an allocated ordinal belongs to; undefined when the ordinal is free. */
export function handleOfOrdinal(block: StoredBlock, ordinal: number): string | null | undefined {
  const idx = block.allocations[ordinal];
  if (idx === null || idx === undefined) return undefined;
  return block.attributes[idx]?.handle_id ?? null;
}

export function attributeOfOrdinal(block: StoredBlock, ordinal: number): BlockAttribute | undefined {
  const idx = block.allocations[ordinal];
  if (idx === null || idx === undefined) return undefined;
  return block.attributes[idx];
}

/**
 * Frees ordinals: they are appended to `unallocated` (reused last) and attribute entries that no
 * ordinal refers to any more are dropped, with the remaining indices renumbered.
 */
export function releaseOrdinals(
  block: StoredBlock,
  ordinals: number[],
): { block: StoredBlock; released: Array<{ ordinal: number; handleId: string | null }>; notAssigned: number[] } {
  const allocations = block.allocations.slice();
  const released: Array<{ ordinal: number; handleId: string | null }> = [];
  const notAssigned: number[] = [];
  for (const o of ordinals) {
    const idx = allocations[o];
    if (idx === null || idx === undefined) { notAssigned.push(o); continue; }
    released.push({ ordinal: o, handleId: block.attributes[idx]?.handle_id ?? null });
    allocations[o] = null;
  }
  if (released.length === 0) return { block, released, notAssigned };
  // Compact attributes: keep referenced entries in their order, remap the indices.
  const used = new Set<number>();
  for (const a of allocations) if (a !== null) used.add(a);
  const remap = new Map<number, number>();
  const attributes: BlockAttribute[] = [];
  block.attributes.forEach((a, i) => { if (used.has(i)) { remap.set(i, attributes.length); attributes.push(a); } });
  const remapped = allocations.map((a) => (a === null ? null : remap.get(a)!));
  return {
    block: { ...block, allocations: remapped, unallocated: [...block.unallocated, ...released.map((r) => r.ordinal)], attributes },
    released,
    notAssigned,
  };
}

/** Parses and checks a stored block so that later index arithmetic cannot go wrong silently. */
export function parseBlock(key: string, text: string): StoredBlock {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { throw new CorruptIpamDataError(key, 'not JSON'); }
  const b = raw as Partial<StoredBlock>;
  if (typeof b !== 'object' || b === null || typeof b.cidr !== 'string') throw new CorruptIpamDataError(key, 'no cidr');
  let cidr: Cidr;
  try { cidr = parseCidr(b.cidr); } catch { throw new CorruptIpamDataError(key, `bad cidr '${b.cidr}'`); }
  const size = blockCapacity(cidr);
  if (!Array.isArray(b.allocations) || b.allocations.length !== size) {
    throw new CorruptIpamDataError(key, `allocations must have ${size} entries`);
  }
  const attributes = Array.isArray(b.attributes) ? b.attributes : [];
  for (const a of b.allocations) {
    if (a !== null && (typeof a !== 'number' || a < 0 || a >= attributes.length)) {
      throw new CorruptIpamDataError(key, `allocation refers to missing attribute ${String(a)}`);
    }
  }
  return {
    cidr: formatCidr(cidr),
    affinity: typeof b.affinity === 'string' ? b.affinity : null,
    strictAffinity: b.strictAffinity === true,
    allocations: b.allocations,
    unallocated: Array.isArray(b.unallocated) ? b.unallocated : [],
    attributes: attributes.map((a) => ({ handle_id: a?.handle_id ?? null, secondary: a?.secondary ?? null })),
  };
}

/** Serialises with Calico's field order (readers do not care, humans diffing etcd dumps do). */
export function serialiseBlock(b: StoredBlock): string {
  return JSON.stringify({
    cidr: b.cidr,
    affinity: b.affinity,
    strictAffinity: b.strictAffinity,
    allocations: b.allocations,
    unallocated: b.unallocated,
    attributes: b.attributes,
  });
}
