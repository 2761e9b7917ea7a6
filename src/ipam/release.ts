/**
 * Giving addresses and blocks back: by address (`releaseIps`, what libnetwork's ReleaseAddress
 * and `calicoctl ipam release` use), by handle (a container's addresses), and a host's block
 * affinities (a node leaving). Releasing something already free is not an error.
 */
import { KV } from '../datastore/kv.js';
import { ValidationError } from '../errors.js';
import { keys } from '../datastore/keys.js';
import { IpVersion, cidrCovers, parseCidr } from '../net/ip.js';
import { affinityHost, parseBlock } from './block.js';
import { runBlockOp } from './block-writer.js';
import { AffinityReleaseOutcome, ReleaseOutcome, releaseAffinityOp, releaseHandleOp, releaseOrdinalsOp } from './block-ops.js';
import { parseHandle } from './handle.js';
import { noteBlockFull } from './free-hint.js';
import { Located, blockCidrsOf, locate, parseAddresses } from './locate.js';

/**
 * A release of many addresses of one block touches one handle per address at worst; chunks keep
 * each transaction under etcd's operation limit.
 */
const RELEASE_CHUNK = 50;

/**
 * Releases addresses. Returns those that were not assigned (canonical form). Throws
 * ValidationError, before changing anything, when an entry is not an address.
 */
export async function releaseIps(kv: KV, ips: string[]): Promise<string[]> {
  const addrs = parseAddresses(ips);
  if (addrs.length === 0) return [];
  const { located, nowhere } = await locate(kv, addrs);
  const byBlock = new Map<string, { version: IpVersion; items: Located[] }>();
  const seen = new Set<string>();
  for (const l of located) {
    if (seen.has(l.ip)) continue;
    seen.add(l.ip);
    const g = byBlock.get(l.blockCidr) ?? { version: l.version, items: [] };
    g.items.push(l);
    byBlock.set(l.blockCidr, g);
  }
  const jobs: Array<Promise<ReleaseOutcome>> = [];
  for (const [blockCidr, g] of byBlock) {
    for (let i = 0; i < g.items.length; i += RELEASE_CHUNK) {
      const ordinals = g.items.slice(i, i + RELEASE_CHUNK).map((l) => l.ordinal);
      jobs.push(runBlockOp(kv, blockCidr, g.version, releaseOrdinalsOp(blockCidr, ordinals)).then((o) => {
        if (o.released.length > 0) noteBlockFull(kv, blockCidr, false);
        return o;
      }));
    }
  }
  const outcomes = await Promise.all(jobs);
  return [...nowhere, ...outcomes.flatMap((o) => o.notAssigned)];
}

/**
 * Releases every address recorded under `handleId` and removes the handle. Returns the addresses
 * released; an unknown handle releases nothing.
 */
export async function releaseByHandle(kv: KV, handleId: string): Promise<string[]> {
  if (typeof handleId !== 'string' || handleId === '') throw new ValidationError('a handle id must be a non-empty string', 'handleId');
  const key = keys.ipamHandle(handleId);
  const entry = await kv.get(key);
  if (entry === undefined) return [];
  const handle = parseHandle(key, entry.value);
  const outcomes = await Promise.all(Object.keys(handle.block).map((cidrText) => {
    const cidr = parseCidr(cidrText);
    return runBlockOp(kv, cidrText, cidr.version, releaseHandleOp(cidrText, handleId)).then((o) => {
      if (o.released.length > 0) noteBlockFull(kv, cidrText, false);
      return o;
    });
  }));
  // A handle with no block entries (or written by an older client) is removed outright.
  if (Object.keys(handle.block).length === 0) await kv.delete(key, entry.modRevision).catch(() => undefined);
  return outcomes.flatMap((o) => o.released.map((r) => r.ip));
}

export interface AffinityRelease {
  /** Empty blocks deleted. */
  deleted: string[];
  /** Non-empty blocks kept with no affinity (their addresses stay assigned). */
  released: string[];
}

function summarise(results: Array<{ cidr: string; outcome: AffinityReleaseOutcome }>): AffinityRelease {
  return {
    deleted: results.filter((r) => r.outcome === 'deleted').map((r) => r.cidr),
    released: results.filter((r) => r.outcome === 'released').map((r) => r.cidr),
  };
}

/** A node is leaving: drop all its block affinities (Calico's ReleaseHostAffinities). */
export async function releaseHostAffinities(kv: KV, node: string): Promise<AffinityRelease> {
  const results: Array<{ cidr: string; outcome: AffinityReleaseOutcome }> = [];
  for (const version of [4, 6] as IpVersion[]) {
    const prefix = keys.ipamAffinityPrefix(node, version);
    const cidrs = blockCidrsOf((await kv.list(prefix)).entries, prefix);
    const outcomes = await Promise.all(cidrs.map((cidr) => runBlockOp(kv, cidr, version, releaseAffinityOp(cidr, version, node))));
    cidrs.forEach((cidr, i) => results.push({ cidr, outcome: outcomes[i]! }));
  }
  return summarise(results);
}

/**
 * Drops every host's affinity to the blocks of a pool: the step between disabling a pool and
 * deleting it (Calico's ReleasePoolAffinities). Allocated addresses stay until released.
 */
export async function releasePoolAffinities(kv: KV, poolCidr: string): Promise<AffinityRelease> {
  const pool = parseCidr(poolCidr);
  const prefix = keys.ipamBlockPrefix(pool.version);
  const owned: Array<{ cidr: string; host: string }> = [];
  for (const e of (await kv.list(prefix)).entries) {
    let b;
    try { b = parseBlock(e.key, e.value); } catch { continue; }
    const host = affinityHost(b);
    if (host !== null && cidrCovers(pool, parseCidr(b.cidr))) owned.push({ cidr: b.cidr, host });
  }
  const outcomes = await Promise.all(owned.map((o) => runBlockOp(kv, o.cidr, pool.version, releaseAffinityOp(o.cidr, pool.version, o.host))));
  return summarise(owned.map((o, i) => ({ cidr: o.cidr, outcome: outcomes[i]! })));
}
