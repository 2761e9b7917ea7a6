/**
 * Both calicoctl families against a real etcd: what one writes the other reads, the stored JSON
 * has the originals' shapes, and the tables read like the originals'.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { boundCalicoctl } from '../harness/calicoctl.js';
import { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let cc: ReturnType<typeof boundCalicoctl>;

before(async () => {
  etcd = await startEtcd();
  kv = etcd.kv();
  cc = boundCalicoctl({ ...etcd.env, CALICO_NODENAME: 'calico-01' });
});
after(async () => { await etcd?.stop(); });
beforeEach(async () => { await etcd.wipe(); });

const raw = async (key: string) => JSON.parse((await kv.get(key))!.value) as unknown;

test('profile add -> get profile -o yaml, and the stored keys are the originals\'', async () => {
  assert.equal(await cc.ok(['profile', 'add', 'PROF_A_C_E']), 'Created profile PROF_A_C_E\n');
  assert.equal(await cc.ok(['profile', 'add', 'PROF_A_C_E']), 'Profile PROF_A_C_E already exists.\n');
  assert.deepEqual(await raw('/calico/v1/policy/profile/PROF_A_C_E/tags'), ['PROF_A_C_E']);
  assert.deepEqual(await raw('/calico/v1/policy/profile/PROF_A_C_E/rules'), {
    id: 'PROF_A_C_E', inbound_rules: [{ action: 'allow', src_tag: 'PROF_A_C_E' }], outbound_rules: [{ action: 'allow' }],
  });
  const docs = YAML.parse(await cc.ok(['get', 'profile', 'PROF_A_C_E', '-o', 'yaml']));
  assert.deepEqual(docs, [{
    apiVersion: 'v1', kind: 'profile', metadata: { name: 'PROF_A_C_E', tags: ['PROF_A_C_E'] },
    spec: { ingress: [{ action: 'allow', source: { tag: 'PROF_A_C_E' } }], egress: [{ action: 'allow' }] },
  }]);
  const json = JSON.parse(await cc.ok(['get', 'pro', '-o', 'json']));
  assert.equal(json[0].metadata.name, 'PROF_A_C_E');
});

test('create profile from YAML -> profile rule show / tag show / rule json', async () => {
  const doc = `
apiVersion: v1
kind: profile
metadata:
  name: web
  tags: [web, frontend]
  labels: {tier: front}
spec:
  ingress:
  - action: allow
    protocol: tcp
    source: {tag: frontend, net: 10.0.0.7/8}
    destination: {ports: [80, "8000:8080"]}
  - action: deny
    protocol: icmp
    icmp: {type: 8, code: 0}
  egress:
  - action: allow
`;
  assert.match(await cc.ok(['create', '-f', '-'], doc), /Successfully created 1 'profile' resource\(s\)/);
  assert.equal(await cc.ok(['profile', 'web', 'tag', 'show']), 'web\nfrontend\n');
  assert.equal(await cc.ok(['profile', 'web', 'rule', 'show']),
    'Inbound rules:\n   1 allow tcp from tag frontend 10.0.0.0/8 to ports 80,8000:8080\n   2 deny icmp type 8 code 0\nOutbound rules:\n   1 allow\n');
  const rj = JSON.parse(await cc.ok(['profile', 'web', 'rule', 'json']));
  assert.deepEqual(rj.inbound_rules[0], { action: 'allow', protocol: 'tcp', src_tag: 'frontend', src_net: '10.0.0.0/8', dst_ports: [80, '8000:8080'] });
  assert.deepEqual(await raw('/calico/v1/policy/profile/web/labels'), { tier: 'front' });
  // rule update (JSON on stdin) then visible to get
  rj.outbound_rules = [{ action: 'deny', dst_net: '192.168.0.0/16' }];
  assert.equal(await cc.ok(['profile', 'web', 'rule', 'update'], JSON.stringify(rj)), 'Successfully updated rules on profile web\n');
  const got = YAML.parse(await cc.ok(['get', 'profile', 'web', '-o', 'yaml']));
  assert.deepEqual(got[0].spec.egress, [{ action: 'deny', destination: { net: '192.168.0.0/16' } }]);
  const mismatch = await cc.run(['profile', 'web', 'rule', 'update'], JSON.stringify({ ...rj, id: 'other' }));
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /Rules JSON "id"=other doesn't match profile name web\./);
});

test('profile rule add/remove with --at and the originals\' messages', async () => {
  await cc.ok(['profile', 'add', 'P']);
  await cc.ok(['profile', 'P', 'rule', 'add', 'inbound', 'allow', 'tcp', 'to', 'ports', '22']);
  assert.equal(await cc.ok(['profile', 'P', 'rule', 'add', 'inbound', 'allow', 'tcp', 'to', 'ports', '22']), 'Rule already present, skipping.\n');
  await cc.ok(['profile', 'P', 'rule', 'add', 'inbound', '--at=1', 'deny', 'from', 'cidr', '10.9.0.0/16']);
  assert.equal(await cc.ok(['profile', 'P', 'rule', 'add', 'outbound', '--at=9', 'deny', 'udp']), 'Position 9 is out-of-range.\n');
  assert.equal(await cc.ok(['profile', 'P', 'rule', 'show']),
    'Inbound rules:\n   1 deny from 10.9.0.0/16\n   2 allow from tag P\n   3 allow tcp to ports 22\nOutbound rules:\n   1 allow\n   2 deny udp\n');
  await cc.ok(['profile', 'P', 'rule', 'remove', 'inbound', '--at=1']);
  await cc.ok(['profile', 'P', 'rule', 'remove', 'outbound', 'deny', 'udp']);
  const notFound = await cc.run(['profile', 'P', 'rule', 'remove', 'outbound', 'deny', 'udp']);
  assert.equal(notFound.code, 1);
  assert.equal(notFound.stderr, 'Rule not found.\n');
  const oob = await cc.run(['profile', 'P', 'rule', 'remove', 'inbound', '--at=7']);
  assert.equal(oob.stderr, 'Rule position out-of-range.\n');
  const badPort = await cc.run(['profile', 'P', 'rule', 'add', 'inbound', 'allow', 'icmp', 'to', 'ports', '80']);
  assert.equal(badPort.code, 1);
  assert.match(badPort.stderr, /Ports are not valid with protocol icmp/);
});

test('profile tag add/remove, remove, show tables', async () => {
  await cc.ok(['profile', 'add', 'B']);
  await cc.ok(['profile', 'add', 'A_LONGER_NAME']);
  assert.equal(await cc.ok(['profile', 'B', 'tag', 'add', 'extra']), 'Tag extra added to profile B\n');
  assert.deepEqual(await raw('/calico/v1/policy/profile/B/tags'), ['B', 'extra']);
  assert.equal(await cc.ok(['profile', 'B', 'tag', 'remove', 'extra']), 'Tag extra removed from profile B\n');
  const r = await cc.run(['profile', 'B', 'tag', 'remove', 'extra']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Tag extra is not on profile B\n');
  const nf = await cc.run(['profile', 'NOPE', 'tag', 'show']);
  assert.equal(nf.stderr, 'Profile NOPE not found.\n');
  assert.equal(await cc.ok(['profile', 'show']), [
    '+---------------+',
    '|      Name     |',
    '+---------------+',
    '| A_LONGER_NAME |',
    '|       B       |',
    '+---------------+',
    '',
  ].join('\n'));
  assert.deepEqual(JSON.parse(await cc.ok(['profile', 'show', '-o', 'json'])), [{ name: 'A_LONGER_NAME' }, { name: 'B' }]);
  assert.equal(await cc.ok(['profile', 'remove', 'B']), 'Deleted profile B\n');
  assert.equal((await kv.list('/calico/v1/policy/profile/B/')).entries.length, 0);
  const gone = await cc.run(['profile', 'remove', 'B']);
  assert.equal(gone.stderr, "Couldn't find profile with name B\n");
});

const WEP = (profiles: string[] = []) => `
apiVersion: v1
kind: workloadEndpoint
metadata: {name: 0123456789abcdef0123456789abcdef, workload: c0ffee, orchestrator: docker, node: calico-01, labels: {app: web}}
spec:
  interfaceName: cali01234567890
  mac: EE:EE:EE:00:00:01
  ipNetworks: [192.168.1.1/32, "fd80::1/128"]
  profiles: [${profiles.join(', ')}]
`;

test('workloadEndpoint: create via YAML, endpoint show tables, profile append/remove/set', async () => {
  await cc.ok(['profile', 'add', 'PROF_A']);
  await cc.ok(['profile', 'add', 'PROF_B']);
  await cc.ok(['create', '-f', '-'], WEP());
  const key = '/calico/v1/host/calico-01/workload/docker/c0ffee/endpoint/0123456789abcdef0123456789abcdef';
  assert.deepEqual(await raw(key), {
    state: 'active', name: 'cali01234567890', mac: 'ee:ee:ee:00:00:01', profile_ids: [], ipv4_nets: ['192.168.1.1/32'],
    ipv6_nets: ['fd80::1/128'], ipv4_gateway: null, ipv6_gateway: null, labels: { app: 'web' },
  });
  assert.equal(await cc.ok(['endpoint', 'show']), [
    '+-----------+-----------------+--------------+--------------+',
    '|  Hostname | Orchestrator ID | NumWorkloads | NumEndpoints |',
    '+-----------+-----------------+--------------+--------------+',
    '| calico-01 |      docker     |      1       |      1       |',
    '+-----------+-----------------+--------------+--------------+',
    '', ''].join('\n'));
  const eid = '0123456789abcdef0123456789abcdef';
  assert.equal(await cc.ok(['endpoint', eid, 'profile', 'append', 'PROF_A', 'PROF_B']), `Profiles PROF_A, PROF_B appended to ${eid}.\n\n`);
  const dup = await cc.run(['endpoint', eid, 'profile', 'append', 'PROF_A']);
  assert.equal(dup.stderr, 'Profile PROF_A is already in endpoint profile list\n');
  const wep = YAML.parse(await cc.ok(['get', 'wep', '-o', 'yaml']));
  assert.deepEqual(wep[0].spec.profiles, ['PROF_A', 'PROF_B']);
  assert.equal(await cc.ok(['endpoint', eid, 'profile', 'remove', 'PROF_A']), `Profiles PROF_A removed from ${eid}.\n\n`);
  assert.equal(await cc.ok(['endpoint', eid, 'profile', 'show']), '+--------+\n|  Name  |\n+--------+\n| PROF_B |\n+--------+\n');
  assert.equal(await cc.ok(['endpoint', eid, 'profile', 'set']), `Profiles  set for ${eid}.\n\n`);
  assert.equal(await cc.ok(['endpoint', eid, 'profile', 'show']), 'Endpoint has no profiles associated with it.\n');
  const unknown = await cc.run(['endpoint', 'deadbeef', 'profile', 'show']);
  assert.equal(unknown.stderr, 'Endpoint deadbeef is unknown to Calico.\n');
  const noProf = await cc.run(['endpoint', eid, 'profile', 'append', 'NOPE']);
  assert.equal(noProf.stderr, 'Profile with name NOPE was not found.\n');
  const detailed = await cc.ok(['endpoint', 'show', '--detailed']);
  assert.match(detailed, /\| calico-01 \|\s+docker\s+\|\s+c0ffee\s+\| 0123456789abcdef0123456789abcdef \|\s+192\.168\.1\.1\/32\s+\| ee:ee:ee:00:00:01 \|/);
  assert.match(detailed, /\|\s+fd80::1\/128\s+\|/, 'second address on its own line');
  // the v1 replace keeps the profiles given in the document
  await cc.ok(['replace', '-f', '-'], WEP(['PROF_B']));
  assert.deepEqual((await raw(key) as { profile_ids: string[] }).profile_ids, ['PROF_B']);
  assert.equal(await cc.ok(['get', 'workloadEndpoint']), 'NODE        ORCHESTRATOR   WORKLOAD   NAME\ncalico-01   docker         c0ffee     0123456789abcdef0123456789abcdef\n\n');
  assert.match(await cc.ok(['delete', 'wep', eid]), /Successfully deleted 1 'workloadEndpoint' resource\(s\)/);
  assert.equal(await kv.get(key), undefined);
});

test('pools: pool add/show/remove <-> get/create ipPool, v1 and v3 documents', async () => {
  await cc.ok(['pool', 'add', '10.1.0.0/16', '--ipip', '--nat-outgoing']);
  assert.deepEqual(await raw('/calico/v1/ipam/v4/pool/10.1.0.0-16'), { cidr: '10.1.0.0/16', ipip: 'tunl0', ipip_mode: 'always', masquerade: true, ipam: true, disabled: false });
  await cc.ok(['apply', '-f', '-'], 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p2}\nspec: {cidr: 10.2.0.1/16, ipipMode: CrossSubnet, natOutgoing: false, blockSize: 28}\n');
  await cc.ok(['create', '-f', '-'], 'apiVersion: v1\nkind: ipPool\nmetadata: {cidr: "fd00::/48"}\nspec: {disabled: true}\n');
  assert.equal(await cc.ok(['pool', 'show']), [
    '+-------------+-------------------+',
    '|  IPv4 CIDR  |      Options      |',
    '+-------------+-------------------+',
    '| 10.1.0.0/16 | ipip,nat-outgoing |',
    '| 10.2.0.0/16 |        ipip       |',
    '+-------------+-------------------+',
    '+-----------+----------+',
    '| IPv6 CIDR | Options  |',
    '+-----------+----------+',
    '| fd00::/48 | disabled |',
    '+-----------+----------+',
    ''].join('\n'));
  assert.equal(await cc.ok(['get', 'ippool', '-o', 'wide']), 'CIDR          NAT     IPIP\n10.1.0.0/16   true    true\n10.2.0.0/16   false   true\nfd00::/48     false   false\n\n');
  const v3 = YAML.parse(await cc.ok(['get', 'pool', '10.2.0.0/16', '-o', 'yaml']));
  assert.deepEqual(v3[0].spec, { ipip: { enabled: true, mode: 'cross-subnet' }, 'nat-outgoing': false, blockSize: 28 });
  const six = await cc.run(['pool', 'add', 'fd01::/64', '--ipip']);
  assert.equal(six.stderr, 'IP in IP not supported for IPv6 pools\n');
  const overlap = await cc.run(['pool', 'add', '10.1.128.0/17']);
  assert.equal(overlap.code, 1);
  assert.match(overlap.stderr, /overlaps the existing pool 10\.1\.0\.0\/16/);
  await cc.ok(['pool', 'remove', '10.1.0.0/16']);
  const again = await cc.run(['pool', 'remove', '10.1.0.0/16']);
  assert.equal(again.stderr, '10.1.0.0/16 is not a configured pool.\n');
  assert.match(await cc.ok(['pool', 'show', '--ipv4', '-o', 'json']), /"cidr": "10.2.0.0\/16"/);
});

test('BGP: peers, node mesh, default AS, node-specific peers <-> bgpPeer / bgpConfiguration resources', async () => {
  await cc.ok(['bgp', 'peer', 'add', '172.17.8.200', 'as', '65001']);
  await cc.ok(['bgppeer', 'add', 'fd80::99', 'as', '1.10']);
  assert.deepEqual(await raw('/calico/bgp/v1/global/peer_v4/172.17.8.200'), { ip: '172.17.8.200', as_num: '65001' });
  assert.deepEqual(await raw('/calico/bgp/v1/global/peer_v6/fd80::99'), { ip: 'fd80::99', as_num: '65546' });
  assert.equal(await cc.ok(['bgp', 'peer', 'show', '--ipv4']), [
    '+----------------------+--------+',
    '| Global IPv4 BGP Peer | AS Num |',
    '+----------------------+--------+',
    '| 172.17.8.200         | 65001  |',
    '+----------------------+--------+',
    ''].join('\n'));
  assert.equal(await cc.ok(['node', 'bgp', 'peer', 'show', '--ipv4']), 'No IPv4 BGP Peers defined for this node.\n\n');
  await cc.ok(['create', '-f', '-'], 'apiVersion: v1\nkind: bgpPeer\nmetadata: {scope: node, node: calico-01, peerIP: 10.0.0.1}\nspec: {asNumber: 64600}\n');
  assert.match(await cc.ok(['node', 'bgppeer', 'show', '--ipv4']), /\| 10\.0\.0\.1\s+\| 64600\s+\|/);
  assert.equal(await cc.ok(['get', 'bgpp']), 'SCOPE    PEERIP         NODE        ASN\nglobal   172.17.8.200               65001\nglobal   fd80::99                   65546\nnode     10.0.0.1       calico-01   64600\n\n');
  assert.equal(await cc.ok(['bgp', 'peer', 'remove', '172.17.8.200']), 'BGP peer removed from global configuration\n');
  assert.equal((await cc.run(['bgp', 'peer', 'remove', '172.17.8.200'])).stderr, '172.17.8.200 is not a globally configured peer.\n');
  assert.equal(await cc.ok(['node', 'bgp', 'peer', 'remove', '10.0.0.1']), 'BGP peer removed from node configuration\n');

  assert.equal(await cc.ok(['bgp', 'node-mesh']), 'on\n');
  await cc.ok(['bgp', 'node-mesh', 'off']);
  assert.deepEqual(await raw('/calico/bgp/v1/global/node_mesh'), { enabled: false });
  assert.equal(await cc.ok(['config', 'get', 'nodeToNodeMesh']), 'off\n');
  assert.equal(await cc.ok(['bgp', 'default-node-as']), '64512\n');
  await cc.ok(['apply', '-f', '-'], 'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 63400, nodeToNodeMeshEnabled: true, logSeverityScreen: Info}\n');
  assert.equal(await cc.ok(['default-node-as']), '63400\n');
  assert.equal(await cc.ok(['bgp-node-mesh']), 'on\n');
  await cc.ok(['config', 'set', 'asNumber', '64999', '--node', 'calico-02']);
  const cfg = YAML.parse(await cc.ok(['get', 'bgpconfig', '-o', 'yaml']));
  assert.deepEqual(cfg.map((c: { metadata: { name: string } }) => c.metadata.name), ['default', 'node.calico-02']);
  assert.equal(cfg[1].spec.asNumber, 64999);
  // selector peers (v3)
  await cc.ok(['create', '-f', '-'], "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: to-rr}\nspec: {nodeSelector: \"!has(rr)\", peerSelector: has(rr)}\n");
  assert.deepEqual(await raw('/calico/bgp/v1/global/peer_selector/to-rr'), { name: 'to-rr', node_selector: '!has(rr)', peer_selector: 'has(rr)' });
  const bad = await cc.run(['bgp', 'peer', 'add', '1.2.3.4', 'as', '4294967296']);
  assert.equal(bad.stderr, 'Invalid AS Number specified.\n');
});

test('nodes, host endpoints and policies round-trip', async () => {
  await cc.ok(['apply', '-f', '-'], [
    'apiVersion: v1\nkind: node\nmetadata: {name: calico-01}\nspec: {bgp: {ipv4Address: 172.17.8.101/24, asNumber: 64513}}',
    'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: calico-02, labels: {rr: "yes"}}\nspec: {bgp: {ipv4Address: 172.17.8.102/24, routeReflectorClusterID: 224.0.0.1}}',
  ].join('\n---\n'));
  assert.equal((await kv.get('/calico/v1/host/calico-01/bird_ip'))!.value, '172.17.8.101');
  assert.equal((await kv.get('/calico/bgp/v1/host/calico-01/ip_addr_v4'))!.value, '172.17.8.101');
  assert.equal((await kv.get('/calico/bgp/v1/host/calico-02/rr_cluster_id'))!.value, '224.0.0.1');
  // Node labels go where the BGP speaker reads them for peer selectors.
  assert.deepEqual(await raw('/calico/bgp/v1/host/calico-02/labels'), { rr: 'yes' });
  assert.deepEqual(YAML.parse(await cc.ok(['get', 'node', 'calico-02', '-o', 'yaml']))[0].metadata.labels, { rr: 'yes' });
  assert.equal(await cc.ok(['get', 'nodes', '-o', 'wide']), 'NAME        ASN       IPV4              IPV6\ncalico-01   64513     172.17.8.101/24\ncalico-02   (64512)   172.17.8.102/24\n\n');
  await cc.ok(['create', '-f', '-'], 'apiVersion: v1\nkind: hostEndpoint\nmetadata: {name: eth0, node: calico-01, labels: {role: host}}\nspec: {interfaceName: eth0, expectedIPs: [172.17.8.101], profiles: [P]}\n');
  assert.deepEqual(await raw('/calico/v1/host/calico-01/endpoint/eth0'), { name: 'eth0', expected_ipv4_addrs: ['172.17.8.101'], expected_ipv6_addrs: [], labels: { role: 'host' }, profile_ids: ['P'] });
  assert.equal(await cc.ok(['get', 'hep', '-o', 'wide']), 'NODE        NAME   INTERFACE   IPS            PROFILES\ncalico-01   eth0   eth0        172.17.8.101   P\n\n');
  await cc.ok(['create', '-f', '-'], "apiVersion: v1\nkind: policy\nmetadata: {name: allow-db}\nspec:\n  order: 10\n  selector: role == 'db'\n  ingress:\n  - action: allow\n    protocol: tcp\n    source: {selector: role == 'web'}\n    destination: {ports: [5432]}\n");
  assert.deepEqual(await raw('/calico/v1/policy/tier/default/policy/allow-db'), {
    order: 10, selector: "role == 'db'", inbound_rules: [{ action: 'allow', protocol: 'tcp', src_selector: "role == 'web'", dst_ports: [5432] }],
    outbound_rules: [], untracked: false, pre_dnat: false, types: ['ingress'],
  });
  assert.equal(await cc.ok(['get', 'policy', '-o', 'wide']), "NAME       ORDER   SELECTOR\nallow-db   10      role == 'db'\n\n");
  assert.equal(await cc.ok(['get', 'policy', '-o', 'custom-columns=NAME,ORDER']), 'NAME       ORDER\nallow-db   10\n\n');
  // get -o yaml output is valid input for apply
  const all = await cc.ok(['get', 'policy', '-o', 'yaml']);
  await cc.ok(['delete', 'policy', 'allow-db']);
  await cc.ok(['apply', '-f', '-'], all);
  assert.ok(await kv.get('/calico/v1/policy/tier/default/policy/allow-db'));
  await cc.ok(['delete', 'node', 'calico-02']);
  assert.equal((await kv.list('/calico/bgp/v1/host/calico-02/')).entries.length, 0);
});

test('config set/get/unset writes the keys the node reads', async () => {
  await cc.ok(['config', 'set', 'logLevel', 'debug']);
  assert.equal((await kv.get('/calico/bgp/v1/global/loglevel'))!.value, 'debug');
  assert.equal((await kv.get('/calico/v1/config/LogSeverityScreen'))!.value, 'DEBUG');
  await cc.ok(['config', 'set', 'logLevel', 'warning', '--node', 'calico-01']);
  assert.equal(await cc.ok(['config', 'get', 'logLevel', '--node', 'calico-01']), 'warning\n');
  assert.equal(await cc.ok(['config', 'get', 'logLevel', '--node', 'calico-02']), 'debug\n');
  await cc.ok(['config', 'set', 'ipip', 'on']);
  assert.equal((await kv.get('/calico/v1/config/IpInIpEnabled'))!.value, 'true');
  await cc.ok(['config', 'unset', 'ipip']);
  assert.equal(await cc.ok(['config', 'get', 'ipip']), 'off\n');
  const perNode = await cc.run(['config', 'set', 'nodeToNodeMesh', 'off', '--node', 'x']);
  assert.equal(perNode.code, 2);
  assert.match(perNode.stderr, /nodeToNodeMesh is global/);
  const badVal = await cc.run(['config', 'set', 'logLevel', 'loud']);
  assert.equal(badVal.code, 1);
  assert.match(badVal.stderr, /'loud' is not a log level/);
});
