/** Concurrent read-modify-writes through separate calicoctl processes lose nothing. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { boundCalicoctl } from '../harness/calicoctl.js';

let etcd: TestEtcd;
let cc: ReturnType<typeof boundCalicoctl>;

before(async () => {
  etcd = await startEtcd();
  cc = boundCalicoctl(etcd.env);
});
after(async () => { await etcd?.stop(); });

test('50 parallel `endpoint <EID> profile append` of different profiles: all 50 present', async () => {
  const names = Array.from({ length: 50 }, (_, i) => `P${i}`);
  await Promise.all(names.map((n) => cc.ok(['profile', 'add', n])));
  const eid = 'aaaabbbbccccddddeeeeffff00001111';
  await cc.ok(['create', '-f', '-'], `apiVersion: v1\nkind: workloadEndpoint\nmetadata: {name: ${eid}, workload: w1, orchestrator: docker, node: h1}\nspec: {interfaceName: caliaaaabbbbccc, ipNetworks: [192.168.0.9/32]}\n`);
  const results = await Promise.all(names.map((n) => cc.run(['endpoint', eid, 'profile', 'append', n])));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const ep = JSON.parse((await etcd.kv().get(`/calico/v1/host/h1/workload/docker/w1/endpoint/${eid}`))!.value) as { profile_ids: string[] };
  assert.equal(ep.profile_ids.length, 50);
  assert.deepEqual([...ep.profile_ids].sort(), [...names].sort());
});

test('50 parallel `profile P tag add` and rule adds: nothing lost', async () => {
  await cc.ok(['profile', 'add', 'SHARED']);
  await Promise.all(Array.from({ length: 25 }, (_, i) => cc.ok(['profile', 'SHARED', 'tag', 'add', `t${i}`])).concat(
    Array.from({ length: 25 }, (_, i) => cc.ok(['profile', 'SHARED', 'rule', 'add', 'inbound', 'allow', 'tcp', 'to', 'ports', String(1000 + i)]))));
  const kv = etcd.kv();
  const tags = JSON.parse((await kv.get('/calico/v1/policy/profile/SHARED/tags'))!.value) as string[];
  assert.equal(tags.length, 26);
  const rules = JSON.parse((await kv.get('/calico/v1/policy/profile/SHARED/rules'))!.value) as { inbound_rules: unknown[] };
  assert.equal(rules.inbound_rules.length, 26);
});
