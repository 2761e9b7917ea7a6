/** IPAM behaviour against a real etcd (wiped between tests). Every test ends with the invariant check. */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { KV } from '../../src/datastore/kv.js';
import { keys } from '../../src/datastore/keys.js';
import { ValidationError } from '../../src/errors.js';
import { cidrContains, parseCidr, parseIp, formatCidr } from '../../src/net/ip.js';
import {
  autoAssign, assignIp, releaseIps, releaseByHandle, releaseHostAffinities, releasePoolAffinities, getAssignmentAttributes,
  affineBlocks, ipamUsage, ensureDefaultPools, listPools, poolForIp, setIpamConfig, getIpamConfig,
  IpamExhaustedError, AddressInUseError, AddressNotInPoolError, PoolNotFoundError, AffinityConflictError,
  AddressNotAssignedError, IpamConfigLockedError, CorruptIpamDataError,
} from '../../src/ipam/index.js';
import { blockWalk } from '../../src/ipam/walk.js';
import { addPool, checkIpam } from './helpers.js';

let etcd: TestEtcd;
let kv: KV;
before(async () => { etcd = await startEtcd(); kv = etcd.kv('cli'); });
after(async () => { await etcd?.stop(); });
beforeEach(async () => { await etcd.wipe(); });

const inCidr = (cidr: string, ip: string) => cidrContains(parseCidr(cidr), parseIp(ip));
const blockOf = (ip: string, size: number) => formatCidr({ ...parseCidr(`${ip}/${size}`) });

test('the first assignment claims the host\'s walk-start block; later ones reuse that affine block', async () => {
  await addPool(kv, '10.10.0.0/16');
  const a = await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 });
  assert.equal(a.ipv4.length, 1);
  const walk = blockWalk(parseCidr('10.10.0.0/16'), 26, 'hostA');
  const expected = formatCidr({ version: 4, network: walk.blockAt(walk.start), prefixLength: 26 });
  assert.equal(blockOf(a.ipv4[0]!, 26), expected, 'block chosen by the hostname-seeded walk');
  assert.equal(a.ipv4[0], expected.split('/')[0], 'ordinal 0 first');
  const b = await autoAssign(kv, { node: 'hostA', num4: 2, num6: 0 });
  assert.deepEqual(b.ipv4.map((ip) => blockOf(ip, 26)), [expected, expected], 'same affine block');
  assert.deepEqual(await affineBlocks(kv, 'hostA'), [expected]);
  const block = JSON.parse((await kv.get(keys.ipamBlock(expected, 4)))!.value);
  assert.equal(block.affinity, 'host:hostA');
  assert.equal(block.strictAffinity, false);
  assert.equal((await kv.get(keys.ipamAffinity('hostA', expected, 4)))?.value, '{}');
  const snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 3);
});

test('released ordinals are reused first-in first-out', async () => {
  await addPool(kv, '10.20.0.0/30', { block_size: 30 });
  const first = await autoAssign(kv, { node: 'hostA', num4: 3, num6: 0 });
  assert.deepEqual(first.ipv4, ['10.20.0.0', '10.20.0.1', '10.20.0.2']);
  assert.deepEqual(await releaseIps(kv, ['10.20.0.1', '10.20.0.0']), []);
  const next = [];
  for (let i = 0; i < 3; i++) next.push(...(await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 })).ipv4);
  assert.deepEqual(next, ['10.20.0.3', '10.20.0.1', '10.20.0.0'], 'never-used first, then in release order');
  await checkIpam(kv);
});

test('a request larger than a block claims more blocks, all affine to the host', async () => {
  await addPool(kv, '10.30.0.0/16');
  const r = await autoAssign(kv, { node: 'hostA', num4: 70, num6: 0, handleId: 'big' });
  assert.equal(r.ipv4.length, 70);
  assert.equal(new Set(r.ipv4).size, 70);
  const blocks = await affineBlocks(kv, 'hostA');
  assert.equal(blocks.length, 2);
  const snap = await checkIpam(kv);
  assert.deepEqual(Object.values(snap.handles.get('big')!).sort((x, y) => x - y), [6, 64]);
});

test('borrowing happens only when no block is free, from another host\'s block, which keeps its owner', async () => {
  await addPool(kv, '10.40.0.0/28', { block_size: 30 }); // 4 blocks of 4
  const a = await autoAssign(kv, { node: 'hostA', num4: 10, num6: 0 }); // 3 blocks: 4 + 4 + 2
  assert.equal((await affineBlocks(kv, 'hostA')).length, 3);
  // hostA's third block has 2 free, but a block is still unclaimed: hostB claims it, no borrowing.
  const b = await autoAssign(kv, { node: 'hostB', num4: 4, num6: 0 });
  const [bBlock] = await affineBlocks(kv, 'hostB');
  assert.ok(bBlock);
  for (const ip of b.ipv4) assert.ok(inCidr(bBlock, ip), `${ip} from hostB's own block`);
  // Now no block is free: hostB borrows from hostA's partly used block.
  const c = await autoAssign(kv, { node: 'hostB', num4: 1, num6: 0, handleId: 'borrowed' });
  const attrs = await getAssignmentAttributes(kv, c.ipv4[0]!);
  assert.equal(attrs.blockAffinity, 'hostA', 'the lent block keeps its owner');
  assert.equal(attrs.handleId, 'borrowed');
  assert.ok(!a.ipv4.includes(c.ipv4[0]!));
  // One address is left; asking for two fails and gives the one it found back.
  await assert.rejects(autoAssign(kv, { node: 'hostB', num4: 2, num6: 0 }), (err: unknown) => {
    assert.ok(err instanceof IpamExhaustedError);
    assert.match(err.message, /could assign only 1 of 2 IPv4 addresses for host hostB: the IPv4 pool 10\.40\.0\.0\/28 is full/);
    return true;
  });
  const snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 15);
});

test('disabled pools are skipped for new blocks, for affine blocks and for explicit addresses', async () => {
  await addPool(kv, '10.50.0.0/24', { disabled: true });
  await addPool(kv, '10.51.0.0/24');
  const r = await autoAssign(kv, { node: 'hostA', num4: 3, num6: 0 });
  for (const ip of r.ipv4) assert.ok(inCidr('10.51.0.0/24', ip), ip);
  await assert.rejects(assignIp(kv, { ip: '10.50.0.9', node: 'hostA' }), (err: unknown) => {
    assert.ok(err instanceof AddressNotInPoolError);
    assert.match(err.message, /10\.50\.0\.9 is only in IP pool 10\.50\.0\.0\/24, which is disabled/);
    return true;
  });
  // Disable the pool hostA already has a block in: its affine block is no longer used.
  await addPool(kv, '10.51.0.0/24', { disabled: true });
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 }), (err: unknown) => {
    assert.ok(err instanceof IpamExhaustedError);
    assert.match(err.message, /there is no enabled IPv4 pool \(disabled or unusable: 10\.50\.0\.0\/24, 10\.51\.0\.0\/24\)/);
    return true;
  });
  const snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 3, 'existing allocations are left alone');
  assert.deepEqual((await listPools(kv, 4)).map((p) => [p.cidr, p.enabled]), [['10.50.0.0/24', false], ['10.51.0.0/24', false]]);
});

test('strict affinity forbids borrowing and assigning into another host\'s block; config locked while blocks exist', async () => {
  await setIpamConfig(kv, { strict_affinity: true, auto_allocate_blocks: true });
  assert.deepEqual(await getIpamConfig(kv), { strict_affinity: true, auto_allocate_blocks: true });
  await addPool(kv, '10.60.0.0/29', { block_size: 30 }); // 2 blocks
  await autoAssign(kv, { node: 'hostA', num4: 5, num6: 0 }); // both blocks, one address free
  await assert.rejects(autoAssign(kv, { node: 'hostB', num4: 1, num6: 0 }), (err: unknown) => {
    assert.ok(err instanceof IpamExhaustedError);
    assert.match(err.message, /strict affinity forbids borrowing/);
    return true;
  });
  const taken = (await checkIpam(kv)).allocated;
  const freeIp = Array.from({ length: 8 }, (_, i) => `10.60.0.${i}`).find((ip) => !taken.has(ip))!;
  assert.ok(freeIp);
  await assert.rejects(assignIp(kv, { ip: freeIp, node: 'hostB' }), AffinityConflictError);
  await assignIp(kv, { ip: freeIp, node: 'hostA' });
  for (const b of (await checkIpam(kv)).blocks) assert.equal(b.strictAffinity, true, 'blocks record the setting');
  await assert.rejects(setIpamConfig(kv, { strict_affinity: false, auto_allocate_blocks: true }), IpamConfigLockedError);
  await assert.rejects(setIpamConfig(kv, { strict_affinity: false, auto_allocate_blocks: false }), ValidationError);
});

test('with auto_allocate_blocks off a host only borrows', async () => {
  await addPool(kv, '10.61.0.0/29', { block_size: 30 });
  await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 });
  // The config may not change while a block exists, so set it via the key as an operator would have before.
  await kv.put(keys.ipamConfig, JSON.stringify({ strict_affinity: false, auto_allocate_blocks: false }));
  const r = await autoAssign(kv, { node: 'hostB', num4: 3, num6: 0 });
  assert.equal((await affineBlocks(kv, 'hostB')).length, 0, 'no block claimed');
  for (const ip of r.ipv4) assert.equal((await getAssignmentAttributes(kv, ip)).blockAffinity, 'hostA');
  await assert.rejects(autoAssign(kv, { node: 'hostB', num4: 1, num6: 0 }), /auto_allocate_blocks is off/);
  await checkIpam(kv);
});

test('releasing the last address of a block with no affinity deletes the block; releaseHostAffinities', async () => {
  await addPool(kv, '10.70.0.0/24');
  const a = await autoAssign(kv, { node: 'hostA', num4: 2, num6: 0, handleId: 'h' });
  const [block] = await affineBlocks(kv, 'hostA');
  // An empty affine block of hostC, to see it deleted.
  const c = await autoAssign(kv, { node: 'hostC', num4: 1, num6: 0 });
  await releaseIps(kv, c.ipv4);
  const [cBlock] = await affineBlocks(kv, 'hostC');
  assert.ok(await kv.get(keys.ipamBlock(cBlock!, 4)), 'an empty affine block stays');
  assert.deepEqual(await releaseHostAffinities(kv, 'hostC'), { deleted: [cBlock], released: [] });
  assert.equal(await kv.get(keys.ipamBlock(cBlock!, 4)), undefined);

  assert.deepEqual(await releaseHostAffinities(kv, 'hostA'), { deleted: [], released: [block] });
  assert.deepEqual(await affineBlocks(kv, 'hostA'), []);
  const stored = JSON.parse((await kv.get(keys.ipamBlock(block!, 4)))!.value);
  assert.equal(stored.affinity, null, 'non-empty block kept without affinity');
  await checkIpam(kv);
  assert.deepEqual(await releaseIps(kv, [a.ipv4[0]!]), []);
  assert.ok(await kv.get(keys.ipamBlock(block!, 4)), 'still one address in it');
  assert.deepEqual(await releaseIps(kv, [a.ipv4[1]!, a.ipv4[1]!]), []);
  assert.equal(await kv.get(keys.ipamBlock(block!, 4)), undefined, 'empty and unowned: deleted');
  assert.equal(await kv.get(keys.ipamHandle('h')), undefined);
  const snap = await checkIpam(kv);
  assert.equal(snap.blocks.length, 0);
});

test('handles count addresses per block across families and release-by-handle removes them', async () => {
  await ensureDefaultPools(kv, { ipv6: true });
  const r1 = await autoAssign(kv, { node: 'hostA', num4: 3, num6: 2, handleId: 'ctr1', attrs: { container: 'ctr1' } });
  const r2 = await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, handleId: 'ctr1' });
  const other = await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, handleId: 'ctr2' });
  let snap = await checkIpam(kv);
  const h = snap.handles.get('ctr1')!;
  assert.deepEqual(Object.values(h).sort(), [2, 4]);
  assert.equal(Object.keys(h).some((c) => c.endsWith('/122')), true);
  assert.deepEqual(await getAssignmentAttributes(kv, r1.ipv4[0]!), {
    ip: r1.ipv4[0], handleId: 'ctr1', attributes: { container: 'ctr1' }, block: blockOf(r1.ipv4[0]!, 26), blockAffinity: 'hostA',
  });
  assert.equal((await getAssignmentAttributes(kv, r2.ipv4[0]!)).attributes, null);
  // Releasing one address by IP decrements the handle.
  await releaseIps(kv, [r1.ipv6[0]!]);
  snap = await checkIpam(kv);
  assert.deepEqual(Object.values(snap.handles.get('ctr1')!).sort(), [1, 4]);
  const released = await releaseByHandle(kv, 'ctr1');
  assert.deepEqual(released.sort(), [...r1.ipv4, r1.ipv6[1]!, ...r2.ipv4].sort());
  assert.equal(await kv.get(keys.ipamHandle('ctr1')), undefined);
  assert.deepEqual(await releaseByHandle(kv, 'ctr1'), [], 'an unknown handle releases nothing');
  snap = await checkIpam(kv);
  assert.deepEqual([...snap.allocated.keys()], other.ipv4);
  await assert.rejects(getAssignmentAttributes(kv, r1.ipv4[0]!), (err: unknown) => {
    assert.ok(err instanceof AddressNotAssignedError);
    assert.equal(err.message, `IP address ${r1.ipv4[0]} is not assigned`);
    return true;
  });
});

test('IPv6: default pools, /122 blocks under the ipv6 keys', async () => {
  assert.deepEqual(await ensureDefaultPools(kv, { ipv6: true }), ['192.168.0.0/16', 'fd80:24e2:f998:72d6::/64']);
  assert.deepEqual(await ensureDefaultPools(kv, { ipv6: true }), [], 'idempotent');
  assert.deepEqual(JSON.parse((await kv.get(keys.pool('192.168.0.0/16', 4)))!.value), { cidr: '192.168.0.0/16', masquerade: false, ipam: true, disabled: false });
  const r = await autoAssign(kv, { node: 'hostA', num4: 0, num6: 65 });
  assert.equal(r.ipv6.length, 65);
  assert.deepEqual(r.ipv4, []);
  for (const ip of r.ipv6) assert.ok(inCidr('fd80:24e2:f998:72d6::/64', ip));
  const blocks = await affineBlocks(kv, 'hostA', 6);
  assert.equal(blocks.length, 2);
  for (const b of blocks) {
    assert.ok(b.endsWith('/122'));
    assert.ok(await kv.get(keys.ipamBlock(b, 6)));
  }
  assert.equal((await poolForIp(kv, r.ipv6[0]!))?.cidr, 'fd80:24e2:f998:72d6::/64');
  assert.equal(await poolForIp(kv, '10.0.0.1'), undefined);
  const v6 = await assignIp(kv, { ip: 'FD80:24E2:F998:72D6:0:0:0:ABCD', node: 'hostB', handleId: 'x' });
  assert.equal(v6, 'fd80:24e2:f998:72d6::abcd');
  assert.deepEqual(await affineBlocks(kv, 'hostB'), ['fd80:24e2:f998:72d6::abc0/122']);
  assert.deepEqual(await releaseIps(kv, [...r.ipv6, v6]), []);
  await checkIpam(kv);
});

test('ensureDefaultPools leaves a family that already has a pool alone', async () => {
  await addPool(kv, '10.1.0.0/16');
  assert.deepEqual(await ensureDefaultPools(kv, { ipv6: false }), []);
  assert.deepEqual((await listPools(kv)).map((p) => p.cidr), ['10.1.0.0/16']);
});

test('assignIp: claims the block for the host, refuses an address in use or outside every pool', async () => {
  await addPool(kv, '192.168.0.0/16');
  assert.equal(await assignIp(kv, { ip: '192.168.5.5', node: 'hostA', handleId: 'web', attrs: { c: 'web' } }), '192.168.5.5');
  assert.deepEqual(await affineBlocks(kv, 'hostA'), ['192.168.5.0/26']);
  await assert.rejects(assignIp(kv, { ip: '192.168.5.5', node: 'hostB' }), (err: unknown) => {
    assert.ok(err instanceof AddressInUseError);
    assert.equal(err.message, '192.168.5.5 is already assigned (handle web)');
    return true;
  });
  await assert.rejects(assignIp(kv, { ip: '10.0.0.1', node: 'hostA' }), (err: unknown) => {
    assert.ok(err instanceof AddressNotInPoolError);
    assert.equal(err.message, '10.0.0.1 is not in any enabled IP pool: add one with `calicoctl pool add <CIDR>`');
    return true;
  });
  await assert.rejects(assignIp(kv, { ip: '192.168.5.300', node: 'hostA' }), ValidationError);
  // Without strict affinity another host may place a given address in hostA's block.
  await assignIp(kv, { ip: '192.168.5.6', node: 'hostB' });
  // And autoAssign for hostA continues in its block, skipping the two taken ordinals.
  const r = await autoAssign(kv, { node: 'hostA', num4: 6, num6: 0 });
  assert.deepEqual(r.ipv4, ['192.168.5.0', '192.168.5.1', '192.168.5.2', '192.168.5.3', '192.168.5.4', '192.168.5.7']);
  await checkIpam(kv);
});

test('releaseIps reports what was not assigned and validates before changing anything', async () => {
  await addPool(kv, '10.80.0.0/24');
  const r = await autoAssign(kv, { node: 'hostA', num4: 2, num6: 0 });
  await assert.rejects(releaseIps(kv, [r.ipv4[0]!, 'not-an-ip']), ValidationError);
  assert.equal((await checkIpam(kv)).allocated.size, 2, 'nothing released');
  const notAssigned = await releaseIps(kv, [r.ipv4[0]!, '10.80.0.200', '172.16.0.1', '10.80.0.201']);
  assert.deepEqual(notAssigned.sort(), ['10.80.0.200', '10.80.0.201', '172.16.0.1']);
  assert.equal((await checkIpam(kv)).allocated.size, 1);
});

test('requested pools: only those are used; an unknown one is a typed error', async () => {
  await addPool(kv, '10.90.0.0/24');
  await addPool(kv, '10.91.0.0/24');
  const r = await autoAssign(kv, { node: 'hostA', num4: 2, num6: 0, pools: ['10.91.0.0/24'] });
  for (const ip of r.ipv4) assert.ok(inCidr('10.91.0.0/24', ip));
  // The lexicographically first pool is preferred without a request.
  const s = await autoAssign(kv, { node: 'hostB', num4: 1, num6: 0 });
  assert.ok(inCidr('10.90.0.0/24', s.ipv4[0]!));
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, pools: ['10.99.0.0/24'] }), (err: unknown) => {
    assert.ok(err instanceof PoolNotFoundError);
    assert.match(err.message, /IP pool 10\.99\.0\.0\/24 does not exist/);
    return true;
  });
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: -1, num6: 0 }), ValidationError);
  await assert.rejects(autoAssign(kv, { node: '', num4: 1, num6: 0 }), ValidationError);
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, handleId: '' }), ValidationError);
  await assert.rejects(releaseByHandle(kv, ''), ValidationError);
  await checkIpam(kv);
});

test('a pool of the other family cannot serve; nothing of the first family is kept', async () => {
  await addPool(kv, '10.95.0.0/24');
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: 2, num6: 1, handleId: 'dual' }), (err: unknown) => {
    assert.ok(err instanceof IpamExhaustedError);
    assert.match(err.message, /0 of 1 IPv6 address for host hostA: there is no enabled IPv6 pool/);
    return true;
  });
  const snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 0);
  assert.equal(snap.handles.size, 0);
});

test('a dangling affinity key (block never written) is rebuilt; a stale one (block owned elsewhere) is dropped', async () => {
  await addPool(kv, '10.100.0.0/24');
  await kv.put(keys.ipamAffinity('hostA', '10.100.0.192/26', 4), '');
  const r = await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 });
  assert.equal(r.ipv4[0], '10.100.0.192', 'the affine block is used first, rebuilt');
  // hostB's affinity key points at hostA's block (e.g. it was released and re-claimed).
  await kv.put(keys.ipamAffinity('hostB', '10.100.0.192/26', 4), '{}');
  const s = await autoAssign(kv, { node: 'hostB', num4: 1, num6: 0 });
  assert.ok(!inCidr('10.100.0.192/26', s.ipv4[0]!));
  assert.equal(await kv.get(keys.ipamAffinity('hostB', '10.100.0.192/26', 4)), undefined);
  await checkIpam(kv);
});

test('ipamUsage counts blocks, in-use and free per pool; releasePoolAffinities frees a pool\'s blocks', async () => {
  await addPool(kv, '10.110.0.0/24');
  await ensureDefaultPools(kv, { ipv6: true });
  await autoAssign(kv, { node: 'hostA', num4: 3, num6: 1, pools: ['10.110.0.0/24', 'fd80:24e2:f998:72d6::/64'] });
  await autoAssign(kv, { node: 'hostB', num4: 2, num6: 0, pools: ['10.110.0.0/24'] });
  const u = await ipamUsage(kv);
  const p = u.pools.find((x) => x.cidr === '10.110.0.0/24')!;
  assert.equal(p.total, 256n);
  assert.equal(p.inUse, 5);
  assert.equal(p.free, 251n);
  assert.equal(p.blocks.length, 2);
  assert.deepEqual(p.blocks.map((b) => [b.affinity, b.total, b.inUse, b.free]).sort(), [['hostA', 64, 3, 61], ['hostB', 64, 2, 62]]);
  const v6 = u.pools.find((x) => x.version === 6)!;
  assert.equal(v6.total, 1n << 64n);
  assert.equal(v6.inUse, 1);
  assert.deepEqual(u.pools.map((x) => x.cidr), ['10.110.0.0/24', 'fd80:24e2:f998:72d6::/64']);
  assert.deepEqual(u.orphanBlocks, []);
  assert.deepEqual(u.corruptBlocks, []);
  const rel = await releasePoolAffinities(kv, '10.110.0.0/24');
  assert.equal(rel.released.length, 2);
  assert.deepEqual(await affineBlocks(kv, 'hostB'), []);
  assert.equal((await affineBlocks(kv, 'hostA')).length, 1, 'the IPv6 block keeps its affinity');
  await checkIpam(kv);
});

test('small pool: exactly the pool size can be assigned, then IpamExhaustedError, nothing leaked', async () => {
  await addPool(kv, '10.120.0.0/28', { block_size: 30 });
  // One request bigger than the pool fails whole.
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: 17, num6: 0, handleId: 'greedy' }), IpamExhaustedError);
  let snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 0);
  assert.equal(snap.handles.size, 0);
  const got: string[] = [];
  for (let i = 0; i < 16; i++) {
    const node = i % 3 === 0 ? 'hostB' : 'hostA';
    got.push(...(await autoAssign(kv, { node, num4: 1, num6: 0, handleId: `c${i}` })).ipv4);
  }
  assert.equal(new Set(got).size, 16);
  for (const ip of got) assert.ok(inCidr('10.120.0.0/28', ip));
  await assert.rejects(autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, handleId: 'one-too-many' }), (err: unknown) => {
    assert.ok(err instanceof IpamExhaustedError);
    assert.equal(err.requested, 1);
    assert.equal(err.found, 0);
    return true;
  });
  snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 16);
  assert.equal(snap.handles.size, 16);
  assert.ok(!snap.handles.has('one-too-many'));
  assert.deepEqual(await releaseIps(kv, got), []);
  snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 0);
  assert.equal(snap.handles.size, 0);
});

test('a corrupt block is skipped by autoAssign (with a warning) and named in errors elsewhere', async () => {
  await addPool(kv, '10.140.0.0/24');
  const first = await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 });
  const [block] = await affineBlocks(kv, 'hostA');
  await kv.put(keys.ipamBlock(block!, 4), '{"cidr":"10.140.0.0/26","allocations":[7]}');
  const r = await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 });
  assert.ok(!inCidr(block!, r.ipv4[0]!), 'served from another block');
  await assert.rejects(releaseIps(kv, first.ipv4), (err: unknown) => {
    assert.ok(err instanceof CorruptIpamDataError);
    assert.match(err.message, new RegExp(`IPAM record ${keys.ipamBlock(block!, 4)} is corrupt`));
    return true;
  });
  assert.deepEqual((await ipamUsage(kv)).corruptBlocks, [keys.ipamBlock(block!, 4)]);
  await kv.delete(keys.ipamBlock(block!, 4));
  await kv.delete(keys.ipamAffinity('hostA', block!, 4));
  await checkIpam(kv);
});

test('addresses of a deleted pool are still found, shown as orphans, and can be released', async () => {
  await addPool(kv, '10.145.0.0/24', { block_size: 28 });
  const r = await autoAssign(kv, { node: 'hostA', num4: 2, num6: 0, handleId: 'orphan' });
  await kv.delete(keys.pool('10.145.0.0/24', 4));
  const u = await ipamUsage(kv);
  assert.deepEqual(u.pools, []);
  assert.deepEqual(u.orphanBlocks.map((b) => [b.cidr.endsWith('/28'), b.inUse, b.affinity]), [[true, 2, 'hostA']]);
  assert.equal((await getAssignmentAttributes(kv, r.ipv4[1]!)).handleId, 'orphan');
  assert.deepEqual(await releaseIps(kv, [r.ipv4[0]!, '10.145.0.250']), ['10.145.0.250']);
  await releaseHostAffinities(kv, 'hostA');
  assert.deepEqual(await releaseByHandle(kv, 'orphan'), [r.ipv4[1]]);
  const snap = await checkIpam(kv);
  assert.equal(snap.blocks.length, 0, 'empty and unowned: gone');
});
