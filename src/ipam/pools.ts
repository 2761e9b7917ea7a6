/**
 * IP pools as IPAM sees them: which exist, which may hand out new addresses, and what block size
 * each uses. Pools are written by `calicoctl pool add`; IPAM only reads them, except that a node
 * creates the default pools on first start (`ensureDefaultPools`), as `calicoctl node` did.
 */
import { KV } from '../datastore/kv.js';
import { keys } from '../datastore/keys.js';
import { ConflictError, ValidationError } from '../errors.js';
import { Cidr, IpVersion, cidrContains, formatCidr, keyToCidr, parseCidr, parseIp } from '../net/ip.js';
import { DEFAULT_IPV4_POOL, DEFAULT_IPV6_POOL, StoredPool } from '../model/stored.js';

export const DEFAULT_BLOCK_SIZE: Record<IpVersion, number> = { 4: 26, 6: 122 };
/** Calico 3.x `blockSize` limits; they also keep a block's arrays at most 4096 long. */
export const BLOCK_SIZE_RANGE: Record<IpVersion, [number, number]> = { 4: [20, 32], 6: [116, 128] };

export interface PoolInfo {
  key: string;
  /** Normalised CIDR. */
  cidr: string;
  version: IpVersion;
  network: Cidr;
  /** Prefix length of this pool's blocks. */
  blockSize: number;
  disabled: boolean;
  /** May hand out new addresses: not disabled, managed by Calico IPAM (`ipam` not false), well-formed. */
  enabled: boolean;
  /** Why the record cannot be used, when it is malformed. */
  invalid?: string;
  stored: StoredPool;
}

function toPoolInfo(key: string, value: string, version: IpVersion): PoolInfo | undefined {
  let stored: StoredPool;
  let invalid: string | undefined;
  try {
    stored = JSON.parse(value) as StoredPool;
    if (typeof stored !== 'object' || stored === null || typeof stored.cidr !== 'string') throw new Error('no cidr');
  } catch {
    invalid = 'the record is not a pool JSON object';
    try { stored = { cidr: keyToCidr(key.slice(keys.poolPrefix(version).length)) }; } catch { return undefined; }
  }
  let network: Cidr;
  try { network = parseCidr(stored.cidr); } catch { return undefined; }
  if (network.version !== version) return undefined;
  const blockSize = stored.block_size ?? DEFAULT_BLOCK_SIZE[version];
  const [lo, hi] = BLOCK_SIZE_RANGE[version];
  if (!Number.isInteger(blockSize) || blockSize < lo || blockSize > hi) {
    invalid ??= `block size /${blockSize} is outside /${lo}../${hi}`;
  } else if (blockSize < network.prefixLength) {
    invalid ??= `block size /${blockSize} is larger than the pool /${network.prefixLength}`;
  }
  const disabled = stored.disabled === true;
  return {
    key,
    cidr: formatCidr(network),
    version,
    network,
    blockSize,
    disabled,
    enabled: !disabled && stored.ipam !== false && invalid === undefined,
    ...(invalid !== undefined ? { invalid } : {}),
    stored,
  };
}

/** Every pool, IPv4 before IPv6, each family in etcd key order (Calico's pool preference order). */
export async function listPools(kv: KV, version?: IpVersion): Promise<PoolInfo[]> {
  const versions: IpVersion[] = version === undefined ? [4, 6] : [version];
  // One range read per family, in parallel. Not one read of the prefix they share
  // (/calico/v1/ipam/v): that also covers the v0.x per-address keys (/calico/v1/ipam/v4/assignment/...),
  // of which an old datastore may hold thousands.
  const lists = await Promise.all(versions.map((v) => kv.list(keys.poolPrefix(v))));
  const out: PoolInfo[] = [];
  lists.forEach((l, i) => {
    for (const e of l.entries) {
      const p = toPoolInfo(e.key, e.value, versions[i]!);
      if (p) out.push(p);
    }
  });
  return out;
}

/** The most specific pool containing `ip` (enabled or not), from an already-read list. */
export function findPoolForIp(pools: PoolInfo[], ip: string): PoolInfo | undefined {
  const addr = parseIp(ip);
  let best: PoolInfo | undefined;
  for (const p of pools) {
    if (cidrContains(p.network, addr) && (best === undefined || p.network.prefixLength > best.network.prefixLength)) best = p;
  }
  return best;
}

/** The pool containing `ip`, or undefined. Throws ValidationError for a malformed address. */
export async function poolForIp(kv: KV, ip: string): Promise<PoolInfo | undefined> {
  const addr = parseIp(ip);
  return findPoolForIp(await listPools(kv, addr.version), ip);
}

/**
 * The pools a request may draw new addresses from, for one family: enabled pools, limited to the
 * requested CIDRs when given. A requested CIDR that is no pool at all is an error (a typo should
 * not silently allocate elsewhere); one of the other family is simply not for this family.
 */
export function candidatePools(pools: PoolInfo[], version: IpVersion, requested: string[] | undefined): PoolInfo[] {
  const ofVersion = pools.filter((p) => p.version === version && p.enabled);
  if (requested === undefined || requested.length === 0) return ofVersion;
  const wanted = new Set(requested.map((r) => formatCidr(parseCidr(r))));
  return ofVersion.filter((p) => wanted.has(p.cidr));
}

export function describeMissingPools(pools: PoolInfo[], requested: string[] | undefined): string | undefined {
  for (const r of requested ?? []) {
    let c: string;
    try { c = formatCidr(parseCidr(r)); } catch { throw new ValidationError(`requested pool '${r}' is not a CIDR`, 'pools'); }
    if (!pools.some((p) => p.cidr === c)) return c;
  }
  return undefined;
}

/**
 * Creates the default pools when no pool of that family exists (calicoctl node's behaviour).
 * Create-if-absent on the key, so two nodes starting together make one pool, not an error.
 * Returns the CIDRs it created.
 */
export async function ensureDefaultPools(kv: KV, opts: { ipv6: boolean }): Promise<string[]> {
  const created: string[] = [];
  const wanted: Array<[IpVersion, string]> = [[4, DEFAULT_IPV4_POOL]];
  if (opts.ipv6) wanted.push([6, DEFAULT_IPV6_POOL]);
  for (const [version, cidr] of wanted) {
    const existing = await kv.list(keys.poolPrefix(version));
    if (existing.entries.length > 0) continue;
    const pool: StoredPool = { cidr, masquerade: false, ipam: true, disabled: false };
    try {
      await kv.create(keys.pool(cidr, version), JSON.stringify(pool));
      created.push(cidr);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  return created;
}
