/**
 * The order in which a host tries a pool's blocks. Calico seeds a random generator with
 * FNV-32(hostname), picks a random starting block and walks the pool from there, wrapping round,
 * so that each host starts somewhere different (hosts rarely race for the same block) and the
 * same host always starts at the same place. We keep those properties; the generator is our own
 * (mulberry32), so the exact starting block differs from Go's math/rand.
 */
import { Cidr, bitsOf, maskOf } from '../net/ip.js';

/** FNV-1 32-bit (Go's `hash/fnv.New32`): multiply, then xor, over the UTF-8 bytes. */
export function fnv32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h = Math.imul(h, 0x01000193) >>> 0;
    h = (h ^ byte) >>> 0;
  }
  return h;
}

/** mulberry32: a small, well-mixed 32-bit generator; deterministic for a given seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A uniform-enough bigint in [0, n): one spare 32-bit word keeps the modulo bias negligible. */
export function randomBelow(next: () => number, n: bigint): bigint {
  if (n <= 1n) return 0n;
  const words = Math.ceil(n.toString(2).length / 32) + 1;
  let v = 0n;
  for (let i = 0; i < words; i++) v = (v << 32n) | BigInt(next());
  return v % n;
}

export interface BlockWalk {
  /** How many blocks of `blockPrefix` the pool holds. */
  readonly numBlocks: bigint;
  /** Index of the first block this host tries. */
  readonly start: bigint;
  /** Network address of block `index` (0-based from the pool's start). */
  blockAt(index: bigint): bigint;
  /** Position of a block in this host's walk: 0 for the first tried, numBlocks-1 for the last. */
  positionOf(blockNetwork: bigint): bigint;
  /** Block networks in walk order; each once. */
  blocks(): Generator<bigint>;
}

export function blockWalk(pool: Cidr, blockPrefix: number, host: string): BlockWalk {
  const bits = bitsOf(pool.version);
  const blockShift = BigInt(bits - blockPrefix);
  const numBlocks = 1n << BigInt(blockPrefix - pool.prefixLength);
  const start = randomBelow(mulberry32(fnv32(host)), numBlocks);
  const blockAt = (index: bigint) => pool.network + (index << blockShift);
  return {
    numBlocks,
    start,
    blockAt,
    positionOf(network: bigint) {
      const index = ((network & maskOf(pool.version, blockPrefix)) - pool.network) >> blockShift;
      return (index - start + numBlocks) % numBlocks;
    },
    *blocks() {
      for (let i = 0n; i < numBlocks; i++) yield blockAt((start + i) % numBlocks);
    },
  };
}
