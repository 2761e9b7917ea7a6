/**
 * `docker run -e CALICO_IP=...` through the proxy, end to end: real etcd, real dockerd in a host
 * namespace, the node daemon (agent + proxy) programming it, busybox containers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCalicoHost, CalicoHost } from '../harness/calico-host.js';
import { waitFor } from '../harness/ports.js';
import { keys } from '../../src/datastore/keys.js';
import { ipamUsage } from '../../src/ipam/index.js';
import { StoredWorkloadEndpoint } from '../../src/model/stored.js';
import { ensureDefaultPools } from '../../src/ipam/index.js';

let h: CalicoHost;

before(async () => {
  h = await startCalicoHost();
  await ensureDefaultPools(h.kv, { ipv6: false });
  // A permissive profile so the host can ping its containers.
  await h.kv.put(keys.profileRules('OPEN'), JSON.stringify({ id: 'OPEN', inbound_rules: [{ action: 'allow' }], outbound_rules: [{ action: 'allow' }] }));
  await h.kv.put(keys.profileTags('OPEN'), '["OPEN"]');
});
after(async () => { await h?.stop(); });

async function endpointsOf(cid: string): Promise<Array<{ key: string; ep: StoredWorkloadEndpoint }>> {
  const { entries } = await h.kv.list(keys.workloadEndpointsOf(h.name, 'docker', cid));
  return entries.map((e) => ({ key: e.key, ep: JSON.parse(e.value) as StoredWorkloadEndpoint }));
}

async function inUse(): Promise<number> {
  return (await ipamUsage(h.kv)).pools.reduce((n, p) => n + p.inUse, 0);
}

async function caliLinks(): Promise<string[]> {
  const r = await h.inHost('ip', ['-o', 'link', 'show']);
  return [...r.stdout.matchAll(/^\d+: (cali[0-9a-f]+)[@:]/gm)].map((m) => m[1]!);
}

test('docker run -d with CALICO_IP: wired before run returns, reachable at once, recorded, inspect shows it', async () => {
  const r = await h.docker(['run', '-d', '--name', 'web1', '-e', 'CALICO_IP=192.168.1.1', '-e', 'CALICO_PROFILE=OPEN', 'busybox', 'sleep', '3600']);
  assert.equal(r.code, 0, r.stderr);
  const cid = r.stdout.trim();
  // No waiting: the start answer was held until the wiring and the ACLs were in place.
  assert.ok(await h.ping('192.168.1.1'), 'ping right after docker run -d');

  const addr = await h.docker(['exec', 'web1', 'ip', '-o', 'addr', 'show', 'dev', 'eth1']);
  assert.match(addr.stdout, /inet 192\.168\.1\.1\/32/);
  const routes = await h.docker(['exec', 'web1', 'ip', 'route']);
  assert.match(routes.stdout, /default via 169\.254\.1\.1 dev eth1/);
  const [rec] = await endpointsOf(cid);
  assert.ok(rec, 'endpoint record written');
  assert.equal(rec.ep.state, 'active');
  assert.deepEqual(rec.ep.profile_ids, ['OPEN']);
  assert.deepEqual(rec.ep.ipv4_nets, ['192.168.1.1/32']);
  assert.equal(rec.ep['container:if_name'], 'eth1');
  const mac = (await h.docker(['exec', 'web1', 'cat', '/sys/class/net/eth1/address'])).stdout.trim();
  assert.equal(rec.ep.mac, mac);
  const hostRoute = await h.inHost('ip', ['route', 'show', '192.168.1.1']);
  assert.match(hostRoute.stdout, new RegExp(`192\\.168\\.1\\.1 dev ${rec.ep.name}`));
  const proxyArp = await h.inHost('cat', [`/proc/sys/net/ipv4/conf/${rec.ep.name}/proxy_arp`]);
  assert.equal(proxyArp.stdout.trim(), '1');
  const insp = JSON.parse((await h.docker(['inspect', 'web1'])).stdout)[0];
  assert.equal(insp.NetworkSettings.IPAddress, '192.168.1.1');
  assert.equal(insp.NetworkSettings.MacAddress, mac);
  assert.equal(insp.HostConfig.NetworkMode, 'none');
  // The direct socket is not intercepted.
  assert.equal(JSON.parse((await h.docker(['inspect', 'web1'], { direct: true })).stdout)[0].NetworkSettings.IPAddress, '');

  // restart keeps endpoint id, MAC, address and profiles
  assert.equal((await h.docker(['restart', '-t', '0', 'web1'])).code, 0);
  const [after1] = await endpointsOf(cid);
  assert.equal(after1!.key, rec.key);
  assert.equal(after1!.ep.mac, rec.ep.mac);
  assert.equal((await h.docker(['exec', 'web1', 'cat', '/sys/class/net/eth1/address'])).stdout.trim(), mac);
  assert.ok(await h.ping('192.168.1.1'));
  // stop + start likewise
  assert.equal((await h.docker(['stop', '-t', '0', 'web1'])).code, 0);
  assert.equal((await h.docker(['start', 'web1'])).code, 0);
  assert.equal((await endpointsOf(cid))[0]!.key, rec.key);
  assert.ok(await h.ping('192.168.1.1'));

  // rm -f releases the address and removes the endpoint and the veth
  assert.equal((await h.docker(['rm', '-f', 'web1'])).code, 0);
  assert.deepEqual(await endpointsOf(cid), []);
  assert.deepEqual(await caliLinks(), []);
  assert.equal(await inUse(), 0);
});

test('CALICO_IP=auto gets an address from the pool; CALICO_PROFILE creates a missing profile', async () => {
  const r = await h.docker(['run', '-d', '--name', 'auto1', '-e', 'CALICO_IP=auto', '-e', 'CALICO_PROFILE=NEWPROF', 'busybox', 'sleep', '3600']);
  assert.equal(r.code, 0, r.stderr);
  const [rec] = await endpointsOf(r.stdout.trim());
  assert.match(rec!.ep.ipv4_nets[0]!, /^192\.168\.\d+\.\d+\/32$/);
  const rules = JSON.parse((await h.kv.get(keys.profileRules('NEWPROF')))!.value);
  assert.deepEqual(rules.inbound_rules, [{ action: 'allow', src_tag: 'NEWPROF' }]);
  assert.equal((await h.docker(['rm', '-f', 'auto1'])).code, 0);
  assert.equal(await inUse(), 0);
});

test('containers without CALICO_IP pass through untouched', async () => {
  const r = await h.docker(['run', '--rm', '--net=none', 'busybox', 'echo', 'plain']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'plain\n');
  assert.deepEqual(await caliLinks(), []);
});

test('bad input is refused before anything is made', async () => {
  await h.kv.put(keys.pool('10.50.0.0/16', 4), JSON.stringify({ cidr: '10.50.0.0/16', disabled: true, masquerade: false, ipam: true }));
  const taken = await h.docker(['run', '-d', '--name', 'holder', '-e', 'CALICO_IP=192.168.2.2', 'busybox', 'sleep', '3600']);
  assert.equal(taken.code, 0, taken.stderr);
  const before = await inUse();
  const cases: Array<[string[], RegExp]> = [
    [['-e', 'CALICO_IP=banana'], /CALICO_IP=banana is not valid: use an IPv4 or IPv6 address/],
    [['-e', 'CALICO_IP=auto', '-e', 'CALICO_PROFILE=bad name!'], /CALICO_PROFILE=bad name! is not valid/],
    [['-e', 'CALICO_IP=192.168.2.2'], /CALICO_IP=192\.168\.2\.2 is already assigned \(to container holder\)/],
    [['-e', 'CALICO_IP=10.200.0.1'], /CALICO_IP=10\.200\.0\.1 is not in any configured Calico pool/],
    [['-e', 'CALICO_IP=10.50.0.9'], /in the disabled pool 10\.50\.0\.0\/16/],
    [['-e', 'CALICO_IP=fd80::9'], /this node is not configured for IPv6/],
    [['-e', 'CALICO_IP=auto', '--net=host'], /cannot be combined with --net=host/],
  ];
  for (const [args, re] of cases) {
    const r = await h.docker(['run', '-d', '--name', 'bad', ...args, 'busybox', 'sleep', '60']);
    assert.notEqual(r.code, 0, `should fail: ${args.join(' ')}`);
    assert.match(r.stderr, re);
    const ps = await h.docker(['ps', '-a', '--filter', 'name=^bad$', '-q']);
    assert.equal(ps.stdout.trim(), '', `no container was created for ${args.join(' ')}`);
  }
  assert.equal(await inUse(), before);
  assert.equal((await h.docker(['rm', '-f', 'holder'])).code, 0);
  await h.kv.delete(keys.pool('10.50.0.0/16', 4));
});

test('a container that exits at once: a clear error and nothing left behind', async () => {
  const before = await inUse();
  const r = await h.docker(['run', '-d', '--name', 'quick', '-e', 'CALICO_IP=auto', 'busybox', 'true']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /exited before Calico could network it/);
  const cid = (await h.docker(['inspect', '-f', '{{.Id}}', 'quick'])).stdout.trim();
  assert.deepEqual(await endpointsOf(cid), []);
  assert.equal(await inUse(), before);
  assert.deepEqual(await caliLinks(), []);
  await h.docker(['rm', '-f', 'quick']);
});

test('a start the daemon refuses gives the reserved address back at once, and the container can still be removed', async () => {
  const before = await inUse();
  const r = await h.docker(['run', '-d', '--name', 'nocmd', '-e', 'CALICO_IP=192.168.4.4', 'busybox', '/no/such/command']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no such file or directory/);
  assert.equal(await inUse(), before, 'the reservation was released');
  const again = await h.docker(['start', 'nocmd']);
  assert.notEqual(again.code, 0);
  assert.equal(await inUse(), before);
  assert.equal((await h.docker(['rm', '-f', 'nocmd'])).code, 0);
});

test('work outside the proxy is caught: removal via the direct socket, --rm, restart policy', async () => {
  const r = await h.docker(['run', '-d', '--name', 'side', '-e', 'CALICO_IP=auto', 'busybox', 'sleep', '3600']);
  assert.equal(r.code, 0, r.stderr);
  const cid = r.stdout.trim();
  assert.equal((await h.docker(['rm', '-f', 'side'], { direct: true })).code, 0);
  await waitFor('cleanup after a removal through the direct socket', async () => (await endpointsOf(cid)).length === 0 && (await inUse()) === 0, 15000, 100);

  const rm = await h.docker(['run', '-d', '--rm', '--name', 'rmme', '-e', 'CALICO_IP=auto', 'busybox', 'sleep', '1']);
  assert.equal(rm.code, 0, rm.stderr);
  await waitFor('cleanup after --rm', async () => (await endpointsOf(rm.stdout.trim())).length === 0 && (await inUse()) === 0, 20000, 200);

  // Exits once, then the restart policy starts it again outside the proxy: it must be re-wired.
  const script = 'if [ -f /once ]; then exec sleep 3600; else touch /once; sleep 1; exit 1; fi';
  const rp = await h.docker(['run', '-d', '--name', 'phoenix', '--restart=always', '-e', 'CALICO_IP=192.168.3.3', '-e', 'CALICO_PROFILE=OPEN', 'busybox', 'sh', '-c', script]);
  assert.equal(rp.code, 0, rp.stderr);
  await waitFor('the restarted container to be re-wired', async () => {
    const n = JSON.parse((await h.docker(['inspect', 'phoenix'], { direct: true })).stdout)[0].RestartCount as number;
    if (n < 1) return false;
    return h.ping('192.168.3.3');
  }, 30000, 300);
  const [rec] = await endpointsOf(rp.stdout.trim());
  assert.deepEqual(rec!.ep.ipv4_nets, ['192.168.3.3/32']);
  assert.equal((await h.docker(['rm', '-f', 'phoenix'])).code, 0);
  await waitFor('all released', async () => (await inUse()) === 0, 10000);
});

test('100 concurrent docker run -d CALICO_IP=auto: 100 distinct addresses, and rm -f leaves nothing', async () => {
  const N = Number(process.env.CALICO_TEST_CONTAINERS ?? 100);
  const ids: string[] = [];
  const failures: string[] = [];
  const queue = Array.from({ length: N }, (_, i) => i);
  // All 100 requested at once through the proxy; the CLI processes are what the machine limits.
  await Promise.all(queue.map(async (i) => {
    const r = await h.docker(['run', '-d', '--name', `many${i}`, '-e', 'CALICO_IP=auto', 'busybox', 'sleep', '3600']);
    if (r.code === 0) ids.push(r.stdout.trim()); else failures.push(r.stderr);
  }));
  assert.deepEqual(failures, []);
  const addrs = new Set<string>();
  for (const id of ids) {
    const [rec] = await endpointsOf(id);
    assert.ok(rec, `endpoint for ${id}`);
    addrs.add(rec.ep.ipv4_nets[0]!);
  }
  assert.equal(addrs.size, N, 'distinct addresses');
  assert.equal(await inUse(), N);
  await Promise.all(ids.map((id) => h.docker(['rm', '-f', id])));
  assert.equal(await inUse(), 0);
  assert.deepEqual(await caliLinks(), []);
  assert.equal((await h.kv.list(keys.workloadsOfHost(h.name))).entries.length, 0);
});
