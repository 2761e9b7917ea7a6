/**
 * Negative tests from a raw socket against our speaker (in this process, on 127.0.0.1, no kernel
 * programming): bad OPENs (compared with what BIRD 2 and FRR answer to the same bytes), header
 * errors, FSM errors, UPDATE errors with the right NOTIFICATION or treat-as-withdraw, and a fuzzed
 * stream of 100 000 UPDATEs that must never crash or corrupt the speaker.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { freePort, waitFor } from '../harness/ports.js';
import { createLogger } from '../../src/log.js';
import { BgpSpeaker } from '../../node/bgp/speaker.js';
import { RawBgp, probeOpen, OpenProbe, frame, KEEPALIVE } from './lib/raw.js';
import { writeNode, writePeer, writePool, writeBlock } from './lib/setup.js';
import { Lan, LanNode, inNs } from './lib/netns.js';
import { Bird, Frr } from './lib/daemons.js';
import { MsgType, AFI_IPV4 } from '../../node/bgp/codec/constants.js';
import { encodeOpen } from '../../node/bgp/codec/open.js';
import { buildAnnouncements, buildWithdrawals, decodeUpdate } from '../../node/bgp/codec/update.js';
import { encodeAttrs } from '../../node/bgp/codec/attrs.js';
import { parsePrefix, forEachPrefix, prefixToString } from '../../node/bgp/codec/prefix.js';
import { encodeRouteRefresh } from '../../node/bgp/codec/notification.js';

let etcd: TestEtcd;
let speaker: BgpSpeaker;
let port: number;
const US = '127.0.0.1';
const PEER = '127.0.0.2';
const FUZZ = '127.0.0.3';
const OPEN = { localAs: 64512, holdTime: 30, bgpId: 0x0a000002, families: [{ afi: 1, safi: 1 }] };

before(async () => {
  etcd = await startEtcd();
  const kv = etcd.kv('cli');
  await writeNode(kv, 'node-m', US);
  await writePool(kv, '10.60.0.0/16');
  await writePeer(kv, { node: 'node-m' }, PEER, 64512, { passive: true });
  await writePeer(kv, { node: 'node-m' }, FUZZ, 64512, { passive: true });
  port = await freePort();
  speaker = new BgpSpeaker({ kv: etcd.kv('daemon'), nodeName: 'node-m', logger: createLogger({ level: 'error' }), listenAddress: US, port, kernel: false, holdTime: 30 });
  await speaker.start();
  await speaker.ready;
});

after(async () => {
  await speaker?.stop({ graceful: false });
  await etcd?.stop();
});

async function established(from = PEER): Promise<RawBgp> {
  const r = await RawBgp.connect(US, port, from);
  await r.establish(OPEN);
  await waitFor('peer Established', async () => speaker.peer(from)?.state === 'Established', 5000);
  return r;
}

const attrs = (nh = '10.0.0.2') => encodeAttrs({ origin: 0, asPath: [], nextHop: '', localPref: 100 }, { as4: true, classicNextHop: nh });
const announce = (prefixes: string[], a = attrs()) => buildAnnouncements(AFI_IPV4, a, '10.0.0.2', prefixes.map((p) => parsePrefix(p).words));
const prefixesFrom = (peer: string) => speaker.routes(AFI_IPV4).filter((r) => r.source === peer).map((r) => r.prefix);

test('bad OPENs get the same NOTIFICATION from us as from BIRD 2 and FRR (wrong AS 2/2, hold time 1 2/6, duplicate router id 2/3)', async () => {
  const cases = (selfId: number, fromId: number): OpenProbe[] => [
    { name: 'normal', myAs: 64512, holdTime: 9, bgpId: fromId },
    { name: 'wrong AS', myAs: 65000, holdTime: 9, bgpId: fromId },
    { name: 'hold time 1', myAs: 64512, holdTime: 1, bgpId: fromId },
    { name: 'hold time 2', myAs: 64512, holdTime: 2, bgpId: fromId },
    { name: 'duplicate router id', myAs: 64512, holdTime: 9, bgpId: selfId },
  ];
  const norm = (r: Record<string, string>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.replace(/^OPEN\+NOTIFICATION/, 'NOTIFICATION')]));
  const ours: Record<string, string> = {};
  for (const c of cases(0x7f000001, 0x0a000002)) {
    ours[c.name] = await probeOpen(US, port, PEER, c);
    await waitFor('peer idle again', async () => speaker.peer(PEER)?.state !== 'OpenConfirm', 5000);
  }
  assert.deepEqual(norm(ours), {
    normal: 'OPEN+KEEPALIVE', 'wrong AS': 'NOTIFICATION 2/2', 'hold time 1': 'NOTIFICATION 2/6', 'hold time 2': 'NOTIFICATION 2/6', 'duplicate router id': 'NOTIFICATION 2/3',
  });

  const lan = new Lan('m');
  let bird: Bird | undefined;
  let frr: Frr | undefined;
  try {
    const b: LanNode = lan.add('bird', 2);
    const f: LanNode = lan.add('frr', 3);
    const probe: LanNode = lan.add('probe', 9);
    bird = new Bird(b.ns, { routerId: b.ipv4, peers: [{ name: 'probe', localAddress: b.ipv4, neighbor: probe.ipv4, localAs: 64512, remoteAs: 64512, afi: 4, passive: true }] });
    await bird.start();
    frr = new Frr(f.ns, `frr defaults traditional\nhostname frr\nrouter bgp 64512\n bgp router-id ${f.ipv4}\n no bgp default ipv4-unicast\n neighbor ${probe.ipv4} remote-as 64512\n neighbor ${probe.ipv4} passive\n address-family ipv4 unicast\n  neighbor ${probe.ipv4} activate\n exit-address-family\n`);
    await frr.start();
    const script = join(__dirname, 'lib', 'probe-main.js');
    const run = async (host: string, selfId: number) => JSON.parse(await inNs(probe.ns, process.execPath, [script, JSON.stringify({ host, port: 179, local: probe.ipv4, gapMs: 1500, cases: cases(selfId, 0x0a630009) })])) as Record<string, string>;
    const birdAnswers = await run(b.ipv4, 0x0a630002);
    const frrAnswers = await run(f.ipv4, 0x0a630003);
    assert.deepEqual(norm(birdAnswers), norm(ours), `BIRD: ${JSON.stringify(birdAnswers)}`);
    assert.deepEqual(norm(frrAnswers), norm(ours), `FRR: ${JSON.stringify(frrAnswers)}`);
  } finally {
    await bird?.stop().catch(() => undefined);
    await frr?.stop().catch(() => undefined);
    lan.destroy();
    bird?.cleanup();
    frr?.cleanup();
  }
});

test('OPEN errors of our own: version 3 -> 2/1, unsupported optional parameter -> 2/4, malformed parameters -> 2/0', async () => {
  const send = async (body: Buffer) => {
    const r = await RawBgp.connect(US, port, PEER);
    r.send(frame(MsgType.Open, body));
    const out = await r.outcome();
    r.close();
    await waitFor('peer idle', async () => speaker.peer(PEER)?.state !== 'OpenConfirm', 5000);
    return out;
  };
  const open = encodeOpen(OPEN).subarray(19);
  const v3 = Buffer.from(open); v3[0] = 3;
  assert.equal(await send(v3), '2/1');
  assert.equal(await send(Buffer.from([4, 0xfc, 0, 0, 30, 10, 0, 0, 2, 3, 1, 1, 0])), '2/4');
  const badLen = Buffer.from(open); badLen[9] = 200;
  assert.equal(await send(badLen), '2/0');
});

test('header errors: bad marker 1/1, length 18 or 5000 1/2, unknown type 1/3, short OPEN 1/2, long KEEPALIVE 1/2', async () => {
  const raw = async (bytes: Buffer) => {
    const r = await RawBgp.connect(US, port, PEER);
    r.send(bytes);
    const out = await r.outcome();
    r.close();
    return out;
  };
  const hdr = (len: number, type: number, marker = 0xff) => { const b = Buffer.alloc(Math.max(len, 19), 0); b.fill(marker, 0, 16); b.writeUInt16BE(len, 16); b[18] = type; return b; };
  assert.equal(await raw(hdr(19, 4, 0xfe)), '1/1');
  assert.equal(await raw(hdr(18, 4)), '1/2');
  assert.equal(await raw(hdr(5000, 2)), '1/2');
  assert.equal(await raw(hdr(19, 9)), '1/3');
  assert.equal(await raw(hdr(25, 1)), '1/2');
  assert.equal(await raw(hdr(20, 4)), '1/2');
});

test('FSM errors: UPDATE before OPEN 5/1, UPDATE in OpenConfirm 5/2, OPEN when Established 5/3', async () => {
  const upd = announce(['10.60.1.0/24'])[0]!;
  const r1 = await RawBgp.connect(US, port, PEER);
  r1.send(upd);
  assert.equal(await r1.outcome(), '5/1');
  r1.close();
  const r2 = await RawBgp.connect(US, port, PEER);
  r2.send(encodeOpen(OPEN));
  await r2.next(); await r2.next(); // OPEN, KEEPALIVE: we are in OpenConfirm
  r2.send(upd);
  assert.equal(await r2.outcome(), '5/2');
  r2.close();
  const r3 = await established();
  r3.send(encodeOpen(OPEN));
  assert.equal(await r3.outcome(), '5/3');
  r3.close();
});

test('UPDATE errors: attribute overrun 3/1, bad NLRI 3/10, unknown well-known 3/2, ROUTE-REFRESH length 7/1', async () => {
  const body = (w: number[], a: Buffer, n: number[]) => { const x = Buffer.alloc(4 + w.length + a.length + n.length); x.writeUInt16BE(w.length, 0); Buffer.from(w).copy(x, 2); x.writeUInt16BE(a.length, 2 + w.length); a.copy(x, 4 + w.length); Buffer.from(n).copy(x, 4 + w.length + a.length); return x; };
  const good = attrs();
  const cases: Array<[string, Buffer, string]> = [
    ['attribute overrun', frame(MsgType.Update, body([], Buffer.concat([good, Buffer.from([0x40, 1, 200, 0])]), [24, 10, 60, 1])), '3/1'],
    ['prefix length 40', frame(MsgType.Update, body([], good, [40, 10, 60, 1, 0, 0])), '3/10'],
    ['withdrawn prefix truncated', frame(MsgType.Update, body([24, 10], Buffer.alloc(0), [])), '3/10'],
    ['unknown well-known attribute', frame(MsgType.Update, body([], Buffer.concat([good, Buffer.from([0x40, 77, 1, 0])]), [24, 10, 60, 1])), '3/2'],
    ['route refresh length 24', frame(MsgType.RouteRefresh, Buffer.from([0, 1, 0, 1, 0])), '7/1'],
  ];
  for (const [name, msg, want] of cases) {
    const r = await established();
    r.send(msg);
    assert.equal(await r.outcome(), want, name);
    r.close();
    await waitFor('peer down', async () => speaker.peer(PEER)?.state !== 'Established', 5000);
  }
});

test('treat-as-withdraw: a route re-announced with a broken attribute is withdrawn and the session stays up', async () => {
  const r = await established();
  for (const m of announce(['10.60.7.0/24', '10.60.8.0/24'])) r.send(m);
  await waitFor('routes in', async () => prefixesFrom(PEER).length === 2, 5000);
  // Same prefix, ORIGIN missing (well-known mandatory) -> treat-as-withdraw.
  const noOrigin = Buffer.from([0x40, 2, 0, 0x40, 3, 4, 10, 0, 0, 2]);
  for (const m of buildAnnouncements(AFI_IPV4, noOrigin, '10.0.0.2', [parsePrefix('10.60.7.0/24').words])) r.send(m);
  // Bad MED length -> treat-as-withdraw too.
  const badMed = Buffer.concat([attrs(), Buffer.from([0x80, 4, 3, 0, 0, 1])]);
  for (const m of buildAnnouncements(AFI_IPV4, badMed, '10.0.0.2', [parsePrefix('10.60.8.0/24').words])) r.send(m);
  await waitFor('both withdrawn', async () => prefixesFrom(PEER).length === 0, 5000);
  r.send(KEEPALIVE);
  assert.equal(await r.outcome(500), 'timeout', 'no NOTIFICATION: the session stays up');
  assert.equal(speaker.peer(PEER)?.state, 'Established');
  r.send(encodeRouteRefresh(1, 1));
  r.close();
});

test('a fuzzed stream of 100 000 UPDATEs: only the intended framing errors reset the session; the RIB stays consistent', async () => {
  let seed = 424242;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 8; };
  const pfx = () => `10.60.${rnd() % 64}.0/24`;
  // Attribute templates whose framing is valid; values get randomised below.
  const mutateAttrs = (): Buffer => {
    const parts: number[][] = [
      [0x40, 1, 1, rnd() % 4],
      [0x40, 2, 6, rnd() % 5, 1, 0, 0, rnd() & 255, rnd() & 255],
      [0x40, 3, 4, rnd() & 255, rnd() & 255, rnd() & 255, rnd() & 255],
      [0x40, 5, 4, 0, 0, 0, rnd() & 255],
    ];
    if (rnd() % 3 === 0) parts.push([0x80, 4, 4, 0, 0, 0, rnd() & 255]);
    if (rnd() % 4 === 0) parts.push([0xc0, 8, 4, rnd() & 255, rnd() & 255, rnd() & 255, rnd() & 255]);
    if (rnd() % 5 === 0) parts.push([0x80 | (rnd() & 0x60), 100 + (rnd() % 100), 2, rnd() & 255, rnd() & 255]);
    if (rnd() % 6 === 0) { const i = rnd() % parts.length; parts[i]![0] = (rnd() & 0xc0) | (parts[i]![0]! & 0x3f); if (!(parts[i]![0]! & 0x80) && parts[i]![1]! >= 100) parts[i]![0]! |= 0x80; }
    if (rnd() % 8 === 0) parts.splice(rnd() % parts.length, 1); // drop one: missing mandatory
    if (rnd() % 10 === 0) parts.push(parts[rnd() % parts.length]!.slice()); // duplicate
    for (let i = parts.length - 1; i > 0; i--) { const j = rnd() % (i + 1); [parts[i], parts[j]] = [parts[j]!, parts[i]!]; }
    return Buffer.from(parts.flat());
  };
  const fatal = (): Buffer => {
    const len = 23 + (rnd() % 40);
    const b = Buffer.alloc(len);
    for (let i = 19; i < len; i++) b[i] = rnd() & 255;
    b.fill(0xff, 0, 16); b.writeUInt16BE(len, 16); b[18] = 2;
    b.writeUInt16BE(len, 19); // withdrawn length always overruns: a guaranteed framing error
    return b;
  };
  let sent = 0;
  let resets = 0;
  const outcomes = new Map<string, number>();
  let r = await established(FUZZ);
  const BATCH = 1000;
  while (sent < 100_000) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < BATCH - 1; i++) {
      if (rnd() % 4 === 0) chunks.push(...buildWithdrawals(AFI_IPV4, [parsePrefix(pfx()).words]));
      else chunks.push(...buildAnnouncements(AFI_IPV4, mutateAttrs(), '', [parsePrefix(pfx()).words, parsePrefix(pfx()).words]));
    }
    const withFatal = rnd() % 10 === 0;
    if (withFatal) chunks.push(fatal()); else chunks.push(KEEPALIVE);
    sent += chunks.length;
    r.send(Buffer.concat(chunks));
    if (withFatal) {
      const o = await r.outcome(10000);
      outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      resets++;
      r.close();
      await waitFor('fuzz peer down', async () => speaker.peer(FUZZ)?.state !== 'Established', 10000);
      await waitFor('stale routes purged', async () => prefixesFrom(FUZZ).length === 0, 10000);
      r = await established(FUZZ);
    } else {
      // A batch without a framing error must not reset the session (checked again by the outcomes
      // below: an unintended reset would surface as another code or as 'closed').
      const e = await r.next(1);
      assert.ok(e.type === 'timeout' || (e.type === 'msg' && e.msgType !== MsgType.Notification), `unexpected reset after ${sent} messages`);
    }
  }
  assert.ok(sent >= 100_000);
  assert.deepEqual([...outcomes.keys()], ['3/1'], `every reset came from an intended framing error: ${JSON.stringify([...outcomes])}`);
  assert.ok(resets > 0);
  // The RIB is consistent: withdraw everything we may have sent, then announce a known set.
  for (const m of buildWithdrawals(AFI_IPV4, Array.from({ length: 64 }, (_, i) => parsePrefix(`10.60.${i}.0/24`).words))) r.send(m);
  await waitFor('all fuzz routes withdrawn', async () => prefixesFrom(FUZZ).length === 0, 10000);
  for (const m of announce(['10.60.1.0/24', '10.60.2.0/24', '10.60.3.0/24'])) r.send(m);
  await waitFor('known set', async () => prefixesFrom(FUZZ).join() === '10.60.1.0/24,10.60.2.0/24,10.60.3.0/24', 10000);
  assert.equal(speaker.peer(FUZZ)?.state, 'Established');
  r.close();
});

test('ROUTE-REFRESH: the speaker sends its Adj-RIB-Out again, then End-of-RIB', async () => {
  await writeBlock(etcd.kv('cli'), 'node-m', '10.60.200.0/26');
  await waitFor('block in our RIB', async () => speaker.routes(AFI_IPV4).some((x) => x.prefix === '10.60.200.0/26'), 5000);
  const r = await established();
  const readRoutes = async () => {
    const got: string[] = [];
    for (;;) {
      const e = await r.next(5000);
      if (e.type !== 'msg') throw new Error(`session ended: ${e.type}`);
      if (e.msgType !== MsgType.Update) continue;
      const u = decodeUpdate(e.body, { as4: true, ibgp: true, families: new Set([1]) });
      if (u.endOfRib) return got;
      // Our next hop here is 127.0.0.1, which our own decoder (rightly) refuses as a route's next
      // hop: read the prefixes from the treat-as-withdraw result and the address from its reason.
      const nh = /NEXT_HOP (\S+) is not a usable address/.exec(u.treatAsWithdraw ?? '')?.[1];
      assert.ok(nh, `expected only the loopback next hop to be refused, got ${u.treatAsWithdraw}`);
      for (const b of u.withdrawn) forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => got.push(`${prefixToString(w)} nh ${nh}`));
    }
  };
  assert.deepEqual(await readRoutes(), ['10.60.200.0/26 nh 127.0.0.1']);
  r.send(encodeRouteRefresh(1, 1));
  assert.deepEqual(await readRoutes(), ['10.60.200.0/26 nh 127.0.0.1']);
  r.close();
});
