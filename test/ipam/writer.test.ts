/**
 * The block writer's edges against a real etcd: a compare lost to a real concurrent writer is
 * re-read and re-applied (nothing from the failed attempt leaks), endless losing ends in a typed
 * error with nothing written, and big batches stay inside etcd's 128-operation transaction limit.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { KV, TxnGuard, TxnOp } from '../../src/datastore/kv.js';
import { ConflictError } from '../../src/errors.js';
import { autoAssign, assignIp, releaseIps, IpamContentionError } from '../../src/ipam/index.js';
import { addPool, checkIpam } from './helpers.js';

let etcd: TestEtcd;
before(async () => { etcd = await startEtcd(); });
after(async () => { await etcd?.stop(); });
beforeEach(async () => { await etcd.wipe(); });

/** The real KV, with a hook that runs just before each transaction is sent. */
function withTxnHook(kv: KV, hook: (guards: TxnGuard[], ops: TxnOp[]) => Promise<void>): KV {
  return Object.assign(Object.create(kv) as KV, {
    txn: async (guards: TxnGuard[], ops: TxnOp[]) => { await hook(guards, ops); return kv.txn(guards, ops); },
  });
}

test('a compare lost to a real concurrent writer is retried from a fresh read', async () => {
  const kv = etcd.kv();
  const other = etcd.kv();
  await addPool(kv, '10.130.0.0/24');
  await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, handleId: 'first' }); // 10.130.0.x ordinal 0
  let interfered = 0;
  const hooked = withTxnHook(kv, async () => {
    // Between our read and our write, another client takes the next free address in the block.
    if (interfered++ === 0) await autoAssign(other, { node: 'hostA', num4: 1, num6: 0, handleId: 'sneaky' });
  });
  const mine = await autoAssign(hooked, { node: 'hostA', num4: 1, num6: 0, handleId: 'mine' });
  assert.ok(interfered >= 2, 'our first transaction was retried');
  const snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 3);
  assert.equal(snap.allocated.get(mine.ipv4[0]!), 'mine');
  assert.deepEqual([...snap.handles.keys()].sort(), ['first', 'mine', 'sneaky']);
});

test('a block whose compare always loses gives IpamContentionError after 100 attempts, writing nothing', async () => {
  const kv = etcd.kv();
  await addPool(kv, '10.131.0.0/24');
  await autoAssign(kv, { node: 'hostA', num4: 1, num6: 0 });
  let attempts = 0;
  const losing = withTxnHook(kv, async (guards) => { attempts++; throw new ConflictError(guards[0]!.key); });
  await assert.rejects(assignIp(losing, { ip: '10.131.0.77', node: 'hostA', handleId: 'h' }), (err: unknown) => {
    assert.ok(err instanceof IpamContentionError);
    assert.match(err.message, /gave up writing \/calico\/ipam\/v2\/assignment\/ipv4\/block\/10\.131\.0\.64-26 after 100 conflicting writes/);
    return true;
  });
  assert.equal(attempts, 100);
  const snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 1);
  assert.equal(snap.handles.size, 0);
});

test('200 concurrent assignments into one big block, then one release of all: batches stay under etcd\'s txn limit', async () => {
  const kv = etcd.kv('daemon');
  await addPool(kv, '10.132.0.0/24', { block_size: 24 }); // one block of 256
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => autoAssign(kv, { node: 'hostA', num4: 1, num6: 0, handleId: `h${i}` })));
  const ips = results.flatMap((r) => r.ipv4);
  assert.equal(new Set(ips).size, 200);
  let snap = await checkIpam(kv);
  assert.equal(snap.blocks.length, 1);
  assert.equal(snap.handles.size, 200);
  // One call releasing 200 addresses with 200 different handles: 201 keys to write.
  assert.deepEqual(await releaseIps(kv, ips), []);
  snap = await checkIpam(kv);
  assert.equal(snap.allocated.size, 0);
  assert.equal(snap.handles.size, 0);
});
