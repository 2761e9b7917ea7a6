/**
 * Many route-reflector clients in one process, for the reflector scale benchmark and test.
 *
 * Each client is a raw iBGP session (the project's codec) from its own source address in the
 * clients namespace to the reflector: OPEN with MP IPv4 unicast, route refresh, 4-octet AS and
 * graceful restart; KEEPALIVEs every hold/3 s; a client-side hold timer (a reflector that goes
 * silent for the hold time counts as a drop, as a real peer would reset the session). Client i
 * announces R /32s: 10.128.0.0 + i*R + k. Every UPDATE received is decoded and checked: the route
 * must belong to another client, carry that client's address as next hop, ORIGINATOR_ID = that
 * client's router id and CLUSTER_LIST = [the reflector's cluster id]. Routes held per client are
 * one byte per route of the whole set, so "exactly the others' routes" is a count plus a bitmap.
 *
 * Reflection latency: every (re-)announcement by client j stamps j's generation; the first UPDATE
 * carrying one of j's prefixes that a receiver sees for that generation is one sample (a 1 ms
 * histogram). All timing is on this process's clock.
 *
 * Run by the parent (startClients) inside the clients namespace with an IPC channel:
 *   nsenter --net=/run/netns/<ns> node dist/bench/bgp/rr-clients.js
 * Commands: connect, announceAll, waitFull, churn, stats, close.
 */
import net from 'node:net';
import { spawn, ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { MessageReader, KEEPALIVE } from '../../node/bgp/codec/header.js';
import { encodeOpen, decodeOpen } from '../../node/bgp/codec/open.js';
import { decodeNotification, encodeNotification } from '../../node/bgp/codec/notification.js';
import { decodeUpdate, buildAnnouncements, buildWithdrawals, buildEndOfRib, UpdateContext, AttrParse } from '../../node/bgp/codec/update.js';
import { encodeAttrs } from '../../node/bgp/codec/attrs.js';
import { forEachPrefix } from '../../node/bgp/codec/prefix.js';
import { AFI_IPV4, MsgType } from '../../node/bgp/codec/constants.js';

export interface ClientsOptions {
  /** Reflector address (port 179). */
  target: string;
  /** First client address (dotted quad); client i uses first + i. */
  firstAddress: string;
  count: number;
  routesPerClient: number;
  asn: number;
  holdTime: number;
  /** The reflector's cluster id (dotted quad) expected in CLUSTER_LIST. */
  clusterId: string;
}

export interface ChurnOptions { durationMs: number; periodMs: number; fraction: number }

export interface Drop { client: string; t: number; why: string }

export interface ClientStats {
  established: number;
  everEstablished: number;
  drops: Drop[];
  /** Clients holding exactly the other clients' routes and nothing else. */
  complete: number;
  missingTotal: number;
  extraTotal: number;
  /** Routes whose next hop / ORIGINATOR_ID / CLUSTER_LIST were not what reflection requires. */
  badAttrs: number;
  badAttrExamples: string[];
  /** Routes with ORIGINATOR_ID and CLUSTER_LIST checked (so the zero above has a denominator). */
  attrsChecked: number;
  prefixesReceived: number;
  latency: { samples: number; expected: number; p50: number; p90: number; p99: number; max: number };
  clientLoopMaxMs: number;
  notificationsReceived: number;
}

const ip4 = (s: string) => s.split('.').reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0);
const str4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const ROUTE_BASE = ip4('10.128.0.0');

class Client {
  sock?: net.Socket;
  reader = new MessageReader();
  state: 'idle' | 'opensent' | 'established' | 'down' = 'idle';
  holdMs = 0;
  kaMs = 0;
  lastRx = 0;
  lastKa = 0;
  have: Uint8Array;
  count = 0;
  extra = 0;
  seenGen: Uint32Array;
  announce: Buffer[];
  withdraw: Buffer[];
  announced = false;
  onEstablished?: (ok: boolean, why?: string) => void;
  constructor(readonly idx: number, readonly address: string, readonly id: number, readonly o: ClientsOptions, readonly pool: Clients) {
    const total = o.count * o.routesPerClient;
    this.have = new Uint8Array(total);
    this.seenGen = new Uint32Array(o.count);
    const words = function* (): Generator<Uint32Array> {
      const w = new Uint32Array(2);
      for (let k = 0; k < o.routesPerClient; k++) { w[0] = (ROUTE_BASE + idx * o.routesPerClient + k) >>> 0; w[1] = 32; yield w; }
    };
    const attrs = encodeAttrs({ origin: 0, asPath: [], nextHop: '', localPref: 100 }, { as4: true, classicNextHop: address });
    this.announce = buildAnnouncements(AFI_IPV4, attrs, address, words());
    this.withdraw = buildWithdrawals(AFI_IPV4, words());
  }

  connect(): void {
    const s = net.connect({ host: this.o.target, port: 179, localAddress: this.address });
    this.sock = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.state = 'opensent';
      s.write(encodeOpen({
        localAs: this.o.asn, holdTime: this.o.holdTime, bgpId: this.id, families: [{ afi: 1, safi: 1 }], routeRefresh: true,
        gracefulRestart: { restarting: false, notification: false, time: 120, families: [{ afi: 1, safi: 1, forwarding: true }] },
      }));
    });
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', () => undefined);
    s.on('close', () => this.down('connection closed by the reflector'));
  }

  private onData(d: Buffer): void {
    this.lastRx = Date.now();
    this.reader.push(d);
    for (;;) {
      let m;
      try { m = this.reader.next(); } catch (err) { this.down(`bad header: ${(err as Error).message}`); return; }
      if (!m) return;
      switch (m.type) {
        case MsgType.Open: {
          const open = decodeOpen(Buffer.from(m.body));
          const hold = Math.min(open.holdTime, this.o.holdTime);
          this.holdMs = hold * 1000;
          this.kaMs = Math.floor(hold / 3) * 1000;
          this.sock!.write(KEEPALIVE);
          this.lastKa = Date.now();
          break;
        }
        case MsgType.Keepalive:
          if (this.state === 'opensent') {
            this.state = 'established';
            this.pool.everEstablished++;
            this.onEstablished?.(true);
          }
          break;
        case MsgType.Update:
          this.onUpdate(m.body);
          break;
        case MsgType.Notification: {
          const n = decodeNotification(Buffer.from(m.body));
          this.pool.notifications++;
          this.down(`NOTIFICATION ${n.code}/${n.subcode} from the reflector`);
          return;
        }
        case MsgType.RouteRefresh:
          if (this.announced) for (const b of this.announce) this.sock!.write(b);
          break;
        default: break;
      }
    }
  }

  private onUpdate(body: Buffer): void {
    const p = this.pool;
    const u = decodeUpdate(body, p.ctx);
    const R = this.o.routesPerClient;
    const total = this.have.length;
    for (const blk of u.withdrawn) {
      forEachPrefix(blk.buf, blk.start, blk.end, blk.afi, (w) => {
        p.prefixesReceived++;
        const i = w[0]! - ROUTE_BASE;
        if (w[1] !== 32 || i < 0 || i >= total) return;
        if (this.have[i]) { this.have[i] = 0; if (Math.floor(i / R) === this.idx) this.extra--; else this.count--; }
      });
    }
    if (u.treatAsWithdraw) p.bad(`treat-as-withdraw: ${u.treatAsWithdraw}`);
    for (const blk of u.announced) {
      const a = u.attrs!;
      const nh = blk.nextHop ?? a.nextHop;
      const now = Date.now();
      forEachPrefix(blk.buf, blk.start, blk.end, blk.afi, (w) => {
        p.prefixesReceived++;
        const i = w[0]! - ROUTE_BASE;
        if (w[1] !== 32 || i < 0 || i >= total) { this.extra++; p.bad(`unexpected prefix ${str4(w[0]!)}/${w[1]}`); return; }
        const owner = Math.floor(i / R);
        const oc = p.clients[owner]!;
        p.attrsChecked++;
        const cl = a.clusterList;
        if (nh !== oc.address || a.originatorId !== oc.id || !cl || cl.length !== 1 || cl[0] !== p.clusterId) {
          p.bad(`${str4(w[0]!)}/32 at ${this.address}: next hop ${nh} (want ${oc.address}), originator ${a.originatorId === undefined ? 'none' : str4(a.originatorId)} (want ${oc.address}), cluster list ${cl ? cl.map(str4).join(',') : 'none'} (want ${this.o.clusterId})`);
        }
        if (!this.have[i]) { this.have[i] = 1; if (owner === this.idx) this.extra++; else this.count++; }
        const g = p.gen[owner]!;
        if (g !== 0 && this.seenGen[owner] !== g && owner !== this.idx) {
          this.seenGen[owner] = g;
          p.sample(now - p.sentAt[owner]!);
        }
      });
    }
  }

  /** `stamp`: a churn re-announcement, timed at every other client (the initial bulk is not). */
  sendAnnounce(stamp: boolean): void {
    if (this.state !== 'established') return;
    const p = this.pool;
    if (stamp) {
      p.gen[this.idx] = ++p.genSeq;
      p.sentAt[this.idx] = Date.now();
      p.expectedSamples += p.clients.length - 1;
    }
    for (const b of this.announce) this.sock!.write(b);
    if (!this.announced) this.sock!.write(buildEndOfRib(AFI_IPV4));
    this.announced = true;
  }

  sendWithdraw(): void {
    if (this.state !== 'established') return;
    for (const b of this.withdraw) this.sock!.write(b);
  }

  tick(now: number): void {
    if (this.state !== 'established') return;
    if (this.holdMs > 0 && now - this.lastRx > this.holdMs) {
      this.sock!.write(encodeNotification(4, 0));
      this.down(`hold timer expired (nothing from the reflector for ${now - this.lastRx} ms)`);
      return;
    }
    if (this.kaMs > 0 && now - this.lastKa >= this.kaMs) { this.sock!.write(KEEPALIVE); this.lastKa = now; }
  }

  down(why: string): void {
    if (this.state === 'down') return;
    const was = this.state;
    this.state = 'down';
    this.sock?.destroy();
    if (was === 'established') this.pool.drops.push({ client: this.address, t: Date.now(), why });
    else this.onEstablished?.(false, why);
  }

  close(): void {
    if (this.state === 'established') this.sock?.write(encodeNotification(6, 2)); // Cease / administrative shutdown
    this.state = 'down';
    this.sock?.end();
    setTimeout(() => this.sock?.destroy(), 200).unref();
  }
}

class Clients {
  clients: Client[] = [];
  drops: Drop[] = [];
  everEstablished = 0;
  notifications = 0;
  prefixesReceived = 0;
  attrsChecked = 0;
  badCount = 0;
  badExamples: string[] = [];
  gen: Uint32Array;
  sentAt: Float64Array;
  genSeq = 0;
  expectedSamples = 0;
  hist = new Uint32Array(120_001);
  samples = 0;
  clusterId: number;
  ctx: UpdateContext = { as4: true, ibgp: true, families: new Set([1]), cache: new Map<string, AttrParse>() };
  loop = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout;

  constructor(readonly o: ClientsOptions) {
    this.clusterId = ip4(o.clusterId);
    this.gen = new Uint32Array(o.count);
    this.sentAt = new Float64Array(o.count);
    const first = ip4(o.firstAddress);
    for (let i = 0; i < o.count; i++) this.clients.push(new Client(i, str4(first + i), first + i, o, this));
    this.loop.enable();
    // One timer for every client's keepalive and hold check, not 2N timers.
    this.timer = setInterval(() => { const now = Date.now(); for (const c of this.clients) c.tick(now); }, 250);
  }

  bad(what: string): void {
    this.badCount++;
    if (this.badExamples.length < 5) this.badExamples.push(what);
  }

  sample(ms: number): void {
    this.samples++;
    this.hist[Math.min(this.hist.length - 1, Math.max(0, Math.round(ms)))]!++;
  }

  private pct(p: number): number {
    if (!this.samples) return 0;
    const want = Math.ceil((p / 100) * this.samples);
    let acc = 0;
    for (let i = 0; i < this.hist.length; i++) { acc += this.hist[i]!; if (acc >= want) return i; }
    return this.hist.length - 1;
  }

  /** Connects every client, a batch at a time; resolves with the number established. */
  async connect(batch = 50): Promise<{ established: number; failed: string[] }> {
    const failed: string[] = [];
    for (let i = 0; i < this.clients.length; i += batch) {
      await Promise.all(this.clients.slice(i, i + batch).map((c) => new Promise<void>((resolve) => {
        const t = setTimeout(() => { c.onEstablished = undefined; failed.push(`${c.address}: not established after 30 s`); resolve(); }, 30_000);
        c.onEstablished = (ok, why) => { clearTimeout(t); c.onEstablished = undefined; if (!ok) failed.push(`${c.address}: ${why}`); resolve(); };
        c.connect();
      })));
    }
    return { established: this.clients.filter((c) => c.state === 'established').length, failed };
  }

  announceAll(): void {
    for (const c of this.clients) c.sendAnnounce(false);
  }

  /** Every client holds exactly the others' routes (or the timeout passes); returns the time taken. */
  async waitFull(timeoutMs: number): Promise<{ ms: number; complete: boolean }> {
    const t0 = Date.now();
    const want = (this.o.count - 1) * this.o.routesPerClient;
    while (Date.now() - t0 < timeoutMs) {
      if (this.clients.every((c) => c.count === want && c.extra === 0)) return { ms: Date.now() - t0, complete: true };
      await new Promise((r) => setTimeout(r, 20));
    }
    return { ms: Date.now() - t0, complete: false };
  }

  /**
   * Churn waves: every period the next `fraction` of the clients (round robin) withdraw all their
   * routes, and half a period later announce them again.
   */
  async churn(c: ChurnOptions): Promise<{ waves: number; clientsPerWave: number; prefixesReceived: number; ms: number }> {
    const per = Math.max(1, Math.round(c.fraction * this.clients.length));
    const waves = Math.max(1, Math.floor(c.durationMs / c.periodMs));
    const rx0 = this.prefixesReceived;
    const t0 = Date.now();
    let next = 0;
    for (let w = 0; w < waves; w++) {
      const due = t0 + w * c.periodMs;
      await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      const wave: Client[] = [];
      for (let k = 0; k < per; k++) { wave.push(this.clients[next]!); next = (next + 1) % this.clients.length; }
      for (const cl of wave) cl.sendWithdraw();
      await new Promise((r) => setTimeout(r, Math.max(0, due + c.periodMs / 2 - Date.now())));
      for (const cl of wave) cl.sendAnnounce(true);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + waves * c.periodMs - Date.now())));
    return { waves, clientsPerWave: per, prefixesReceived: this.prefixesReceived - rx0, ms: Date.now() - t0 };
  }

  stats(): ClientStats {
    const want = (this.o.count - 1) * this.o.routesPerClient;
    let complete = 0; let missing = 0; let extra = 0;
    for (const c of this.clients) {
      if (c.count === want && c.extra === 0) complete++;
      missing += want - c.count;
      extra += c.extra;
    }
    return {
      established: this.clients.filter((c) => c.state === 'established').length,
      everEstablished: this.everEstablished,
      drops: this.drops,
      complete, missingTotal: missing, extraTotal: extra,
      badAttrs: this.badCount, badAttrExamples: this.badExamples, attrsChecked: this.attrsChecked,
      prefixesReceived: this.prefixesReceived,
      latency: { samples: this.samples, expected: this.expectedSamples, p50: this.pct(50), p90: this.pct(90), p99: this.pct(99), max: this.pct(100) },
      clientLoopMaxMs: this.loop.max / 1e6,
      notificationsReceived: this.notifications,
    };
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Parent side

export interface ClientsProc {
  pid: number;
  call<T = unknown>(cmd: string, arg?: unknown): Promise<T>;
  /** Closes every session (Cease) and waits for the process to exit. */
  stop(): Promise<void>;
}

const owned = new Set<ChildProcess>();
process.on('exit', () => { for (const c of owned) { try { process.kill(c.pid!, 'SIGKILL'); } catch { /* gone */ } } });

export function startClients(ns: string, o: ClientsOptions): ClientsProc {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--max-old-space-size=2048', join(__dirname, 'rr-clients.js')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, RR_CLIENTS: JSON.stringify(o) },
  });
  owned.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => { owned.delete(child); r(); }));
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(m.error)); else w.resolve(m.result);
  });
  void exited.then(() => { for (const w of waiting.values()) w.reject(new Error('clients process exited')); waiting.clear(); });
  const call = <T>(cmd: string, arg?: unknown) => new Promise<T>((resolve, reject) => {
    const id = ++seq;
    if (!child.connected) { reject(new Error('clients process is not running')); return; }
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    child.send({ id, cmd, arg });
  });
  return {
    pid: child.pid!,
    call,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await call('close').catch(() => undefined);
      const t = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Child side

function childMain(): void {
  const o = JSON.parse(process.env.RR_CLIENTS!) as ClientsOptions;
  const pool = new Clients(o);
  process.on('message', async (m: { id: number; cmd: string; arg?: unknown }) => {
    const reply = (result: unknown) => process.send!({ id: m.id, result });
    try {
      switch (m.cmd) {
        case 'connect': return reply(await pool.connect());
        case 'announceAll': pool.announceAll(); return reply(true);
        case 'waitFull': return reply(await pool.waitFull((m.arg as { timeoutMs: number }).timeoutMs));
        case 'churn': return reply(await pool.churn(m.arg as ChurnOptions));
        case 'stats': return reply(pool.stats());
        case 'close':
          pool.close();
          reply(true);
          setTimeout(() => process.exit(0), 300);
          return;
        default: throw new Error(`unknown command ${m.cmd}`);
      }
    } catch (err) {
      process.send!({ id: m.id, error: (err as Error).stack ?? String(err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) childMain();
