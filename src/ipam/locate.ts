/**
 * Where an address lives: its block CIDR (from the block size of the pool holding it) and its
 * ordinal in that block. Blocks of a pool that has since been deleted are found by scanning the
 * existing blocks, so their addresses can still be released and inspected.
 */
import { KV } from '../datastore/kv.js';
import { keys, unesc } from '../datastore/keys.js';
import { ValidationError } from '../errors.js';
import { Cidr, IpAddr, IpVersion, cidrContains, formatCidr, formatIp, keyToCidr, maskOf, parseCidr, parseIp } from '../net/ip.js';
import { PoolInfo, findPoolForIp, listPools } from './pools.js';
import { ordinalOf } from './block.js';

export interface Located {
  ip: string;
  version: IpVersion;
  blockCidr: string;
  ordinal: number;
}

export function blockContaining(addr: IpAddr, blockSize: number): Cidr {
  return { version: addr.version, network: addr.value & maskOf(addr.version, blockSize), prefixLength: blockSize };
}

/** Parses addresses up front so that one bad entry fails the whole call before anything changes. */
export function parseAddresses(ips: string[]): IpAddr[] {
  return ips.map((ip) => {
    try { return parseIp(ip); } catch { throw new ValidationError(`'${ip}' is not a valid IP address`, 'ip'); }
  });
}

/** Block CIDRs from the keys under an IPAM block or affinity prefix. */
export function blockCidrsOf(entries: Array<{ key: string }>, prefix: string): string[] {
  const out: string[] = [];
  for (const e of entries) {
    try { out.push(keyToCidr(unesc(e.key.slice(prefix.length)))); } catch { /* not a block key */ }
  }
  return out;
}

/**
 * Locates each address. Returns the located ones and those in no pool and no existing block
 * (which therefore cannot be assigned).
 */
export async function locate(kv: KV, addrs: IpAddr[], pools?: PoolInfo[]): Promise<{ located: Located[]; nowhere: string[] }> {
  const families = new Set(addrs.map((a) => a.version));
  const allPools = pools ?? (await listPools(kv, families.size === 1 ? [...families][0] : undefined));
  const located: Located[] = [];
  const nowhere: string[] = [];
  const scanned = new Map<IpVersion, Cidr[]>();
  for (const addr of addrs) {
    const ip = formatIp(addr);
    const pool = findPoolForIp(allPools, ip);
    let block: Cidr | undefined = pool && !pool.invalid ? blockContaining(addr, pool.blockSize) : undefined;
    if (block === undefined) {
      let blocks = scanned.get(addr.version);
      if (!blocks) {
        const prefix = keys.ipamBlockPrefix(addr.version);
        blocks = blockCidrsOf((await kv.list(prefix)).entries, prefix).map(parseCidr);
        scanned.set(addr.version, blocks);
      }
      block = blocks.find((b) => cidrContains(b, addr));
    }
    if (block === undefined) { nowhere.push(ip); continue; }
    located.push({ ip, version: addr.version, blockCidr: formatCidr(block), ordinal: ordinalOf(block, addr) });
  }
  return { located, nowhere };
}
