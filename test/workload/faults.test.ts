/**
 * The proxy's world changing behind its back: the node down while containers are removed and
 * restarted on the direct socket (start-up reconciliation), an IPv6 workload, and etcd down.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCalicoHost, CalicoHost } from '../harness/calico-host.js';
import { waitFor } from '../harness/ports.js';
import { keys } from '../../src/datastore/keys.js';
import { ensureDefaultPools, ipamUsage } from '../../src/ipam/index.js';

let h: CalicoHost;

before(async () => {
  h = await startCalicoHost({ hostIp6: 'fd00:99::1' });
  await ensureDefaultPools(h.kv, { ipv6: true });
  await h.kv.put(keys.profileRules('OPEN'), JSON.stringify({ id: 'OPEN', inbound_rules: [{ action: 'allow' }], outbound_rules: [{ action: 'allow' }] }));
  await h.kv.put(keys.profileTags('OPEN'), '["OPEN"]');
});
after(async () => { await h?.stop(); });

const inUse = async () => (await ipamUsage(h.kv)).pools.reduce((n, p) => n + p.inUse, 0);
const records = async (cid: string) => (await h.kv.list(keys.workloadEndpointsOf(h.name, 'docker', cid))).entries;

test('an IPv6 workload: address, default route via the host side, reachable from the host', async () => {
  const r = await h.docker(['run', '-d', '--name', 'six', '-e', 'CALICO_IP=fd80:24e2:f998:72d6::1:1', '-e', 'CALICO_PROFILE=OPEN', 'busybox', 'sleep', '3600']);
  assert.equal(r.code, 0, r.stderr);
  assert.match((await h.docker(['exec', 'six', 'ip', '-6', 'route'])).stdout, /default via fe80::ecee:eeff:feee:eeee dev eth1/);
  assert.ok(await h.ping('fd80:24e2:f998:72d6::1:1'), 'ping6 from the host');
  const insp = JSON.parse((await h.docker(['inspect', 'six'])).stdout)[0];
  assert.equal(insp.NetworkSettings.GlobalIPv6Address, 'fd80:24e2:f998:72d6::1:1');
  assert.equal((await h.docker(['rm', '-f', 'six'])).code, 0);
  assert.equal(await inUse(), 0);
});

test('node down while containers are removed and restarted directly: reconciled when it comes back', async () => {
  const a = await h.docker(['run', '-d', '--name', 'ra', '-e', 'CALICO_IP=192.168.9.1', '-e', 'CALICO_PROFILE=OPEN', 'busybox', 'sleep', '3600']);
  const b = await h.docker(['run', '-d', '--name', 'rb', '-e', 'CALICO_IP=192.168.9.2', '-e', 'CALICO_PROFILE=OPEN', 'busybox', 'sleep', '3600']);
  assert.equal(a.code + b.code, 0, a.stderr + b.stderr);
  const bId = b.stdout.trim();
  const mac = (await h.docker(['exec', 'rb', 'cat', '/sys/class/net/eth1/address'])).stdout.trim();
  // The node dies; meanwhile ra is removed and rb restarted on the daemon's own socket.
  process.kill(h.node.pid, 'SIGKILL');
  await h.node.exited;
  assert.equal((await h.docker(['rm', '-f', 'ra'], { direct: true })).code, 0);
  assert.equal((await h.docker(['restart', '-t', '0', 'rb'], { direct: true })).code, 0);
  assert.equal(await h.ping('192.168.9.2'), false, 'rb lost its network in the restart');
  await h.restartNode();
  await waitFor('reconciliation', async () => (await records(a.stdout.trim())).length === 0 && (await h.ping('192.168.9.2')), 20000, 200);
  assert.equal(await inUse(), 1, "ra's address was released");
  assert.equal((await h.docker(['exec', 'rb', 'cat', '/sys/class/net/eth1/address'])).stdout.trim(), mac, 'same MAC after re-wiring');
  assert.equal((await records(bId)).length, 1);
  assert.equal((await h.docker(['rm', '-f', 'rb'])).code, 0);
  assert.equal(await inUse(), 0);
});

test('etcd down: docker run with CALICO_IP fails with a clear error and creates nothing; other commands still work', async (t) => {
  await h.etcd.proc.stop();
  const t0 = Date.now();
  const r = await h.docker(['run', '-d', '--name', 'noetcd', '-e', 'CALICO_IP=auto', 'busybox', 'sleep', '60']);
  const ms = Date.now() - t0;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Calico: cannot reach etcd at http:\/\/127\.0\.0\.1:\d+: start one, or set ETCD_ENDPOINTS; the container was not created/);
  // No timed assertion: how long it took is reported (the datastore client gives up after 5 s).
  t.diagnostic(`docker run answered in ${ms} ms with etcd down`);
  assert.equal((await h.docker(['ps', '-a', '--filter', 'name=^noetcd$', '-q'])).stdout.trim(), '', 'no container was created');
  const ps = await h.docker(['ps']);
  assert.equal(ps.code, 0, ps.stderr);
  const plain = await h.docker(['run', '--rm', '--net=none', 'busybox', 'echo', 'still here']);
  assert.equal(plain.stdout, 'still here\n');
});
