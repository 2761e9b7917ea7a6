/** deriveConfig: what etcd data turns into (mesh, reflectors, peers, selectors, local routes), and the status table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveConfig, parseAsNumber } from '../../node/bgp/config.js';
import { formatPeerStatus, PeerStatusRow } from '../../node/bgp/status.js';

const base = (extra: Record<string, string> = {}) => new Map<string, string>(Object.entries({
  '/calico/bgp/v1/host/n1/ip_addr_v4': '10.0.0.1',
  '/calico/bgp/v1/host/n1/ip_addr_v6': 'fd00::1',
  '/calico/bgp/v1/host/n2/ip_addr_v4': '10.0.0.2',
  '/calico/bgp/v1/host/n2/ip_addr_v6': 'fd00::2',
  '/calico/bgp/v1/host/n3/ip_addr_v4': '10.0.0.3',
  '/calico/v1/ipam/v4/pool/192.168.0.0-16': JSON.stringify({ cidr: '192.168.0.0/16', ipip: 'tunl0' }),
  '/calico/v1/ipam/v6/pool/fd80::-64': JSON.stringify({ cidr: 'fd80::/64' }),
  ...extra,
}));

test('node-to-node mesh by default (v4 and v6), AS 64512, router id = node IPv4', () => {
  const c = deriveConfig(base(), { nodeName: 'n1' });
  assert.equal(c.localAs, 64512);
  assert.equal(c.routerId, (10 << 24) + 1);
  assert.deepEqual(c.peers.map((p) => [p.address, p.type, p.remoteAs, p.name]), [
    ['10.0.0.2', 'node-to-node mesh', 64512, 'Mesh_10_0_0_2'],
    ['10.0.0.3', 'node-to-node mesh', 64512, 'Mesh_10_0_0_3'],
    ['fd00::2', 'node-to-node mesh', 64512, 'Mesh_fd00__2'],
  ]);
  assert.equal(c.peers[0]!.sourceAddress, '10.0.0.1');
});

test('node_mesh off, global and node-specific peers, per-node and global AS', () => {
  const c = deriveConfig(base({
    '/calico/bgp/v1/global/node_mesh': '{"enabled":false}',
    '/calico/bgp/v1/global/as_num': '65010',
    '/calico/bgp/v1/host/n2/as_num': '65002',
    '/calico/bgp/v1/global/peer_v4/172.16.0.1': JSON.stringify({ ip: '172.16.0.1', as_num: '65100' }),
    '/calico/bgp/v1/host/n1/peer_v4/172.16.0.2': JSON.stringify({ ip: '172.16.0.2', as_num: 65200 }),
    '/calico/bgp/v1/host/n2/peer_v4/172.16.0.3': JSON.stringify({ ip: '172.16.0.3', as_num: '65300' }),
    '/calico/bgp/v1/global/peer_v4/172.16.0.9': JSON.stringify({ ip: '172.16.0.9', as_num: 'bogus' }),
  }), { nodeName: 'n1' });
  assert.equal(c.meshEnabled, false);
  assert.equal(c.localAs, 65010);
  assert.deepEqual(c.peers.map((p) => [p.address, p.type, p.remoteAs]), [['172.16.0.1', 'global', 65100], ['172.16.0.2', 'node specific', 65200]]);
  assert.ok(c.problems.some((p) => p.includes('bogus')));
  assert.equal(deriveConfig(base({ '/calico/bgp/v1/host/n2/as_num': '65002' }), { nodeName: 'n2' }).localAs, 65002);
  assert.equal(parseAsNumber('1.10'), 65546);
  assert.equal(parseAsNumber('4294967296'), undefined);
});

test('route reflectors: clients peer only with reflectors; reflectors with everyone, clients flagged', () => {
  const data = base({ '/calico/bgp/v1/host/n3/rr_cluster_id': '1.0.0.1' });
  const client = deriveConfig(data, { nodeName: 'n1' });
  assert.deepEqual(client.peers.map((p) => [p.address, p.rrClient]), [['10.0.0.3', false]]);
  const rr = deriveConfig(data, { nodeName: 'n3' });
  assert.equal(rr.clusterId, (1 << 24) + 1);
  assert.deepEqual(rr.peers.map((p) => [p.address, p.rrClient]), [['10.0.0.1', true], ['10.0.0.2', true]]);
});

test('selector peers: all(), has(), node, peer_selector', () => {
  const c = deriveConfig(base({
    '/calico/bgp/v1/host/n2/labels': JSON.stringify({ rack: 'a' }),
    '/calico/bgp/v1/global/node_mesh': '{"enabled":false}',
    '/calico/bgp/v1/global/peer_selector/tor': JSON.stringify({ name: 'tor', node_selector: 'all()', peer_ip: '172.16.0.1', as_num: '65001' }),
    '/calico/bgp/v1/global/peer_selector/racka': JSON.stringify({ name: 'racka', node_selector: 'all()', peer_selector: 'has(rack)' }),
    '/calico/bgp/v1/global/peer_selector/only-n2': JSON.stringify({ name: 'only-n2', node: 'n2', peer_ip: '172.16.0.2', as_num: '65002' }),
    '/calico/bgp/v1/global/peer_selector/none': JSON.stringify({ name: 'none', node_selector: 'has(gpu)', peer_ip: '172.16.0.3', as_num: '65003' }),
  }), { nodeName: 'n1' });
  assert.deepEqual(c.peers.map((p) => [p.address, p.type, p.remoteAs]), [
    ['10.0.0.2', 'node specific', 64512],
    ['172.16.0.1', 'node specific', 65001],
    ['fd00::2', 'node specific', 64512],
  ]);
});

test('local routes: affine blocks inside pools, borrowed addresses outside our blocks, nothing outside pools', () => {
  const ep = (v4: string[], v6: string[] = []) => JSON.stringify({ state: 'active', name: 'calix', ipv4_nets: v4, ipv6_nets: v6 });
  const c = deriveConfig(base({
    '/calico/ipam/v2/host/n1/ipv4/block/192.168.5.0-26': '{}',
    '/calico/ipam/v2/host/n1/ipv6/block/fd80::-122': '{}',
    '/calico/ipam/v2/host/n1/ipv4/block/10.200.0.0-26': '{}',
    '/calico/ipam/v2/host/n2/ipv4/block/192.168.9.0-26': '{}',
    '/calico/v1/host/n1/workload/docker/a/endpoint/a': ep(['192.168.5.3/32']),
    '/calico/v1/host/n1/workload/docker/b/endpoint/b': ep(['192.168.9.7/32'], ['fd80::1:7/128']),
    '/calico/v1/host/n1/workload/docker/c/endpoint/c': ep(['172.20.0.1/32']),
    '/calico/v1/host/n2/workload/docker/d/endpoint/d': ep(['192.168.77.1/32']),
  }), { nodeName: 'n1' });
  assert.deepEqual(c.localRoutes.map((r) => `${r.kind} ${r.prefix}`).sort(), [
    'block 192.168.5.0/26', 'block fd80::/122', 'host 192.168.9.7/32', 'host fd80::1:7/128',
  ]);
  assert.equal(c.pools.find((p) => p.cidr === '192.168.0.0/16')?.ipip, true);
});

test('status table looks like calicoctl node status', () => {
  const rows: PeerStatusRow[] = [
    { ipVersion: 4, peerAddress: '172.17.8.102', peerType: 'node-to-node mesh', state: 'up', since: '23:30:04', info: 'Established', name: 'Mesh_172_17_8_102' },
    { ipVersion: 4, peerAddress: '172.17.8.103', peerType: 'global', state: 'start', since: '23:30:05', info: 'Active        Socket: Connection refused', name: 'Global_172_17_8_103' },
  ];
  assert.equal(formatPeerStatus(rows), [
    'IPv4 BGP status',
    '+--------------+-------------------+-------+----------+------------------------------------------+',
    '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |                   INFO                   |',
    '+--------------+-------------------+-------+----------+------------------------------------------+',
    '| 172.17.8.102 | node-to-node mesh |   up  | 23:30:04 |               Established                |',
    '| 172.17.8.103 |       global      | start | 23:30:05 | Active        Socket: Connection refused |',
    '+--------------+-------------------+-------+----------+------------------------------------------+',
    '',
    'IPv6 BGP status',
    'No IPv6 peers found.',
    '',
  ].join('\n'));
});
