/**
 * Read-only views of IPAM: one address's owner (`calicoctl ipam show --ip`), a host's blocks (for
 * BGP route export and the agent's blackhole routes), and per-pool usage (`calicoctl ipam show`).
 */
import { KV } from '../datastore/kv.js';
import { IPAM, keys, unesc } from '../datastore/keys.js';
import { IpVersion, cidrCovers, cidrSize, keyToCidr, parseCidr } from '../net/ip.js';
import { Attributes, affinityHost, attributeOfOrdinal, blockCapacity, inUseCount, parseBlock } from './block.js';
import { AddressNotAssignedError } from './errors.js';
import { blockCidrsOf, locate, parseAddresses } from './locate.js';
import { listPools } from './pools.js';

export interface AssignmentAttributes {
  ip: string;
  handleId: string | null;
  /** The `secondary` attributes stored with the address; null when none were given. */
  attributes: Attributes | null;
  block: string;
  /** Host the block is affine to (null: none). When it is not the assigning host, the IP was borrowed. */
  blockAffinity: string | null;
}

/** Who holds `ip`. Throws AddressNotAssignedError when nobody does. */
export async function getAssignmentAttributes(kv: KV, ip: string): Promise<AssignmentAttributes> {
  const { located } = await locate(kv, parseAddresses([ip]));
  const l = located[0];
  if (l === undefined) throw new AddressNotAssignedError(ip);
  const key = keys.ipamBlock(l.blockCidr, l.version);
  const entry = await kv.get(key);
  if (entry === undefined) throw new AddressNotAssignedError(l.ip);
  const block = parseBlock(key, entry.value);
  const attr = attributeOfOrdinal(block, l.ordinal);
  if (attr === undefined) throw new AddressNotAssignedError(l.ip);
  return { ip: l.ip, handleId: attr.handle_id, attributes: attr.secondary, block: block.cidr, blockAffinity: affinityHost(block) };
}

/** The block CIDRs `node` is affine to, IPv4 first, each family in key order. */
export async function affineBlocks(kv: KV, node: string, version?: IpVersion): Promise<string[]> {
  const versions: IpVersion[] = version === undefined ? [4, 6] : [version];
  const out: string[] = [];
  for (const v of versions) {
    const prefix = keys.ipamAffinityPrefix(node, v);
    out.push(...blockCidrsOf((await kv.list(prefix)).entries, prefix));
  }
  return out;
}

/**
 * Splits a host-affinity key (`/calico/ipam/v2/host/<node>/ipv4/block/<cidr-dashed>`) for
 * watchers of the affinity prefix; undefined for any other key.
 */
export function parseAffinityKey(key: string): { node: string; version: IpVersion; cidr: string } | undefined {
  const m = new RegExp(`^${IPAM}/host/([^/]+)/ipv([46])/block/([^/]+)$`).exec(key);
  if (!m) return undefined;
  try {
    return { node: unesc(m[1]!), version: Number(m[2]) as IpVersion, cidr: keyToCidr(unesc(m[3]!)) };
  } catch {
    return undefined;
  }
}

export interface BlockUsage {
  cidr: string;
  /** Affine host, or null. */
  affinity: string | null;
  total: number;
  inUse: number;
  free: number;
}

export interface PoolUsage {
  cidr: string;
  version: IpVersion;
  disabled: boolean;
  blockSize: number;
  /** Addresses in the pool (bigint: an IPv6 /64 holds 2^64). */
  total: bigint;
  inUse: number;
  free: bigint;
  blocks: BlockUsage[];
}

export interface IpamUsage {
  pools: PoolUsage[];
  /** Blocks in no current pool (the pool was deleted while addresses were still assigned). */
  orphanBlocks: BlockUsage[];
  /** Keys of block records that do not parse (shown, not fatal, so `ipam show` still works). */
  corruptBlocks: string[];
}

export async function ipamUsage(kv: KV): Promise<IpamUsage> {
  const [pools, b4, b6] = await Promise.all([
    listPools(kv), kv.list(keys.ipamBlockPrefix(4)), kv.list(keys.ipamBlockPrefix(6)),
  ]);
  const usage: PoolUsage[] = pools.map((p) => ({
    cidr: p.cidr, version: p.version, disabled: p.disabled, blockSize: p.blockSize,
    total: cidrSize(p.network), inUse: 0, free: cidrSize(p.network), blocks: [],
  }));
  const orphanBlocks: BlockUsage[] = [];
  const corruptBlocks: string[] = [];
  for (const e of [...b4.entries, ...b6.entries]) {
    let b;
    try { b = parseBlock(e.key, e.value); } catch { corruptBlocks.push(e.key); continue; }
    const c = parseCidr(b.cidr);
    const inUse = inUseCount(b);
    const bu: BlockUsage = { cidr: b.cidr, affinity: affinityHost(b), total: blockCapacity(c), inUse, free: blockCapacity(c) - inUse };
    const i = pools.findIndex((p) => cidrCovers(p.network, c));
    if (i < 0) { orphanBlocks.push(bu); continue; }
    const pu = usage[i]!;
    pu.blocks.push(bu);
    pu.inUse += inUse;
    pu.free -= BigInt(inUse);
  }
  return { pools: usage, orphanBlocks, corruptBlocks };
}

