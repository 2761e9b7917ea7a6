/**
 * calicoctl benchmarks (issue 2), measured against etcdctl in the same run on the same etcd:
 * - `calicoctl get workloadEndpoint` over 10 000 endpoints vs `etcdctl get --prefix` of the same keys
 *   (wall time and peak memory; goal within 2x);
 * - start-up: `calicoctl profile show` on an empty store vs `etcdctl get` of one key (goal < 150 ms).
 * The notes under the table say how calicoctl started (from its start-up snapshot, unless that is
 * missing or stale: `npm run bench` builds it), Node's own start-up in the same run (`node -e 0`),
 * and whether NODE_EXTRA_CA_CERTS is set (Node 20 then parses certificates as it starts; see
 * bin/calicoctl).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startEtcd } from '../test/harness/etcd.js';
import { keys } from '../src/datastore/keys.js';
import { measure, percentile, table, saveResults, Row } from './util.js';

const CALICOCTL = join(__dirname, '..', '..', 'bin', 'calicoctl');

async function main(): Promise<void> {
  const N = Number(process.env.BENCH_ENDPOINTS ?? 10000);
  const RUNS = Number(process.env.BENCH_RUNS ?? 5);
  const etcd = await startEtcd();
  try {
    const env = { ...etcd.env, ETCDCTL_API: '3' };
    const kv = etcd.kv();
    const rows: Row[] = [];

    const trace = spawnSync(CALICOCTL, ['profile', 'show'], { env: { ...env, CALICOCTL_STARTUP_TRACE: '1' }, encoding: 'utf8' });
    const startup = /^calicoctl start-up: (.*)$/m.exec(trace.stderr)?.[1] ?? `unknown (exit ${trace.status}: ${trace.stderr.trim()})`;

    // Start-up on an empty store.
    const ours: number[] = [];
    const base: number[] = [];
    const nodeOnly: number[] = [];
    for (let i = 0; i < 20; i++) {
      ours.push(measure(CALICOCTL, ['profile', 'show'], env).ms);
      base.push(measure('etcdctl', ['--endpoints', etcd.endpoint, 'get', '/calico/v1/Ready'], env).ms);
      nodeOnly.push(measure(process.execPath, ['-e', '0'], env).ms);
    }
    const s50 = percentile(ours, 50);
    rows.push({ metric: 'start-up: profile show, empty store (p50)', ours: `${s50.toFixed(0)} ms`, baseline: `${percentile(base, 50).toFixed(0)} ms`, ratio: (s50 / percentile(base, 50)).toFixed(1) + 'x', goal: '< 150 ms', ok: s50 < 150 });

    // 10 000 endpoints.
    process.stderr.write(`bench: writing ${N} workload endpoints...\n`);
    const ops = [];
    for (let i = 0; i < N; i++) {
      const id = i.toString(16).padStart(32, '0');
      const host = `host-${i % 10}`;
      const ep = { state: 'active', name: `cali${id.slice(0, 11)}`, mac: 'ee:ee:ee:ee:ee:ee', profile_ids: [`prof-${i % 100}`], ipv4_nets: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`], ipv6_nets: [], ipv4_gateway: null, ipv6_gateway: null, labels: {} };
      ops.push({ op: 'put' as const, key: keys.workloadEndpoint(host, 'docker', `c${id}`, id), value: JSON.stringify(ep) });
    }
    for (let i = 0; i < ops.length; i += 100) await kv.txn([], ops.slice(i, i + 100));
    const g: number[] = []; const gm: number[] = []; const e: number[] = []; const em: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const a = measure(CALICOCTL, ['get', 'workloadEndpoint'], env);
      g.push(a.ms); gm.push(a.maxRssKb);
      const b = measure('etcdctl', ['--endpoints', etcd.endpoint, 'get', '--prefix', '/calico/v1/host/'], env);
      e.push(b.ms); em.push(b.maxRssKb);
    }
    const gt = percentile(g, 50); const et = percentile(e, 50);
    rows.push({ metric: `get workloadEndpoint, ${N} endpoints (p50 time)`, ours: `${gt.toFixed(0)} ms`, baseline: `${et.toFixed(0)} ms`, ratio: (gt / et).toFixed(2) + 'x', goal: '<= 2x', ok: gt / et <= 2 });
    const gmm = Math.max(...gm) / 1024; const emm = Math.max(...em) / 1024;
    rows.push({ metric: `get workloadEndpoint, ${N} endpoints (peak RSS)`, ours: `${gmm.toFixed(0)} MiB`, baseline: `${emm.toFixed(0)} MiB`, ratio: (gmm / emm).toFixed(2) + 'x', goal: '<= 2x', ok: gmm / emm <= 2 });
    const notes = [
      `calicoctl start-up: ${startup}.`,
      `Node's own start-up in this run (\`node -e 0\`, p50): ${percentile(nodeOnly, 50).toFixed(0)} ms.`,
      `NODE_EXTRA_CA_CERTS is ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'not set'} here.`,
    ];
    const md = table('calicoctl vs etcdctl (same etcd, same run)', 'etcdctl', rows) + '\n' + notes.join('\n') + '\n';
    process.stdout.write(md + '\n');
    process.stdout.write(`results: ${saveResults('cli', md)}\n`);
  } finally {
    await etcd.stop();
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1); });
