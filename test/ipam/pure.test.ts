/** Pure IPAM pieces: block ordinal math, FIFO reuse, attribute compaction, the FNV-seeded walk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, parseIp } from '../../src/net/ip.js';
import {
  addressAt, assignNext, assignOrdinal, blockCapacity, newBlock, ordinalOf, parseBlock, releaseOrdinals, serialiseBlock,
} from '../../src/ipam/block.js';
import { adjustHandle } from '../../src/ipam/handle.js';
import { blockWalk, fnv32, mulberry32, randomBelow } from '../../src/ipam/walk.js';
import { parseIpamConfig } from '../../src/ipam/config.js';
import { parseAffinityKey } from '../../src/ipam/query.js';
import { keys } from '../../src/datastore/keys.js';
import { CorruptIpamDataError } from '../../src/ipam/errors.js';

test('ordinal math: v4 and v6 blocks', () => {
  const b = parseCidr('192.168.45.0/26');
  assert.equal(blockCapacity(b), 64);
  assert.equal(ordinalOf(b, parseIp('192.168.45.0')), 0);
  assert.equal(ordinalOf(b, parseIp('192.168.45.63')), 63);
  assert.equal(ordinalOf(b, parseIp('192.168.45.64')), -1);
  assert.equal(ordinalOf(b, parseIp('fd80::1')), -1, 'other family');
  assert.equal(addressAt(b, 17), '192.168.45.17');
  const b6 = parseCidr('fd80:24e2:f998:72d6::40/122');
  assert.equal(blockCapacity(b6), 64);
  assert.equal(ordinalOf(b6, parseIp('fd80:24e2:f998:72d6::7f')), 63);
  assert.equal(addressAt(b6, 1), 'fd80:24e2:f998:72d6::41');
  assert.equal(blockCapacity(parseCidr('10.0.0.0/30')), 4);
});

test('a new block has every ordinal free in ascending order and Calico\'s JSON shape', () => {
  const b = newBlock('10.0.0.0/30', 'hostA', false);
  assert.deepEqual(JSON.parse(serialiseBlock(b)), {
    cidr: '10.0.0.0/30', affinity: 'host:hostA', strictAffinity: false,
    allocations: [null, null, null, null], unallocated: [0, 1, 2, 3], attributes: [],
  });
});

test('assignment takes from the head of unallocated; release appends to the tail (FIFO); input never mutated', () => {
  const b0 = newBlock('10.0.0.0/29', 'hostA', false);
  const frozen = serialiseBlock(b0);
  const a = assignNext(b0, 3, 'h1', { container: 'c1' });
  assert.deepEqual(a.ordinals, [0, 1, 2]);
  assert.equal(serialiseBlock(b0), frozen, 'the input block is unchanged');
  const b = assignNext(a.block, 2, 'h2');
  assert.deepEqual(b.ordinals, [3, 4]);
  assert.deepEqual(b.block.attributes, [{ handle_id: 'h1', secondary: { container: 'c1' } }, { handle_id: 'h2', secondary: null }]);
  const r = releaseOrdinals(b.block, [1, 0, 6]);
  assert.deepEqual(r.released.map((x) => [x.ordinal, x.handleId]), [[1, 'h1'], [0, 'h1']]);
  assert.deepEqual(r.notAssigned, [6]);
  assert.deepEqual(r.block.unallocated, [5, 6, 7, 1, 0], 'released ordinals go to the tail in release order');
  // Next assignments use 5, 6, 7 first: the ordinal free the longest is reused first.
  assert.deepEqual(assignNext(r.block, 4, 'h3').ordinals, [5, 6, 7, 1]);
  const more = assignNext(r.block, 100, null);
  assert.deepEqual(more.ordinals, [5, 6, 7, 1, 0], 'never more than are free');
  assert.deepEqual(assignNext(more.block, 1, null).ordinals, []);
});

test('attribute entries are shared by equal (handle, attrs) and compacted when unreferenced', () => {
  let b = newBlock('10.0.0.0/29', null, false);
  b = assignNext(b, 2, 'h1', { a: '1', b: '2' }).block;
  b = assignNext(b, 1, 'h1', { b: '2', a: '1' }).block;
  assert.equal(b.attributes.length, 1, 'same handle and attributes in another key order share one entry');
  b = assignNext(b, 1, 'h2').block;
  b = assignNext(b, 1, 'h3').block;
  assert.deepEqual(b.allocations.slice(0, 5), [0, 0, 0, 1, 2]);
  const r = releaseOrdinals(b, [3]);
  assert.deepEqual(r.block.attributes.map((a) => a.handle_id), ['h1', 'h3']);
  assert.deepEqual(r.block.allocations.slice(0, 5), [0, 0, 0, null, 1], 'indices renumbered after compaction');
  const one = assignOrdinal(r.block, 6, 'h4');
  assert.ok(one);
  assert.equal(one.allocations[6], 2);
  assert.ok(!one.unallocated.includes(6));
  assert.equal(assignOrdinal(one, 6, 'h5'), undefined, 'an ordinal in use cannot be assigned');
});

test('parseBlock rejects records whose arithmetic would go wrong, naming the key', () => {
  const key = keys.ipamBlock('10.0.0.0/30', 4);
  assert.throws(() => parseBlock(key, 'nope'), CorruptIpamDataError);
  assert.throws(() => parseBlock(key, JSON.stringify({ cidr: '10.0.0.0/30', allocations: [null], unallocated: [], attributes: [] })), /allocations must have 4 entries/);
  assert.throws(() => parseBlock(key, JSON.stringify({ cidr: '10.0.0.0/30', allocations: [3, null, null, null], unallocated: [], attributes: [] })), /missing attribute/);
  const ok = parseBlock(key, serialiseBlock(newBlock('10.0.0.0/30', 'x', true)));
  assert.equal(ok.strictAffinity, true);
});

test('handle counts add up and an emptied handle means delete', () => {
  let h = adjustHandle(undefined, '10.0.0.0/26', 2);
  h = adjustHandle(h, '10.0.1.0/26', 1);
  assert.deepEqual(h, { block: { '10.0.0.0/26': 2, '10.0.1.0/26': 1 } });
  h = adjustHandle(h, '10.0.0.0/26', -2);
  assert.deepEqual(h, { block: { '10.0.1.0/26': 1 } });
  assert.equal(adjustHandle(h, '10.0.1.0/26', -5), undefined, 'never below zero, and empty -> delete');
});

test('FNV-32 is FNV-1 (Go hash/fnv.New32) on the UTF-8 bytes', () => {
  assert.equal(fnv32(''), 0x811c9dc5);
  assert.equal(fnv32('a'), 0x050c5d7e);
  assert.equal(fnv32('foobar'), 0x31f0b262);
});

test('the block walk starts at a host-specific block, wraps round and visits every block once', () => {
  const pool = parseCidr('10.0.0.0/24');
  const walkA = blockWalk(pool, 28, 'hostA');
  const seq = [...walkA.blocks()];
  assert.equal(walkA.numBlocks, 16n);
  assert.equal(seq.length, 16);
  assert.equal(new Set(seq).size, 16, 'each block once');
  assert.equal(seq[0], walkA.blockAt(walkA.start));
  for (let i = 1; i < 16; i++) {
    // Consecutive blocks, wrapping at the end of the pool.
    const prev = (seq[i - 1]! - pool.network) >> 4n;
    assert.equal((seq[i]! - pool.network) >> 4n, (prev + 1n) % 16n);
    assert.equal(walkA.positionOf(seq[i]!), BigInt(i));
  }
  assert.deepEqual([...blockWalk(pool, 28, 'hostA').blocks()], seq, 'the same host always walks the same way');
  // Different hosts start in different places (for these names; a collision is possible in general).
  const starts = new Set(['hostA', 'hostB', 'hostC', 'hostD', 'node-1', 'node-2'].map((h) => blockWalk(parseCidr('192.168.0.0/16'), 26, h).start));
  assert.ok(starts.size >= 5, `starts should differ: ${[...starts].join(',')}`);
  // A huge IPv6 pool: the walk is lazy and the start is anywhere in 2^58 blocks.
  const w6 = blockWalk(parseCidr('fd80:24e2:f998:72d6::/64'), 122, 'hostA');
  assert.equal(w6.numBlocks, 1n << 58n);
  assert.ok(w6.start >= 0n && w6.start < w6.numBlocks);
  const first = w6.blocks().next().value!;
  assert.equal(first & 63n, 0n, 'block aligned');
});

test('randomBelow stays in range, including beyond 2^53', () => {
  const r = mulberry32(42);
  for (const n of [1n, 2n, 7n, 1n << 40n, (1n << 74n) + 3n]) {
    for (let i = 0; i < 50; i++) { const v = randomBelow(r, n); assert.ok(v >= 0n && v < n); }
  }
});

test('IPAM config defaults when missing or partial', () => {
  assert.deepEqual(parseIpamConfig(undefined), { strict_affinity: false, auto_allocate_blocks: true });
  assert.deepEqual(parseIpamConfig('{"strict_affinity":true}'), { strict_affinity: true, auto_allocate_blocks: true });
});

test('affinity keys round-trip through keys.ts and parseAffinityKey', () => {
  assert.deepEqual(parseAffinityKey(keys.ipamAffinity('host/1', '192.168.3.64/26', 4)), { node: 'host/1', version: 4, cidr: '192.168.3.64/26' });
  assert.deepEqual(parseAffinityKey(keys.ipamAffinity('h', 'fd80::40/122', 6)), { node: 'h', version: 6, cidr: 'fd80::40/122' });
  assert.equal(parseAffinityKey(keys.ipamBlock('192.168.3.64/26', 4)), undefined);
});
