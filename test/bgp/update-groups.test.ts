/**
 * Update groups from the wire: our speaker (in this process, on 127.0.0.1, no kernel programming)
 * as a route reflector with three raw-socket clients that share one update group. Checks what
 * each client receives, message by message: split horizon (a client never hears of its own routes,
 * not even as a withdrawal), the withdrawal a client needs when the best route for a prefix it had
 * from us becomes its own, a late joiner's dump followed by End-of-RIB, and a route refresh.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { freePort, waitFor } from '../harness/ports.js';
import { createLogger } from '../../src/log.js';
import { BgpSpeaker } from '../../node/bgp/speaker.js';
import { RawBgp } from './lib/raw.js';
import { writeNode, writePeer, writePool } from './lib/setup.js';
import { MsgType, AFI_IPV4, SAFI_UNICAST } from '../../node/bgp/codec/constants.js';
import { buildAnnouncements, buildWithdrawals, decodeUpdate } from '../../node/bgp/codec/update.js';
import { encodeAttrs } from '../../node/bgp/codec/attrs.js';
import { parsePrefix, forEachPrefix, prefixToString, ipv4ToString } from '../../node/bgp/codec/prefix.js';
import { encodeRouteRefresh } from '../../node/bgp/codec/notification.js';

const US = '127.0.0.1';
const A = '127.0.0.11';
const B = '127.0.0.12';
const C = '127.0.0.13';
const AS = 64512;
/** Next hop each client announces (loopback next hops are refused as unusable). */
const nhOf = (addr: string) => addr.replace(/^127\./, '10.');

/** One line per prefix event, in arrival order: "+10.70.1.0/24 nh=127.0.0.11 orig=127.0.0.11", "-10.70.1.0/24", "EoR". */
class Client {
  readonly events: string[] = [];
  private pumping: Promise<void>;
  private stopped = false;
  private constructor(readonly addr: string, readonly raw: RawBgp) {
    this.pumping = this.pump();
  }

  static async connect(port: number, addr: string): Promise<Client> {
    const raw = await RawBgp.connect(US, port, addr);
    await raw.establish({ localAs: AS, holdTime: 60, bgpId: parsePrefix(`${addr}/32`).words[0]!, families: [{ afi: AFI_IPV4, safi: SAFI_UNICAST }], routeRefresh: true });
    return new Client(addr, raw);
  }

  private async pump(): Promise<void> {
    while (!this.stopped) {
      const e = await this.raw.next(500);
      if (e.type === 'closed') { this.events.push('CLOSED'); return; }
      if (e.type !== 'msg' || e.msgType !== MsgType.Update) continue;
      const u = decodeUpdate(e.body, { as4: true, ibgp: true, families: new Set([AFI_IPV4]) });
      if (u.endOfRib !== undefined) { this.events.push('EoR'); continue; }
      for (const b of u.withdrawn) forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => this.events.push(`-${prefixToString(w)}`));
      for (const b of u.announced) {
        const nh = b.nextHop ?? u.attrs!.nextHop;
        const orig = u.attrs!.originatorId;
        const o = orig === undefined ? '-' : ipv4ToString(orig);
        forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => this.events.push(`+${prefixToString(w)} nh=${nh} orig=${o}`));
      }
    }
  }

  announce(prefix: string, localPref = 100): void {
    const nh = nhOf(this.addr);
    const attrs = encodeAttrs({ origin: 0, asPath: [], nextHop: '', localPref }, { as4: true, classicNextHop: nh });
    for (const m of buildAnnouncements(AFI_IPV4, attrs, nh, [parsePrefix(prefix).words])) this.raw.send(m);
  }

  withdraw(prefix: string): void {
    for (const m of buildWithdrawals(AFI_IPV4, [parsePrefix(prefix).words])) this.raw.send(m);
  }

  /** Events about one prefix. */
  about(prefix: string): string[] {
    return this.events.filter((e) => e.slice(1).split(' ')[0] === prefix);
  }

  async waitFor(what: string, pred: (events: string[]) => boolean): Promise<void> {
    await waitFor(`${this.addr}: ${what} (got ${JSON.stringify(this.events)})`, async () => pred(this.events), 10_000);
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.raw.close();
    await this.pumping;
  }
}

let etcd: TestEtcd;
let speaker: BgpSpeaker;
let port: number;
const clients: Client[] = [];

before(async () => {
  etcd = await startEtcd();
  const kv = etcd.kv('cli');
  await writeNode(kv, 'rr', US, undefined, { rrClusterId: '10.0.0.99' });
  await writePool(kv, '10.70.0.0/16');
  for (const c of [A, B, C]) await writePeer(kv, { node: 'rr' }, c, AS, { passive: true });
  port = await freePort();
  speaker = new BgpSpeaker({ kv: etcd.kv('daemon'), nodeName: 'rr', logger: createLogger({ level: process.env.BGP_TEST_DEBUG ? 'debug' : 'error' }), listenAddress: US, port, kernel: false, holdTime: 60 });
  await speaker.start();
  await speaker.ready;
});

after(async () => {
  for (const c of clients) await c.close();
  await speaker?.stop({ graceful: false });
  await etcd?.stop();
});

const best = (prefix: string) => speaker.routes(AFI_IPV4).find((r) => r.prefix === prefix)?.source;

test('clients with the same export result share one update group, and none hears of its own routes', async () => {
  const a = await Client.connect(port, A);
  const b = await Client.connect(port, B);
  clients.push(a, b);
  await a.waitFor('End-of-RIB', (e) => e.includes('EoR'));
  await b.waitFor('End-of-RIB', (e) => e.includes('EoR'));
  assert.deepEqual(speaker.updateGroups().map((g) => g.members), [2], 'one group with both clients');

  a.announce('10.70.1.0/24');
  b.announce('10.70.2.0/24');
  await b.waitFor('A\'s route', (e) => e.includes(`+10.70.1.0/24 nh=${nhOf(A)} orig=${A}`));
  await a.waitFor('B\'s route', (e) => e.includes(`+10.70.2.0/24 nh=${nhOf(B)} orig=${B}`));

  a.withdraw('10.70.1.0/24');
  await b.waitFor('the withdrawal of A\'s route', (e) => e.includes('-10.70.1.0/24'));
  a.announce('10.70.1.0/24');
  await b.waitFor('A\'s route again', (e) => e.filter((x) => x.startsWith('+10.70.1.0/24')).length === 2);
  // Everything B has sent after A's announcement has been reflected; A heard nothing of its own prefix.
  b.announce('10.70.9.0/24');
  await a.waitFor('a later route of B\'s', (e) => e.some((x) => x.startsWith('+10.70.9.0/24')));
  assert.deepEqual(a.about('10.70.1.0/24'), [], 'A never hears of its own prefix, not even as a withdrawal');
  assert.deepEqual(b.about('10.70.2.0/24'), []);
});

test('when a client\'s own route becomes best for a prefix it had from us, it gets that prefix withdrawn', async () => {
  const [a, b] = clients as [Client, Client];
  b.announce('10.70.3.0/24', 100);
  await a.waitFor('B\'s 10.70.3.0/24', (e) => e.includes(`+10.70.3.0/24 nh=${nhOf(B)} orig=${B}`));
  a.announce('10.70.3.0/24', 200);
  await b.waitFor('A\'s better 10.70.3.0/24', (e) => e.includes(`+10.70.3.0/24 nh=${nhOf(A)} orig=${A}`));
  await a.waitFor('the withdrawal of B\'s route', (e) => e.includes('-10.70.3.0/24'));
  assert.equal(best('10.70.3.0/24'), A);

  a.withdraw('10.70.3.0/24');
  await a.waitFor('B\'s route back', (e) => e.filter((x) => x === `+10.70.3.0/24 nh=${nhOf(B)} orig=${B}`).length === 2);
  await b.waitFor('its own route best again: A\'s withdrawn', (e) => e.includes('-10.70.3.0/24'));
  assert.deepEqual(a.about('10.70.3.0/24'), [`+10.70.3.0/24 nh=${nhOf(B)} orig=${B}`, '-10.70.3.0/24', `+10.70.3.0/24 nh=${nhOf(B)} orig=${B}`]);
  assert.deepEqual(b.about('10.70.3.0/24'), [`+10.70.3.0/24 nh=${nhOf(A)} orig=${A}`, '-10.70.3.0/24']);
  assert.equal(best('10.70.3.0/24'), B);
});

test('a late joiner gets the group\'s routes, then End-of-RIB; a route refresh resends all but its own', async () => {
  const [a, b] = clients as [Client, Client];
  const c = await Client.connect(port, C);
  clients.push(c);
  await c.waitFor('End-of-RIB', (e) => e.includes('EoR'));
  const dump = c.events.slice(0, c.events.indexOf('EoR')).sort();
  assert.deepEqual(dump, [
    `+10.70.1.0/24 nh=${nhOf(A)} orig=${A}`,
    `+10.70.2.0/24 nh=${nhOf(B)} orig=${B}`,
    `+10.70.3.0/24 nh=${nhOf(B)} orig=${B}`,
    `+10.70.9.0/24 nh=${nhOf(B)} orig=${B}`,
  ]);
  assert.deepEqual(speaker.updateGroups().map((g) => g.members), [3]);

  // The new member receives what happens from now on, like the others.
  c.announce('10.70.4.0/24');
  await a.waitFor('C\'s route', (e) => e.includes(`+10.70.4.0/24 nh=${nhOf(C)} orig=${C}`));
  await b.waitFor('C\'s route', (e) => e.includes(`+10.70.4.0/24 nh=${nhOf(C)} orig=${C}`));

  const before = b.events.length;
  b.raw.send(encodeRouteRefresh(AFI_IPV4, SAFI_UNICAST));
  await b.waitFor('End-of-RIB after the refresh', (e) => e.slice(before).includes('EoR'));
  const resent = b.events.slice(before, b.events.indexOf('EoR', before)).sort();
  assert.deepEqual(resent, [`+10.70.1.0/24 nh=${nhOf(A)} orig=${A}`, `+10.70.4.0/24 nh=${nhOf(C)} orig=${C}`], 'everything but B\'s own routes');
});

test('a member that leaves does not disturb the group; the last one out removes it', async () => {
  const [a, b, c] = clients as [Client, Client, Client];
  await c.close();
  await waitFor('C gone from the group', async () => speaker.updateGroups()[0]?.members === 2, 10_000);
  await b.waitFor('C\'s route withdrawn', (e) => e.includes('-10.70.4.0/24'));
  a.announce('10.70.5.0/24');
  await b.waitFor('A\'s new route', (e) => e.includes(`+10.70.5.0/24 nh=${nhOf(A)} orig=${A}`));
  await a.close();
  await b.close();
  clients.length = 0;
  await waitFor('no update group left', async () => speaker.updateGroups().length === 0, 10_000);
});
