/**
 * Route reflector at scale: our speaker (BgpSpeaker configured from etcd as a reflector, kernel
 * programming on, own namespace) with N route-reflector clients, against BIRD 2 as the reflector
 * with the same clients and churn, in the same run. See rr-clients-scenario.ts for the topology and
 * rr-clients.ts for the clients and what they check.
 *
 * Measures: sessions Established at start and end, drops (NOTIFICATION / reset / client-side hold
 * expiry seen by the clients; re-established sessions in our peerStatus()), routes every client
 * holds at the end vs expected, prefix updates reflected per second during churn, reflection
 * latency (re-announce at one client -> first of its prefixes seen at another), the reflector's
 * max event-loop stall (ours), RSS and peak RSS.
 *
 *   node dist/bench/bgp/rr-scale.js
 * Options (env): RR_CLIENTS (500), RR_ROUTES (20 per client), RR_CHURN_S (60), RR_CHURN_FRACTION
 * (0.1 of the clients per wave), RR_CHURN_PERIOD_MS (1000), RR_HOLD (9), RR_CONVERGE_S (120),
 * RR_ONLY=ours|BIRD, RR_SPEAKER_NODE_ARGS (extra node flags for our speaker, e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/p"). Results are printed and written to bench/results/bgp-rr.md; a hand-written
 * "## Analysis" section already in that file is kept.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, cpus, totalmem, release } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { startEtcd, TestEtcd } from '../../test/harness/etcd.js';
import { runScenario, ScenarioResult } from './rr-clients-scenario.js';

const env = (k: string, d: number) => (process.env[k] !== undefined ? Number(process.env[k]) : d);

function birdVersion(): string {
  const r = spawnSync('bird', ['--version'], { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.replace(/^BIRD version /, '').trim() || '2';
}

function row(label: string, f: (r: ScenarioResult) => string, runs: ScenarioResult[]): string {
  return `| ${label} | ${runs.map(f).join(' | ')} |`;
}

async function main(): Promise<void> {
  const clients = env('RR_CLIENTS', 500);
  const routes = env('RR_ROUTES', 20);
  const churnMs = env('RR_CHURN_S', 60) * 1000;
  const fraction = env('RR_CHURN_FRACTION', 0.1);
  const period = env('RR_CHURN_PERIOD_MS', 1000);
  const hold = env('RR_HOLD', 9);
  const converge = env('RR_CONVERGE_S', 120) * 1000;
  const only = process.env.RR_ONLY;
  const workDir = mkdtempSync(join(tmpdir(), 'bgp-rr-bench-'));
  const uptimeStart = execFileSync('uptime', { encoding: 'utf8' }).trim();
  let etcd: TestEtcd | undefined;
  const runs: ScenarioResult[] = [];
  try {
    etcd = await startEtcd();
    const common = { clients, routesPerClient: routes, churnMs, churnPeriodMs: period, churnFraction: fraction, holdTime: hold, convergeTimeoutMs: converge, workDir, log: (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`) };
    for (const reflector of ['ours', 'BIRD'] as const) {
      if (only && only !== reflector) continue;
      const r = await runScenario({ ...common, reflector, etcd, tag: reflector === 'ours' ? 'o' : 'b' });
      console.error(JSON.stringify({ ...r, stats: { ...r.stats, drops: r.stats.drops.slice(0, 5) }, reflectorLogDrops: r.reflectorLogDrops.slice(0, 5) }));
      runs.push(r);
    }
  } finally {
    await etcd?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  const uptimeEnd = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const N = clients;
  const want = (N - 1) * routes;
  const f1 = (x: number | undefined, d = 0) => (x === undefined ? '-' : x.toFixed(d));
  const lines: string[] = [];
  lines.push('# BGP route reflector at scale', '');
  lines.push(`Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}, BIRD ${birdVersion()}`);
  lines.push(`Load: at start \`${uptimeStart}\`; at end \`${uptimeEnd}\` (the machine is shared with other work)`);
  lines.push(`Date: ${new Date().toISOString()}`, '');
  lines.push(`Setup: ${N} route-reflector clients (one process, raw iBGP sessions from ${N} addresses in their own namespace, hold time ${hold} s on both sides), each announcing ${routes} /32s (${N * routes} routes; every client must end with the other ${want}). Churn: every ${period} ms the next ${(fraction * 100).toFixed(0)}% of the clients withdraw all their routes and re-announce them half a period later, for ${churnMs / 1000} s. Reflector: ours = BgpSpeaker configured from etcd (rr_cluster_id, ${N} passive node-specific peers), kernel programming on; BIRD = one \`rr client\` protocol per client, kernel export on.`, '');
  lines.push(`| measure | ${runs.map((r) => r.reflector).join(' | ')} |`, `|---|${runs.map(() => '---').join('|')}|`);
  lines.push(row('sessions Established at start', (r) => `${r.establishedStart}/${N}`, runs));
  lines.push(row('sessions Established at end (clients)', (r) => `${r.stats.established}/${N}`, runs));
  lines.push(row('sessions up at end (reflector\'s own view)', (r) => `${r.reflectorUpEnd}/${N}`, runs));
  lines.push(row('session drops seen by clients (NOTIFICATION / reset / hold expiry)', (r) => String(r.stats.drops.length), runs));
  lines.push(row('sessions re-established (our peerStatus since)', (r) => (r.reflector === 'ours' ? String(r.reflectorReestablished) : '-'), runs));
  lines.push(row('reflector log: hold expiries / session down', (r) => String(r.reflectorLogDrops.length), runs));
  lines.push(row('initial: every client has all others\' routes after (s)', (r) => `${(r.initialConvergeMs / 1000).toFixed(1)}${r.initialComplete ? '' : ' (NOT complete)'}`, runs));
  lines.push(row('after churn: converged after (s)', (r) => `${(r.afterChurnConvergeMs / 1000).toFixed(1)}${r.afterChurnComplete ? '' : ' (NOT complete)'}`, runs));
  lines.push(row(`clients with exactly the expected ${want} routes at end`, (r) => `${r.stats.complete}/${N}`, runs));
  lines.push(row('routes missing / extra (sum over clients)', (r) => `${r.stats.missingTotal} / ${r.stats.extraTotal}`, runs));
  lines.push(row('routes with wrong next hop / ORIGINATOR_ID / CLUSTER_LIST (of checked)', (r) => `${r.stats.badAttrs} of ${r.stats.attrsChecked}`, runs));
  lines.push(row('prefix updates reflected during churn (per s)', (r) => f1(r.churn.prefixesReceived / (r.churn.ms / 1000)), runs));
  lines.push(row('  ... of the uncoalesced maximum (per s)', (r) => f1(r.churnExpectedPrefixes / (r.churn.ms / 1000)), runs));
  lines.push(row('reflection latency p50 / p90 / p99 / max (ms)', (r) => `${r.stats.latency.p50} / ${r.stats.latency.p90} / ${r.stats.latency.p99} / ${r.stats.latency.max}`, runs));
  lines.push(row('latency samples (of re-announcements x receivers)', (r) => `${r.stats.latency.samples} of ${r.stats.latency.expected}`, runs));
  lines.push(row('max event-loop stall, whole run / during churn (ms)', (r) => (r.loopMaxMs === undefined ? '-' : `${f1(r.loopMaxMs)} / ${f1(r.loopMaxChurnMs)}`), runs));
  lines.push(row('reflector RSS at end / peak (MB)', (r) => `${f1(r.rssMB)} / ${f1(r.peakRssMB)}`, runs));
  lines.push(row(`kernel routes at end (want ${N * routes})`, (r) => String(r.kernelRoutes), runs));
  lines.push(row('clients process: max event-loop stall (ms)', (r) => f1(r.stats.clientLoopMaxMs), runs));
  lines.push('');
  if (runs.length === 2) {
    const [o, b] = runs as [ScenarioResult, ScenarioResult];
    const ratio = (x: number, y: number) => (x / Math.max(1e-9, y)).toFixed(2);
    lines.push('Ratios (ours / BIRD): ' + [
      `initial convergence ${o.initialComplete && b.initialComplete ? ratio(o.initialConvergeMs, b.initialConvergeMs) : `n/a (complete: ours ${o.initialComplete}, BIRD ${b.initialComplete})`}`,
      o.stats.latency.samples && b.stats.latency.samples ? `latency p50 ${ratio(o.stats.latency.p50, b.stats.latency.p50)}, p99 ${ratio(o.stats.latency.p99, b.stats.latency.p99)}` : 'latency n/a (no samples on one side)',
      `peak RSS ${ratio(o.peakRssMB, b.peakRssMB)}`,
    ].join('; '), '');
  }
  for (const r of runs) {
    if (r.stats.drops.length) lines.push(`${r.reflector}: first drops: ${r.stats.drops.slice(0, 3).map((d) => `${d.client}: ${d.why}`).join('; ')}`, '');
    if (r.reflectorLogDrops.length) lines.push(`${r.reflector}: reflector log: ${r.reflectorLogDrops.slice(0, 2).map((l) => `\`${l}\``).join(' ')}`, '');
    if (r.stats.badAttrExamples.length) lines.push(`${r.reflector}: attribute problems: ${r.stats.badAttrExamples.join('; ')}`, '');
  }
  lines.push('Goal: zero session drops for ours.', '');
  const text = lines.join('\n') + '\n';
  console.log(text);
  if (!only) {
    const dir = join(__dirname, '..', '..', '..', 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'bgp-rr.md');
    let analysis = '';
    try { const old = readFileSync(file, 'utf8'); const i = old.indexOf('## Analysis'); if (i >= 0) analysis = '\n' + old.slice(i); } catch { /* first run */ }
    writeFileSync(file, text + analysis);
  }
}

void main().catch((err) => { console.error(err); process.exit(1); });
