import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { KV, mutate, NO_CHANGE } from '../../src/datastore/kv.js';
import { ConflictError, DatastoreUnreachableError } from '../../src/errors.js';
import { connectKV, KVFlavour } from '../../src/datastore/connect.js';

let etcd: TestEtcd;
before(async () => { etcd = await startEtcd(); });
after(async () => { await etcd?.stop(); });

for (const flavour of ['cli', 'daemon'] as KVFlavour[]) {
  test(`${flavour} KV: create, get, list, CAS update, delete against real etcd`, async () => {
    const kv: KV = etcd.kv(flavour);
    const p = `/calico/test-${flavour}/`;
    await kv.deletePrefix(p);
    const rev = await kv.create(`${p}a`, '{"x":1}');
    assert.ok(BigInt(rev) > 0n);
    await assert.rejects(kv.create(`${p}a`, 'again'), ConflictError);
    const e = await kv.get(`${p}a`);
    assert.equal(e?.value, '{"x":1}');
    await kv.update(`${p}a`, '{"x":2}', e!.modRevision);
    await assert.rejects(kv.update(`${p}a`, '{"x":3}', e!.modRevision), ConflictError);
    await kv.put(`${p}b`, 'B');
    const l = await kv.list(p);
    assert.deepEqual(l.entries.map((x) => [x.key, x.value]), [[`${p}a`, '{"x":2}'], [`${p}b`, 'B']]);
    // A sibling prefix that shares the leading characters must not be listed.
    await kv.put(`/calico/test-${flavour}x`, 'not me');
    assert.equal((await kv.list(p)).entries.length, 2);
    await kv.txn([{ key: `${p}a`, modRevision: (await kv.get(`${p}a`))!.modRevision }, { key: `${p}c`, modRevision: '0' }],
      [{ op: 'put', key: `${p}c`, value: 'C' }, { op: 'delete', key: `${p}b` }]);
    assert.deepEqual((await kv.list(p)).entries.map((x) => x.key), [`${p}a`, `${p}c`]);
    await assert.rejects(kv.txn([{ key: `${p}c`, modRevision: '0' }], [{ op: 'put', key: `${p}d`, value: 'D' }]), ConflictError);
    assert.equal(await kv.get(`${p}d`), undefined, 'a failed txn wrote nothing');
    assert.equal(await kv.delete(`${p}c`), true);
    assert.equal(await kv.delete(`${p}c`), false);
    assert.equal(await kv.deletePrefix(p), 1);
    await kv.delete(`/calico/test-${flavour}x`);
  });

  test(`${flavour} KV: 50 concurrent mutate() increments lose nothing`, async () => {
    const kv = etcd.kv(flavour);
    const key = `/calico/test-counter-${flavour}`;
    await kv.delete(key);
    await Promise.all(
      Array.from({ length: 50 }, () => mutate(kv, key, (cur) => String(Number(cur ?? '0') + 1))),
    );
    assert.equal((await kv.get(key))?.value, '50');
    const r = await mutate(kv, key, () => ({ value: NO_CHANGE, result: 7 }));
    assert.equal(r, 7);
    await mutate(kv, key, () => undefined);
    assert.equal(await kv.get(key), undefined);
  });

  test(`${flavour} KV: an unreachable etcd gives DatastoreUnreachableError quickly`, async () => {
    const kv = connectKV({ endpoints: ['http://127.0.0.1:1'], isDefault: false }, flavour);
    const t0 = Date.now();
    await assert.rejects(kv.get('/calico/x'), (err: unknown) => {
      assert.ok(err instanceof DatastoreUnreachableError, String(err));
      assert.match((err as Error).message, /cannot reach etcd at http:\/\/127\.0\.0\.1:1/);
      return true;
    });
    assert.ok(Date.now() - t0 < 10000);
    kv.close();
  });
}

test('daemon KV: watch delivers puts and deletes after a revision', async () => {
  const kv = etcd.kv('daemon');
  const p = '/calico/test-watch/';
  const { revision } = await kv.list(p);
  const seen: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const w = await kv.watch!(p, revision, (evs) => {
    for (const e of evs) seen.push(`${e.type} ${e.key} ${e.value}`);
    if (seen.length >= 2) done();
  }, (err) => assert.fail(err));
  await kv.put(`${p}k`, 'v');
  await kv.delete(`${p}k`);
  await finished;
  await w.close();
  assert.deepEqual(seen, [`put ${p}k v`, `delete ${p}k `]);
});
