/** calicoctl ipam show|info|release against addresses assigned by the IPAM library. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { boundCalicoctl } from '../harness/calicoctl.js';
import { autoAssign, assignIp, ensureDefaultPools } from '../../src/ipam/index.js';

let etcd: TestEtcd;
let cc: ReturnType<typeof boundCalicoctl>;

before(async () => {
  etcd = await startEtcd();
  cc = boundCalicoctl(etcd.env);
});
after(async () => { await etcd?.stop(); });

test('ipam show --ip, ipam info, usage per pool, release', async () => {
  const kv = etcd.kv();
  await ensureDefaultPools(kv, { ipv6: false });
  await assignIp(kv, { ip: '192.168.7.7', node: 'calico-01', handleId: 'h1', attrs: { container: 'web' } });
  const auto = await autoAssign(kv, { node: 'calico-02', num4: 2, num6: 0 });
  const show = await cc.ok(['ipam', 'show', '--ip=192.168.7.7']);
  assert.equal(show, 'IP 192.168.7.7 is assigned in block 192.168.7.0/26 (affine to calico-01)\nHandle: h1\ncontainer: web\n');
  assert.equal(await cc.ok(['ipam', 'info', '192.168.7.7']), show);
  assert.deepEqual(JSON.parse(await cc.ok(['ipam', 'show', '--ip', '192.168.7.7', '-o', 'json'])), {
    ip: '192.168.7.7', handle: 'h1', attributes: { container: 'web' }, block: '192.168.7.0/26', blockAffinity: 'calico-01',
  });
  assert.match(await cc.ok(['ipam', 'show', '--ip', auto.ipv4[0]!]), /No attributes defined for IP/);
  const usage = await cc.ok(['ipam', 'show']);
  assert.match(usage, /\| 192\.168\.0\.0\/16 \|\s+\/26\s+\|\s+2\s+\|\s+65536\s+\|\s+3\s+\|\s+65533\s+\|/);
  assert.equal(await cc.ok(['ipam', 'release', '--ip=192.168.7.7']), 'Successfully released IP address 192.168.7.7\n');
  const again = await cc.run(['ipam', 'release', '--ip=192.168.7.7']);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, 'IP address 192.168.7.7 is not assigned\n');
  const notAssigned = await cc.run(['ipam', 'show', '--ip=192.168.7.7']);
  assert.equal(notAssigned.code, 1);
  assert.match(notAssigned.stderr, /192\.168\.7\.7/);
  const bad = await cc.run(['ipam', 'release', '--ip=banana']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /'banana' is not a valid IPv4 or IPv6 address/);
});
