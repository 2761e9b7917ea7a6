/**
 * Interop with FRR 8.4 (bgpd + zebra) in network namespaces: IPv4 with us connecting (FRR
 * passive), IPv6 with FRR connecting; routes both ways (FRR insists on LOCAL_PREF for iBGP, so
 * this also proves we send it); withdrawals; our routes in FRR's kernel table via zebra; bgpd crash
 * with graceful restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { waitFor } from '../harness/ports.js';
import { Lan, LanNode, kernelRoutes, sh, inNs } from './lib/netns.js';
import { Frr } from './lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from './lib/speaker-proc.js';
import { writeNode, writePool, writeBlock, writeEndpoint, writePeer } from './lib/setup.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';
import type { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let lan: Lan;
let us: LanNode;
let peer: LanNode;
let frr: Frr;
let speaker: SpeakerProc | undefined;
let dir: string;
const NODE = 'node-us';
const status = () => speaker!.call<PeerStatusRow[]>('status');

function frrConf(networks4: string[]): string {
  return `frr defaults traditional
hostname frr
router bgp 64512
 bgp router-id ${peer.ipv4}
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 neighbor ${us.ipv4} remote-as 64512
 neighbor ${us.ipv4} timers 3 9
 neighbor ${us.ipv4} timers connect 2
 neighbor ${us.ipv4} passive
 neighbor ${us.ipv6} remote-as 64512
 neighbor ${us.ipv6} timers 3 9
 neighbor ${us.ipv6} timers connect 2
 address-family ipv4 unicast
${networks4.map((n) => `  network ${n}`).join('\n')}
  neighbor ${us.ipv4} activate
  neighbor ${us.ipv4} next-hop-self
 exit-address-family
 address-family ipv6 unicast
  network fd00:77::/122
  neighbor ${us.ipv6} activate
 exit-address-family
`;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-frr-test-'));
  etcd = await startEtcd();
  kv = etcd.kv('cli');
  lan = new Lan('f');
  us = lan.add('us', 1);
  peer = lan.add('frr', 2);
  await writeNode(kv, NODE, us.ipv4, us.ipv6);
  await writePool(kv, '10.66.0.0/16');
  await writePool(kv, 'fd00:66::/64');
  await writeBlock(kv, NODE, '10.66.1.0/26');
  await writeBlock(kv, NODE, 'fd00:66::/122');
  await writeEndpoint(kv, NODE, 'borrowed1', ['10.66.9.5']);
  await writePeer(kv, { node: NODE }, peer.ipv4, 64512);
  await writePeer(kv, { node: NODE }, peer.ipv6, 64512, { passive: true });
  frr = new Frr(peer.ns, frrConf(['10.77.1.0/26', '10.77.2.0/26']));
  await frr.start();
  speaker = await startSpeakerInNs(us.ns, etcd.endpoint, NODE, { holdTime: 9, connectRetryMs: 1000, gracefulRestartTime: 30 }, join(dir, 'speaker.log'));
});

after(async () => {
  if (process.env.BGP_TEST_DEBUG) { console.log(sh('sh', ['-c', `cat ${dir}/speaker*.log || true`])); console.log(frr?.logs()); }
  await speaker?.stop(false).catch(() => undefined);
  await frr?.stop().catch(() => undefined);
  lan?.destroy();
  await etcd?.stop();
  frr?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('sessions establish both ways with FRR (IPv4 we connect, IPv6 FRR connects)', async () => {
  await waitFor('FRR v4 Established', async () => (await frr.neighborState(us.ipv4)) === 'Established', 40000, 300);
  await waitFor('FRR v6 Established', async () => (await frr.neighborState(us.ipv6)) === 'Established', 40000, 300);
  await waitFor('our status up', async () => (await status()).every((x) => x.state === 'up'), 10000);
});

test("FRR accepts our routes (valid, LOCAL_PREF 100) and zebra installs them; FRR's routes land in our kernel", async () => {
  const r4 = await waitFor('our routes valid in FRR', async () => {
    const r = await frr.routes(4);
    return r['10.66.1.0/26']?.[0]?.valid && r['10.66.9.5/32']?.[0]?.valid ? r : undefined;
  }, 20000);
  assert.equal(r4['10.66.1.0/26']![0]!.locPrf, 100);
  assert.equal(r4['10.66.1.0/26']![0]!.nexthops?.[0]?.ip, us.ipv4);
  await waitFor('our v6 block valid in FRR', async () => (await frr.routes(6))['fd00:66::/122']?.[0]?.valid === true, 20000);
  await waitFor('zebra installed our block', async () => /10\.66\.1\.0\/26 .*via 10\.99\.0\.1/.test(await inNs(peer.ns, 'ip', ['route', 'show', 'proto', 'bgp'])), 20000);
  const v4 = await waitFor('FRR routes in our kernel', async () => {
    const r = await kernelRoutes(us.ns, '-4');
    return r.has('10.77.1.0/26') && r.has('10.77.2.0/26') ? r : undefined;
  }, 20000);
  assert.match(v4.get('10.77.1.0/26')!, /via 10\.99\.0\.2/);
  await waitFor('FRR v6 route in our kernel', async () => (await kernelRoutes(us.ns, '-6')).has('fd00:77::/122'), 20000);
});

test('withdrawals propagate both ways', async () => {
  await inNs(peer.ns, 'vtysh', ['-N', frr.name, '-c', 'configure terminal', '-c', 'router bgp 64512', '-c', 'address-family ipv4 unicast', '-c', 'no network 10.77.2.0/26']);
  await waitFor('withdrawn from our kernel', async () => !(await kernelRoutes(us.ns, '-4')).has('10.77.2.0/26'), 20000);
  const key = await writeEndpoint(kv, NODE, 'b2', ['10.66.30.1']);
  await waitFor('announced to FRR', async () => (await frr.routes(4))['10.66.30.1/32'] !== undefined, 20000);
  await kv.delete(key);
  await waitFor('withdrawn from FRR', async () => (await frr.routes(4))['10.66.30.1/32'] === undefined, 20000);
});

test('FRR bgpd crashes and restarts: its routes stay in our kernel meanwhile', async () => {
  await frr.killBgpd();
  await waitFor('our session down', async () => (await status()).every((r) => r.state !== 'up'), 30000, 100);
  assert.ok((await kernelRoutes(us.ns, '-4')).has('10.77.1.0/26'), 'kept during restart');
  assert.ok((await kernelRoutes(us.ns, '-6')).has('fd00:77::/122'));
  await frr.restartBgpd();
  await waitFor('sessions back', async () => (await status()).every((r) => r.state === 'up'), 40000, 300);
  await waitFor('route present after the restart', async () => (await kernelRoutes(us.ns, '-4')).has('10.77.1.0/26'), 20000);
  await waitFor('FRR has our routes again', async () => (await frr.routes(4))['10.66.1.0/26']?.[0]?.valid === true, 20000);
});
