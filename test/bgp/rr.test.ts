/**
 * Route reflection (RFC 4456), with real peers on one LAN:
 *  1. our node is a reflector (rr_cluster_id set) between two clients, BIRD and GoBGP: each
 *     client's route reaches the other with its next hop unchanged, ORIGINATOR_ID and our
 *     CLUSTER_ID; equal routes from both clients become one ECMP kernel route on our node.
 *  2. live reconfiguration: our node drops the reflector role and becomes a client of a BIRD
 *     reflector, through which it exchanges routes with another BIRD client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/ports.js';
import { Lan, LanNode, kernelRoutes, sh } from './lib/netns.js';
import { Bird, Gobgp } from './lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from './lib/speaker-proc.js';
import { writeNode, writePool, writeBlock, writePeer } from './lib/setup.js';
import { keys } from '../../src/datastore/keys.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';
import type { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let lan: Lan;
let us: LanNode, a: LanNode, b: LanNode, rr: LanNode, c2: LanNode;
let birdA: Bird;
let gobgpB: Gobgp;
let birdRr: Bird | undefined;
let birdC2: Bird | undefined;
let speaker: SpeakerProc | undefined;
let dir: string;
const NODE = 'node-us';
const status = () => speaker!.call<PeerStatusRow[]>('status');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-rr-test-'));
  etcd = await startEtcd();
  kv = etcd.kv('cli');
  lan = new Lan('r');
  us = lan.add('us', 1);
  a = lan.add('a', 2);
  b = lan.add('b', 3);
  rr = lan.add('rr', 4);
  c2 = lan.add('c2', 5);
  await writeNode(kv, NODE, us.ipv4, undefined, { rrClusterId: '1.0.0.1' });
  for (const p of ['10.66.0.0/16', '10.77.0.0/16', '10.78.0.0/16', '10.79.0.0/16', '10.80.0.0/16']) await writePool(kv, p);
  await writeBlock(kv, NODE, '10.66.1.0/26');
  await writePeer(kv, {}, a.ipv4, 64512);
  await writePeer(kv, {}, b.ipv4, 64512);
  birdA = new Bird(a.ns, {
    routerId: a.ipv4, static4: ['10.77.1.0/26', '10.80.0.0/24'],
    peers: [{ name: 'us4', localAddress: a.ipv4, neighbor: us.ipv4, localAs: 64512, remoteAs: 64512, afi: 4 }],
  });
  await birdA.start();
  gobgpB = new Gobgp(b.ns, { as: 64512, routerId: b.ipv4, neighbors: [{ address: us.ipv4, remoteAs: 64512, afi: 4 }] });
  await gobgpB.start();
  await gobgpB.announce('10.78.1.0/26', 4);
  await gobgpB.announce('10.80.0.0/24', 4);
  speaker = await startSpeakerInNs(us.ns, etcd.endpoint, NODE, { holdTime: 9, connectRetryMs: 1000 }, join(dir, 'speaker.log'));
});

after(async () => {
  if (process.env.BGP_TEST_DEBUG) { console.log(sh('sh', ['-c', `cat ${dir}/speaker*.log || true`])); console.log(birdA?.logs(), birdRr?.logs()); }
  await speaker?.stop(false).catch(() => undefined);
  for (const d of [birdA, gobgpB, birdRr, birdC2]) await d?.stop().catch(() => undefined);
  lan?.destroy();
  await etcd?.stop();
  for (const d of [birdA, gobgpB, birdRr, birdC2]) d?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('our node reflects between two clients (BIRD and GoBGP) with ORIGINATOR_ID and CLUSTER_LIST, next hop unchanged', async () => {
  await waitFor('both clients up', async () => { const r = await status(); return r.length === 2 && r.every((x) => x.state === 'up'); }, 40000, 300);
  // BIRD's route reflected to GoBGP.
  const ribB = await waitFor('BIRD route at GoBGP', async () => { const r = await gobgpB.rib(4); return r.has('10.77.1.0/26') ? r : undefined; }, 20000);
  const attrs = ribB.get('10.77.1.0/26')![0]!.attrs as Array<Record<string, unknown>>;
  assert.equal(attrs.find((x) => x.type === 3)?.nexthop, a.ipv4, 'next hop unchanged by the reflector');
  assert.equal(attrs.find((x) => x.type === 9)?.value, a.ipv4, 'ORIGINATOR_ID = the client that sent it');
  assert.deepEqual(attrs.find((x) => x.type === 10)?.value, ['1.0.0.1'], 'CLUSTER_LIST = our cluster id');
  // GoBGP's route reflected to BIRD.
  await waitFor('GoBGP route at BIRD', async () => (await birdA.routesFrom('us4', 4)).includes('10.78.1.0/26'), 20000);
  const d = await birdA.routeDetail('10.78.1.0/26', 4);
  assert.match(d, /BGP\.next_hop: 10\.99\.0\.3/);
  assert.match(d, /BGP\.originator_id: 10\.99\.0\.3/);
  assert.match(d, /BGP\.cluster_list: 1\.0\.0\.1/);
  // Our own block goes to both, with next hop self.
  await waitFor('our block at GoBGP', async () => (await gobgpB.rib(4)).get('10.66.1.0/26')?.[0]?.nexthop === us.ipv4, 20000);
});

test('equal routes from both clients become one ECMP route in our kernel', async () => {
  const r = await waitFor('ECMP route', async () => {
    const k = await kernelRoutes(us.ns, '-4');
    const t = k.get('10.80.0.0/24');
    return t && t.includes(a.ipv4) && t.includes(b.ipv4) ? t : undefined;
  }, 20000);
  assert.match(r, /nexthop via 10\.99\.0\.2 .*nexthop via 10\.99\.0\.3/);
  // One client withdraws: the route collapses to the other path.
  await gobgpB.withdraw('10.80.0.0/24', 4);
  await waitFor('single path', async () => { const t = (await kernelRoutes(us.ns, '-4')).get('10.80.0.0/24'); return t !== undefined && !t.includes('nexthop') && t.includes(a.ipv4); }, 20000);
});

test('live reconfiguration: our node becomes a client of a BIRD route reflector', async () => {
  birdRr = new Bird(rr.ns, {
    routerId: rr.ipv4, rrClusterId: '2.0.0.2',
    peers: [
      { name: 'tous', localAddress: rr.ipv4, neighbor: us.ipv4, localAs: 64512, remoteAs: 64512, afi: 4, rrClient: true, exportAll: true },
      { name: 'toc2', localAddress: rr.ipv4, neighbor: c2.ipv4, localAs: 64512, remoteAs: 64512, afi: 4, rrClient: true, exportAll: true },
    ],
  });
  await birdRr.start();
  birdC2 = new Bird(c2.ns, { routerId: c2.ipv4, static4: ['10.79.1.0/26'], peers: [{ name: 'torr', localAddress: c2.ipv4, neighbor: rr.ipv4, localAs: 64512, remoteAs: 64512, afi: 4 }] });
  await birdC2.start();
  await kv.delete(keys.bgpHostRrClusterId(NODE));
  await kv.delete(keys.bgpGlobalPeer(a.ipv4, 4));
  await kv.delete(keys.bgpGlobalPeer(b.ipv4, 4));
  await writePeer(kv, {}, rr.ipv4, 64512);
  await waitFor('only the reflector session, up', async () => { const r = await status(); return r.length === 1 && r[0]!.peerAddress === rr.ipv4 && r[0]!.state === 'up'; }, 40000, 300);
  // c2's route arrives through the reflector with c2 as next hop and lands in our kernel.
  const k = await waitFor('c2 route in our kernel', async () => { const m = await kernelRoutes(us.ns, '-4'); return m.get('10.79.1.0/26'); }, 30000);
  assert.match(k, /via 10\.99\.0\.5/);
  // Routes from the old clients are gone with their sessions.
  const now = await kernelRoutes(us.ns, '-4');
  assert.ok(!now.has('10.77.1.0/26') && !now.has('10.78.1.0/26'), `old routes removed: ${[...now.keys()]}`);
  // Ours reaches c2 via the reflector, next hop us.
  await waitFor('our block at c2', async () => (await birdC2!.routesFrom('torr', 4)).includes('10.66.1.0/26'), 20000);
  assert.match(await birdC2!.routeDetail('10.66.1.0/26', 4), /BGP\.next_hop: 10\.99\.0\.1/);
});
