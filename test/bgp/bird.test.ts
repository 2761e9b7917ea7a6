/**
 * Interop with BIRD 2 (Debian bird2) in network namespaces: sessions both ways (IPv4: we connect,
 * BIRD passive; IPv6: BIRD connects, we are passive), routes both ways, withdrawals, kernel routes
 * (`proto bird`, IPIP shape), graceful restart of BIRD (helper) and of our speaker (restarting).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/ports.js';
import { Lan, LanNode, kernelRoutes, sh } from './lib/netns.js';
import { Bird, birdConfigText, BirdConfig } from './lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from './lib/speaker-proc.js';
import { writeNode, writePool, writeBlock, writeEndpoint, writePeer } from './lib/setup.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';
import type { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let lan: Lan;
let us: LanNode;
let peer: LanNode;
let bird: Bird;
let speaker: SpeakerProc | undefined;
let dir: string;
const NODE = 'node-us';

function birdConf(static4: string[], static6: string[]): BirdConfig {
  return {
    routerId: peer.ipv4,
    kernel: true,
    static4, static6,
    peers: [
      { name: 'us4', localAddress: peer.ipv4, neighbor: us.ipv4, localAs: 64512, remoteAs: 64512, afi: 4, passive: true },
      { name: 'us6', localAddress: peer.ipv6, neighbor: us.ipv6, localAs: 64512, remoteAs: 64512, afi: 6 },
    ],
  };
}

async function startSpeaker(): Promise<SpeakerProc> {
  return startSpeakerInNs(us.ns, etcd.endpoint, NODE, { holdTime: 9, connectRetryMs: 1000, gracefulRestartTime: 30 }, join(dir, `speaker-${Date.now()}.log`));
}

async function status(): Promise<PeerStatusRow[]> {
  return speaker!.call<PeerStatusRow[]>('status');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-bird-test-'));
  etcd = await startEtcd();
  kv = etcd.kv('cli');
  lan = new Lan('b');
  us = lan.add('us', 1);
  peer = lan.add('bird', 2);
  // tunl0 stands in for the IPIP device (this kernel has no ipip or dummy module; a veth is a device all the same): same route shape.
  sh('ip', ['-n', us.ns, 'link', 'add', 'tunl0', 'type', 'veth', 'peer', 'name', 'tunl0p']);
  sh('ip', ['-n', us.ns, 'link', 'set', 'tunl0p', 'up']);
  sh('ip', ['-n', us.ns, 'link', 'set', 'tunl0', 'up']);
  // Somebody else's route for a prefix BIRD will also announce: we must never touch it.
  sh('ip', ['-n', us.ns, 'route', 'add', '10.88.1.0/24', 'via', peer.ipv4, 'proto', 'static', 'metric', '10']);
  await writeNode(kv, NODE, us.ipv4, us.ipv6);
  await writePool(kv, '10.66.0.0/16');
  await writePool(kv, '10.77.0.0/16', true);
  await writePool(kv, 'fd00:66::/64');
  await writeBlock(kv, NODE, '10.66.1.0/26');
  await writeBlock(kv, NODE, 'fd00:66::/122');
  await writeEndpoint(kv, NODE, 'borrowed1', ['10.66.9.5'], ['fd00:66::9:5']);
  await writeEndpoint(kv, NODE, 'inblock1', ['10.66.1.7']);
  await writePeer(kv, { node: NODE }, peer.ipv4, 64512);
  await writePeer(kv, { node: NODE }, peer.ipv6, 64512, { passive: true });
  bird = new Bird(peer.ns, birdConf(['10.77.1.0/26', '10.88.1.0/24', '10.77.2.0/26'], ['fd00:77::/122']));
  await bird.start();
  speaker = await startSpeaker();
});

after(async () => {
  if (process.env.BGP_TEST_DEBUG) { console.log(sh('sh', ['-c', `cat ${dir}/speaker-*.log || true`])); console.log(bird?.logs()); }
  await speaker?.stop(false).catch(() => undefined);
  await bird?.stop().catch(() => undefined);
  lan?.destroy();
  await etcd?.stop();
  bird?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('sessions establish both ways: IPv4 we connect (BIRD passive), IPv6 BIRD connects (we are passive)', async () => {
  await waitFor('BIRD us4 Established', async () => (await bird.bgpState('us4')) === 'Established', 30000, 200);
  await waitFor('BIRD us6 Established', async () => (await bird.bgpState('us6')) === 'Established', 30000, 200);
  const rows = await waitFor('our status to show both up', async () => {
    const r = await status();
    return r.length === 2 && r.every((x) => x.state === 'up') ? r : undefined;
  }, 10000);
  assert.deepEqual(rows.map((r) => [r.ipVersion, r.peerAddress, r.peerType, r.info]).sort(), [
    [4, peer.ipv4, 'node specific', 'Established'],
    [6, peer.ipv6, 'node specific', 'Established'],
  ]);
  const text = await speaker!.call<string>('statusText');
  assert.match(text, /IPv4 BGP status\n\+-+\+/);
  assert.match(text, /\|\s+10\.99\.0\.2\s+\|\s+node specific\s+\|\s+up\s+\| \d\d:\d\d:\d\d \| Established \|/);
  assert.match(text, /IPv6 BGP status/);
});

test("BIRD's routes land in our kernel as proto bird (IPIP pool -> dev tunl0 onlink), IPv4 and IPv6", async () => {
  const v4 = await waitFor('BIRD v4 routes in our kernel', async () => {
    const r = await kernelRoutes(us.ns, '-4');
    return r.has('10.77.1.0/26') && r.has('10.88.1.0/24') && r.has('10.77.2.0/26') ? r : undefined;
  }, 20000);
  assert.match(v4.get('10.77.1.0/26')!, /via 10\.99\.0\.2 dev tunl0 .*onlink/);
  assert.match(v4.get('10.88.1.0/24')!, /via 10\.99\.0\.2 dev eth0/);
  assert.doesNotMatch(v4.get('10.88.1.0/24')!, /tunl0/);
  // Our own block: a blackhole, proto bird.
  assert.match(v4.get('10.66.1.0/26')!, /^blackhole 10\.66\.1\.0\/26/);
  const v6 = await waitFor('BIRD v6 route in our kernel', async () => {
    const r = await kernelRoutes(us.ns, '-6');
    return r.has('fd00:77::/122') ? r : undefined;
  }, 20000);
  assert.match(v6.get('fd00:77::/122')!, /via fd00:99::2 dev eth0/);
  assert.match(v6.get('fd00:66::/122')!, /blackhole/);
});

test('our block aggregates and borrowed addresses reach BIRD with iBGP attributes; addresses inside our block do not', async () => {
  const got4 = await waitFor('our v4 routes in BIRD', async () => {
    const r = await bird.routesFrom('us4', 4);
    return r.includes('10.66.1.0/26') && r.includes('10.66.9.5/32') ? r : undefined;
  }, 20000);
  assert.ok(!got4.includes('10.66.1.7/32'), 'an address inside our own block is covered by the aggregate');
  const detail = await bird.routeDetail('10.66.1.0/26', 4);
  assert.match(detail, /BGP\.origin: IGP/);
  assert.match(detail, /BGP\.local_pref: 100/);
  assert.match(detail, /BGP\.next_hop: 10\.99\.0\.1/);
  assert.match(detail, /BGP\.as_path: *\n/);
  const got6 = await waitFor('our v6 routes in BIRD', async () => {
    const r = await bird.routesFrom('us6', 6);
    return r.includes('fd00:66::/122') && r.includes('fd00:66::9:5/128') ? r : undefined;
  }, 20000);
  assert.ok(got6.length >= 2);
  // BIRD put them in its kernel table too (via us).
  const birdKernel = await kernelRoutes(peer.ns, '-4');
  assert.match(birdKernel.get('10.66.1.0/26') ?? '', /via 10\.99\.0\.1/);
});

test('a new endpoint in etcd is announced at once, and withdrawn when deleted', async () => {
  const key = await writeEndpoint(kv, NODE, 'borrowed2', ['10.66.20.9']);
  await waitFor('new /32 in BIRD', async () => (await bird.routesFrom('us4', 4)).includes('10.66.20.9/32'), 10000);
  await kv.delete(key);
  await waitFor('/32 withdrawn from BIRD', async () => !(await bird.routesFrom('us4', 4)).includes('10.66.20.9/32'), 10000);
  // An address outside every pool is never announced.
  const key2 = await writeEndpoint(kv, NODE, 'outside', ['172.31.5.5']);
  await writeEndpoint(kv, NODE, 'marker', ['10.66.21.1']);
  await waitFor('marker announced', async () => (await bird.routesFrom('us4', 4)).includes('10.66.21.1/32'), 10000);
  assert.ok(!(await bird.routesFrom('us4', 4)).includes('172.31.5.5/32'));
  await kv.delete(key2);
});

test("withdrawals from BIRD remove the route from our kernel", async () => {
  writeFileSync(join(bird.dir, 'bird.conf'), birdConfigText(birdConf(['10.77.1.0/26', '10.88.1.0/24'], ['fd00:77::/122'])));
  await bird.cli('configure');
  await waitFor('10.77.2.0/26 gone from our kernel', async () => !(await kernelRoutes(us.ns, '-4')).has('10.77.2.0/26'), 20000);
  assert.ok((await kernelRoutes(us.ns, '-4')).has('10.77.1.0/26'));
});

test('BIRD crashes and restarts with graceful restart: its routes stay in our kernel, stale ones go after End-of-RIB', async () => {
  await bird.kill();
  await waitFor('our session to notice', async () => (await status()).every((r) => r.state !== 'up'), 30000, 100);
  // Helper mode: during the restart window the routes are still forwarding.
  const during = await kernelRoutes(us.ns, '-4');
  assert.ok(during.has('10.77.1.0/26') && during.has('10.88.1.0/24'), `routes kept during restart: ${[...during.keys()]}`);
  assert.ok((await kernelRoutes(us.ns, '-6')).has('fd00:77::/122'));
  // BIRD comes back (-R: graceful restart recovery) without 10.88.1.0/24.
  writeFileSync(join(bird.dir, 'bird.conf'), birdConfigText(birdConf(['10.77.1.0/26'], ['fd00:77::/122'])));
  await bird.restart(['-R']);
  await waitFor('sessions back', async () => (await status()).every((r) => r.state === 'up'), 30000, 200);
  await waitFor('stale 10.88.1.0/24 swept after End-of-RIB', async () => !(await kernelRoutes(us.ns, '-4')).has('10.88.1.0/24'), 30000, 200);
  assert.ok((await kernelRoutes(us.ns, '-4')).has('10.77.1.0/26'));
  assert.match(sh('ip', ['-n', us.ns, 'route', 'show', '10.88.1.0/24', 'proto', 'static']), /via 10\.99\.0\.2 .*metric 10/, 'the static route for the same prefix is untouched');
});

test('our speaker restarts gracefully: BIRD keeps our routes meanwhile and our kernel routes are adopted', async () => {
  await waitFor('BIRD has our block', async () => (await bird.routesFrom('us4', 4)).includes('10.66.1.0/26'), 20000);
  await speaker!.stop(true);
  speaker = undefined;
  await waitFor('BIRD sees the session drop', async () => (await bird.bgpState('us4')) !== 'Established', 30000, 200);
  assert.ok((await bird.routesFrom('us4', 4)).includes('10.66.1.0/26'), 'BIRD keeps our route (stale) during our restart');
  const kept = await kernelRoutes(us.ns, '-4');
  assert.ok(kept.has('10.77.1.0/26') && kept.has('10.66.1.0/26'), 'our kernel routes stay while we are down');
  speaker = await startSpeaker();
  await waitFor('sessions back after our restart', async () => (await status()).every((r) => r.state === 'up') && (await bird.bgpState('us4')) === 'Established', 30000, 200);
  await waitFor('BIRD has our routes again', async () => (await bird.routesFrom('us4', 4)).includes('10.66.9.5/32'), 20000);
  assert.ok((await kernelRoutes(us.ns, '-4')).has('10.77.1.0/26'));
});

test('a non-graceful stop withdraws our routes from BIRD and removes our kernel routes', async () => {
  await speaker!.stop(false);
  speaker = undefined;
  await waitFor('BIRD dropped our routes', async () => (await bird.routesFrom('us4', 4)).length === 0, 20000, 200);
  const left = await kernelRoutes(us.ns, '-4');
  assert.equal(left.size, 0, `proto bird routes left: ${[...left.values()].join('; ')}`);
  assert.equal((await kernelRoutes(us.ns, '-6')).size, 0);
  // Routes we do not own are all still there: the static one and the connected subnets.
  const all = sh('ip', ['-n', us.ns, 'route', 'show']);
  assert.match(all, /10\.88\.1\.0\/24 via 10\.99\.0\.2 dev eth0 proto static metric 10/);
  assert.match(all, /10\.99\.0\.0\/24 dev eth0 proto kernel/);
});
