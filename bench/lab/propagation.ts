/**
 * Cross-host propagation on the two-host lab: from `docker run -d` returning on calico-01 to
 * (a) the route to the new container being in calico-02's kernel, and (b) the first ping reply
 * seen by a container on calico-02. Goal: p99 under 100 ms to the first ping.
 *
 * Two series of 50 containers each, measured in the same run on the same lab:
 *   - new block: each container's address is in a block no host has yet (192.168.<10+i>.1), so
 *     calico-01 claims it and a new route must reach calico-02 over BGP before a reply can come
 *     back — the worst case, and the one the route column measures;
 *   - routed block (baseline): addresses in a block calico-01 already announced, so only the
 *     local wiring and the ACLs (the tag sets on both hosts) stand between run and reply.
 *
 * The instrument: before each `docker run`, a pinger is started in the pinging container's
 * network namespace (`nsenter --net=/proc/<pid>/ns/net` + busybox ping every 2 ms, under `script`
 * so every reply line is flushed at once); so the traffic is the container's own (its address,
 * its veth, its ACLs) and the resolution is 2 ms. Routes are timed by `ip monitor route` in
 * calico-02. Times are taken in this process when the line arrives.
 *
 * Run: `node dist/bench/lab/propagation.js` (root). Uses its own lab (LAB_ID=bench), removed at
 * the end. Writes bench/results/lab.md.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { labConfig, hostEnv, LabConfig, HostConfig } from '../../scripts/lab/config.js';
import { dockerApi } from '../../scripts/lab/dockerd.js';
import { runIn, run, waitUntil } from '../../scripts/lab/proc.js';
import { percentile, machine, table, saveResults, Row } from '../util.js';

const MAIN = join(__dirname, '..', '..', 'scripts', 'lab', 'main.js');
const N = Number(process.env.LAB_BENCH_CONTAINERS ?? 50);
const GOAL_P99_MS = 100;
const PING_TIMEOUT_MS = 15000;
const BENCH_PROFILE = 'BENCH';

const now = () => Number(process.hrtime.bigint()) / 1e6;

function labCli(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    c.on('close', (code) => resolve(code ?? 1));
  });
}

/** First time each prefix showed up as a route via calico-01 in calico-02's kernel. */
class RouteWatcher {
  readonly firstSeen = new Map<string, number>();
  private readonly child: ChildProcess;
  private buf = '';
  constructor(ns: string, viaIp: string) {
    this.child = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      const t = now();
      this.buf += d.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const m = /^(\S+) via (\S+) /.exec(line);
        if (m && m[2] === viaIp && !this.firstSeen.has(m[1]!)) this.firstSeen.set(m[1]!, t);
      }
    });
  }
  stop(): void { try { this.child.kill('SIGTERM'); } catch { /* gone */ } }
}

/** A pinger in the container's namespace; resolves `ready` once it sends, `reply` at the first echo reply. */
function startPinger(containerPid: number, ip: string): { ready: Promise<void>; reply: Promise<number | undefined>; stop(): void } {
  const cmd = `busybox ping -i 0.002 -w ${Math.ceil(PING_TIMEOUT_MS / 1000)} ${ip}`;
  const child = spawn('nsenter', [`--net=/proc/${containerPid}/ns/net`, 'script', '-qfc', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  let onReady: () => void = () => undefined;
  let onReply: (t: number | undefined) => void = () => undefined;
  const ready = new Promise<void>((r) => { onReady = r; });
  const reply = new Promise<number | undefined>((r) => { onReply = r; });
  child.stdout.on('data', (d: Buffer) => {
    const t = now();
    out += d.toString();
    if (out.includes('PING ')) onReady();
    if (out.includes(`bytes from ${ip}:`)) onReply(t);
  });
  child.on('close', () => { onReady(); onReply(undefined); });
  return { ready, reply, stop: () => { try { child.kill('SIGTERM'); } catch { /* gone */ } } };
}

/** Times in ms; the route and reply times relative to the moment `docker run -d` returned (negative: before). */
interface Sample { runMs: number; routeMs?: number; pingMs?: number }

async function dockerRun(cfg: LabConfig, h: HostConfig, name: string, ip: string): Promise<{ ms: number; returnedAt: number }> {
  const t0 = now();
  const r = await runIn(h.netnsPath, 'docker', ['run', '-d', '--name', name, '-e', `CALICO_IP=${ip}`, '-e', `CALICO_PROFILE=${BENCH_PROFILE}`, 'busybox', 'sleep', '3600'], { env: hostEnv(cfg, h) });
  const returnedAt = now();
  if (r.code !== 0) throw new Error(`docker run ${name} (${ip}) failed: ${r.stderr.trim()}`);
  return { ms: returnedAt - t0, returnedAt };
}

async function containerPid(h: HostConfig, name: string): Promise<number> {
  const r = await dockerApi(h.dockerSocket, 'GET', `/containers/${name}/json`);
  return (JSON.parse(r.body) as { State: { Pid: number } }).State.Pid;
}

async function series(cfg: LabConfig, label: string, addr: (i: number) => string, routes: RouteWatcher | undefined, pingerPid: number): Promise<Sample[]> {
  const h1 = cfg.hosts['calico-01'];
  const out: Sample[] = [];
  for (let i = 0; i < N; i++) {
    const ip = addr(i);
    const pinger = startPinger(pingerPid, ip);
    await pinger.ready;
    const { ms, returnedAt } = await dockerRun(cfg, h1, `${label}-${i}`, ip);
    const replyAt = await pinger.reply;
    pinger.stop();
    const block = `${ip.split('.').slice(0, 3).join('.')}.0/26`;
    const routeAt = routes ? (routes.firstSeen.get(ip) ?? routes.firstSeen.get(block)) : undefined;
    out.push({ runMs: ms, routeMs: routeAt !== undefined ? routeAt - returnedAt : undefined, pingMs: replyAt !== undefined ? replyAt - returnedAt : undefined });
    if ((i + 1) % 10 === 0) process.stdout.write(`  ${label}: ${i + 1}/${N}\n`);
  }
  return out;
}

const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(1));

function summary(xs: number[]): { p50?: number; p99?: number; max?: number } {
  if (xs.length === 0) return {};
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs) };
}

async function main(): Promise<void> {
  const cfg = labConfig('bench');
  const env = { ...process.env, LAB_ID: 'bench' };
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  let routes: RouteWatcher | undefined;
  const cleanup = async () => { routes?.stop(); await labCli(['down'], env); };
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    if ((await labCli(['up'], env)) !== 0) throw new Error('lab up failed');
    const h1 = cfg.hosts['calico-01'];
    const h2 = cfg.hosts['calico-02'];
    const calicoctl = (h: HostConfig, args: string[]) => runIn(h.netnsPath, join(h.binDir, 'calicoctl'), args, { env: hostEnv(cfg, h) });
    await calicoctl(h1, ['profile', 'add', BENCH_PROFILE]);
    // The pinging container on calico-02, in the same profile, in a block of calico-02's own.
    const p = await runIn(h2.netnsPath, 'docker', ['run', '-d', '--name', 'pinger', '-e', 'CALICO_IP=auto', '-e', `CALICO_PROFILE=${BENCH_PROFILE}`, 'busybox', 'sleep', '3600'], { env: hostEnv(cfg, h2) });
    if (p.code !== 0) throw new Error(`pinger: ${p.stderr}`);
    const pingerPid = await containerPid(h2, 'pinger');
    // Warm-up (not measured): the first run claims the baseline block and pays the cold caches.
    const warm = '192.168.9.63';
    await dockerRun(cfg, h1, 'warmup', warm);
    const pw = startPinger(pingerPid, warm);
    if ((await pw.reply) === undefined) throw new Error('the warm-up container never answered: the lab does not route between the hosts');
    pw.stop();
    await waitUntil('the warm-up block route on calico-02', async () => (await run('ip', ['-n', h2.netns, 'route', 'show', '192.168.9.0/26'])).stdout.includes('via'), 10000);

    routes = new RouteWatcher(h2.netns, h1.ip);
    console.log(`lab propagation: ${N} containers per series (load average at start: ${load})`);
    const fresh = await series(cfg, 'newblock', (i) => `192.168.${10 + i}.1`, routes, pingerPid);
    const routed = await series(cfg, 'routed', (i) => `192.168.9.${i + 1}`, undefined, pingerPid);

    const pick = (xs: Sample[], k: keyof Sample) => xs.map((x) => x[k]).filter((x): x is number => x !== undefined);
    // What a user waits for after `docker run -d` returned: nothing when it was already there.
    const waited = (xs: Sample[], k: 'routeMs' | 'pingMs') => pick(xs, k).map((x) => Math.max(0, x));
    const fromStart = (xs: Sample[], k: 'routeMs' | 'pingMs') => xs.filter((x) => x[k] !== undefined).map((x) => x.runMs + x[k]!);
    const lost = (xs: Sample[]) => xs.filter((x) => x.pingMs === undefined).length;
    const rows: Array<[string, ReturnType<typeof summary>]> = [
      ['docker run -d wall time, new block', summary(pick(fresh, 'runMs'))],
      ['docker run -d wall time, routed block', summary(pick(routed, 'runMs'))],
      ['run start -> route in calico-02 kernel, new block', summary(fromStart(fresh, 'routeMs'))],
      ['run start -> first ping reply on calico-02, new block', summary(fromStart(fresh, 'pingMs'))],
      ['run start -> first ping reply on calico-02, routed block', summary(fromStart(routed, 'pingMs'))],
      ['run returned -> route in calico-02 kernel, new block (signed)', summary(pick(fresh, 'routeMs'))],
      ['run returned -> first ping reply, new block (signed)', summary(pick(fresh, 'pingMs'))],
      ['run returned -> first ping reply, routed block (signed)', summary(pick(routed, 'pingMs'))],
      ['wait after run returned: route in calico-02 kernel, new block', summary(waited(fresh, 'routeMs'))],
      ['wait after run returned: first ping reply, new block', summary(waited(fresh, 'pingMs'))],
      ['wait after run returned: first ping reply, routed block', summary(waited(routed, 'pingMs'))],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    const lines = [
      `| ${'ms'.padEnd(w)} | p50 | p99 | max |`, `|${'-'.repeat(w + 2)}|-----|-----|-----|`,
      ...rows.map(([name, x]) => `| ${name.padEnd(w)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.max)} |`),
    ];
    const startNew = summary(fromStart(fresh, 'pingMs'));
    const startBase = summary(fromStart(routed, 'pingMs'));
    const waitNew = summary(waited(fresh, 'pingMs'));
    const waitBase = summary(waited(routed, 'pingMs'));
    const ratio = (x?: number, y?: number) => (x !== undefined && y !== undefined && y > 0 ? (x / y).toFixed(2) : 'n/a');
    const goalRows: Row[] = [
      { metric: 'run start -> first ping, p50', ours: f(startNew.p50), baseline: f(startBase.p50), ratio: ratio(startNew.p50, startBase.p50), goal: '-', ok: true },
      { metric: 'run start -> first ping, p99', ours: f(startNew.p99), baseline: f(startBase.p99), ratio: ratio(startNew.p99, startBase.p99), goal: '-', ok: true },
      { metric: 'first ping after run returned, p99', ours: f(waitNew.p99), baseline: f(waitBase.p99), ratio: ratio(waitNew.p99, waitBase.p99), goal: `< ${GOAL_P99_MS} ms`, ok: waitNew.p99 !== undefined && waitNew.p99 < GOAL_P99_MS && lost(fresh) === 0 },
    ];
    const md = [
      `Two-host lab (namespaces calico-01/calico-02 on this machine, BGP between the two nodes over a veth pair), ${N} containers per series, one at a time, through the Calico Docker proxy on calico-01. Load average at start: ${load}.`,
      '',
      '"new block": each address in a block nobody had (a new route must cross BGP); "routed block" (baseline): addresses in a block calico-01 already announced.',
      'Signed times are relative to `docker run -d` returning; negative means it happened before the CLI returned (the proxy holds the start answer until the veth, the',
      'routes and the ACLs are in place, and the block is claimed and announced while the container is created). "wait after run returned" counts those as 0.',
      '',
      ...lines,
      '',
      `Containers that never answered within ${PING_TIMEOUT_MS / 1000} s: new block ${lost(fresh)}, routed block ${lost(routed)}.`,
      '',
      table('Goal: first ping from calico-02 within 100 ms (p99) of `docker run -d` returning on calico-01', 'routed block', goalRows),
    ].join('\n');
    console.log(`\n${md}`);
    const file = saveResults('lab', md);
    console.log(`\nwritten to ${file} (${machine()})`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(`bench lab: ${(err as Error).message}`);
  process.exit(1);
});
