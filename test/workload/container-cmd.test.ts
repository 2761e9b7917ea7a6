/** `calicoctl container ...` against a real dockerd, with the same wiring code as the proxy. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCalicoHost, CalicoHost } from '../harness/calico-host.js';
import { calicoctl } from '../harness/calicoctl.js';
import { keys } from '../../src/datastore/keys.js';
import { ensureDefaultPools, ipamUsage } from '../../src/ipam/index.js';
import { StoredWorkloadEndpoint } from '../../src/model/stored.js';
import { waitFor } from '../harness/ports.js';

let h: CalicoHost;
let env: NodeJS.ProcessEnv;

before(async () => {
  h = await startCalicoHost();
  await ensureDefaultPools(h.kv, { ipv6: false });
  await h.kv.put(keys.profileRules('OPEN'), JSON.stringify({ id: 'OPEN', inbound_rules: [{ action: 'allow' }], outbound_rules: [{ action: 'allow' }] }));
  await h.kv.put(keys.profileTags('OPEN'), '["OPEN"]');
  env = { ...h.calicoctlEnv, CALICO_NETNS: h.netns.name };
});
after(async () => { await h?.stop(); });

const cc = (args: string[]) => calicoctl(env, args);
async function records(cid: string): Promise<StoredWorkloadEndpoint[]> {
  return (await h.kv.list(keys.workloadEndpointsOf(h.name, 'docker', cid))).entries.map((e) => JSON.parse(e.value) as StoredWorkloadEndpoint);
}
const inUse = async () => (await ipamUsage(h.kv)).pools.reduce((n, p) => n + p.inUse, 0);

test('container add / endpoint-id show / profile append / ip add+remove / remove', async () => {
  const run = await h.docker(['run', '-d', '--net=none', '--name', 'c1', 'busybox', 'sleep', '3600'], { direct: true });
  assert.equal(run.code, 0, run.stderr);
  const cid = run.stdout.trim();
  const add = await cc(['container', 'add', 'c1', '192.168.5.1']);
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout, 'IP 192.168.5.1 added to c1\n');
  const [rec] = await records(cid);
  assert.deepEqual(rec!.ipv4_nets, ['192.168.5.1/32']);
  assert.deepEqual(rec!.profile_ids, []);
  assert.match((await h.docker(['exec', 'c1', 'ip', '-o', 'addr', 'show', 'dev', 'eth1'], { direct: true })).stdout, /192\.168\.5\.1\/32/);
  assert.equal((await cc(['container', 'add', 'c1', 'auto'])).stderr, 'c1 has already been configured with Calico Networking.\n');

  const eid = await cc(['container', 'c1', 'endpoint-id', 'show']);
  assert.match(eid.stdout, /^[0-9a-f]{32}\n$/);
  assert.ok((await h.kv.get(keys.workloadEndpoint(h.name, 'docker', cid, eid.stdout.trim()))) !== undefined);

  // (Host-to-workload traffic is not policed, as in Felix: the host reaches it with or without a profile.)
  assert.equal((await cc(['container', 'c1', 'profile', 'append', 'OPEN'])).stdout, 'Profile(s) OPEN appended.\n');
  assert.deepEqual((await records(cid))[0]!.profile_ids, ['OPEN']);
  await waitFor('the workload to answer', () => h.ping('192.168.5.1'), 10000, 200);

  const ipAdd = await cc(['container', 'c1', 'ip', 'add', '192.168.5.2']);
  assert.equal(ipAdd.code, 0, ipAdd.stderr);
  assert.equal(ipAdd.stdout, `IP 192.168.5.2 added to ${cid}\n`);
  assert.deepEqual((await records(cid))[0]!.ipv4_nets, ['192.168.5.1/32', '192.168.5.2/32']);
  await waitFor('the second address to answer', () => h.ping('192.168.5.2'), 10000, 200);
  assert.equal((await cc(['container', 'c1', 'ip', 'remove', '192.168.5.2'])).stdout, 'IP 192.168.5.2 removed from c1\n');
  assert.equal((await cc(['container', 'c1', 'ip', 'remove', '192.168.5.2'])).stderr, 'IP address is not assigned to container. Aborting.\n');
  assert.equal(await inUse(), 1);

  assert.equal((await cc(['container', 'remove', 'c1'])).stdout, 'Removed Calico interface from c1\n');
  assert.deepEqual(await records(cid), []);
  assert.equal(await inUse(), 0);
  assert.doesNotMatch((await h.inHost('ip', ['-o', 'link'])).stdout, /cali/);
  assert.equal((await cc(['container', 'remove', 'c1'])).stderr, "Container c1 doesn't contain any endpoints\n");
  await h.docker(['rm', '-f', 'c1'], { direct: true });
});

test('container add refusals, in the original order', async () => {
  assert.equal((await cc(['container', 'add', 'nosuch', '192.168.5.9'])).stderr, 'Container nosuch was not found.\n');
  await h.docker(['create', '--net=none', '--name', 'stopped', 'busybox', 'sleep', '3600'], { direct: true });
  assert.equal((await cc(['container', 'add', 'stopped', 'auto'])).stderr, 'stopped is not currently running.\n');
  await h.docker(['run', '-d', '--net=none', '--name', 'c3', 'busybox', 'sleep', '3600'], { direct: true });
  assert.equal((await cc(['container', 'add', 'c3', '10.200.0.1'])).stderr, '10.200.0.1 is not in any configured pools\n');
  assert.equal((await cc(['container', 'add', 'c3', 'fd80::5'])).stderr, 'fd80::5 is not in any configured pools\n');
  const auto = await cc(['container', 'add', 'c3', 'ipv4']);
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stdout, /^IP 192\.168\.\d+\.\d+ added to c3\n$/);
  assert.equal(await inUse(), 1);
  await h.docker(['rm', '-f', 'c3', 'stopped'], { direct: true });
  // Removed behind Calico's back: the node's event watcher cleans up.
  await waitFor('cleanup of c3', async () => (await inUse()) === 0, 15000, 100);
});

test('with DOCKER_HOST pointing at the proxy, container commands use the daemon the running node forwards to', async () => {
  const r = await h.docker(['run', '-d', '--name', 'viaproxy', '-e', 'CALICO_IP=auto', 'busybox', 'sleep', '3600']);
  assert.equal(r.code, 0, r.stderr);
  const out = await calicoctl({ ...env, DOCKER_HOST: h.proxyEnv.DOCKER_HOST, CALICO_RUN_DIR: h.runDir }, ['container', 'viaproxy', 'endpoint-id', 'show']);
  assert.equal(out.code, 0, out.stderr);
  const [rec] = (await h.kv.list(keys.workloadEndpointsOf(h.name, 'docker', r.stdout.trim()))).entries;
  assert.equal(out.stdout.trim(), rec!.key.split('/').pop());
  await h.docker(['rm', '-f', 'viaproxy']);
});
