/**
 * `calicoctl node ...`: start the node daemon on this host (`node --ip=...`), stop it, show its
 * status, check the system, and collect diagnostics.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kv, nodeName, say, getGlobals, hostNetnsRef } from '../context.js';
import { keys } from '../../src/datastore/keys.js';
import { loadEtcdConfig } from '../../src/datastore/config.js';
import { ensureLocalEtcd } from '../../src/datastore/local-etcd.js';
import { parseAsNumber, validateIp, validateName } from '../../src/model/resources.js';
import { CalicoError, UsageError, ValidationError, DatastoreUnreachableError } from '../../src/errors.js';
import { DEFAULT_LOG_DIR, nodePaths, nodeLogFile, runDir } from '../../node/paths.js';
import { readStatus, NodeStatus } from '../../node/status.js';
import { runChecks, printProblems } from './checksystem.js';

export interface NodeStartOptions {
  ip?: string;
  ip6?: string;
  as?: string;
  name?: string;
  logDir: string;
  dockerSocket: string;
  proxyListen: string;
  backend: string;
  defaultIppools: boolean;
  dryrun?: boolean;
  initSystem?: boolean;
  detach: string;
  metricsPort: string;
  bgpPort: string;
}

const DAEMON = join(__dirname, '..', '..', 'node', 'daemon.js');

export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new CalicoError('This command must be run as root.', { exitCode: 2, hint: `run: sudo calicoctl ${what} (sudo -E keeps ETCD_ENDPOINTS)` });
  }
}

/** The IPv4 (or IPv6) address of the interface that holds the default route. */
export function detectAddress(version: 4 | 6): string | undefined {
  const ns = hostNetnsRef();
  const ip = (args: string[]) => (ns
    ? spawnSync('nsenter', [`--net=${ns.includes('/') ? ns : `/run/netns/${ns}`}`, 'ip', ...args], { encoding: 'utf8' })
    : spawnSync('ip', args, { encoding: 'utf8' }));
  const r = ip(['-j', `-${version}`, 'route', 'show', 'default']);
  const routes = r.status === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as Array<{ dev?: string }>) : [];
  const dev = routes.find((x) => x.dev)?.dev;
  if (!dev) return undefined;
  const a = ip(['-j', `-${version}`, 'addr', 'show', 'dev', dev, 'scope', 'global']);
  const links = a.status === 0 && a.stdout.trim() ? (JSON.parse(a.stdout) as Array<{ addr_info?: Array<{ local?: string }> }>) : [];
  return links.flatMap((l) => l.addr_info ?? []).find((i) => i.local)?.local;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function runningPid(dir: string): number | undefined {
  const f = nodePaths(dir).pidFile;
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
}

async function stopDaemon(pid: number, timeoutMs = 15000): Promise<void> {
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

/** Makes sure a datastore answers, starting the local etcd when nothing is configured. */
async function ensureDatastore(logDir: string): Promise<void> {
  const cfg = loadEtcdConfig({ configFile: getGlobals().config });
  try {
    await kv().get(keys.ready);
    return;
  } catch (err) {
    if (!(err instanceof DatastoreUnreachableError) || !cfg.isDefault) throw err;
  }
  const etcd = await ensureLocalEtcd({ logDir }, (m) => process.stderr.write(`${m}\n`));
  say(`No etcd is configured or running here: started a local etcd at ${etcd.endpoint} (pid ${etcd.pid}, data in /var/lib/calico/etcd).`);
}

async function writeNodeRecords(name: string, ip: string, ip6: string | undefined, as: number | undefined): Promise<void> {
  // Another node with the same address would blackhole both nodes' workloads.
  for (const e of (await kv().list(keys.hostPrefix)).entries) {
    const m = /^\/calico\/v1\/host\/([^/]+)\/bird_ip$/.exec(e.key);
    if (m && e.value === ip && decodeURIComponent(m[1]!) !== name) {
      throw new CalicoError(`IP address ${ip} is already in use by node ${decodeURIComponent(m[1]!)}`, { hint: 'give each node its own --ip, or remove the stale node: calicoctl delete node <name>' });
    }
  }
  const ops: Array<{ op: 'put'; key: string; value: string } | { op: 'delete'; key: string }> = [
    { op: 'put', key: keys.ready, value: 'true' },
    { op: 'put', key: keys.hostMetadata(name), value: '{}' },
    { op: 'put', key: keys.birdIp(name), value: ip },
    { op: 'put', key: keys.bgpHostIpV4(name), value: ip },
    { op: 'put', key: keys.bgpHostIpV6(name), value: ip6 ?? '' },
    ip6 ? { op: 'put', key: keys.bird6Ip(name), value: ip6 } : { op: 'delete', key: keys.bird6Ip(name) },
    // As the original: the node's AS is whatever this start says; without --as the global one applies.
    as !== undefined ? { op: 'put', key: keys.bgpHostAs(name), value: String(as) } : { op: 'delete', key: keys.bgpHostAs(name) },
  ];
  await kv().txn([], ops);
  if (!(await kv().get(keys.felixConfig('InterfacePrefix')))) await kv().put(keys.felixConfig('InterfacePrefix'), 'cali');
}

function daemonArgs(name: string, ip: string, ip6: string | undefined, o: NodeStartOptions, dir: string): string[] {
  const args = ['--name', name, '--ip', ip, '--run-dir', dir, '--docker-socket', o.dockerSocket, '--proxy-listen', o.proxyListen,
    '--backend', o.backend, '--metrics-port', o.metricsPort, '--bgp-port', o.bgpPort];
  if (ip6) args.push('--ip6', ip6);
  if (hostNetnsRef()) args.push('--netns', hostNetnsRef()!);
  if (getGlobals().config) args.push('--config', getGlobals().config!);
  if (getGlobals().logLevel === 'debug') args.push('--log-level', 'debug');
  return args;
}

export async function start(o: NodeStartOptions): Promise<void> {
  requireRoot('node');
  const name = validateName(o.name ?? nodeName(), '--name');
  if (o.backend !== 'builtin' && o.backend !== 'none') throw new UsageError(`--backend must be builtin or none, not '${o.backend}'`);
  if (o.detach !== 'true' && o.detach !== 'false') throw new UsageError(`--detach must be true or false, not '${o.detach}'`);
  let ip: string;
  if (o.ip === undefined || o.ip === 'autodetect') {
    const found = detectAddress(4);
    if (!found) throw new CalicoError('No IP provided, and no IPv4 address could be detected (no default route?)', { hint: 'give one: calicoctl node --ip=<this host\'s IPv4 address>' });
    ip = found;
    say(`No IP provided. Using detected IP: ${ip}`);
  } else {
    try { ip = validateIp(o.ip, '--ip', 4); } catch { throw new ValidationError('Invalid IPv4 address specified with --ip argument.', '--ip'); }
  }
  let ip6: string | undefined;
  if (o.ip6 !== undefined) {
    try { ip6 = validateIp(o.ip6, '--ip6', 6); } catch { throw new ValidationError('Invalid IPv6 address specified with --ip6 argument.', '--ip6'); }
  }
  let as: number | undefined;
  if (o.as !== undefined) {
    try { as = parseAsNumber(o.as, '--as'); } catch { throw new ValidationError('Invalid AS Number specified.', '--as'); }
  }
  const dir = runDir();
  const args = daemonArgs(name, ip, ip6, o, dir);
  if (o.dryrun) {
    say(`Would write node ${name}: bird_ip=${ip}${ip6 ? ` bird6_ip=${ip6}` : ''}${as !== undefined ? ` as_num=${as}` : ''}`);
    if (o.defaultIppools) say('Would create the default IP pools if none exist (192.168.0.0/16' + (ip6 ? ', fd80:24e2:f998:72d6::/64' : '') + ')');
    say(`Would run: ${process.execPath} ${DAEMON} ${args.join(' ')}`);
    return;
  }
  for (const p of runChecks({ fix: true, forNode: true, dockerSocket: o.dockerSocket })) process.stderr.write(`WARNING: ${p.message}\n`);
  mkdirSync(dir, { recursive: true });
  mkdirSync(o.logDir, { recursive: true });
  await ensureDatastore(o.logDir);
  await writeNodeRecords(name, ip, ip6, as);
  if (o.defaultIppools) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ensureDefaultPools } = require('../../src/ipam/index.js') as typeof import('../../src/ipam/index.js');
    for (const p of await ensureDefaultPools(kv(), { ipv6: ip6 !== undefined })) say(`Created default IP pool ${p}`);
  }
  const old = runningPid(dir);
  if (old) {
    say(`Restarting the running Calico node (pid ${old})`);
    await stopDaemon(old);
  }
  if (o.initSystem || o.detach === 'false') {
    // Foreground: this process becomes the node (for systemd and containers).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runDaemon } = require('../../node/daemon.js') as typeof import('../../node/daemon.js');
    await runDaemon(args);
    await new Promise<never>(() => undefined);
  }
  const logFile = nodeLogFile(o.logDir);
  const fd = openSync(logFile, 'a');
  // A small young generation keeps the BGP speaker's memory per route low (measured in bench/bgp).
  const child = spawn(process.execPath, ['--max-semi-space-size=2', DAEMON, ...args], { detached: true, stdio: ['ignore', fd, fd], env: process.env });
  closeSync(fd);
  child.unref();
  const status = await waitReady(nodePaths(dir).statusSocket, child.pid!, logFile);
  say('');
  if (status.proxy) {
    const port = status.proxy.address.split(':').pop();
    say(`Docker Remote API is on port ${port}.  Run `);
    say('');
    say(`export DOCKER_HOST=${status.proxy.dockerHost.replace(/^tcp:\/\/127\.0\.0\.1/, 'localhost').replace(/^tcp:\/\//, '')}`);
    say('');
    say('before using `docker run` for Calico networking.');
    say('');
  }
  say(`Calico node is running with id: ${status.pid}`);
}

async function waitReady(socket: string, pid: number, logFile: string, timeoutMs = 60000): Promise<NodeStatus> {
  const deadline = Date.now() + timeoutMs;
  const tty = process.stderr.isTTY;
  let last = '';
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
      throw new CalicoError(`the Calico node exited during start-up; the end of ${logFile}:\n${log}`);
    }
    const s = await readStatus(socket, 1000);
    if (s) {
      const c = s.components;
      const mark = (v: boolean | 'disabled') => (v === 'disabled' ? 'off' : v ? 'ok' : '..');
      const line = `Waiting for the node: datastore ${mark(c.datastore)}, agent ${mark(c.agent)}, bgp ${mark(c.bgp)}, proxy ${mark(c.proxy)}`;
      if (line !== last) {
        process.stderr.write(tty ? `\r${line}` : `${line}\n`);
        last = line;
      }
      if (s.ready) {
        if (tty) process.stderr.write('\n');
        return s;
      }
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new CalicoError(`the Calico node did not become ready within ${timeoutMs / 1000} s; see ${logFile}`);
}

export async function stop(o: { force?: boolean }): Promise<void> {
  requireRoot('node stop');
  const name = nodeName();
  const eps = (await kv().list(keys.workloadsOfOrchestrator(name, 'docker'), { keysOnly: true })).entries;
  if (eps.length && !o.force) throw new CalicoError("Current host has active endpoints so can't be stopped. Force with --force");
  const pid = runningPid(runDir());
  if (pid) await stopDaemon(pid);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ipam = require('../../src/ipam/index.js') as typeof import('../../src/ipam/index.js');
  if (eps.length) {
    const { listEndpoints } = await import('../../src/datastore/endpoints.js');
    const all = await listEndpoints(kv(), { host: name });
    await ipam.releaseIps(kv(), all.flatMap((e) => [...e.ep.ipv4_nets, ...e.ep.ipv6_nets].map((n) => n.split('/')[0]!)));
  }
  await ipam.releaseHostAffinities(kv(), name);
  await kv().deletePrefix(keys.host(name));
  await kv().deletePrefix(keys.bgpHost(name));
  // The dataplane this node programmed goes too: its nftables table and its routes.
  const ns = hostNetnsRef();
  const nft = ['nft', 'delete', 'table', 'inet', 'calico'];
  spawnSync(ns ? 'nsenter' : nft[0]!, ns ? [`--net=${ns.includes('/') ? ns : `/run/netns/${ns}`}`, ...nft] : nft.slice(1), { stdio: 'ignore' });
  say('Node stopped and all configuration removed');
}

export async function status(): Promise<void> {
  const dir = runDir();
  const s = await readStatus(nodePaths(dir).statusSocket);
  if (!s) {
    const pid = runningPid(dir);
    throw new CalicoError(pid ? `calico-node (pid ${pid}) is not answering on ${nodePaths(dir).statusSocket}` : 'calico-node is not running', {
      hint: pid ? undefined : 'start it with: sudo calicoctl node --ip=<this host\'s IP>',
    });
  }
  const up = Math.round((Date.now() - Date.parse(s.startedAt)) / 1000);
  const dur = up < 120 ? `${up} seconds` : up < 7200 ? `${Math.round(up / 60)} minutes` : `${Math.round(up / 3600)} hours`;
  say(`calico-node is running. Status: Up ${dur} (pid ${s.pid}${s.ready ? '' : ', starting'})`);
  say(`Node ${s.node}${s.ipv4 ? `, IPv4 ${s.ipv4}` : ''}${s.ipv6 ? `, IPv6 ${s.ipv6}` : ''}`);
  if (s.agent) {
    const a = s.agent;
    say(`Agent: ${a.inSync ? 'in sync' : 'syncing'} at revision ${a.appliedRevision}, ${a.localEndpoints} local endpoint(s)${a.lastApplyMs !== undefined ? `, last apply ${a.lastApplyMs.toFixed(1)} ms` : ''}${a.driftRepairs ? `, ${a.driftRepairs} drift repair(s)` : ''}`);
  }
  if (s.proxy) say(`Docker API proxy: ${s.proxy.dockerHost}`);
  for (const e of s.errors) say(`Error: ${e}`);
  if (s.bgp) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { formatPeerStatus } = require('../../node/bgp/status.js') as typeof import('../../node/bgp/status.js');
    process.stdout.write(formatPeerStatus(s.bgp));
  } else say('BGP: disabled (--backend=none)');
}

export function checksystem(o: { fix?: boolean; dockerSocket: string }): void {
  const problems = runChecks({ fix: o.fix === true, forNode: false, dockerSocket: o.dockerSocket });
  printProblems(problems);
  if (problems.some((p) => p.severity === 'error')) process.exitCode = 1;
}

export async function diags(o: { logDir: string }): Promise<void> {
  requireRoot('diags');
  say('Collecting diags');
  const dir = mkdtempSync(join(tmpdir(), 'calico-diags-'));
  say(`Using temp dir: ${dir}`);
  const bundle = join(dir, 'diags');
  mkdirSync(bundle);
  const capture = (file: string, cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
    writeFileSync(join(bundle, file), r.error ? `${cmd}: ${r.error.message}\n` : `$ ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  };
  writeFileSync(join(bundle, 'date'), new Date().toISOString() + '\n');
  writeFileSync(join(bundle, 'hostname'), nodeName() + '\n');
  capture('links', 'ip', ['-d', 'link', 'show']);
  capture('addresses', 'ip', ['addr', 'show']);
  capture('routes', 'ip', ['route', 'show', 'table', 'all']);
  capture('routes6', 'ip', ['-6', 'route', 'show', 'table', 'all']);
  capture('nftables', 'nft', ['list', 'ruleset']);
  capture('conntrack', 'conntrack', ['-L']);
  capture('sockets', 'ss', ['-antup']);
  const s = await readStatus(nodePaths(runDir()).statusSocket);
  writeFileSync(join(bundle, 'node-status.json'), JSON.stringify(s ?? { running: false }, null, 2));
  if (existsSync(o.logDir)) cpSync(o.logDir, join(bundle, 'logs'), { recursive: true });
  try {
    const { entries } = await kv().list('/calico/');
    writeFileSync(join(bundle, 'etcd_calico'), entries.map((e) => `${e.key} = ${e.value}`).join('\n') + '\n');
  } catch (err) {
    writeFileSync(join(bundle, 'etcd_calico'), `could not read etcd: ${(err as Error).message}\n`);
  }
  const d = new Date();
  const p2 = (n: number) => String(n).padStart(2, '0');
  const name = `diags-${p2(d.getDate())}${p2(d.getMonth() + 1)}${p2(d.getFullYear() % 100)}_${p2(d.getHours())}${p2(d.getMinutes())}${p2(d.getSeconds())}.tar.gz`;
  const out = join(dir, name);
  const t = spawnSync('tar', ['-czf', out, '-C', dir, 'diags'], { encoding: 'utf8' });
  if (t.status !== 0) throw new CalicoError(`could not write ${out}: ${t.stderr}`);
  say(`Diags saved to ${out}`);
}

export { DEFAULT_LOG_DIR };
