/** PrefixTable against a Map model, the RIB's decision process, ECMP and graceful-restart stale handling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrefixTable, KeyQueue } from '../../node/bgp/table.js';
import { Rib } from '../../node/bgp/rib.js';
import { parsePrefix, prefixToString, prefixCovers } from '../../node/bgp/codec/prefix.js';
import { AFI_IPV4 } from '../../node/bgp/codec/constants.js';
import { PathAttrs } from '../../node/bgp/codec/attrs.js';

test('PrefixTable agrees with a Map under random inserts, updates and deletes (with growth)', () => {
  const t = new PrefixTable(2, 1);
  const model = new Map<string, number>();
  let seed = 7;
  const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed; };
  for (let i = 0; i < 200000; i++) {
    const k = new Uint32Array([rnd() % 5000, 24 + (rnd() % 9)]);
    const key = `${k[0]}/${k[1]}`;
    if (rnd() % 3 === 0) {
      assert.equal(t.delete(k), model.delete(key));
    } else {
      const v = rnd() & 0xffff;
      t.set(t.insert(k), 0, v);
      model.set(key, v);
    }
  }
  assert.equal(t.size, model.size);
  for (const [key, v] of model) {
    const [a, l] = key.split('/').map(Number);
    const s = t.find(new Uint32Array([a!, l!]));
    assert.ok(s >= 0, key);
    assert.equal(t.get(s, 0), v);
  }
  const q = new KeyQueue(2);
  for (let i = 0; i < 1000; i++) q.push([i, 32]);
  const out = new Uint32Array(2);
  let n = 0;
  while (q.shift(out)) { assert.equal(out[0], n++); }
  assert.equal(n, 1000);
});

test('prefix text <-> words, host bits cleared, covers', () => {
  assert.equal(prefixToString(parsePrefix('10.1.2.3/24').words), '10.1.2.0/24');
  assert.equal(prefixToString(parsePrefix('fd00:66::9:5').words), 'fd00:66::9:5/128');
  assert.equal(prefixToString(parsePrefix('2001:db8:ffff::/33').words), '2001:db8:8000::/33');
  assert.ok(prefixCovers(parsePrefix('10.66.0.0/16').words, parsePrefix('10.66.9.5/32').words));
  assert.ok(!prefixCovers(parsePrefix('10.66.0.0/16').words, parsePrefix('10.67.0.0/24').words));
  assert.ok(prefixCovers(parsePrefix('fd00:66::/64').words, parsePrefix('fd00:66::/122').words));
});

function setup() {
  const rib = new Rib();
  const mk = (addr: string, id: number, ibgp = true) => rib.addSource({ kind: 'peer', ibgp, rrClient: false, routerId: id, addressKey: addr, address: addr }).id;
  const at = (a: Partial<PathAttrs> & { nextHop: string }, key: string) => rib.attrs.intern(key, () => ({ origin: 0, asPath: [], ...a }));
  return { rib, mk, at };
}

test('decision process: LOCAL_PREF, AS_PATH length, ORIGIN, then tie-breaks; local routes always win', () => {
  const { rib, mk, at } = setup();
  const p = parsePrefix('10.1.0.0/24').words;
  const a = mk('10.0.0.2', 2);
  const b = mk('10.0.0.3', 3);
  rib.announce(a, AFI_IPV4, p, at({ nextHop: '10.0.0.2', localPref: 100, asPath: [{ type: 2, asns: [1, 2] }] }, 'a1'));
  rib.announce(b, AFI_IPV4, p, at({ nextHop: '10.0.0.3', localPref: 100, asPath: [{ type: 2, asns: [1] }] }, 'b1'));
  assert.equal(rib.best(AFI_IPV4, p)![0], b, 'shorter AS_PATH');
  rib.announce(a, AFI_IPV4, p, at({ nextHop: '10.0.0.2', localPref: 200, asPath: [{ type: 2, asns: [1, 2] }] }, 'a2'));
  assert.equal(rib.best(AFI_IPV4, p)![0], a, 'higher LOCAL_PREF beats path length');
  rib.withdraw(a, AFI_IPV4, p);
  assert.equal(rib.best(AFI_IPV4, p)![0], b);
  const local = rib.attrs.intern('local', () => ({ origin: 0, asPath: [], nextHop: '' }), 'blackhole');
  rib.announce(0, AFI_IPV4, p, local);
  assert.equal(rib.best(AFI_IPV4, p)![0], 0);
  const specs: string[] = [];
  rib.drainFib(100, (_afi, w, spec) => specs.push(`${prefixToString(w)} ${spec}`));
  assert.deepEqual(specs, ['10.1.0.0/24 blackhole']);
});

test('equal paths give one multipath kernel route; stale routes are kept until swept', () => {
  const { rib, mk, at } = setup();
  const p = parsePrefix('10.2.0.0/24').words;
  const a = mk('10.0.0.2', 2);
  const b = mk('10.0.0.3', 3);
  rib.announce(a, AFI_IPV4, p, at({ nextHop: '10.0.0.2', localPref: 100 }, 'a'));
  rib.announce(b, AFI_IPV4, p, at({ nextHop: '10.0.0.3', localPref: 100 }, 'b'));
  const specs: string[] = [];
  rib.drainFib(100, (_afi, _w, spec) => specs.push(spec));
  assert.deepEqual(specs, ['nexthop via 10.0.0.2 weight 1 nexthop via 10.0.0.3 weight 1']);
  // b goes away with graceful restart: stale, still a path.
  assert.equal(rib.markStale(b, AFI_IPV4), 1);
  assert.equal(rib.drainFib(100, () => assert.fail('no kernel change while stale')), 0);
  // b comes back with the same route: no longer stale, a sweep removes nothing.
  rib.announce(b, AFI_IPV4, p, at({ nextHop: '10.0.0.3', localPref: 100 }, 'b'));
  assert.equal(rib.keysOf(b, AFI_IPV4, true).length, 0);
  rib.markStale(b, AFI_IPV4);
  const keys = rib.keysOf(b, AFI_IPV4, true);
  rib.withdrawIfStale(b, AFI_IPV4, keys.subarray(0, 2));
  rib.drainFib(100, (_afi, _w, spec) => specs.push(spec));
  assert.equal(specs.at(-1), 'via 10.0.0.2');
});

test('attribute ids are reused only after they are freed, and caches are told', () => {
  const rib = new Rib();
  const freed: number[] = [];
  rib.attrs.onFree = (id) => freed.push(id);
  const src = rib.addSource({ kind: 'peer', ibgp: true, rrClient: false, routerId: 1, addressKey: 'a', address: 'a' }).id;
  const p = parsePrefix('10.9.0.0/24').words;
  const a = rib.attrs.intern('A', () => ({ origin: 0, asPath: [], nextHop: '10.0.0.1' }));
  rib.announce(src, AFI_IPV4, p, a);
  rib.withdraw(src, AFI_IPV4, p);
  assert.deepEqual(freed, [a]);
  const b = rib.attrs.intern('B', () => ({ origin: 0, asPath: [], nextHop: '10.0.0.2' }));
  assert.equal(b, a, 'the id is reused');
  assert.equal(rib.attrs.get(b).nextHop, '10.0.0.2');
});
