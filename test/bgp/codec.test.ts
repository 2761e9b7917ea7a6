/** Pure-logic tests of the BGP codec: round trips and every error path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageReader, frame, KEEPALIVE, checkHeader } from '../../node/bgp/codec/header.js';
import { encodeOpen, decodeOpen, familiesOf, peerAsOf } from '../../node/bgp/codec/open.js';
import { decodeUpdate, buildAnnouncements, buildWithdrawals, buildEndOfRib, UpdateContext } from '../../node/bgp/codec/update.js';
import { encodeAttrs, PathAttrs, mergeAs4Path, parseAsPath } from '../../node/bgp/codec/attrs.js';
import { encodeNotification, decodeNotification, encodeRouteRefresh, decodeRouteRefresh } from '../../node/bgp/codec/notification.js';
import { parsePrefix, prefixToString, forEachPrefix } from '../../node/bgp/codec/prefix.js';
import { MsgType, AFI_IPV4, AFI_IPV6, AS_TRANS } from '../../node/bgp/codec/constants.js';
import { BgpProtocolError } from '../../node/bgp/errors.js';

const ctx = (o: Partial<UpdateContext> = {}): UpdateContext => ({ as4: true, ibgp: true, families: new Set([AFI_IPV4, AFI_IPV6]), ...o });

function rejectsWith(fn: () => unknown, code: number, subcode: number): BgpProtocolError {
  try { fn(); } catch (err) {
    assert.ok(err instanceof BgpProtocolError, `expected BgpProtocolError, got ${String(err)}`);
    assert.deepEqual([err.code, err.subcode], [code, subcode], err.message);
    return err;
  }
  assert.fail(`expected NOTIFICATION ${code}/${subcode}`);
}

function bodyOf(msg: Buffer): Buffer {
  const r = new MessageReader();
  r.push(msg);
  const m = r.next()!;
  return Buffer.from(m.body);
}

/** An UPDATE body from raw parts. */
function update(withdrawn: Buffer, attrs: Buffer, nlri: Buffer): Buffer {
  const w = Buffer.alloc(2); w.writeUInt16BE(withdrawn.length);
  const a = Buffer.alloc(2); a.writeUInt16BE(attrs.length);
  return Buffer.concat([w, withdrawn, a, attrs, nlri]);
}
const attr = (flags: number, type: number, value: number[] | Buffer) => Buffer.concat([Buffer.from([flags, type, (value as Buffer).length]), Buffer.from(value as number[])]);
const ORIGIN = attr(0x40, 1, [0]);
const ASPATH_EMPTY = attr(0x40, 2, []);
const NEXTHOP = attr(0x40, 3, [10, 0, 0, 2]);
const LOCALPREF = attr(0x40, 5, [0, 0, 0, 100]);
const NLRI = Buffer.from([24, 10, 1, 2]);

test('header: marker, length and type errors carry the RFC 4271 codes and data', () => {
  const good = frame(MsgType.Keepalive, Buffer.alloc(0));
  assert.equal(checkHeader(good, 0), 19);
  const badMarker = Buffer.from(good); badMarker[3] = 0;
  rejectsWith(() => checkHeader(badMarker, 0), 1, 1);
  const short = Buffer.from(good); short.writeUInt16BE(18, 16);
  assert.deepEqual([...rejectsWith(() => checkHeader(short, 0), 1, 2).data], [0, 18]);
  const long = Buffer.from(good); long.writeUInt16BE(4097, 16);
  rejectsWith(() => checkHeader(long, 0), 1, 2);
  const ka20 = Buffer.concat([good, Buffer.alloc(1)]); ka20.writeUInt16BE(20, 16);
  rejectsWith(() => checkHeader(ka20, 0), 1, 2);
  const badType = Buffer.from(good); badType[18] = 9;
  assert.deepEqual([...rejectsWith(() => checkHeader(badType, 0), 1, 3).data], [9]);
  const shortOpen = Buffer.concat([good, Buffer.alloc(9)]); shortOpen.writeUInt16BE(28, 16); shortOpen[18] = 1;
  rejectsWith(() => checkHeader(shortOpen, 0), 1, 2);
  const shortUpdate = Buffer.concat([good, Buffer.alloc(3)]); shortUpdate.writeUInt16BE(22, 16); shortUpdate[18] = 2;
  rejectsWith(() => checkHeader(shortUpdate, 0), 1, 2);
  const shortNotif = Buffer.concat([good, Buffer.alloc(1)]); shortNotif.writeUInt16BE(20, 16); shortNotif[18] = 3;
  rejectsWith(() => checkHeader(shortNotif, 0), 1, 2);
  const rr = Buffer.concat([good, Buffer.alloc(5)]); rr.writeUInt16BE(24, 16); rr[18] = 5;
  rejectsWith(() => checkHeader(rr, 0), 7, 1);
});

test('reader: messages split across chunks and several in one chunk', () => {
  const r = new MessageReader();
  const two = Buffer.concat([KEEPALIVE, encodeNotification(6, 2, Buffer.from('bye'))]);
  r.push(two.subarray(0, 10));
  assert.equal(r.next(), undefined);
  r.push(two.subarray(10, 30));
  assert.equal(r.next()?.type, MsgType.Keepalive);
  assert.equal(r.next(), undefined);
  r.push(two.subarray(30));
  const n = r.next()!;
  assert.equal(n.type, MsgType.Notification);
  assert.deepEqual(decodeNotification(n.body), { code: 6, subcode: 2, data: Buffer.from('bye') });
});

test('OPEN round trip: families, route refresh, 4-octet AS (AS_TRANS), graceful restart', () => {
  const msg = encodeOpen({
    localAs: 4200000001, holdTime: 90, bgpId: 0x0a000001, families: [{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }],
    gracefulRestart: { restarting: true, notification: false, time: 120, families: [{ afi: 1, safi: 1, forwarding: true }] },
    extraCaps: [{ code: 73, value: Buffer.from('fqdn') }, { code: 200, value: Buffer.alloc(3) }],
  });
  const o = decodeOpen(bodyOf(msg));
  assert.equal(o.version, 4);
  assert.equal(o.myAs, AS_TRANS);
  assert.equal(peerAsOf(o), 4200000001);
  assert.equal(o.holdTime, 90);
  assert.equal(o.bgpId, 0x0a000001);
  assert.deepEqual(familiesOf(o.caps), [{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }]);
  assert.ok(o.caps.routeRefresh && o.caps.enhancedRouteRefresh);
  assert.deepEqual(o.caps.gracefulRestart, { restarting: true, notification: false, time: 120, families: [{ afi: 1, safi: 1, forwarding: true }] });
  assert.ok(o.caps.codes.includes(73) && o.caps.codes.includes(200), 'unknown capabilities are skipped, not fatal');
  // Short form only: GoBGP rejects the RFC 9072 form.
  assert.notEqual(msg[19 + 9], 255);
});

test('OPEN: RFC 9072 extended parameters are sent only when needed and decode back', () => {
  const many = Array.from({ length: 100 }, (_, i) => ({ code: 150 + (i % 50), value: Buffer.alloc(2) }));
  const msg = encodeOpen({ localAs: 64512, holdTime: 9, bgpId: 1, families: [{ afi: 1, safi: 1 }], extraCaps: many });
  assert.equal(msg[19 + 9], 255);
  assert.equal(msg[19 + 10], 255);
  const o = decodeOpen(bodyOf(msg));
  assert.equal(o.caps.codes.length, 1 + 2 + 1 + 100);
});

test('OPEN: structural errors and non-capability parameters', () => {
  const msg = bodyOf(encodeOpen({ localAs: 64512, holdTime: 9, bgpId: 1, families: [{ afi: 1, safi: 1 }] }));
  const badLen = Buffer.from(msg); badLen[9] = badLen[9]! + 1;
  rejectsWith(() => decodeOpen(badLen), 2, 0);
  const truncCap = Buffer.from([4, 0xfc, 0, 0, 9, 1, 2, 3, 4, 4, 2, 2, 1, 10]);
  rejectsWith(() => decodeOpen(truncCap), 2, 0);
  const withAuth = Buffer.from([4, 0xfc, 0, 0, 9, 1, 2, 3, 4, 3, 1, 1, 0]);
  assert.deepEqual(decodeOpen(withAuth).unsupportedParams, [1]);
  rejectsWith(() => decodeOpen(Buffer.alloc(5)), 2, 0);
  // No capabilities at all: IPv4 unicast is implied.
  assert.deepEqual(familiesOf(decodeOpen(Buffer.from([4, 0xfc, 0, 0, 9, 1, 2, 3, 4, 0])).caps), [{ afi: 1, safi: 1 }]);
});

test('NOTIFICATION and ROUTE-REFRESH round trip', () => {
  assert.deepEqual(decodeNotification(bodyOf(encodeNotification(2, 6, Buffer.from([0, 1])))), { code: 2, subcode: 6, data: Buffer.from([0, 1]) });
  assert.deepEqual(decodeRouteRefresh(bodyOf(encodeRouteRefresh(2, 1, 1))), { afi: 2, safi: 1, subtype: 1 });
});

test('UPDATE round trip: IPv4 classic NLRI and IPv6 MP_REACH, packed into 4 KB messages', () => {
  const attrs: PathAttrs = { origin: 0, asPath: [], nextHop: '', localPref: 100, communities: [0xfde80001], med: 5 };
  const prefixes = Array.from({ length: 3000 }, (_, i) => parsePrefix(`10.${(i >> 8) & 255}.${i & 255}.0/24`).words);
  const v4 = buildAnnouncements(AFI_IPV4, encodeAttrs(attrs, { as4: true, classicNextHop: '10.0.0.1' }), '10.0.0.1', prefixes);
  assert.ok(v4.length > 1 && v4.every((m) => m.length <= 4096));
  const got: string[] = [];
  for (const m of v4) {
    const u = decodeUpdate(bodyOf(m), ctx());
    assert.equal(u.attrs?.nextHop, '10.0.0.1');
    assert.equal(u.attrs?.localPref, 100);
    assert.equal(u.attrs?.med, 5);
    assert.deepEqual(u.attrs?.communities, [0xfde80001]);
    for (const b of u.announced) forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => got.push(prefixToString(w)));
  }
  assert.equal(got.length, 3000);
  assert.equal(got[2999], '10.11.183.0/24');
  const v6p = ['fd00:66::/122', 'fd00:66::9:5/128', '2001:db8::/32'].map((p) => parsePrefix(p).words);
  const v6 = buildAnnouncements(AFI_IPV6, encodeAttrs(attrs, { as4: true }), 'fd00:99::1', v6p);
  const u6 = decodeUpdate(bodyOf(v6[0]!), ctx());
  assert.equal(u6.announced[0]!.afi, AFI_IPV6);
  assert.equal(u6.announced[0]!.nextHop, 'fd00:99::1');
  const got6: string[] = [];
  forEachPrefix(u6.announced[0]!.buf, u6.announced[0]!.start, u6.announced[0]!.end, AFI_IPV6, (w) => got6.push(prefixToString(w)));
  assert.deepEqual(got6, ['fd00:66::/122', 'fd00:66::9:5/128', '2001:db8::/32']);
  // Withdrawals
  const w4 = decodeUpdate(bodyOf(buildWithdrawals(AFI_IPV4, prefixes.slice(0, 2))[0]!), ctx());
  assert.equal(w4.withdrawn[0]!.count, 2);
  const w6 = decodeUpdate(bodyOf(buildWithdrawals(AFI_IPV6, v6p)[0]!), ctx());
  assert.equal(w6.withdrawn[0]!.afi, AFI_IPV6);
  assert.equal(w6.withdrawn[0]!.count, 3);
  // End-of-RIB
  assert.equal(decodeUpdate(bodyOf(buildEndOfRib(AFI_IPV4)), ctx()).endOfRib, AFI_IPV4);
  assert.equal(decodeUpdate(bodyOf(buildEndOfRib(AFI_IPV6)), ctx()).endOfRib, AFI_IPV6);
});

test('UPDATE framing errors reset the session (3/1, 3/10, 3/2, 3/9)', () => {
  const good = Buffer.concat([ORIGIN, ASPATH_EMPTY, NEXTHOP, LOCALPREF]);
  const withdrawnOverrun = update(Buffer.alloc(0), good, NLRI); withdrawnOverrun.writeUInt16BE(500, 0);
  rejectsWith(() => decodeUpdate(withdrawnOverrun, ctx()), 3, 1);
  const attrOverrun = update(Buffer.alloc(0), good, NLRI); attrOverrun.writeUInt16BE(500, 2);
  rejectsWith(() => decodeUpdate(attrOverrun, ctx()), 3, 1);
  rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), Buffer.concat([good, Buffer.from([0x40, 1, 9, 0])]), NLRI), ctx()), 3, 1);
  rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), good, Buffer.from([33, 10, 1, 2, 3, 4])), ctx()), 3, 10);
  rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), good, Buffer.from([24, 10, 1])), ctx()), 3, 10);
  rejectsWith(() => decodeUpdate(update(Buffer.from([8]), good, NLRI), ctx()), 3, 10);
  // Unrecognized well-known attribute (optional bit clear, unknown type).
  const e = rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), Buffer.concat([good, attr(0x40, 99, [1])]), NLRI), ctx()), 3, 2);
  assert.deepEqual([...e.data], [0x40, 99, 1, 1]);
  // MP_REACH with a bad next hop length, and twice.
  const mp = (nhLen: number) => attr(0x80, 14, [0, 2, 1, nhLen, ...Array(nhLen).fill(0), 0, 64, 0xfd, 0, 0, 0x66, 0, 0, 0, 0]);
  rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), Buffer.concat([mp(4), ORIGIN, ASPATH_EMPTY]), Buffer.alloc(0)), ctx()), 3, 9);
  rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), Buffer.concat([mp(16), mp(16), ORIGIN, ASPATH_EMPTY]), Buffer.alloc(0)), ctx()), 3, 1);
  rejectsWith(() => decodeUpdate(update(Buffer.alloc(0), Buffer.concat([attr(0x80, 15, [0, 2]), ORIGIN]), Buffer.alloc(0)), ctx()), 3, 9);
});

test('RFC 7606: attribute errors are treat-as-withdraw or attribute-discard, never a reset', () => {
  const base = [ORIGIN, ASPATH_EMPTY, NEXTHOP, LOCALPREF];
  const tw = (attrs: Buffer[]) => decodeUpdate(update(Buffer.alloc(0), Buffer.concat(attrs), NLRI), ctx());
  const cases: Array<[string, Buffer[]]> = [
    ['missing ORIGIN', [ASPATH_EMPTY, NEXTHOP]],
    ['missing AS_PATH', [ORIGIN, NEXTHOP]],
    ['missing NEXT_HOP', [ORIGIN, ASPATH_EMPTY]],
    ['ORIGIN value 3', [attr(0x40, 1, [3]), ASPATH_EMPTY, NEXTHOP]],
    ['ORIGIN length 2', [attr(0x40, 1, [0, 0]), ASPATH_EMPTY, NEXTHOP]],
    ['ORIGIN flags optional', [attr(0xc0, 1, [0]), ASPATH_EMPTY, NEXTHOP]],
    ['AS_PATH segment overrun', [ORIGIN, attr(0x40, 2, [2, 3, 0, 0, 0, 1]), NEXTHOP]],
    ['AS_PATH bad segment type', [ORIGIN, attr(0x40, 2, [7, 1, 0, 0, 0, 1]), NEXTHOP]],
    ['NEXT_HOP length 5', [ORIGIN, ASPATH_EMPTY, attr(0x40, 3, [10, 0, 0, 2, 0])]],
    ['NEXT_HOP 0.0.0.0', [ORIGIN, ASPATH_EMPTY, attr(0x40, 3, [0, 0, 0, 0])]],
    ['NEXT_HOP multicast', [ORIGIN, ASPATH_EMPTY, attr(0x40, 3, [224, 0, 0, 1])]],
    ['MED length 3', [...base, attr(0x80, 4, [0, 0, 1])]],
    ['LOCAL_PREF length 2', [ORIGIN, ASPATH_EMPTY, NEXTHOP, attr(0x40, 5, [0, 1])]],
    ['COMMUNITIES length 3', [...base, attr(0xc0, 8, [0, 0, 1])]],
    ['ORIGINATOR_ID length 3', [...base, attr(0x80, 9, [1, 2, 3])]],
    ['CLUSTER_LIST length 5', [...base, attr(0x80, 10, [1, 2, 3, 4, 5])]],
    ['EXT_COMMUNITIES length 7', [...base, attr(0xc0, 16, [1, 2, 3, 4, 5, 6, 7])]],
    ['LARGE_COMMUNITY length 11', [...base, attr(0xc0, 32, Array(11).fill(1))]],
  ];
  for (const [name, attrs] of cases) {
    const u = tw(attrs);
    assert.ok(u.treatAsWithdraw, `${name}: treat-as-withdraw`);
    assert.equal(u.announced.length, 0, name);
    assert.equal(u.withdrawn.at(-1)?.count, 1, `${name}: the NLRI is withdrawn`);
  }
  const discards: Array<[string, Buffer[]]> = [
    ['ATOMIC_AGGREGATE length 1', [...base, attr(0x40, 6, [1])]],
    ['AGGREGATOR length 5', [...base, attr(0xc0, 7, [1, 2, 3, 4, 5])]],
    ['AS4_PATH malformed', [...base, attr(0xc0, 17, [2, 9, 0])]],
    ['AS4_AGGREGATOR length 3', [...base, attr(0xc0, 18, [1, 2, 3])]],
    ['AGGREGATOR flags', [...base, attr(0x40, 7, [0, 0, 0, 1, 1, 2, 3, 4])]],
  ];
  for (const [name, attrs] of discards) {
    const u = tw(attrs);
    assert.equal(u.treatAsWithdraw, undefined, name);
    assert.equal(u.announced.length, 1, `${name}: the route is kept`);
    assert.ok(u.discarded.length > 0, `${name}: reported as discarded`);
  }
  // Duplicates: the first copy wins. Unknown optional transitive: kept with its bytes.
  const dup = tw([ORIGIN, attr(0x40, 1, [2]), ASPATH_EMPTY, NEXTHOP, attr(0xc0, 250, [7, 7])]);
  assert.equal(dup.attrs?.origin, 0);
  assert.deepEqual(dup.attrs?.unknown, [{ flags: 0xc0, type: 250, value: Buffer.from([7, 7]) }]);
  // Unknown optional non-transitive: dropped silently.
  assert.equal(tw([...base, attr(0x80, 251, [1])]).attrs?.unknown, undefined);
  // LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from eBGP are ignored.
  const e = decodeUpdate(update(Buffer.alloc(0), Buffer.concat([ORIGIN, attr(0x40, 2, [2, 1, 0, 0, 0xfd, 0xe9]), NEXTHOP, LOCALPREF, attr(0x80, 9, [1, 2, 3, 4])]), NLRI), ctx({ ibgp: false }));
  assert.equal(e.attrs?.localPref, undefined);
  assert.equal(e.attrs?.originatorId, undefined);
  // A withdraw-only UPDATE with a broken attribute is just a withdraw.
  const wo = decodeUpdate(update(Buffer.from([24, 10, 1, 2]), attr(0x40, 1, [9]), Buffer.alloc(0)), ctx());
  assert.equal(wo.withdrawn[0]!.count, 1);
});

test('4-octet AS: 2-octet AS_PATH with AS_TRANS is rebuilt from AS4_PATH (RFC 6793 §4.2.3)', () => {
  const two = parseAsPath(Buffer.from([2, 3, 0xfd, 0xe8, 0x5b, 0xa0, 0x5b, 0xa0]), 2)!;
  assert.deepEqual(two, [{ type: 2, asns: [65000, 23456, 23456] }]);
  const four = parseAsPath(Buffer.from([2, 2, 0xfa, 0x56, 0xea, 0x01, 0xfa, 0x56, 0xea, 0x02]), 4)!;
  assert.deepEqual(mergeAs4Path(two, four), [{ type: 2, asns: [65000] }, { type: 2, asns: [4200000001, 4200000002] }]);
  // Over a 2-octet session the encoder sends AS_TRANS plus AS4_PATH; decoding merges them back.
  const attrs: PathAttrs = { origin: 0, asPath: [{ type: 2, asns: [4200000001, 65001] }], nextHop: '' };
  const bytes = encodeAttrs(attrs, { as4: false, classicNextHop: '10.0.0.1' });
  const u = decodeUpdate(update(Buffer.alloc(0), bytes, NLRI), ctx({ as4: false, ibgp: false }));
  assert.deepEqual(u.attrs?.asPath, [{ type: 2, asns: [4200000001, 65001] }]);
  // A NEW speaker ignores AS4_PATH from a NEW speaker.
  const u4 = decodeUpdate(update(Buffer.alloc(0), Buffer.concat([ORIGIN, attr(0x40, 2, []), NEXTHOP, attr(0xc0, 17, [2, 1, 0, 0, 0, 1])]), NLRI), ctx());
  assert.ok(u4.discarded.some((d) => d.includes('AS4_PATH')));
});

test('UPDATE for a family that was not negotiated is ignored', () => {
  const mp = attr(0x80, 14, [0, 2, 1, 16, ...Array(16).fill(1), 0, 64, 0xfd, 0, 0, 0x66, 0, 0, 0, 0]);
  const u = decodeUpdate(update(Buffer.alloc(0), Buffer.concat([mp, ORIGIN, ASPATH_EMPTY]), Buffer.alloc(0)), ctx({ families: new Set([AFI_IPV4]) }));
  assert.equal(u.announced.length, 0);
});

test('decoder survives 400 000 random and mutated messages (only typed errors escape)', () => {
  let seed = 12345;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };
  const valid = update(Buffer.alloc(0), Buffer.concat([ORIGIN, ASPATH_EMPTY, NEXTHOP, LOCALPREF, attr(0xc0, 8, [0, 1, 0, 2])]), Buffer.from([24, 10, 1, 2, 32, 10, 9, 9, 9]));
  let resets = 0, withdraws = 0, ok = 0;
  for (let i = 0; i < 400_000; i++) {
    let body: Buffer;
    if (i % 4 === 0) {
      body = Buffer.alloc(rnd() % 64);
      for (let j = 0; j < body.length; j++) body[j] = rnd() & 255;
    } else {
      body = Buffer.from(valid);
      const flips = 1 + (rnd() % 3);
      for (let f = 0; f < flips; f++) body[rnd() % body.length] = rnd() & 255;
    }
    try {
      const u = decodeUpdate(body, ctx());
      if (u.treatAsWithdraw) withdraws++; else ok++;
    } catch (err) {
      if (!(err instanceof BgpProtocolError)) throw err;
      assert.equal(err.code, 3);
      resets++;
    }
  }
  assert.ok(resets > 0 && withdraws > 0 && ok > 0, `${resets} resets, ${withdraws} withdraws, ${ok} ok`);
});

test('reader: any chunking of a stream (1-byte to 9 KB pieces) yields the same messages', () => {
  let seed = 1;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 8; };
  for (let round = 0; round < 300; round++) {
    const msgs: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const body = Buffer.alloc(4 + (rnd() % 3000));
      for (let j = 0; j < body.length; j++) body[j] = rnd() & 255;
      msgs.push(frame(MsgType.Update, body));
    }
    const all = Buffer.concat(msgs);
    const r = new MessageReader();
    const got: Buffer[] = [];
    for (let off = 0; off < all.length;) {
      const n = 1 + (rnd() % (round % 3 === 0 ? 20 : 9000));
      r.push(all.subarray(off, off + n));
      off += n;
      for (let m = r.next(); m; m = r.next()) got.push(Buffer.from(m.body));
    }
    assert.equal(got.length, 50);
    got.forEach((g, i) => assert.ok(g.equals(msgs[i]!.subarray(19)), `round ${round} message ${i}`));
    assert.equal(r.pending, 0);
  }
  // A bad header that arrives split is still reported.
  const bad = frame(MsgType.Keepalive, Buffer.alloc(0));
  bad[2] = 0;
  const r = new MessageReader();
  r.push(bad.subarray(0, 5));
  assert.equal(r.next(), undefined);
  r.push(bad.subarray(5));
  assert.throws(() => r.next(), (e: unknown) => e instanceof BgpProtocolError && e.code === 1 && e.subcode === 1);
});
