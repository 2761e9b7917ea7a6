/**
 * Contention: many assigners at once, in one process (through two connections, so both the
 * in-process batching and the etcd compare-and-swap are exercised) and in six processes for two
 * hosts. Afterwards: no address given twice, none lost (block allocations == addresses
 * returned, handle counts match), and after concurrent release everything is free again.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { startProcess } from '../harness/process.js';
import { KV } from '../../src/datastore/kv.js';
import { cidrContains, parseCidr, parseIp } from '../../src/net/ip.js';
import { autoAssign, releaseByHandle, releaseIps, ensureDefaultPools, ipamUsage } from '../../src/ipam/index.js';
import { addPool, checkIpam } from './helpers.js';

let etcd: TestEtcd;
let dir: string;
before(async () => { etcd = await startEtcd(); dir = mkdtempSync(join(tmpdir(), 'ipam-contention-')); });
after(async () => { await etcd?.stop(); if (dir) rmSync(dir, { recursive: true, force: true }); });
beforeEach(async () => { await etcd.wipe(); });

function assertAllFree(u: Awaited<ReturnType<typeof ipamUsage>>): void {
  for (const p of u.pools) {
    assert.equal(p.inUse, 0, `${p.cidr} in use`);
    assert.equal(p.free, p.total);
    for (const b of p.blocks) assert.equal(b.free, b.total);
  }
}

test('in one process: 300 concurrent autoAssigns over two connections and two hosts, then concurrent release', async () => {
  const kvs: KV[] = [etcd.kv('cli'), etcd.kv('daemon')];
  await addPool(etcd.kv(), '10.150.0.0/22');
  await ensureDefaultPools(kvs[0]!, { ipv6: true });
  const calls = Array.from({ length: 300 }, (_, i) => ({
    kv: kvs[i % 2]!, node: i % 3 === 0 ? 'hostB' : 'hostA', handleId: `ctr-${i}`, num6: i % 5 === 0 ? 1 : 0,
  }));
  const results = await Promise.all(calls.map((c) => autoAssign(c.kv, { node: c.node, num4: 1, num6: c.num6, handleId: c.handleId })));
  const returned = results.flatMap((r) => [...r.ipv4, ...r.ipv6]);
  assert.equal(returned.length, 300 + 60);
  assert.equal(new Set(returned).size, returned.length, 'no address given twice');
  const snap = await checkIpam(kvs[0]!);
  assert.deepEqual([...snap.allocated.keys()].sort(), [...returned].sort(), 'stored allocations == addresses returned');
  calls.forEach((c, i) => {
    const counts = snap.handles.get(c.handleId)!;
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), results[i]!.ipv4.length + results[i]!.ipv6.length);
    for (const ip of [...results[i]!.ipv4, ...results[i]!.ipv6]) assert.equal(snap.allocated.get(ip), c.handleId);
  });
  // Each host ends up with its own blocks; no borrowing was needed in a roomy pool.
  for (const b of snap.blocks) assert.ok(b.affinity === 'host:hostA' || b.affinity === 'host:hostB');

  // Release everything at once: a third by handle, the rest address by address.
  await Promise.all(calls.map(async (c, i) => {
    const ips = [...results[i]!.ipv4, ...results[i]!.ipv6];
    if (i % 3 === 0) assert.deepEqual((await releaseByHandle(c.kv, c.handleId)).sort(), ips.sort());
    else for (const ip of ips) assert.deepEqual(await releaseIps(c.kv, [ip]), []);
  }));
  const after = await checkIpam(kvs[0]!);
  assert.equal(after.allocated.size, 0);
  assert.equal(after.handles.size, 0);
  assertAllFree(await ipamUsage(kvs[0]!));
});

async function runWorkers(argsList: string[][]): Promise<void> {
  const procs = argsList.map((args, i) => startProcess(process.execPath, [join(__dirname, 'worker.js'), ...args], join(dir, `worker-${i}.log`)));
  const codes = await Promise.all(procs.map((p) => p.exited));
  codes.forEach((code, i) => {
    if (code !== 0) assert.fail(`worker ${i} exited ${code}: ${readFileSync(procs[i]!.logFile, 'utf8').slice(-2000)}`);
  });
}

test('six processes, two hosts, a tight pool: no duplicate, no loss, borrowing at the end; then all released', async () => {
  const kv = etcd.kv();
  // 256 IPv4 addresses in 16 blocks of 16 for 3 x 50 (hostA) + 3 x 33 (hostB) = 249 assignments:
  // hostA needs 10 blocks and hostB 7, so the hosts race for the last blocks and one must borrow.
  await addPool(kv, '10.160.0.0/24', { block_size: 28 });
  await addPool(kv, 'fd00:160::/120', { block_size: 124 });
  const outs = Array.from({ length: 6 }, (_, i) => join(dir, `out-${i}.json`));
  const nodeOf = (i: number) => (i % 2 === 0 ? 'hostA' : 'hostB');
  await runWorkers(outs.map((out, i) => ['assign', etcd.endpoint, nodeOf(i), i % 2 === 0 ? '50' : '33', `p${i}`, '8', out]));
  const byHandle: Record<string, string[]> = {};
  for (const out of outs) Object.assign(byHandle, JSON.parse(readFileSync(out, 'utf8')) as Record<string, string[]>);
  const returned = Object.values(byHandle).flat();
  assert.equal(Object.keys(byHandle).length, 249);
  assert.equal(returned.length, 249 + 3 * 13 + 3 * 9, 'every fourth call also took an IPv6 address');
  assert.equal(new Set(returned).size, returned.length, 'no address given twice');
  const snap = await checkIpam(kv);
  assert.deepEqual([...snap.allocated.keys()].sort(), [...returned].sort(), 'stored allocations == addresses returned');
  for (const [handle, ips] of Object.entries(byHandle)) {
    assert.equal(Object.values(snap.handles.get(handle)!).reduce((a, b) => a + b, 0), ips.length, `handle ${handle}`);
  }
  const u = await ipamUsage(kv);
  const v4blocks = u.pools.find((p) => p.cidr === '10.160.0.0/24')!.blocks;
  assert.equal(v4blocks.length, 16, 'every block claimed');
  // Borrowed: an address whose handle belongs to one host, in a block affine to the other.
  const ownerOf = (ip: string) => v4blocks.find((b) => cidrContains(parseCidr(b.cidr), parseIp(ip)))?.affinity;
  const workerOf = (handle: string) => Number(/^p(\d+)-/.exec(handle)![1]);
  const borrowed = Object.entries(byHandle).filter(([h, ips]) => ownerOf(ips[0]!) !== nodeOf(workerOf(h)));
  assert.ok(borrowed.length >= 1, 'some addresses were borrowed from the other host\'s blocks');

  // Release concurrently from six processes again, each its own file's addresses.
  await runWorkers(outs.map((out) => ['release', etcd.endpoint, out, '8']));
  const after = await checkIpam(kv);
  assert.equal(after.allocated.size, 0);
  assert.equal(after.handles.size, 0);
  assertAllFree(await ipamUsage(kv));
  writeFileSync(join(dir, 'done'), '');
});
