/**
 * etcd-driven: three of our speakers (child processes, one namespace each) and a BIRD global
 * peer, configured only through etcd. The node-to-node mesh comes up (with connection collisions,
 * every node connects actively), blocks become routes in the other nodes' kernels, a route
 * reflector role applied live turns the mesh into a star, and node_mesh {"enabled":false} takes
 * the mesh sessions down while the global peer stays.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/ports.js';
import { Lan, LanNode, kernelRoutes, sh } from './lib/netns.js';
import { Bird } from './lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from './lib/speaker-proc.js';
import { writeNode, writePool, writeBlock, writeEndpoint, writePeer } from './lib/setup.js';
import { keys } from '../../src/datastore/keys.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';
import type { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let lan: Lan;
let dir: string;
let bird: Bird;
let birdNode: LanNode;
const nodes: Array<{ name: string; lan: LanNode; speaker?: SpeakerProc }> = [];
const st = (i: number) => nodes[i]!.speaker!.call<PeerStatusRow[]>('status');
const up = (rows: PeerStatusRow[], addr: string) => rows.some((r) => r.peerAddress === addr && r.state === 'up');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-mesh-test-'));
  etcd = await startEtcd();
  kv = etcd.kv('cli');
  lan = new Lan('m');
  for (let i = 1; i <= 3; i++) nodes.push({ name: `n${i}`, lan: lan.add(`n${i}`, i) });
  birdNode = lan.add('tor', 9);
  await writePool(kv, '10.70.0.0/16');
  await writePool(kv, 'fd00:70::/64');
  for (const n of nodes) {
    await writeNode(kv, n.name, n.lan.ipv4, n.lan.ipv6);
    n.speaker = await startSpeakerInNs(n.lan.ns, etcd.endpoint, n.name, { holdTime: 9, connectRetryMs: 1000 }, join(dir, `${n.name}.log`));
  }
  bird = new Bird(birdNode.ns, {
    routerId: birdNode.ipv4, kernel: true,
    peers: nodes.map((n, i) => ({ name: `n${i + 1}`, localAddress: birdNode.ipv4, neighbor: n.lan.ipv4, localAs: 64512, remoteAs: 64512, afi: 4 as const, passive: true, exportStatic: false })),
  });
  await bird.start();
});

after(async () => {
  if (process.env.BGP_TEST_DEBUG) console.log(sh('sh', ['-c', `cat ${dir}/*.log || true`]));
  for (const n of nodes) await n.speaker?.stop(false).catch(() => undefined);
  await bird?.stop().catch(() => undefined);
  lan?.destroy();
  await etcd?.stop();
  bird?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('the node-to-node mesh comes up from etcd alone (IPv4 and IPv6), one session per pair despite collisions', async () => {
  for (let i = 0; i < 3; i++) {
    const others = nodes.filter((_, j) => j !== i);
    await waitFor(`n${i + 1} mesh up`, async () => {
      const rows = await st(i);
      return others.every((o) => up(rows, o.lan.ipv4) && up(rows, o.lan.ipv6));
    }, 40000, 300);
  }
  const rows = await st(0);
  assert.deepEqual(rows.map((r) => [r.ipVersion, r.peerType]).sort(), [[4, 'node-to-node mesh'], [4, 'node-to-node mesh'], [6, 'node-to-node mesh'], [6, 'node-to-node mesh']]);
});

test('blocks and borrowed addresses written to etcd appear as routes in the other nodes\' kernels', async () => {
  await writeBlock(kv, 'n1', '10.70.1.0/26');
  await writeBlock(kv, 'n1', 'fd00:70::/122');
  await writeBlock(kv, 'n2', '10.70.2.0/26');
  await writeEndpoint(kv, 'n3', 'borrowed', ['10.70.1.9']);
  await waitFor('n1 block in n2 and n3', async () => {
    const a = await kernelRoutes(nodes[1]!.lan.ns);
    const b = await kernelRoutes(nodes[2]!.lan.ns);
    return /via 10\.99\.0\.1/.test(a.get('10.70.1.0/26') ?? '') && /via 10\.99\.0\.1/.test(b.get('10.70.1.0/26') ?? '');
  }, 20000);
  await waitFor('n1 v6 block in n2', async () => /via fd00:99::1/.test((await kernelRoutes(nodes[1]!.lan.ns, '-6')).get('fd00:70::/122') ?? ''), 20000);
  // n3's borrowed /32 out of n1's block: more specific, so it wins over n1's aggregate on n2.
  await waitFor('borrowed /32 on n2 via n3', async () => /via 10\.99\.0\.3/.test((await kernelRoutes(nodes[1]!.lan.ns)).get('10.70.1.9/32') ?? ''), 20000);
  const n1 = await kernelRoutes(nodes[0]!.lan.ns);
  assert.match(n1.get('10.70.1.0/26')!, /^blackhole/);
  assert.match(n1.get('10.70.2.0/26')!, /via 10\.99\.0\.2/);
});

test('a global peer from etcd (BIRD) joins every node and learns their routes', async () => {
  await writePeer(kv, {}, birdNode.ipv4, 64512);
  for (let i = 0; i < 3; i++) await waitFor(`n${i + 1} to BIRD up`, async () => up(await st(i), birdNode.ipv4), 30000, 300);
  await waitFor('BIRD has n1 block from n1', async () => (await bird.routesFrom('n1', 4)).includes('10.70.1.0/26'), 20000);
  const rows = await st(0);
  assert.equal(rows.find((r) => r.peerAddress === birdNode.ipv4)?.peerType, 'global');
});

test('a route reflector set live: clients drop their mutual session, routes still flow via the reflector', async () => {
  await kv.put(keys.bgpHostRrClusterId('n3'), '1.0.0.3');
  await waitFor('n1 no longer peers with n2', async () => !(await st(0)).some((r) => r.peerAddress === nodes[1]!.lan.ipv4), 20000);
  await waitFor('n1-n3 up', async () => up(await st(0), nodes[2]!.lan.ipv4), 20000);
  await writeBlock(kv, 'n1', '10.70.5.0/26');
  // n2 learns n1's new block through n3, with n1 still the next hop.
  await waitFor('reflected block in n2 kernel', async () => /via 10\.99\.0\.1/.test((await kernelRoutes(nodes[1]!.lan.ns)).get('10.70.5.0/26') ?? ''), 20000);
  await kv.delete(keys.bgpHostRrClusterId('n3'));
  await waitFor('full mesh back', async () => up(await st(0), nodes[1]!.lan.ipv4), 30000, 300);
});

test('node_mesh {"enabled":false} takes the mesh sessions down and their routes away; the global peer stays', async () => {
  await kv.put(keys.bgpNodeMesh, JSON.stringify({ enabled: false }));
  for (let i = 0; i < 3; i++) {
    await waitFor(`n${i + 1} mesh gone`, async () => {
      const rows = await st(i);
      return rows.length === 1 && rows[0]!.peerAddress === birdNode.ipv4 && rows[0]!.state === 'up';
    }, 20000);
  }
  await waitFor('mesh-learned routes removed from n2', async () => !(await kernelRoutes(nodes[1]!.lan.ns)).has('10.70.1.0/26'), 20000);
  await waitFor('BIRD peers stay Established', async () => (await bird.bgpState('n1')) === 'Established', 10000);
});
