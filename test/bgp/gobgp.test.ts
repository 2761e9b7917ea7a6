/**
 * Interop with GoBGP 3.10 (Debian gobgpd) in network namespaces: IPv4 session with us connecting
 * (GoBGP passive), IPv6 session with GoBGP connecting (we are passive); routes both ways;
 * withdrawals; GoBGP crash (routes kept through the restart window).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/ports.js';
import { Lan, LanNode, kernelRoutes, sh } from './lib/netns.js';
import { Gobgp } from './lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from './lib/speaker-proc.js';
import { writeNode, writePool, writeBlock, writeEndpoint, writePeer } from './lib/setup.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';
import type { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let lan: Lan;
let us: LanNode;
let peer: LanNode;
let gobgp: Gobgp;
let speaker: SpeakerProc | undefined;
let dir: string;
const NODE = 'node-us';

const status = () => speaker!.call<PeerStatusRow[]>('status');

function attrOf(attrs: unknown[], type: number): Record<string, unknown> | undefined {
  return (attrs as Array<Record<string, unknown>>).find((a) => a.type === type);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-gobgp-test-'));
  etcd = await startEtcd();
  kv = etcd.kv('cli');
  lan = new Lan('g');
  us = lan.add('us', 1);
  peer = lan.add('gobgp', 2);
  await writeNode(kv, NODE, us.ipv4, us.ipv6);
  await writePool(kv, '10.66.0.0/16');
  await writePool(kv, 'fd00:66::/64');
  await writeBlock(kv, NODE, '10.66.1.0/26');
  await writeBlock(kv, NODE, 'fd00:66::/122');
  await writeEndpoint(kv, NODE, 'borrowed1', ['10.66.9.5']);
  await writePeer(kv, { node: NODE }, peer.ipv4, 64512);
  await writePeer(kv, { node: NODE }, peer.ipv6, 64512, { passive: true });
  gobgp = new Gobgp(peer.ns, {
    as: 64512, routerId: peer.ipv4, neighbors: [
      { address: us.ipv4, remoteAs: 64512, afi: 4, passive: true },
      { address: us.ipv6, remoteAs: 64512, afi: 6 },
    ],
  });
  await gobgp.start();
  await gobgp.announce('10.77.1.0/26', 4);
  await gobgp.announce('10.77.2.0/26', 4);
  await gobgp.announce('fd00:77::/122', 6);
  speaker = await startSpeakerInNs(us.ns, etcd.endpoint, NODE, { holdTime: 9, connectRetryMs: 1000, gracefulRestartTime: 30 }, join(dir, 'speaker.log'));
});

after(async () => {
  if (process.env.BGP_TEST_DEBUG) { console.log(sh('sh', ['-c', `cat ${dir}/speaker*.log || true`])); console.log(gobgp?.logs()); }
  await speaker?.stop(false).catch(() => undefined);
  await gobgp?.stop().catch(() => undefined);
  lan?.destroy();
  await etcd?.stop();
  gobgp?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('sessions establish both ways with GoBGP (IPv4 we connect, IPv6 GoBGP connects)', async () => {
  await waitFor('GoBGP v4 neighbour Established', async () => (await gobgp.neighborState(us.ipv4)) === 'Established', 30000, 300);
  await waitFor('GoBGP v6 neighbour Established', async () => (await gobgp.neighborState(us.ipv6)) === 'Established', 30000, 300);
  const rows = await waitFor('our status up', async () => { const r = await status(); return r.every((x) => x.state === 'up') ? r : undefined; }, 10000);
  assert.equal(rows.length, 2);
});

test("GoBGP's routes land in our kernel; ours reach GoBGP with next hop, LOCAL_PREF 100 and an empty AS_PATH", async () => {
  const v4 = await waitFor('GoBGP routes in our kernel', async () => {
    const r = await kernelRoutes(us.ns, '-4');
    return r.has('10.77.1.0/26') && r.has('10.77.2.0/26') ? r : undefined;
  }, 20000);
  assert.match(v4.get('10.77.1.0/26')!, /via 10\.99\.0\.2 dev eth0 metric 32/);
  await waitFor('GoBGP v6 route in our kernel', async () => (await kernelRoutes(us.ns, '-6')).has('fd00:77::/122'), 20000);
  const rib4 = await waitFor('our routes in GoBGP', async () => {
    const r = await gobgp.rib(4);
    return r.has('10.66.1.0/26') && r.has('10.66.9.5/32') ? r : undefined;
  }, 20000);
  const path = rib4.get('10.66.1.0/26')![0]!;
  assert.equal(attrOf(path.attrs, 3)?.nexthop, us.ipv4);
  assert.equal(attrOf(path.attrs, 5)?.value, 100);
  assert.deepEqual(attrOf(path.attrs, 2)?.as_paths ?? [], []);
  assert.equal(attrOf(path.attrs, 1)?.value, 0, 'ORIGIN IGP');
  const rib6 = await waitFor('our v6 block in GoBGP', async () => { const r = await gobgp.rib(6); return r.has('fd00:66::/122') ? r : undefined; }, 20000);
  assert.equal(rib6.get('fd00:66::/122')![0]!.nexthop, us.ipv6);
});

test('withdrawals propagate both ways', async () => {
  await gobgp.withdraw('10.77.2.0/26', 4);
  await waitFor('withdrawn from our kernel', async () => !(await kernelRoutes(us.ns, '-4')).has('10.77.2.0/26'), 20000);
  const key = await writeEndpoint(kv, NODE, 'b2', ['10.66.30.1']);
  await waitFor('announced to GoBGP', async () => (await gobgp.rib(4)).has('10.66.30.1/32'), 20000);
  await kv.delete(key);
  await waitFor('withdrawn from GoBGP', async () => !(await gobgp.rib(4)).has('10.66.30.1/32'), 20000);
});

test('GoBGP crashes: its routes stay in our kernel during the restart window, then the new session takes over', async () => {
  await gobgp.kill();
  await waitFor('session down on our side', async () => (await status()).every((r) => r.state !== 'up'), 30000, 100);
  const kept = await kernelRoutes(us.ns, '-4');
  assert.ok(kept.has('10.77.1.0/26'), 'route kept while GoBGP restarts');
  assert.ok((await kernelRoutes(us.ns, '-6')).has('fd00:77::/122'));
  await gobgp.restart();
  await waitFor('sessions back', async () => (await status()).every((r) => r.state === 'up'), 40000, 300);
  await gobgp.announce('10.77.3.0/26', 4);
  await waitFor('new route after the restart', async () => (await kernelRoutes(us.ns, '-4')).has('10.77.3.0/26'), 20000);
  // GoBGP restarted without its old routes: after the new session they must go.
  await waitFor('old route from before the crash removed', async () => !(await kernelRoutes(us.ns, '-4')).has('10.77.1.0/26'), 40000, 300);
  await waitFor('our routes in GoBGP again', async () => (await gobgp.rib(4)).has('10.66.1.0/26'), 20000);
});
