/**
 * Address assignment: `autoAssign` (Calico's AutoAssign: affine blocks, then a new block, then
 * borrowing) and `assignIp` (one given address).
 */
import { KV } from '../datastore/kv.js';
import { keys } from '../datastore/keys.js';
import { ValidationError } from '../errors.js';
import { IpVersion, cidrCovers, formatCidr, formatIp, parseCidr } from '../net/ip.js';
import { Attributes, addressAt, affinityHost, freeCount, parseBlock } from './block.js';
import { runBlockOp } from './block-writer.js';
import { AssignMode, AssignOutcome, assignNextOp, assignOrdinalOp } from './block-ops.js';
import { IpamConfig, getIpamConfig } from './config.js';
import { AddressNotInPoolError, CorruptIpamDataError, IpamExhaustedError, PoolNotFoundError } from './errors.js';
import { createLogger } from '../log.js';
import { PoolInfo, candidatePools, describeMissingPools, findPoolForIp, listPools } from './pools.js';
import { blockCidrsOf, blockContaining, parseAddresses } from './locate.js';
import { blockWalk } from './walk.js';
import { releaseIps } from './release.js';
import { noteBlockFull, seenFull } from './free-hint.js';

const log = createLogger({ base: { component: 'ipam' } });

/** Calico's bound on claim attempts that lose to another host, per request. */
const MAX_CLAIM_CONFLICTS = 100;

export interface AutoAssignArgs {
  node: string;
  num4: number;
  num6: number;
  handleId?: string;
  attrs?: Attributes;
  /** Limit to these pool CIDRs; each must exist. */
  pools?: string[];
  /**
   * Awaited after the pools, the IPAM config and the host's affinities are read and before
   * anything is written, so a caller can overlap its own checks with those reads. If it rejects,
   * nothing is assigned and its reason is thrown.
   */
  after?: Promise<unknown>;
}

export interface AssignedIps {
  ipv4: string[];
  ipv6: string[];
}

interface FamilyRequest {
  kv: KV;
  version: IpVersion;
  num: number;
  node: string;
  handleId: string | null;
  attrs?: Attributes;
  pools: PoolInfo[];
  requested?: string[];
  config: IpamConfig;
  /** Block CIDRs of the host's affinity keys for this family. */
  affine: string[];
}

async function listAffineBlocks(kv: KV, node: string, version: IpVersion): Promise<string[]> {
  const prefix = keys.ipamAffinityPrefix(node, version);
  return blockCidrsOf((await kv.list(prefix)).entries, prefix);
}

function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(`${name} must be a whole number >= 0, not ${n}`, name);
}

function checkNode(node: string): void {
  if (typeof node !== 'string' || node.trim() === '') throw new ValidationError('the node (host) name must not be empty', 'node');
}

/** An empty handle would name the handle prefix itself (`/calico/ipam/v2/handle/`). */
export function checkHandleId(handleId: string | undefined): void {
  if (handleId !== undefined && (typeof handleId !== 'string' || handleId === '')) {
    throw new ValidationError('a handle id must be a non-empty string (or left out)', 'handleId');
  }
}

/**
 * Assigns `num4` IPv4 and `num6` IPv6 addresses for `node`. All or nothing: when fewer are found,
 * those found are released and IpamExhaustedError says why.
 */
export async function autoAssign(kv: KV, args: AutoAssignArgs): Promise<AssignedIps> {
  checkNode(args.node);
  checkCount('num4', args.num4);
  checkCount('num6', args.num6);
  checkHandleId(args.handleId);
  // The host's affinity lists are read alongside pools and config: one round trip, not two.
  const affinityList = (v: IpVersion, n: number) => (n > 0 ? listAffineBlocks(kv, args.node, v) : Promise.resolve([]));
  // Only the families asked for, unless named pools must all be found.
  const families = args.pools === undefined && (args.num4 === 0) !== (args.num6 === 0) ? (args.num4 > 0 ? 4 : 6) : undefined;
  const [pools, config, affine4, affine6] = await Promise.all([
    listPools(kv, families), getIpamConfig(kv), affinityList(4, args.num4), affinityList(6, args.num6),
  ]);
  await args.after;
  const missing = describeMissingPools(pools, args.pools);
  if (missing !== undefined) throw new PoolNotFoundError(missing);
  const base = { kv, node: args.node, handleId: args.handleId ?? null, attrs: args.attrs, pools, requested: args.pools, config };
  const settled = await Promise.allSettled([
    assignFamily({ ...base, version: 4, num: args.num4, affine: affine4 }),
    assignFamily({ ...base, version: 6, num: args.num6, affine: affine6 }),
  ]);
  const got = settled.flatMap((s) => (s.status === 'fulfilled' ? s.value.ips : []));
  const failure = settled.find((s) => s.status === 'rejected');
  const short = settled
    .map((s, i) => ({ s, version: (i === 0 ? 4 : 6) as IpVersion, num: i === 0 ? args.num4 : args.num6 }))
    .find((x) => x.s.status === 'fulfilled' && x.s.value.ips.length < x.num);
  if (failure === undefined && short === undefined) {
    const [v4, v6] = settled as Array<PromiseFulfilledResult<{ ips: string[] }>>;
    return { ipv4: v4!.value.ips, ipv6: v6!.value.ips };
  }
  // All or nothing: hand back what was taken before reporting.
  if (got.length > 0) {
    try {
      await releaseIps(kv, got);
    } catch (err) {
      // Report the original failure; the addresses stay recorded under the handle for cleanup.
      log.warn('could not release a partial assignment', { node: args.node, handleId: args.handleId, ips: got, err });
    }
  }
  if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
  const r = (short!.s as PromiseFulfilledResult<{ ips: string[]; reason: string }>).value;
  throw new IpamExhaustedError(short!.version === 4 ? 4 : 6, short!.num, r.ips.length, args.node, r.reason);
}

async function assignFamily(req: FamilyRequest): Promise<{ ips: string[]; reason: string }> {
  const ips: string[] = [];
  if (req.num === 0) return { ips, reason: '' };
  const candidates = candidatePools(req.pools, req.version, req.requested);
  if (candidates.length === 0) {
    const disabled = req.pools.filter((p) => p.version === req.version && !p.enabled).map((p) => p.cidr);
    return {
      ips,
      reason: `there is no enabled IPv${req.version} pool${req.requested?.length ? ` among the requested ${req.requested.join(', ')}` : ''}` +
        (disabled.length ? ` (disabled or unusable: ${disabled.join(', ')})` : ''),
    };
  }
  const take = async (blockCidr: string, mode: AssignMode): Promise<AssignOutcome> => {
    let out: AssignOutcome;
    try {
      out = await runBlockOp(req.kv, blockCidr, req.version, assignNextOp({
        blockCidr, version: req.version, num: req.num - ips.length, node: req.node, handleId: req.handleId,
        attrs: req.attrs, mode, strictAffinity: req.config.strict_affinity,
      }));
    } catch (err) {
      // One unreadable block must not stop every assignment on the host: skip it, loudly.
      if (!(err instanceof CorruptIpamDataError)) throw err;
      log.warn('skipping a corrupt IPAM block', { block: blockCidr, err });
      return { skipped: 'taken' };
    }
    if ('skipped' in out) return out;
    noteBlockFull(req.kv, blockCidr, out.freeAfter === 0);
    const c = parseCidr(blockCidr);
    for (const o of out.ordinals) ips.push(addressAt(c, o));
    return out;
  };
  const inCandidates = (cidr: string) => candidates.findIndex((p) => cidrCovers(p.network, parseCidr(cidr)));

  // 1. Blocks this host is affine to: pool preference order, then those not seen full first.
  const affine = req.affine
    .map((cidr) => ({ cidr, pool: inCandidates(cidr), full: seenFull(req.kv, cidr) ? 1 : 0 }))
    .filter((b) => b.pool >= 0)
    .sort((a, b) => a.pool - b.pool || a.full - b.full);
  for (const b of affine) {
    if (ips.length >= req.num) return { ips, reason: '' };
    await take(b.cidr, 'affine');
  }
  if (ips.length >= req.num) return { ips, reason: '' };

  // 2. Claim blocks nobody has made yet, walking each pool from this host's starting block.
  const blockPrefix = keys.ipamBlockPrefix(req.version);
  if (req.config.auto_allocate_blocks) {
    const existing = new Set(blockCidrsOf((await req.kv.list(blockPrefix)).entries, blockPrefix));
    let conflicts = 0;
    claiming: for (const pool of candidates) {
      for (const network of blockWalk(pool.network, pool.blockSize, req.node).blocks()) {
        const cidr = formatCidr({ version: req.version, network, prefixLength: pool.blockSize });
        if (existing.has(cidr)) continue;
        existing.add(cidr);
        const out = await take(cidr, 'claim');
        if ('skipped' in out && ++conflicts >= MAX_CLAIM_CONFLICTS) break claiming;
        if (ips.length >= req.num) return { ips, reason: '' };
      }
    }
  }

  // 3. Borrow free addresses from other hosts' blocks (never with strict affinity).
  if (!req.config.strict_affinity) {
    const walks = candidates.map((p) => blockWalk(p.network, p.blockSize, req.node));
    const borrowable = (await req.kv.list(blockPrefix)).entries
      .map((e) => { try { return parseBlock(e.key, e.value); } catch { return undefined; } })
      .filter((b) => b !== undefined && freeCount(b) > 0 && !(b.strictAffinity && affinityHost(b) !== null && affinityHost(b) !== req.node))
      .map((b) => {
        const c = parseCidr(b!.cidr);
        const pool = inCandidates(b!.cidr);
        return { cidr: b!.cidr, pool, position: pool >= 0 ? walks[pool]!.positionOf(c.network) : 0n };
      })
      .filter((b) => b.pool >= 0)
      .sort((a, b) => a.pool - b.pool || (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    for (const b of borrowable) {
      if (ips.length >= req.num) return { ips, reason: '' };
      await take(b.cidr, 'borrow');
    }
  }
  if (ips.length >= req.num) return { ips, reason: '' };

  const names = candidates.map((p) => p.cidr).join(', ');
  let reason = `the IPv${req.version} pool${candidates.length > 1 ? 's' : ''} ${names} ${candidates.length > 1 ? 'are' : 'is'} full`;
  if (req.config.strict_affinity) reason += ' for this host (strict affinity forbids borrowing from other hosts\' blocks)';
  if (!req.config.auto_allocate_blocks) reason += ' (auto_allocate_blocks is off, so no new block was claimed)';
  return { ips, reason };
}

export interface AssignIpArgs {
  ip: string;
  node: string;
  handleId?: string;
  attrs?: Attributes;
  /** As AutoAssignArgs.after: awaited after the reads, before the write. */
  after?: Promise<unknown>;
}

/**
 * Assigns one given address (`docker run --ip`). It must lie in an enabled pool; its block is
 * claimed for `node` when it does not exist yet. Returns the address in canonical form.
 */
export async function assignIp(kv: KV, args: AssignIpArgs): Promise<string> {
  checkNode(args.node);
  checkHandleId(args.handleId);
  const [addr] = parseAddresses([args.ip]);
  const [pools, config] = await Promise.all([listPools(kv, addr!.version), getIpamConfig(kv)]);
  await args.after;
  const ip = formatIp(addr!);
  const pool = findPoolForIp(pools.filter((p) => p.enabled), ip);
  if (pool === undefined) throw new AddressNotInPoolError(ip, findPoolForIp(pools, ip)?.cidr);
  const block = blockContaining(addr!, pool.blockSize);
  const blockCidr = formatCidr(block);
  await runBlockOp(kv, blockCidr, addr!.version, assignOrdinalOp({
    blockCidr, version: addr!.version, ip, ordinal: Number(addr!.value - block.network), node: args.node,
    handleId: args.handleId ?? null, attrs: args.attrs, strictAffinity: config.strict_affinity,
  }));
  return ip;
}
