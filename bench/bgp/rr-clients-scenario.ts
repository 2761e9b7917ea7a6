/**
 * One reflector-scale run, shared by bench/bgp/rr-scale.ts and test/bgp/rr-scale.test.ts.
 *
 * Topology (all made here, removed in `finally`): namespace S (the reflector, 10.100.0.1/16) and
 * namespace C (the clients: N addresses from 10.100.1.0 on one veth end), joined by a veth pair.
 * The reflector is either our speaker (BgpSpeaker in a child process, configured from etcd: node
 * "rr" with rr_cluster_id, a pool over the client routes, one passive node-specific peer per
 * client, kernel programming on) or BIRD 2 (one `rr client` protocol per client from a template,
 * kernel export on). The clients (rr-clients.ts) connect, announce R /32s each, wait until every
 * client holds every other client's routes, run churn waves, and wait for convergence again.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestEtcd } from '../../test/harness/etcd.js';
import { waitFor } from '../../test/harness/ports.js';
import { Bird } from '../../test/bgp/lib/daemons.js';
import { startSpeakerInNs, SpeakerProc } from '../../test/bgp/lib/speaker-proc.js';
import { writeNode, writePool } from '../../test/bgp/lib/setup.js';
import { keys } from '../../src/datastore/keys.js';
import type { PeerStatusRow } from '../../node/bgp/status.js';
import { startClients, ClientsProc, ClientStats } from './rr-clients.js';

export interface ScenarioOptions {
  reflector: 'ours' | 'BIRD';
  clients: number;
  routesPerClient: number;
  churnMs: number;
  churnPeriodMs: number;
  churnFraction: number;
  holdTime: number;
  /** Bound on each convergence wait (initial and after churn). */
  convergeTimeoutMs: number;
  /** Our speaker needs etcd; BIRD does not. */
  etcd?: TestEtcd;
  workDir: string;
  tag: string;
  log?: (msg: string) => void;
}

export interface ScenarioResult {
  reflector: 'ours' | 'BIRD';
  clients: number;
  routesPerClient: number;
  establishedStart: number;
  connectFailures: string[];
  initialConvergeMs: number;
  initialComplete: boolean;
  churn: { waves: number; clientsPerWave: number; prefixesReceived: number; ms: number };
  /** Prefix updates (announce + withdraw) the clients would receive if nothing were coalesced. */
  churnExpectedPrefixes: number;
  afterChurnConvergeMs: number;
  afterChurnComplete: boolean;
  stats: ClientStats;
  /** Sessions the reflector itself reports up at the end, and how many of them were re-established. */
  reflectorUpEnd: number;
  reflectorReestablished: number;
  /** Our speaker's log: hold timer expiries and session-down lines. */
  reflectorLogDrops: string[];
  loopMaxMs?: number;
  loopP99Ms?: number;
  loopMaxChurnMs?: number;
  rssMB: number;
  peakRssMB: number;
  kernelRoutes: number;
  durationMs: number;
}

export const CLUSTER_ID = '1.0.0.1';
const RR_ADDR = '10.100.0.1';
const FIRST_CLIENT = '10.100.1.0';
const ASN = 64512;

const ip4 = (s: string) => s.split('.').reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0);
const str4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

const liveNs = new Set<string>();
process.on('exit', () => { for (const ns of liveNs) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ } } });

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

function mkns(name: string): string {
  sh('ip', ['netns', 'add', name]);
  liveNs.add(name);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

function delns(name: string): void {
  try { sh('ip', ['netns', 'del', name]); } catch { /* gone */ }
  liveNs.delete(name);
}

export interface Topology { s: string; c: string; clientAddresses: string[]; destroy(): void }

export function makeTopology(tag: string, n: number): Topology {
  const s = mkns(`rrs${tag}${process.pid}`);
  let c = '';
  try {
    c = mkns(`rrc${tag}${process.pid}`);
    sh('ip', ['link', 'add', `rr${tag}${process.pid}`.slice(0, 15), 'netns', s, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c]);
    sh('ip', ['-n', s, 'link', 'set', `rr${tag}${process.pid}`.slice(0, 15), 'name', 'eth0']);
    sh('ip', ['-n', s, 'addr', 'add', `${RR_ADDR}/16`, 'dev', 'eth0']);
    sh('ip', ['-n', s, 'link', 'set', 'eth0', 'up']);
    const first = ip4(FIRST_CLIENT);
    const addrs: string[] = [];
    for (let i = 0; i < n; i++) addrs.push(str4(first + i));
    // `noprefixroute` past the first: one connected route, not N.
    sh('ip', ['-n', c, '-batch', '-'], addrs.map((a, i) => `addr add ${a}/16 dev eth0${i ? ' noprefixroute' : ''}`).join('\n') + '\n');
    sh('ip', ['-n', c, 'link', 'set', 'eth0', 'up']);
    return { s, c, clientAddresses: addrs, destroy: () => { delns(c); delns(s); } };
  } catch (err) {
    if (c) delns(c);
    delns(s);
    throw err;
  }
}

function statusOf(pid: number): { rss: number; hwm: number } {
  const t = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(t)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

function kernelRouteCount(ns: string): number {
  return Number(sh('sh', ['-c', `ip -n ${ns} -4 route show proto bird | wc -l`]).trim());
}

function birdConfig(addrs: string[], holdTime: number): string {
  const lines = [
    `router id ${RR_ADDR};`, 'log stderr all;', 'debug protocols { states };',
    'protocol device { scan time 10; }',
    'protocol kernel k4 { ipv4 { import none; export filter { if source = RTS_BGP then accept; reject; }; }; }',
    `template bgp rrclient {`,
    `  local ${RR_ADDR} as ${ASN}; passive on; rr client; rr cluster id ${CLUSTER_ID};`,
    `  direct; hold time ${holdTime}; graceful restart on;`,
    `  ipv4 { import all; export all; gateway direct; };`,
    `}`,
  ];
  addrs.forEach((a, i) => lines.push(`protocol bgp c${i} from rrclient { neighbor ${a} as ${ASN}; }`));
  return lines.join('\n') + '\n';
}

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const topo = makeTopology(o.tag, o.clients);
  let speaker: SpeakerProc | undefined;
  let bird: Bird | undefined;
  let clients: ClientsProc | undefined;
  try {
    let reflectorPid: number;
    if (o.reflector === 'ours') {
      const etcd = o.etcd!;
      await etcd.wipe();
      const kv = etcd.kv('cli');
      await writeNode(kv, 'rr', RR_ADDR, undefined, { rrClusterId: CLUSTER_ID });
      await writePool(kv, '10.128.0.0/16');
      for (let i = 0; i < topo.clientAddresses.length; i += 50) {
        await Promise.all(topo.clientAddresses.slice(i, i + 50).map((ip) => kv.put(keys.bgpHostPeer('rr', ip, 4), JSON.stringify({ ip, as_num: String(ASN), passive: true }))));
      }
      speaker = await startSpeakerInNs(topo.s, etcd.endpoint, 'rr', { holdTime: o.holdTime, connectRetryMs: 1000 }, join(o.workDir, `speaker-${o.tag}.log`),
        ['--max-semi-space-size=2', '--require', join(__dirname, 'rr-clients-loopmon.js'), ...(process.env.RR_SPEAKER_NODE_ARGS ?? '').split(' ').filter(Boolean)]);
      await waitFor('every client configured as a peer', async () => (await speaker!.call<PeerStatusRow[]>('status')).length === o.clients, 60_000, 200);
      reflectorPid = speaker.pid;
    } else {
      bird = new Bird(topo.s, { routerId: RR_ADDR, peers: [] });
      writeFileSync(join(bird.dir, 'bird.conf'), birdConfig(topo.clientAddresses, o.holdTime));
      await bird.start();
      const pids = sh('ip', ['netns', 'pids', topo.s]).split('\n').filter(Boolean).map(Number);
      reflectorPid = pids.find((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'bird'; } catch { return false; } })!;
    }
    log(`${o.reflector}: reflector up (pid ${reflectorPid}); connecting ${o.clients} clients`);

    clients = startClients(topo.c, { target: RR_ADDR, firstAddress: FIRST_CLIENT, count: o.clients, routesPerClient: o.routesPerClient, asn: ASN, holdTime: o.holdTime, clusterId: CLUSTER_ID });
    const conn = await clients.call<{ established: number; failed: string[] }>('connect');
    log(`${o.reflector}: ${conn.established} established${conn.failed.length ? `, failed: ${conn.failed.slice(0, 3).join('; ')}` : ''}`);
    const startRows = speaker ? await speaker.call<PeerStatusRow[]>('status') : [];
    if (speaker) await speaker.call('rrbench:loop', { reset: true });

    await clients.call('announceAll');
    const init = await clients.call<{ ms: number; complete: boolean }>('waitFull', { timeoutMs: o.convergeTimeoutMs });
    log(`${o.reflector}: initial routes everywhere: ${init.complete} after ${init.ms} ms`);

    const loopBeforeChurn = speaker ? await speaker.call<{ maxMs: number }>('rrbench:loop', { reset: true }) : undefined;
    const churn = await clients.call<ScenarioResult['churn']>('churn', { durationMs: o.churnMs, periodMs: o.churnPeriodMs, fraction: o.churnFraction });
    const after = await clients.call<{ ms: number; complete: boolean }>('waitFull', { timeoutMs: o.convergeTimeoutMs });
    log(`${o.reflector}: churn done (${churn.waves} waves x ${churn.clientsPerWave} clients); converged: ${after.complete} after ${after.ms} ms`);
    const loopChurn = speaker ? await speaker.call<{ maxMs: number; p99Ms: number }>('rrbench:loop', { reset: false }) : undefined;

    const stats = await clients.call<ClientStats>('stats');
    let reflectorUpEnd: number;
    let reestablished = 0;
    const logDrops: string[] = [];
    if (speaker) {
      const endRows = await speaker.call<PeerStatusRow[]>('status');
      reflectorUpEnd = endRows.filter((r) => r.state === 'up').length;
      const since = new Map(startRows.map((r) => [r.peerAddress, r.since]));
      reestablished = endRows.filter((r) => r.state === 'up' && since.get(r.peerAddress) !== r.since).length;
      for (const line of speaker.log().split('\n')) if (/hold timer expired|"session down"/.test(line)) logDrops.push(line.slice(0, 300));
      await Promise.race([speaker.call('fibSettled'), new Promise((r) => setTimeout(r, 30_000))]);
    } else {
      const out = await bird!.cli('show protocols');
      reflectorUpEnd = out.split('\n').filter((l) => /^c\d+\s+BGP\s.*\bEstablished\b/.test(l)).length;
      for (const line of bird!.logs().split('\n')) if (/Hold timer expired|Error|State changed to (down|stop)/i.test(line)) logDrops.push(line.slice(0, 300));
    }
    const mem = statusOf(reflectorPid);
    const kernelRoutes = kernelRouteCount(topo.s);
    const N = o.clients;
    return {
      reflector: o.reflector, clients: N, routesPerClient: o.routesPerClient,
      establishedStart: conn.established, connectFailures: conn.failed,
      initialConvergeMs: init.ms, initialComplete: init.complete,
      churn, churnExpectedPrefixes: churn.waves * churn.clientsPerWave * o.routesPerClient * 2 * (N - 1),
      afterChurnConvergeMs: after.ms, afterChurnComplete: after.complete,
      stats, reflectorUpEnd, reflectorReestablished: reestablished, reflectorLogDrops: logDrops,
      loopMaxMs: loopBeforeChurn && loopChurn ? Math.max(loopBeforeChurn.maxMs, loopChurn.maxMs) : undefined,
      loopP99Ms: loopChurn?.p99Ms,
      loopMaxChurnMs: loopChurn?.maxMs,
      rssMB: mem.rss, peakRssMB: mem.hwm, kernelRoutes,
      durationMs: Date.now() - t0,
    };
  } finally {
    await clients?.stop().catch(() => undefined);
    // Graceful: keep the kernel as it is (the namespace goes anyway); no 10k-route withdraw storm.
    await speaker?.stop(true).catch(() => undefined);
    await bird?.kill().catch(() => undefined);
    bird?.cleanup();
    topo.destroy();
  }
}
