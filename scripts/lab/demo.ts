/**
 * `lab demo`: the classic Powerstrip-era demo on the lab, each step printed as the command a user
 * types on that host (`calico-01$ docker run ...`) followed by what it printed:
 *
 *   workload-A/B/C on calico-01 and D/E on calico-02 (CALICO_IP=192.168.1.1..5),
 *   profiles PROF_A_C_E, PROF_B, PROF_D, appended to each endpoint (found with
 *   `calicoctl container <C> endpoint-id show`), workload-F with CALICO_IP=auto and
 *   CALICO_PROFILE=PROF_A_C_E, then the ping matrix and `calicoctl node status` on both hosts.
 *
 * Re-runnable: it first removes the containers and profiles an earlier run made. Returns false
 * (and `lab demo` exits non-zero) on any mismatch in the matrix or a BGP session not Established.
 */
import { writeFileSync } from 'node:fs';
import { LabConfig, HostConfig, HostName, hostList } from './config.js';
import { onHost } from './hosts.js';
import { RunResult, waitUntil, run } from './proc.js';
import { bold, progress } from './progress.js';
import { Workload, pingMatrix, formatMatrix, MatrixResult } from './matrix.js';
import { etcdRevision } from './etcd.js';
import { nodeStatus } from './node.js';
import { CalicoError } from '../../src/errors.js';

interface DemoWorkload { name: string; host: HostName; ip: string; profile: string }

/** The classic five, with their addresses and profiles; F (auto) is added after. */
export const CLASSIC: DemoWorkload[] = [
  { name: 'workload-A', host: 'calico-01', ip: '192.168.1.1', profile: 'PROF_A_C_E' },
  { name: 'workload-B', host: 'calico-01', ip: '192.168.1.2', profile: 'PROF_B' },
  { name: 'workload-C', host: 'calico-01', ip: '192.168.1.3', profile: 'PROF_A_C_E' },
  { name: 'workload-D', host: 'calico-02', ip: '192.168.1.4', profile: 'PROF_D' },
  { name: 'workload-E', host: 'calico-02', ip: '192.168.1.5', profile: 'PROF_A_C_E' },
];
export const WORKLOAD_F = { name: 'workload-F', host: 'calico-01' as HostName, profile: 'PROF_A_C_E' };
export const PROFILES = ['PROF_A_C_E', 'PROF_B', 'PROF_D'];
export const DEMO_NAMES = [...CLASSIC.map((w) => w.name), WORKLOAD_F.name];

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Shows `host$ cmd args`, runs it on that host, shows its output; throws when it fails. */
async function step(cfg: LabConfig, h: HostConfig, argv: string[]): Promise<RunResult> {
  process.stdout.write(`\n${bold(`${h.name}$ ${argv.map(shellQuote).join(' ')}`)}\n`);
  const r = await onHost(cfg, h, argv[0]!, argv.slice(1), { timeoutMs: 120000 });
  if (r.stdout) process.stdout.write(r.stdout.endsWith('\n') ? r.stdout : r.stdout + '\n');
  if (r.stderr) process.stdout.write(r.stderr.endsWith('\n') ? r.stderr : r.stderr + '\n');
  if (r.code !== 0) throw new CalicoError(`demo step failed on ${h.name} (exit ${r.code}): ${argv.join(' ')}`);
  return r;
}

/** Removes the demo's containers (through the proxy, so Calico releases their addresses) and profiles. */
async function cleanPrevious(cfg: LabConfig): Promise<void> {
  let removed = 0;
  await Promise.all(hostList(cfg).map(async (h) => {
    const ps = await onHost(cfg, h, 'docker', ['ps', '-a', '--format', '{{.Names}}']);
    if (ps.code !== 0) throw new CalicoError(`cannot list the containers on ${h.name}: ${ps.stderr.trim()}`, { hint: 'is the lab up? sudo npm run lab -- up' });
    const mine = ps.stdout.split('\n').map((s) => s.trim()).filter((n) => DEMO_NAMES.includes(n));
    if (mine.length) {
      const r = await onHost(cfg, h, 'docker', ['rm', '-f', ...mine]);
      if (r.code !== 0) throw new CalicoError(`cannot remove the earlier demo's containers on ${h.name}: ${r.stderr.trim()}`);
      removed += mine.length;
    }
  }));
  const h1 = cfg.hosts['calico-01'];
  let profiles = 0;
  for (const p of PROFILES) {
    if ((await onHost(cfg, h1, 'calicoctl', ['profile', 'remove', p, '--no-check'])).code === 0) profiles++;
  }
  if (removed || profiles) progress(`removed what an earlier demo made: ${removed} container(s), ${profiles} profile(s)`);
}

/**
 * A user types the demo's commands seconds apart; we run them back to back, so before pinging we
 * wait (bounded) until both agents have applied every write so far and each host routes the other
 * host's workloads over eth1. A ping matrix taken before that would test the race, not the policy.
 */
async function waitConverged(cfg: LabConfig, workloads: Workload[]): Promise<void> {
  const rev = await etcdRevision(cfg);
  const hosts = hostList(cfg);
  const applied = async () => {
    for (const h of hosts) {
      const s = await nodeStatus(h);
      if (!s?.agent || BigInt(s.agent.appliedRevision) < rev) return false;
    }
    return true;
  };
  const routed = async () => {
    for (const h of hosts) {
      for (const w of workloads.filter((x) => x.host !== h.name)) {
        const r = await run('ip', ['-n', h.netns, 'route', 'get', w.ip]);
        if (r.code !== 0 || !r.stdout.includes(`via ${cfg.hosts[w.host].ip} `)) return false;
      }
    }
    return true;
  };
  try {
    await waitUntil('both agents to apply the profiles and the routes to reach both hosts', async () => (await applied()) && (await routed()), 30000, 100);
    progress(`both agents have applied etcd revision ${rev}; each host routes the other's workloads via eth1`);
  } catch (err) {
    progress(`warning: ${(err as Error).message}; pinging anyway`);
  }
}

async function workloadIp(cfg: LabConfig, h: HostConfig, name: string): Promise<string | undefined> {
  const r = await onHost(cfg, h, 'docker', ['inspect', '-f', '{{.NetworkSettings.IPAddress}}', name]);
  const ip = r.stdout.trim();
  return r.code === 0 && ip ? ip : undefined;
}

async function showNodeStatus(cfg: LabConfig): Promise<boolean> {
  let ok = true;
  for (const h of hostList(cfg)) {
    const r = await step(cfg, h, ['calicoctl', 'node', 'status']);
    for (const other of hostList(cfg).filter((o) => o !== h)) {
      const row = r.stdout.split('\n').find((l) => l.includes(` ${other.ip} `));
      if (!row || !/Established/.test(row)) {
        ok = false;
        progress(`FAIL: ${h.name} has no Established BGP session with ${other.name} (${other.ip})`);
      }
    }
  }
  return ok;
}

/** The last word: the matrix and the mesh, and (with --json) the matrix for tests and scripts. */
function verdict(m: MatrixResult, meshOk: boolean, jsonFile?: string): boolean {
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ ...m, meshEstablished: meshOk }, null, 2) + '\n');
  const ok = m.ok && meshOk;
  const parts = [
    m.ok ? `ping matrix as expected (${m.cells.length}/${m.cells.length})` : `ping matrix: ${m.mismatches.length} of ${m.cells.length} pings not as expected`,
    meshOk ? 'BGP mesh Established on both hosts' : 'BGP mesh NOT Established',
  ];
  process.stdout.write(`\n${bold(`RESULT: ${ok ? 'PASS' : 'FAIL'}`)}: ${parts.join('; ')}\n`);
  return ok;
}

export async function demo(cfg: LabConfig, o: { jsonFile?: string } = {}): Promise<boolean> {
  const h1 = cfg.hosts['calico-01'];
  await cleanPrevious(cfg);

  progress('1. five workloads through the Calico proxy (DOCKER_HOST=localhost:2377 on each host); no profiles yet, so no one reaches anyone');
  for (const w of CLASSIC) {
    await step(cfg, cfg.hosts[w.host], ['docker', 'run', '-e', `CALICO_IP=${w.ip}`, '--name', w.name, '-tid', 'busybox']);
  }

  progress('2. three profiles (in etcd: both hosts see them)');
  for (const p of PROFILES) await step(cfg, h1, ['calicoctl', 'profile', 'add', p]);

  progress('3. each endpoint into its profile, on the container\'s own host');
  for (const w of CLASSIC) {
    const h = cfg.hosts[w.host];
    const id = (await step(cfg, h, ['calicoctl', 'container', w.name, 'endpoint-id', 'show'])).stdout.trim().split('\n').pop()!.trim();
    if (!/^[0-9a-f]{16,64}$/i.test(id)) throw new CalicoError(`unexpected endpoint id for ${w.name}: '${id}'`);
    await step(cfg, h, ['calicoctl', 'endpoint', id, 'profile', 'append', w.profile]);
  }

  progress('4. workload-F: an address from the pool (CALICO_IP=auto) and its profile at creation');
  await step(cfg, h1, ['docker', 'run', '-e', 'CALICO_IP=auto', '-e', `CALICO_PROFILE=${WORKLOAD_F.profile}`, '--name', WORKLOAD_F.name, '-tid', 'busybox']);
  const fIp = (await step(cfg, h1, ['docker', 'inspect', '-f', '{{.NetworkSettings.IPAddress}}', WORKLOAD_F.name])).stdout.trim();
  if (!fIp) throw new CalicoError('workload-F has no Calico address');

  const workloads: Workload[] = [
    ...CLASSIC.map((w) => ({ name: w.name, host: w.host, ip: w.ip, profiles: [w.profile] })),
    { name: WORKLOAD_F.name, host: WORKLOAD_F.host, ip: fIp, profiles: [WORKLOAD_F.profile] },
  ];
  progress('5. the ping matrix: every workload pings every other (docker exec <C> ping -c 1 -W 1 <ip>), all at once');
  await waitConverged(cfg, workloads);
  const m = await pingMatrix(cfg, workloads);
  process.stdout.write(`\n${formatMatrix(m)}\n`);

  progress('6. the BGP mesh between the hosts');
  const meshOk = await showNodeStatus(cfg);
  const ok = verdict(m, meshOk, o.jsonFile);
  if (ok) {
    progress('now try your own: sudo npm run lab -- exec calico-02 -- docker run -e CALICO_IP=192.168.1.10 -e CALICO_PROFILE=PROF_A_C_E --name my-workload -tid busybox');
    progress('            then: sudo npm run lab -- exec calico-01 -- docker exec workload-A ping -c 2 192.168.1.10');
  }
  return ok;
}

/** `lab matrix`: the matrix of whichever demo workloads exist now (profiles as the demo set them). */
export async function runMatrixOnly(cfg: LabConfig, o: { jsonFile?: string } = {}): Promise<boolean> {
  const all = [...CLASSIC, { ...WORKLOAD_F, ip: '' }];
  const found = await Promise.all(all.map(async (w) => {
    const ip = await workloadIp(cfg, cfg.hosts[w.host], w.name);
    return ip ? { name: w.name, host: w.host, ip, profiles: [w.profile] } : undefined;
  }));
  const workloads = found.filter((w): w is Workload => w !== undefined);
  if (workloads.length < 2) throw new CalicoError('fewer than two of the demo\'s workloads exist', { hint: 'run the demo first: sudo npm run lab -- demo' });
  await waitConverged(cfg, workloads);
  const m = await pingMatrix(cfg, workloads);
  process.stdout.write(`\n${formatMatrix(m)}\n`);
  const { meshEstablished } = await import('./node.js');
  return verdict(m, await meshEstablished(cfg), o.jsonFile);
}
