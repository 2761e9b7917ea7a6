/**
 * Dataplane primitives against the real kernel: namespaces, veths, addresses, routes, sysctls,
 * nftables (scope guard, atomicity, the long-lived session), conntrack, and workload wiring.
 * Everything happens in namespaces made here (a "host" per run), removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  createNetns, deleteNetns, listNetns, netnsByName, netnsOfPid, runInNetns, ipBatch,
  createVethPair, listLinks, getLink, setLinkUp, setLinkDown, setLinkMac, getLinkMac, deleteLink,
  addAddress, listAddresses, deleteAddress,
  applyRouteChanges, listRoutes, CALICO_ROUTE_PROTOCOL,
  writeSysctls, readSysctls,
  nftApply, nftListTable, nftTableExists, nftDeleteTable, NftSession, checkScriptScope, CALICO_TABLE,
  flushConntrackFor, IpSession, wireWorkload, unwireWorkload, GATEWAY_V6, HOST_SIDE_MAC, inNetns,
  NftScopeError, NftError, LinkExistsError, WiringError, NetnsNotFoundError,
  WireHelper, WireHelperError, ensureWireHelper, HostSideRequest,
} from '../../src/dataplane/index.js';
import { ValidationError } from '../../src/errors.js';
import { Lab, ping } from '../agent/lab.js';

const lab = new Lab();
const helpers: WireHelper[] = [];

/** The native wiring helper for the lab's host namespace (built if needed), or none for the `ip` path. */
function helperFor(impl: 'ip' | 'native'): WireHelper | undefined {
  if (impl === 'ip') return undefined;
  const h = new WireHelper(ensureWireHelper(), lab.host);
  helpers.push(h);
  return h;
}

before(async () => {
  await lab.makeHost();
});

after(async () => {
  for (const h of helpers) await h.close();
  await lab.cleanup();
});

test('netns: create, list, run inside, delete; a missing one is a typed error', async () => {
  const name = lab.nsName('scratch');
  const ns = await createNetns(name);
  lab.made.push(name);
  assert.ok(listNetns().includes(name));
  const out = await runInNetns(ns, 'ip', ['-o', 'link', 'show', 'lo']);
  assert.match(out.stdout, /lo:.*UP/, 'loopback is up in a new namespace');
  assert.equal(await deleteNetns(name), true);
  assert.equal(await deleteNetns(name), false);
  assert.ok(!listNetns().includes(name));
  await assert.rejects(runInNetns(netnsByName(name), 'ip', ['link']), NetnsNotFoundError);
  assert.throws(() => netnsByName('../etc'), ValidationError);
});

test('links: veth with the peer created (renamed) inside another netns; up/down, MAC, list by prefix, delete', async () => {
  const other = await createNetns(lab.nsName('peer'));
  lab.made.push(other.name!);
  const host = lab.host;
  const name = `tst${lab.suffix}`;
  await createVethPair({ netns: host, name, peerName: 'eth7', peerNetns: other, mac: '02:aa:bb:cc:dd:01', peerMac: '02:aa:bb:cc:dd:02' });
  const l = await getLink(name, { netns: host });
  assert.ok(l, 'host end exists');
  assert.equal(l.mac, '02:aa:bb:cc:dd:01');
  assert.equal(l.up, false);
  assert.equal(await getLinkMac('eth7', { netns: other }), '02:aa:bb:cc:dd:02');
  assert.equal(await getLink('eth7', { netns: host }), undefined, 'the peer never appears in the host namespace');
  await setLinkUp(name, { netns: host });
  assert.equal((await getLink(name, { netns: host }))!.up, true);
  await setLinkDown(name, { netns: host });
  assert.equal((await getLink(name, { netns: host }))!.up, false);
  await setLinkMac(name, '02:aa:bb:cc:dd:09', { netns: host });
  assert.equal(await getLinkMac(name, { netns: host }), '02:aa:bb:cc:dd:09');
  assert.deepEqual((await listLinks({ netns: host, prefix: 'tst' })).map((x) => x.name), [name]);
  await assert.rejects(createVethPair({ netns: host, name, peerName: 'eth8', peerNetns: other }), LinkExistsError);
  assert.throws(() => setLinkMac(name, '01:00:00:00:00:01', { netns: host }), ValidationError, 'multicast MAC refused');
  assert.equal(await deleteLink(name, { netns: host }), true);
  assert.equal(await getLink('eth7', { netns: other }), undefined, 'deleting one end removes the other');
  assert.equal(await deleteLink(name, { netns: host }), false);
});

test('addresses and routes: add/list/delete; routes listed by our protocol; deleting a missing route is not a failure', async () => {
  const dp = inNetns(lab.host);
  await dp.ipBatch(['link add rt0 type veth peer name rt1', 'link set rt0 up', 'link set rt1 up']);
  try {
    await addAddress('rt0', '10.98.0.1/24', { netns: lab.host });
    await addAddress('rt0', 'fd98::1/64', { netns: lab.host, noDad: true });
    const addrs = (await listAddresses({ netns: lab.host, dev: 'rt0' })).map((a) => a.cidr);
    assert.ok(addrs.includes('10.98.0.1/24') && addrs.includes('fd98::1/64'), addrs.join(','));
    await deleteAddress('rt0', '10.98.0.1/24', { netns: lab.host });
    assert.ok(!(await listAddresses({ netns: lab.host, dev: 'rt0' })).some((a) => a.cidr === '10.98.0.1/24'));

    const r = await applyRouteChanges({ replace: [{ dst: '10.97.0.5', dev: 'rt0' }, { dst: 'fd97::5/128', dev: 'rt0' }] }, { netns: lab.host });
    assert.deepEqual(r.failures, []);
    await ipBatch(['route add 10.97.0.6/32 dev rt0 proto static'], { netns: lab.host });
    const ours = await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL });
    assert.deepEqual(ours.map((x) => `${x.dst} ${x.dev}`).sort(), ['10.97.0.5/32 rt0', 'fd97::5/128 rt0'], 'only our protocol, never the static one');
    const del = await applyRouteChanges({ delete: [{ dst: '10.97.0.5/32', dev: 'rt0' }, { dst: '10.97.0.77/32', dev: 'rt0' }] }, { netns: lab.host });
    assert.deepEqual(del.failures, [], 'a route already gone is fine');
    assert.deepEqual((await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL, family: 4 })).length, 0);
    const bad = await applyRouteChanges({ replace: [{ dst: '10.97.0.8/32', dev: 'nosuchdev0' }] }, { netns: lab.host });
    assert.equal(bad.failures.length, 1, 'a route to a missing device is reported');
  } finally {
    await dp.deleteLink('rt0');
  }
});

test('ip session: batches on one long-lived ip, failures by line, an interface re-created under the same name still works', async () => {
  const s = new IpSession({ netns: lab.host });
  try {
    await ipBatch(['link add ss0 type veth peer name ss1', 'link set ss0 up'], { netns: lab.host });
    let r = await s.batch(['route replace 10.96.0.1/32 dev ss0 proto 80', 'route del 10.96.9.9/32 dev ss0 proto 80', 'route replace 10.96.0.2/32 dev ss0 proto 80']);
    assert.deepEqual(r.failures.map((f) => f.line), [2], 'only the delete of a missing route failed');
    r = await s.batch(['route replace 10.96.0.3/32 dev nosuch7 proto 80']);
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0]!.line, 1, 'line numbers are relative to the batch');
    // Re-create ss0: a long-lived ip has the old index cached; the session must cope.
    await ipBatch(['link del ss0', 'link add ss0 type veth peer name ss1', 'link set ss0 up'], { netns: lab.host });
    r = await s.batch(['route replace 10.96.0.4/32 dev ss0 proto 80']);
    assert.deepEqual(r.failures, []);
    const routes = (await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL, dev: 'ss0' })).map((x) => x.dst);
    assert.deepEqual(routes, ['10.96.0.4/32']);
  } finally {
    await s.close();
    await deleteLink('ss0', { netns: lab.host });
  }
});

test('sysctls: write and read back in another namespace; missing keys reported, bad keys refused', async () => {
  const dp = inNetns(lab.host);
  await dp.ipBatch(['link add sy0 type veth peer name sy1']);
  try {
    const keys = ['net/ipv4/conf/sy0/proxy_arp', 'net/ipv4/neigh/sy0/proxy_delay', 'net/ipv6/conf/sy0/accept_ra'];
    const res = await writeSysctls([
      { key: keys[0]!, value: '1' }, { key: keys[1]!, value: '0' }, { key: keys[2]!, value: '0' },
      { key: 'net/ipv4/conf/nosuch9/proxy_arp', value: '1' },
    ], { netns: lab.host });
    assert.deepEqual(res.missing, ['net/ipv4/conf/nosuch9/proxy_arp']);
    const got = await readSysctls([...keys, 'net/ipv4/conf/nosuch9/proxy_arp'], { netns: lab.host });
    assert.deepEqual([...got.values()], ['1', '0', '0', undefined]);
    const root = await readSysctls(['net/ipv4/conf/sy0/proxy_arp']);
    assert.equal(root.get('net/ipv4/conf/sy0/proxy_arp'), undefined, 'the root namespace has no such interface');
    await assert.rejects(writeSysctls([{ key: 'net/../../etc/passwd', value: 'x' }], { netns: lab.host }), ValidationError);
  } finally {
    await dp.deleteLink('sy0');
  }
});

test('nftables: scope guard, atomic transactions, long-lived session', async () => {
  const t = CALICO_TABLE;
  assert.throws(() => checkScriptScope('flush ruleset', t), NftScopeError);
  assert.throws(() => checkScriptScope('add table ip filter', t), NftScopeError);
  assert.throws(() => checkScriptScope('add rule inet calico x accept; delete table inet other', t), NftScopeError);
  assert.doesNotThrow(() => checkScriptScope('add table inet calico\nadd chain inet calico c { type filter hook input priority 0; policy accept; }', t));

  await nftApply('add table inet calico\nadd chain inet calico c1\nadd rule inet calico c1 ip saddr 10.0.0.1 drop\n', { netns: lab.host, table: t });
  assert.ok(await nftTableExists(t, { netns: lab.host }));
  assert.equal(await nftTableExists(t), false, 'nothing leaked into the root namespace');
  // A failing transaction changes nothing.
  await assert.rejects(nftApply('add chain inet calico c2\nadd rule inet calico nosuchchain drop\n', { netns: lab.host, table: t }), NftError);
  assert.doesNotMatch((await nftListTable(t, { netns: lab.host }))!, /c2/);

  const s = new NftSession({ netns: lab.host, table: t });
  try {
    await s.apply('flush chain inet calico c1\nadd rule inet calico c1 ip saddr 10.0.0.2 drop comment "x1"');
    const text = (await nftListTable(t, { netns: lab.host }))!;
    assert.match(text, /10\.0\.0\.2 drop comment "x1"/);
    assert.doesNotMatch(text, /10\.0\.0\.1/);
    await assert.rejects(s.apply('add chain inet calico c3; add rule inet calico missing drop'), NftError);
    assert.doesNotMatch((await nftListTable(t, { netns: lab.host }))!, /c3/, 'the failed session transaction left nothing');
    await assert.rejects(s.apply('delete table ip filter'), NftScopeError);
    await s.apply('add set inet calico s1 { type ipv4_addr; }; add element inet calico s1 { 10.1.1.1, 10.1.1.2 }');
    assert.match((await nftListTable(t, { netns: lab.host }))!, /10\.1\.1\.1, 10\.1\.1\.2/);
  } finally {
    await s.close();
  }
  assert.equal(await nftDeleteTable(t, { netns: lab.host }), true);
  assert.equal(await nftDeleteTable(t, { netns: lab.host }), false);
});

for (const impl of ['ip', 'native'] as const) {
test(`wireWorkload (${impl}): addresses, routes, proxy ARP; traffic host<->workload and workload<->workload (v4 and v6); unwire leaves nothing`, async () => {
  const helper = helperFor(impl);
  const A = await lab.makeWorkload(`A${impl}`, '10.66.0.1', { ip6: 'fd66::1' });
  // The second workload's namespace is given as /proc/<pid>/ns/net, as for a container.
  const holderNs = await createNetns(lab.nsName(`holder${impl}`));
  lab.made.push(holderNs.name!);
  const holder = spawn('nsenter', [`--net=${holderNs.path}`, 'sleep', '600'], { stdio: 'ignore' });
  lab.children.push(holder);
  const byPid = netnsOfPid(holder.pid!);
  const t0 = process.hrtime.bigint();
  const w = await wireWorkload({ netnsPath: byPid.path, endpointId: `b${lab.suffix}ffff00001`, ipv4Addrs: ['10.66.0.2'], ipv6Addrs: ['fd66::2'], hostNetns: lab.host, mac: '02:66:00:00:00:02', helper });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`wireWorkload (${impl}) into a foreign host namespace: ${ms.toFixed(1)} ms`);
  assert.equal(w.mac, '02:66:00:00:00:02');
  assert.equal(w.ipv4Gateway, '169.254.1.1');
  assert.equal(w.ipv6Gateway, GATEWAY_V6);

  // Container side
  const eth1 = await listAddresses({ netns: holderNs, dev: 'eth1' });
  assert.ok(eth1.some((a) => a.cidr === '10.66.0.2/32') && eth1.some((a) => a.cidr === 'fd66::2/128'));
  const croutes = (await runInNetns(holderNs, 'ip', ['route'])).stdout;
  assert.match(croutes, /default via 169\.254\.1\.1 dev eth1/);
  assert.match(croutes, /169\.254\.1\.1 dev eth1 scope link/);
  assert.match((await runInNetns(holderNs, 'ip', ['-6', 'route'])).stdout, /default via fe80::ecee:eeff:feee:eeee dev eth1/);
  // Host side
  const hl = await getLink(w.hostIfName, { netns: lab.host });
  assert.equal(hl?.mac, HOST_SIDE_MAC);
  const hr = await listRoutes({ netns: lab.host, dev: w.hostIfName, protocol: CALICO_ROUTE_PROTOCOL });
  assert.deepEqual(hr.map((r) => r.dst).sort(), ['10.66.0.2/32', 'fd66::2/128']);
  const sys = await readSysctls([`net/ipv4/conf/${w.hostIfName}/proxy_arp`, `net/ipv4/neigh/${w.hostIfName}/proxy_delay`, `net/ipv6/conf/${w.hostIfName}/proxy_ndp`, `net/ipv6/conf/${w.hostIfName}/accept_ra`], { netns: lab.host });
  assert.deepEqual([...sys.values()], ['1', '0', '1', '0']);

  // Traffic
  assert.ok(await ping(lab.host, '10.66.0.2'), 'host -> workload');
  assert.ok(await ping(A.ns, '10.66.0.2'), 'workload -> workload (v4)');
  assert.ok(await ping(holderNs, '10.66.0.1'), 'and back');
  assert.ok(await ping(A.ns, 'fd66::2'), 'workload -> workload (v6)');

  // Unwire: nothing left on either side.
  assert.equal(await unwireWorkload(`b${lab.suffix}ffff00001`, { hostNetns: lab.host }), true);
  assert.equal(await getLink(w.hostIfName, { netns: lab.host }), undefined);
  assert.equal(await getLink('eth1', { netns: holderNs }), undefined);
  assert.deepEqual(await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL, family: 4 }).then((r) => r.filter((x) => x.dst === '10.66.0.2/32')), []);
  assert.equal(await unwireWorkload(`b${lab.suffix}ffff00001`, { hostNetns: lab.host }), false, 'unwiring twice is harmless');
  assert.equal(await ping(A.ns, '10.66.0.2'), false);
  await unwireWorkload(A.endpointId, { hostNetns: lab.host });
});

test(`wireWorkload (${impl}): bad input is refused before anything is made; a failure half-way leaves nothing behind`, async () => {
  const ns = await createNetns(lab.nsName(`bad${impl}`));
  lab.made.push(ns.name!);
  const base = { netnsPath: ns.path, endpointId: `c${lab.suffix}eeee00001`, ipv6Addrs: [] as string[], hostNetns: lab.host, helper: helperFor(impl) };
  await assert.rejects(wireWorkload({ ...base, ipv4Addrs: ['10.66.1.0/24'] }), ValidationError);
  await assert.rejects(wireWorkload({ ...base, ipv4Addrs: ['fd00::1'] }), ValidationError);
  await assert.rejects(wireWorkload({ ...base, ipv4Addrs: [] }), ValidationError);
  await assert.rejects(wireWorkload({ ...base, ipv4Addrs: ['10.66.1.1'], mac: 'zz' }), ValidationError);
  await assert.rejects(wireWorkload({ ...base, netnsPath: '/proc/999999999/ns/net', ipv4Addrs: ['10.66.1.1'] }), NetnsNotFoundError);

  // Half-way: the host namespace refuses the IPv6 gateway address after the veth was made (the
  // container side turns IPv6 on for its own eth1, so it is the host that must refuse here).
  await runInNetns(lab.host, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);
  const before = (await listLinks({ netns: lab.host })).map((l) => l.name).sort();
  await assert.rejects(wireWorkload({ ...base, ipv4Addrs: ['10.66.1.1'], ipv6Addrs: ['fd66:1::1'] }), (err: unknown) => {
    assert.ok(err instanceof WiringError);
    assert.equal(err.rolledBack, true);
    return true;
  });
  assert.deepEqual((await listLinks({ netns: lab.host })).map((l) => l.name).sort(), before, 'no cali interface left on the host');
  assert.deepEqual((await listLinks({ netns: ns })).map((l) => l.name), ['lo'], 'no eth1 left in the container');
  assert.deepEqual((await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL })).filter((r) => r.dst.startsWith('10.66.1.') || r.dst.startsWith('fd66:1:')), []);

  // The same endpoint id twice: the second is refused and the first is untouched.
  await runInNetns(lab.host, 'sh', ['-c', 'echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 0 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);
  const ok = await wireWorkload({ ...base, ipv4Addrs: ['10.66.1.1'] });
  const other = await createNetns(lab.nsName(`bad2${impl}`));
  lab.made.push(other.name!);
  await assert.rejects(wireWorkload({ ...base, netnsPath: other.path, ipv4Addrs: ['10.66.1.2'] }), LinkExistsError);
  assert.ok(await getLink(ok.hostIfName, { netns: lab.host }));
  assert.ok(await ping(lab.host, '10.66.1.1'));
  await unwireWorkload(base.endpointId, { hostNetns: lab.host });
});
}

test('wiring helper: failures name their stage, nothing half-made is left, and a killed helper is replaced', async () => {
  const helper = helperFor('native')!;
  const ns = await createNetns(lab.nsName('hlp'));
  lab.made.push(ns.name!);
  const host = (over: Partial<HostSideRequest> = {}) => helper.host({
    containerNetnsPath: ns.path, hostIfName: `cali${lab.suffix}hlp`, containerIfName: 'eth1', hostMac: HOST_SIDE_MAC, containerMac: '02:00:00:00:00:01',
    addrGenModeNone: false, routeProtocol: CALICO_ROUTE_PROTOCOL, routes: ['10.66.3.1'], sysctls: [], ...over,
  });
  const stageOf = async (p: Promise<void>) => { try { await p; return 'ok'; } catch (err) { assert.ok(err instanceof WireHelperError, String(err)); return err.stage; } };
  assert.equal(await stageOf(host({ containerNetnsPath: '/proc/999999999/ns/net' })), 'netns');
  assert.equal(await stageOf(host({ routes: ['not-an-address'] })), 'input');
  assert.equal(await getLink(`cali${lab.suffix}hlp`, { netns: lab.host }), undefined, 'bad input made nothing');
  // A sysctl that does not exist: the veth exists by then (the caller deletes it).
  assert.equal(await stageOf(host({ sysctls: [{ key: 'net/ipv4/conf/nosuchif/proxy_arp', value: '1' }] })), 'sysctl');
  assert.equal(await stageOf(host()), 'exists');
  assert.equal(await stageOf(helper.container({ containerNetnsPath: ns.path, containerIfName: 'eth9', addresses: ['10.66.3.1/32'], enableIpv6: false })), 'container');
  await deleteLink(`cali${lab.suffix}hlp`, { netns: lab.host });
  // Killed between requests: the next request starts a new one.
  const pid = (helper as unknown as { child?: { pid: number } }).child?.pid;
  assert.ok(pid, 'the helper process runs');
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await stageOf(host()), 'ok');
  assert.notEqual((helper as unknown as { child?: { pid: number } }).child?.pid, pid);
  await deleteLink(`cali${lab.suffix}hlp`, { netns: lab.host });
});

test('conntrack: flows of an address are deleted', async () => {
  const A = await lab.makeWorkload('D', '10.66.2.1');
  // Connection tracking only runs in a namespace whose rules need it.
  await nftApply('add table inet calico\nadd chain inet calico f { type filter hook forward priority 0; policy accept; }\nadd rule inet calico f ct state established accept\n', { netns: lab.host, table: CALICO_TABLE });
  try {
    assert.ok(await ping(lab.host, '10.66.2.1'));
    const n = await flushConntrackFor('10.66.2.1', { netns: lab.host });
    assert.ok(n >= 1, `deleted ${n} entries`);
    assert.equal(await flushConntrackFor('10.66.2.1', { netns: lab.host }), 0);
  } finally {
    await nftDeleteTable(CALICO_TABLE, { netns: lab.host });
    await unwireWorkload(A.endpointId, { hostNetns: lab.host });
  }
});
