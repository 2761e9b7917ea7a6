/**
 * Keepalives under load: BIRD sends 200 000 routes over a session with a 3 s hold time (keepalive
 * every second) while our speaker takes them into its RIB and writes them all to the kernel. Both
 * sides enforce the hold timer, so if our event loop ever stalled for seconds one of them would
 * drop the session. No timing is asserted: only that the session never went down.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/ports.js';
import { Lan, LanNode, sh } from './lib/netns.js';
import { Bird } from './lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from './lib/speaker-proc.js';
import { writeNode, writePeer } from './lib/setup.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';

const N = 200_000;
let etcd: TestEtcd;
let lan: Lan;
let us: LanNode;
let peer: LanNode;
let bird: Bird;
let speaker: SpeakerProc | undefined;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-scale-test-'));
  etcd = await startEtcd();
  const kv = etcd.kv('cli');
  lan = new Lan('s');
  us = lan.add('us', 1);
  peer = lan.add('bird', 2);
  await writeNode(kv, 'node-s', us.ipv4);
  await writePeer(kv, { node: 'node-s' }, peer.ipv4, 64512);
  bird = new Bird(peer.ns, {
    routerId: peer.ipv4,
    peers: [{ name: 'us4', localAddress: peer.ipv4, neighbor: us.ipv4, localAs: 64512, remoteAs: 64512, afi: 4, passive: true, holdTime: 3 }],
  });
  // N static /32s (BIRD's own `include` keeps the config file small).
  const routes: string[] = [];
  for (let i = 0; i < N; i++) routes.push(`route 10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 blackhole;`);
  writeFileSync(join(bird.dir, 'routes.inc'), routes.join('\n') + '\n');
  // BIRD wants `include` on a line of its own.
  writeFileSync(join(bird.dir, 'bird.conf'), `${readFileSync(join(bird.dir, 'bird.conf'), 'utf8')}protocol static big {\n  ipv4;\n  include "${join(bird.dir, 'routes.inc')}";\n}\n`);
  await bird.start();
  speaker = await startSpeakerInNs(us.ns, etcd.endpoint, 'node-s', { holdTime: 3, connectRetryMs: 1000 }, join(dir, 'speaker.log'));
});

after(async () => {
  if (process.env.BGP_TEST_DEBUG) console.log(sh('sh', ['-c', `cat ${dir}/speaker.log || true`]));
  await speaker?.stop(true).catch(() => undefined); // graceful: do not spend time deleting 200k routes; the namespace goes anyway
  await bird?.stop().catch(() => undefined);
  lan?.destroy();
  await etcd?.stop();
  bird?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test(`${N} routes with a 3 s hold time: RIB and kernel get them all and the session never drops`, async () => {
  const first = await waitFor('session up', async () => {
    const r = (await speaker!.call<PeerStatusRow[]>('status'))[0];
    return r?.state === 'up' ? r : undefined;
  }, 30000, 100);
  const row = await waitFor('all routes in our RIB', async () => {
    const r = (await speaker!.call<PeerStatusRow[]>('status'))[0];
    return r && (r.routesReceived ?? 0) >= N ? r : undefined;
  }, 180000, 250);
  await speaker!.call('fibSettled');
  const count = Number(sh('sh', ['-c', `ip -n ${us.ns} -4 route show proto bird | wc -l`]).trim());
  assert.equal(count, N, 'every route is in the kernel');
  // Still the same session: up, with the same "since", and BIRD never saw a hold timer expire.
  const now = (await speaker!.call<PeerStatusRow[]>('status'))[0]!;
  assert.equal(now.state, 'up');
  assert.equal(now.since, first.since, 'the session was never re-established');
  assert.equal(row.since, first.since);
  assert.equal(await bird.bgpState('us4'), 'Established');
  const birdLog = bird.logs();
  assert.match(birdLog, /us4: BGP session established/, 'BIRD logs its session state changes (so the next check has teeth)');
  assert.doesNotMatch(birdLog, /Hold timer expired|Error/);
  assert.doesNotMatch(sh('sh', ['-c', `cat ${dir}/speaker.log`]), /hold timer expired|session down/);
});
