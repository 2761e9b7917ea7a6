/**
 * The agent against real etcd, real namespaces and real nftables, on one "host" namespace with
 * three workloads (A and C in PROF_A_C_E, B in PROF_B) and a fourth endpoint E that lives on
 * another host (datastore only), as in the classic calico-docker demo.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Agent } from '../../node/agent/agent.js';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { freePort } from '../harness/ports.js';
import { Lab, Workload, ping, eventually, tcpReaches, putEndpoint, putDefaultProfile, endpointKey, HOST_ADDR } from './lab.js';
import { keys } from '../../src/datastore/keys.js';
import type { KV } from '../../src/datastore/kv.js';
import { createLogger } from '../../src/log.js';
import { runInNetns, listRoutes, readSysctls, writeSysctls, nftListTable, CALICO_TABLE, CALICO_ROUTE_PROTOCOL, ipBatch, createNetns, getLink } from '../../src/dataplane/index.js';
import { ipSetName } from '../../node/agent/render/names.js';
import { Writable } from 'node:stream';

const NODE = 'host-a';
const lab = new Lab();
let etcd: TestEtcd;
let kv: KV;
let agent: Agent;
let metricsPort: number;
let A: Workload;
let B: Workload;
let C: Workload;
const logs: string[] = [];

/** Writes and waits until the agent has applied it. */
async function applied(rev: string | Promise<string>): Promise<void> {
  await agent.waitForRevision(await rev, 15000);
}

const nft = async () => (await nftListTable(CALICO_TABLE, { netns: lab.host })) ?? '';

before(async () => {
  etcd = await startEtcd();
  kv = etcd.kv('daemon');
  await lab.makeHost();
  A = await lab.makeWorkload('A', '10.65.0.1', { ip6: 'fd65::1' });
  B = await lab.makeWorkload('B', '10.65.0.2');
  C = await lab.makeWorkload('C', '10.65.0.3', { ip6: 'fd65::3' });
  await putDefaultProfile(kv, 'PROF_A_C_E');
  await putDefaultProfile(kv, 'PROF_B');
  await putEndpoint(kv, NODE, A, ['PROF_A_C_E']);
  await putEndpoint(kv, NODE, B, ['PROF_B'], { role: 'db' });
  await putEndpoint(kv, NODE, C, ['PROF_A_C_E']);
  // E runs on another host: only its record exists here.
  await kv.put(keys.workloadEndpoint('host-b', 'docker', 'E', 'eeeeeeeeeeee'), JSON.stringify({
    state: 'active', name: 'calieeeeeeeeeee', mac: null, profile_ids: ['PROF_A_C_E'], ipv4_nets: ['10.65.0.5/32'], ipv6_nets: [], ipv4_gateway: null, ipv6_gateway: null,
  }));
  metricsPort = await freePort();
  agent = new Agent({
    kv, nodeName: NODE, netns: lab.host, metricsPort, checkIntervalMs: 1500,
    logger: createLogger({ level: 'info', stream: new Writable({ write(c, _e, cb) { logs.push(String(c)); cb(); } }) }),
  });
  await agent.start();
});

after(async () => {
  await agent?.stop();
  await lab.cleanup();
  await etcd?.stop();
  const errors = logs.filter((l) => l.includes('"level":"error"') && !l.includes('IPIP'));
  if (errors.length) console.log('agent errors:\n' + errors.join(''));
});

test('the classic demo matrix: A reaches C; A does not reach B; B reaches no one; profile_ids changes take effect', async () => {
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'A -> C');
  assert.ok(await eventually(() => ping(A.ns, C.ip6!)), 'A -> C over IPv6');
  assert.equal(await ping(A.ns, B.ip), false, 'A -> B');
  assert.equal(await ping(B.ns, A.ip), false, 'B -> A');
  assert.equal(await ping(B.ns, C.ip), false, 'B -> C');
  const text = await nft();
  assert.match(text, new RegExp(`set ${ipSetName('tag:PROF_A_C_E', 4)} \\{[^}]*10\\.65\\.0\\.5`), 'E (another host) is in the PROF_A_C_E set');

  await applied(putEndpoint(kv, NODE, B, ['PROF_B', 'PROF_A_C_E'], { role: 'db' }));
  assert.ok(await eventually(() => ping(B.ns, A.ip)), 'B -> A after appending PROF_A_C_E');
  assert.ok(await eventually(() => ping(A.ns, B.ip)), 'A -> B too (B now carries the tag)');

  await applied(putEndpoint(kv, NODE, B, [], { role: 'db' }));
  assert.equal(await ping(B.ns, A.ip), false, 'B isolated again');
  assert.equal(await ping(A.ns, B.ip), false, 'nothing reaches a profile-less endpoint');
  await applied(putEndpoint(kv, NODE, B, ['PROF_B'], { role: 'db' }));
});

test('a rule with ports: tcp to 8080 allowed, 8081 refused', async () => {
  await applied(kv.put(keys.profileRules('PROF_B'), JSON.stringify({
    inbound_rules: [{ action: 'allow', protocol: 'tcp', src_tag: 'PROF_A_C_E', dst_ports: [8080, '9000:9010'] }],
    outbound_rules: [{ action: 'allow' }],
  })));
  assert.ok(await tcpReaches(lab, A.ns, B, 8080), 'tcp 8080');
  assert.equal(await tcpReaches(lab, A.ns, B, 8081), false, 'tcp 8081');
  assert.ok(await tcpReaches(lab, A.ns, B, 9005), 'tcp 9005 (in a range)');
  assert.equal(await ping(A.ns, B.ip), false, 'icmp is not in the rule');
  await applied(putDefaultProfile(kv, 'PROF_B'));
});

test('anti-spoofing: a workload that changes its address or MAC gets nothing through', async () => {
  assert.ok(await eventually(() => ping(A.ns, C.ip)));
  // New address, with a host route back so that only policy can stop it.
  // Add before delete: removing the last address would flush the routes through eth1.
  await runInNetns(A.ns, 'sh', ['-c', 'ip addr add 10.65.0.9/32 dev eth1 && ip addr del 10.65.0.1/32 dev eth1']);
  await ipBatch([`route replace 10.65.0.9/32 dev ${A.iface}`], { netns: lab.host });
  try {
    assert.equal(await ping(A.ns, C.ip), false, 'spoofed source address dropped');
    // Once the datastore says the address is A's, it passes: the check was the only obstacle.
    await applied(putEndpoint(kv, NODE, { ...A, ip: '10.65.0.9' }, ['PROF_A_C_E']));
    assert.ok(await eventually(() => ping(A.ns, C.ip)), 'allowed once the endpoint has that address');
  } finally {
    await runInNetns(A.ns, 'sh', ['-c', 'ip addr add 10.65.0.1/32 dev eth1; ip addr del 10.65.0.9/32 dev eth1; ip route replace 169.254.1.1 dev eth1 scope link; ip route replace default via 169.254.1.1 dev eth1']);
    await ipBatch([`route del 10.65.0.9/32 dev ${A.iface}`], { netns: lab.host, force: true });
    await applied(putEndpoint(kv, NODE, A, ['PROF_A_C_E']));
  }
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'back to normal');

  // New MAC: the host forgets the old neighbour entry, so without the MAC check this would work.
  await runInNetns(A.ns, 'ip', ['link', 'set', 'eth1', 'address', '02:65:00:00:00:99']);
  await runInNetns(lab.host, 'ip', ['neigh', 'flush', 'dev', A.iface]);
  try {
    assert.equal(await ping(A.ns, C.ip), false, 'spoofed MAC dropped');
  } finally {
    await runInNetns(A.ns, 'ip', ['link', 'set', 'eth1', 'address', A.mac]);
    await runInNetns(lab.host, 'ip', ['neigh', 'flush', 'dev', A.iface]);
  }
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'the real MAC passes again');
});

test('workload to host: DefaultEndpointToHostAction (default DROP, global ACCEPT, per-host override)', async () => {
  assert.equal(await ping(A.ns, HOST_ADDR), false, 'DROP by default');
  await applied(kv.put(keys.felixConfig('DefaultEndpointToHostAction'), 'ACCEPT'));
  assert.ok(await eventually(() => ping(A.ns, HOST_ADDR)), 'ACCEPT');
  assert.equal(await ping(B.ns, HOST_ADDR), true, 'through the egress policy of B (outbound allow)');
  await applied(kv.put(keys.hostConfig(NODE, 'DefaultEndpointToHostAction'), 'DROP'));
  assert.equal(await ping(A.ns, HOST_ADDR), false, 'the per-host value wins');
  await applied(kv.put(keys.hostConfig(NODE, 'DefaultEndpointToHostAction'), 'RETURN'));
  assert.ok(await eventually(() => ping(A.ns, HOST_ADDR)), 'RETURN lets the host decide (it accepts)');
  await applied(kv.put(keys.profileRules('PROF_B'), JSON.stringify({ inbound_rules: [], outbound_rules: [{ action: 'deny', dst_net: `${HOST_ADDR}/32` }, { action: 'allow' }] })));
  assert.equal(await ping(B.ns, HOST_ADDR), false, 'the endpoint\'s egress policy still applies to host-bound traffic');
  await kv.delete(keys.hostConfig(NODE, 'DefaultEndpointToHostAction'));
  await kv.delete(keys.felixConfig('DefaultEndpointToHostAction'));
  await applied(putDefaultProfile(kv, 'PROF_B'));
  assert.equal(await ping(A.ns, HOST_ADDR), false, 'back to DROP');
  // DHCP and DNS to the host come before the default action.
  const toHost = (await runInNetns(lab.host, 'nft', ['list', 'chain', 'inet', 'calico', 'wl-to-host'])).stdout;
  const lines = toHost.split('\n').map((l) => l.trim());
  const order = ['meta nfproto ipv4 udp sport 68 udp dport 67 accept', 'udp dport 53 accept', 'drop comment'].map((x) => lines.findIndex((l) => l.startsWith(x)));
  assert.ok(order.every((i) => i > 0) && order[0]! < order[2]! && order[1]! < order[2]!, toHost);
});

test('IPv6: an endpoint whose gateway is a host address gets a proxy NDP entry; its v6 source is checked', async () => {
  await applied(putEndpoint(kv, NODE, C, ['PROF_A_C_E'], {}, { ipv6_gateway: 'fd65::fffe' }));
  const proxies = (await runInNetns(lab.host, 'ip', ['-6', 'neigh', 'show', 'proxy', 'dev', C.iface])).stdout;
  assert.match(proxies, /fd65::fffe/);
  assert.ok(await eventually(() => ping(A.ns, C.ip6!)));
  await runInNetns(A.ns, 'ip', ['-6', 'addr', 'add', 'fd65::99/128', 'dev', 'eth1', 'nodad']);
  try {
    await runInNetns(A.ns, 'ip', ['-6', 'route', 'replace', 'default', 'via', 'fe80::ecee:eeff:feee:eeee', 'dev', 'eth1', 'src', 'fd65::99']);
    await ipBatch([`route replace fd65::99/128 dev ${A.iface}`], { netns: lab.host });
    assert.equal(await ping(A.ns, C.ip6!), false, 'a source address that is not the endpoint\'s is dropped');
  } finally {
    await runInNetns(A.ns, 'ip', ['-6', 'route', 'replace', 'default', 'via', 'fe80::ecee:eeff:feee:eeee', 'dev', 'eth1']);
    await runInNetns(A.ns, 'ip', ['-6', 'addr', 'del', 'fd65::99/128', 'dev', 'eth1']);
    await ipBatch([`route del fd65::99/128 dev ${A.iface}`], { netns: lab.host, force: true });
  }
  assert.ok(await eventually(() => ping(A.ns, C.ip6!)), 'the real source passes');
  await applied(putEndpoint(kv, NODE, C, ['PROF_A_C_E']));
});

test('a profile edited while traffic flows takes effect without a restart; established flows keep going', async () => {
  assert.ok(await eventually(() => ping(A.ns, C.ip)));
  const flow = lab.spawnIn(A.ns, 'busybox', ['ping', '-i', '0.2', C.ip]);
  let replies = 0;
  flow.stdout!.on('data', (d: Buffer) => { replies += (d.toString().match(/bytes from/g) ?? []).length; });
  try {
    assert.ok(await eventually(async () => replies >= 2), 'the long ping is answered');
    await applied(kv.put(keys.profileRules('PROF_A_C_E'), JSON.stringify({
      inbound_rules: [{ action: 'deny', protocol: 'icmp' }, { action: 'allow', src_tag: 'PROF_A_C_E' }], outbound_rules: [{ action: 'allow' }],
    })));
    assert.equal(await ping(A.ns, C.ip), false, 'a new ping is denied by the edited profile');
    const at = replies;
    assert.ok(await eventually(async () => replies >= at + 3), 'the established ping flow still gets replies');
    await applied(putDefaultProfile(kv, 'PROF_A_C_E'));
    assert.ok(await eventually(() => ping(A.ns, C.ip)), 'allowed again');
  } finally {
    if (flow.pid) process.kill(flow.pid, 'SIGKILL');
  }
});

test('v1 policies (by selector, in order) apply before profiles', async () => {
  const pol = (name: string, v: object) => kv.put(keys.policy(name), JSON.stringify(v));
  assert.equal(await ping(A.ns, B.ip), false);
  await applied(pol('allow-to-db', { order: 10, selector: "role == 'db'", inbound_rules: [{ action: 'allow', src_tag: 'PROF_A_C_E' }], outbound_rules: [], types: ['ingress'] }));
  assert.ok(await eventually(() => ping(A.ns, B.ip)), 'the policy lets A in although PROF_B would not');
  assert.ok(await eventually(() => ping(C.ns, B.ip)), 'and C');
  await applied(pol('deny-a', { order: 5, selector: "role == 'db'", inbound_rules: [{ action: 'deny', src_net: `${A.ip}/32` }], outbound_rules: [], types: ['ingress'] }));
  assert.equal(await ping(A.ns, B.ip), false, 'order 5 denies A first');
  assert.ok(await eventually(() => ping(C.ns, B.ip)), 'C does not match it and falls through to the next policy');
  await applied(pol('deny-a', { order: 20, selector: "role == 'db'", inbound_rules: [{ action: 'deny', src_net: `${A.ip}/32` }], outbound_rules: [], types: ['ingress'] }));
  assert.ok(await eventually(() => ping(A.ns, B.ip)), 'with order 20 the allow comes first');
  await applied(putEndpoint(kv, NODE, B, ['PROF_B'], { role: 'web' }));
  assert.equal(await ping(A.ns, B.ip), false, 'B no longer selected: its profile decides again');
  await kv.delete(keys.policy('allow-to-db'));
  await kv.delete(keys.policy('deny-a'));
  await applied(putEndpoint(kv, NODE, B, ['PROF_B'], { role: 'db' }));
  assert.doesNotMatch(await nft(), /pi-allow-to-db|pi-deny-a/, 'policy chains removed');
});

test('a removed endpoint loses its route, chains and conntrack entries; an unknown cali interface is dropped', async () => {
  assert.ok(await eventually(() => ping(A.ns, C.ip)));
  const ct = async () => (await runInNetns(lab.host, 'conntrack', ['-L', '-d', C.ip], { okCodes: [0, 1] })).stdout.split('\n').filter((l) => l.includes(C.ip)).length;
  assert.ok(await ct() >= 1, 'the ping left a conntrack entry');
  await applied(kv.delete(keys.workloadEndpoint(NODE, 'docker', C.name, C.endpointId)).then(async () => String((await kv.list('/calico/v1/host/')).revision)));
  const routes = await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL });
  assert.ok(!routes.some((r) => r.dev === C.iface), 'route gone');
  assert.doesNotMatch(await nft(), new RegExp(`"${C.iface}"`), 'no dispatch entry and no anti-spoofing entry left');
  assert.ok(await eventually(async () => (await ct()) === 0, 5000), 'conntrack entries of C deleted');
  assert.ok(await getLink(C.iface, { netns: lab.host }), 'the veth itself is the wiring\'s business and is still there');
  await ipBatch([`route replace ${C.ip}/32 dev ${C.iface}`], { netns: lab.host });
  assert.equal(await ping(A.ns, C.ip), false, 'an interface the agent does not know is dropped even with a route');
  await ipBatch([`route del ${C.ip}/32 dev ${C.iface}`], { netns: lab.host });
  await applied(putEndpoint(kv, NODE, C, ['PROF_A_C_E']));
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'back');
});

test('drift is found and repaired: a deleted route, a flushed chain, an edited set, a changed sysctl', async () => {
  // No periodic check while the four are broken: one that ran in between could repair a later
  // one in passing, unseen. Once checkNow() has answered, no check is running.
  agent.setCheckInterval(0);
  assert.deepEqual(await agent.checkNow(), { nftables: [], routes: 0, sysctls: 0 }, 'in sync to start with');
  const before = agent.status.driftRepairs;
  const logMark = logs.length;
  await runInNetns(lab.host, 'ip', ['route', 'del', `${C.ip}/32`, 'dev', C.iface]);
  await runInNetns(lab.host, 'nft', ['flush', 'chain', 'inet', 'calico', 'pri-PROF_A_C_E']);
  await runInNetns(lab.host, 'nft', ['delete', 'element', 'inet', 'calico', ipSetName('tag:PROF_A_C_E', 4), `{ ${A.ip} }`]);
  await writeSysctls([{ key: `net/ipv4/conf/${A.iface}/proxy_arp`, value: '0' }], { netns: lab.host });
  await agent.checkNow();
  assert.equal(agent.status.driftRepairs - before, 4, 'route, chain, set and sysctl each found once');
  const reported = logs.slice(logMark).filter((l) => l.includes('drift repaired')).join('');
  assert.ok(reported.includes('pri-PROF_A_C_E') && reported.includes(ipSetName('tag:PROF_A_C_E', 4)), reported);
  assert.ok(await eventually(() => ping(A.ns, C.ip)));
  // An anti-spoofing entry removed behind our back is put back (by checkNow or the timer).
  const entry = new RegExp(`"${A.iface}" \\. ${A.ip.replace(/\./g, '\\.')}`);
  await runInNetns(lab.host, 'nft', ['delete', 'element', 'inet', 'calico', 'wl-addr4', `{ "${A.iface}" . ${A.ip} }`]);
  await agent.checkNow();
  assert.match(await nft(), entry);
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'repaired');
  assert.deepEqual(await agent.checkNow(), { nftables: [], routes: 0, sysctls: 0 }, 'repaired');
  assert.ok(await eventually(() => ping(A.ns, C.ip)));
  // The periodic check (every 1.5 s here) finds drift on its own.
  agent.setCheckInterval(1500);
  await runInNetns(lab.host, 'ip', ['route', 'del', `${A.ip}/32`, 'dev', A.iface]);
  assert.ok(await eventually(async () => (await listRoutes({ netns: lab.host, protocol: CALICO_ROUTE_PROTOCOL })).some((x) => x.dst === `${A.ip}/32`), 8000), 'route put back without being asked');
  const sys = await readSysctls([`net/ipv4/conf/${A.iface}/proxy_arp`], { netns: lab.host });
  assert.equal(sys.get(`net/ipv4/conf/${A.iface}/proxy_arp`), '1');
});

test('NAT outgoing for masquerade pools, IPIP only from known nodes, metrics', async () => {
  // An "outside" network with no route back to the pool: replies only come back if we masquerade.
  const out = await createNetns(lab.nsName('out'));
  lab.made.push(out.name!);
  await ipBatch([`link add ox0 type veth peer name ox1 netns ${out.path}`, 'addr add 10.98.0.1/24 dev ox0', 'link set ox0 up'], { netns: lab.host });
  await ipBatch(['addr add 10.98.0.2/24 dev ox1', 'link set ox1 up'], { netns: out });
  await writeSysctls([{ key: 'net/ipv4/conf/ox0/forwarding', value: '1' }], { netns: lab.host });
  await applied(kv.put(keys.pool('10.65.0.0/16', 4), JSON.stringify({ cidr: '10.65.0.0/16', masquerade: false })));
  assert.equal(await ping(A.ns, '10.98.0.2'), false, 'no NAT: the outside cannot answer');
  await applied(kv.put(keys.pool('10.65.0.0/16', 4), JSON.stringify({ cidr: '10.65.0.0/16', masquerade: true, ipip: 'tunl0', ipip_mode: 'always' })));
  assert.ok(await eventually(() => ping(A.ns, '10.98.0.2')), 'masqueraded');
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'pool to pool is not masqueraded and still works');

  await kv.put(keys.birdIp(NODE), '172.31.0.1');
  await applied(kv.put(keys.birdIp('host-b'), '172.31.0.2'));
  const text = await nft();
  assert.match(text, /set all-hosts4 \{[^}]*172\.31\.0\.1, 172\.31\.0\.2/);
  assert.match(text, /meta l4proto ipencap ip saddr != @all-hosts4 drop/);
  const tunl = await getLink('tunl0', { netns: lab.host });
  if (tunl) assert.equal(tunl.up, true, 'tunl0 is up');
  else assert.ok(logs.some((l) => l.includes('no IPIP support')), 'a kernel without IPIP is reported');
  await kv.delete(keys.pool('10.65.0.0/16', 4));

  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port: metricsPort, path: '/metrics' }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve(b));
    }).on('error', reject).end();
  });
  assert.match(body, /calico_agent_local_endpoints 3/);
  assert.match(body, /calico_agent_apply_seconds_count\{mode="diff"\} [1-9]/);
  assert.match(body, /calico_agent_drift_repairs_total\{kind="routes"\} [1-9]/);
  assert.match(body, /calico_agent_drift_repairs_total\{kind="nftables"\} [1-9]/);
  assert.equal(await nftListTable(CALICO_TABLE), undefined, 'the real host was never touched');
  assert.ok(endpointKey(NODE, A).includes(A.endpointId));
});
