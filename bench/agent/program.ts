/**
 * Node agent benchmark: programming 1000 endpoints in 100 profiles from a cold start, and the
 * latency of one profile change and one new endpoint with 1000 in place (p50 over several runs).
 * Baseline in the same run: applying the same ruleset as one flat `nft -f` file (what an agent
 * that re-renders everything would pay for every change).
 *
 * Layout: the outer process makes a "host" namespace with 1000+ veth pairs (the workload ends
 * in a second namespace) and re-runs itself inside the host namespace with nsenter. The inner
 * process starts its own etcd there and runs the agent in-process on its own namespace, exactly
 * as in production (sysctls are plain file writes, no namespace hopping). Nothing touches the
 * real host's network; both namespaces are deleted at the end.
 *
 *   node dist/bench/agent/program.js            (root; BENCH_ENDPOINTS, BENCH_PROFILES, BENCH_RUNS)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { createNetns, deleteNetns, ipBatch, nftApply, nftDeleteTable, CALICO_TABLE, listRoutes, applyRouteChanges, CALICO_ROUTE_PROTOCOL } from '../../src/dataplane/index.js';
import { keys } from '../../src/datastore/keys.js';
import type { KV, TxnOp } from '../../src/datastore/kv.js';
import { createLogger } from '../../src/log.js';
import { Agent } from '../../node/agent/agent.js';
import { CalcGraph } from '../../node/agent/calc.js';
import { RulesetRenderer } from '../../node/agent/render/ruleset.js';
import { fullScript } from '../../node/agent/render/script.js';
import { startEtcd } from '../../test/harness/etcd.js';
import { percentile, table, saveResults, Row, machine } from '../util.js';

const N = Number(process.env.BENCH_ENDPOINTS ?? 1000);
const P = Number(process.env.BENCH_PROFILES ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
const EXTRA = RUNS + 2;
const NODE = 'bench-node';

const ifName = (i: number) => `cali${i.toString(16).padStart(11, '0')}`;
const ipOf = (i: number) => `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const macOf = (i: number) => `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

function endpointValue(i: number): string {
  return JSON.stringify({
    state: 'active', name: ifName(i), mac: macOf(i), profile_ids: [`prof${i % P}`], ipv4_nets: [`${ipOf(i)}/32`], ipv6_nets: [],
    ipv4_gateway: '169.254.1.1', ipv6_gateway: null, labels: { app: `app${i % 10}` },
  });
}
const endpointKey = (i: number) => keys.workloadEndpoint(NODE, 'docker', `w${i}`, `e${i.toString(16).padStart(11, '0')}`);

function profileRules(p: number, variant: number): string {
  return JSON.stringify({
    inbound_rules: [
      { action: 'allow', src_tag: `prof${p}` },
      { action: 'allow', protocol: 'tcp', dst_ports: [80, 443, `${8000 + variant}:${8100 + variant}`], src_selector: `app == 'app${p % 10}'` },
    ],
    outbound_rules: [{ action: 'allow' }],
  });
}

async function putAll(kv: KV, items: Array<[string, string]>): Promise<void> {
  for (let i = 0; i < items.length; i += 100) {
    const ops: TxnOp[] = items.slice(i, i + 100).map(([key, value]) => ({ op: 'put', key, value }));
    await kv.txn([], ops);
  }
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const quiet = createLogger({ level: 'error', stream: new Writable({ write(_c, _e, cb) { cb(); } }) });

async function inner(): Promise<void> {
  const etcd = await startEtcd();
  const kv = etcd.kv('daemon');
  try {
    const items: Array<[string, string]> = [];
    for (let p = 0; p < P; p++) {
      items.push([keys.profileRules(`prof${p}`), profileRules(p, 0)]);
      items.push([keys.profileTags(`prof${p}`), JSON.stringify([`prof${p}`])]);
    }
    for (let i = 0; i < N; i++) items.push([endpointKey(i), endpointValue(i)]);
    items.push([keys.pool('10.64.0.0/14', 4), JSON.stringify({ cidr: '10.64.0.0/14', masquerade: true })]);
    await putAll(kv, items);

    // --- cold starts (kernel emptied before each)
    const cold: number[] = [];
    const coldApply: number[] = [];
    const coldPhases: Array<Record<string, number>> = [];
    let agent: Agent | undefined;
    for (let r = 0; r < COLD_RUNS; r++) {
      await nftDeleteTable(CALICO_TABLE);
      const rs = await listRoutes({ protocol: CALICO_ROUTE_PROTOCOL });
      await applyRouteChanges({ delete: rs });
      agent = new Agent({ kv, nodeName: NODE, logger: quiet, metricsPort: 0, checkIntervalMs: 0 });
      const t0 = process.hrtime.bigint();
      await agent.start();
      cold.push(ms(t0));
      coldApply.push(agent.status.lastApplyMs ?? NaN);
      coldPhases.push(agent.status.lastApplyPhases ?? {});
      if (process.env.BENCH_DEBUG) console.error('cold', cold[cold.length - 1]!.toFixed(1), JSON.stringify(agent.status.lastApplyPhases));
      if (r < COLD_RUNS - 1) await agent.stop();
    }
    const a = agent!;
    const routeCount = (await listRoutes({ protocol: CALICO_ROUTE_PROTOCOL, family: 4 })).length;
    if (routeCount !== N) throw new Error(`expected ${N} routes after the cold start, found ${routeCount}`);

    // --- one profile change with N in place
    const change: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t0 = process.hrtime.bigint();
      const rev = await kv.put(keys.profileRules(`prof${r % P}`), profileRules(r % P, r + 1));
      await a.waitForRevision(rev);
      change.push(ms(t0));
      if (process.env.BENCH_DEBUG) console.error('change', ms(t0).toFixed(1), JSON.stringify(a.status.lastApplyPhases), a.status.lastApplyMs?.toFixed(1));
    }

    // --- one new endpoint with N in place (its veth exists already, as the proxy wires first)
    const add: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const i = N + r;
      await new Promise((res) => setTimeout(res, 60)); // let the link-appeared apply settle
      const t0 = process.hrtime.bigint();
      const rev = await kv.put(endpointKey(i), endpointValue(i));
      await a.waitForRevision(rev);
      add.push(ms(t0));
      if (process.env.BENCH_DEBUG) console.error('add', ms(t0).toFixed(1), JSON.stringify(a.status.lastApplyPhases), a.status.lastApplyMs?.toFixed(1));
    }
    const routesAfter = (await listRoutes({ protocol: CALICO_ROUTE_PROTOCOL, family: 4 })).length;
    if (routesAfter !== N + RUNS) throw new Error(`expected ${N + RUNS} routes, found ${routesAfter}`);
    await a.stop();

    // --- baseline: the same ruleset as one flat nft -f file
    const g = new CalcGraph(NODE, quiet);
    for (const e of (await kv.list('/calico/v1/')).entries) g.onUpdate(e.key, e.value);
    const script = fullScript(new RulesetRenderer().render(g.recompute()), CALICO_TABLE).join('\n') + '\n';
    const flat: number[] = [];
    for (let r = 0; r < COLD_RUNS; r++) {
      const t0 = process.hrtime.bigint();
      await nftApply(script);
      flat.push(ms(t0));
    }
    await nftDeleteTable(CALICO_TABLE);
    const rs = await listRoutes({ protocol: CALICO_ROUTE_PROTOCOL });
    await applyRouteChanges({ delete: rs });

    process.stdout.write(JSON.stringify({ cold, coldApply, coldPhases, change, add, flat, rules: script.split('\n').length }) + '\n');
  } finally {
    kv.close();
    await etcd.stop();
  }
}

async function outer(): Promise<void> {
  const suffix = randomBytes(3).toString('hex');
  const hostName = `cb-host-${suffix}`;
  const wlName = `cb-wl-${suffix}`;
  const host = await createNetns(hostName);
  const wl = await createNetns(wlName);
  try {
    const cmds: string[] = [];
    for (let i = 0; i < N + EXTRA; i++) {
      cmds.push(`link add ${ifName(i)} address ee:ee:ee:ee:ee:ee type veth peer name w${i} address ${macOf(i)} netns ${wl.path}`);
      cmds.push(`link set ${ifName(i)} up`);
    }
    await ipBatch(['link add up0 type veth peer name up1', 'link set up0 up', 'link set up1 up', 'route add default dev up0'], { netns: host });
    const t0 = process.hrtime.bigint();
    await ipBatch(cmds, { netns: host });
    console.error(`set-up: ${N + EXTRA} veth pairs in ${ms(t0).toFixed(0)} ms`);
    const r = spawnSync('nsenter', [`--net=${host.path}`, process.execPath, __filename, '--inner'], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`inner benchmark failed (${r.status})`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Results;
    report(res);
  } finally {
    await deleteNetns(hostName);
    await deleteNetns(wlName);
  }
}

interface Results { cold: number[]; coldApply: number[]; coldPhases: Array<Record<string, number>>; change: number[]; add: number[]; flat: number[]; rules: number }

function report(r: Results): void {
  const phase = (k: string) => percentile(r.coldPhases.map((p) => p[k] ?? 0), 50).toFixed(0);
  const f = (x: number) => `${x.toFixed(1)} ms`;
  const flat50 = percentile(r.flat, 50);
  const cold50 = percentile(r.cold, 50);
  const change50 = percentile(r.change, 50);
  const add50 = percentile(r.add, 50);
  const rows: Row[] = [
    { metric: `cold start, ${N} endpoints / ${P} profiles (p50 of ${r.cold.length})`, ours: f(cold50), baseline: f(flat50), ratio: (cold50 / flat50).toFixed(2), goal: '< 1000 ms', ok: cold50 < 1000 },
    { metric: `one profile change, ${N} in place (p50 of ${r.change.length})`, ours: f(change50), baseline: f(flat50), ratio: (change50 / flat50).toFixed(3), goal: '< 20 ms', ok: change50 < 20 },
    { metric: `one new endpoint, ${N} in place (p50 of ${r.add.length})`, ours: f(add50), baseline: f(flat50), ratio: (add50 / flat50).toFixed(3), goal: '< 20 ms', ok: add50 < 20 },
  ];
  const md = [
    table('Node agent: programming time', `flat nft -f (${r.rules} lines, p50)`, rows),
    'Details (all times wall clock, ms):',
    '',
    `- cold start = agent.start() until the dataplane holds the snapshot: etcd list, calculation, rendering, one atomic \`nft -f\`, ${N} routes in one ip batch, ${N * 6} sysctl writes. Runs: ${r.cold.map((x) => x.toFixed(0)).join(', ')}; of which the apply step: ${r.coldApply.map((x) => x.toFixed(0)).join(', ')}; p50 by step: calc ${phase('calc')}, render ${phase('render')}, nft ${phase('nft')}, sysctls ${phase('interfaces')}, routes ${phase('routes')}. The nft step is the baseline's work (the same ruleset through one \`nft -f\`); etcd, routes and sysctls are work the baseline does not do.`,
    `- profile change = etcd put until applied (watch event, recalculation, rendering of the changed profile chains only, one transaction on the long-lived \`nft -i\` session). p90 ${f(percentile(r.change, 90))}, max ${f(Math.max(...r.change))}.`,
    `- new endpoint (its veth already there, class chains already there) = etcd put until applied: 2 verdict-map elements, 2 anti-spoofing set elements, tag-set element, 6 sysctls, 1 route. p90 ${f(percentile(r.add, 90))}, max ${f(Math.max(...r.add))}.`,
    `- baseline = the same complete ruleset applied as one flat \`nft -f\` file (atomic table replacement), runs: ${r.flat.map((x) => x.toFixed(0)).join(', ')}.`,
    `- nft ${execFileSync('nft', ['--version']).toString().trim()}; ${machine()}; load average during the run ${loadavg().map((x) => x.toFixed(1)).join(' / ')} (the machine is shared: other test suites were running, so absolute times are pessimistic; the ratios are measured in the same run).`,
    '',
  ].join('\n');
  console.log(md);
  const file = saveResults('agent', md);
  console.error(`written ${file}`);
}

if (process.argv.includes('--inner')) {
  inner().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
} else {
  outer().catch((err) => { console.error(err); process.exitCode = 1; });
}
