/**
 * The out-of-the-box datastore: a single-member etcd started from the `etcd` binary, data under
 * /var/lib/calico/etcd, detached, with a pid file, when nothing is configured and nothing answers
 * on the default endpoint. Used by the demo and by `calicoctl node`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CalicoError } from '../errors.js';
import { EtcdConfig } from './config.js';
import { connectKV } from './connect.js';

export interface LocalEtcdOptions {
  dataDir?: string;
  runDir?: string;
  logDir?: string;
  /** Client URL to listen on and advertise; default http://127.0.0.1:2379. */
  clientUrl?: string;
  peerUrl?: string;
  name?: string;
  /** A different etcd binary (tests). */
  binary?: string;
  /** Run inside this network namespace path (lab hosts), via nsenter. */
  netnsPath?: string;
}

export interface LocalEtcd {
  endpoint: string;
  pid: number;
  started: boolean;
}

/** Whether etcd answers at `endpoint`, asked from inside `netnsPath` when given (the address may exist only there). */
async function answers(endpoint: string, netnsPath?: string): Promise<boolean> {
  if (netnsPath) {
    const r = spawnSync('nsenter', [`--net=${netnsPath}`, 'etcdctl', '--endpoints', endpoint, '--dial-timeout=1s', 'endpoint', 'health'],
      { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore', timeout: 5000 });
    return r.status === 0;
  }
  const kv = connectKV({ endpoints: [endpoint], isDefault: false }, 'cli');
  try {
    await kv.get('/calico/v1/Ready');
    return true;
  } catch {
    return false;
  } finally {
    kv.close();
  }
}

/** Starts the local etcd unless one already answers there. Resolves once it answers. */
export async function ensureLocalEtcd(opts: LocalEtcdOptions = {}, onProgress?: (msg: string) => void): Promise<LocalEtcd> {
  const clientUrl = opts.clientUrl ?? 'http://127.0.0.1:2379';
  const dataDir = opts.dataDir ?? '/var/lib/calico/etcd';
  const runDir = opts.runDir ?? '/var/run/calico';
  const logDir = opts.logDir ?? '/var/log/calico';
  const pidFile = join(runDir, 'etcd.pid');
  if (await answers(clientUrl, opts.netnsPath)) {
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    return { endpoint: clientUrl, pid, started: false };
  }
  for (const d of [dataDir, runDir, logDir]) mkdirSync(d, { recursive: true });
  const host = new URL(clientUrl).hostname;
  const peerUrl = opts.peerUrl ?? `http://${host}:2380`;
  const name = opts.name ?? 'calico';
  const args = [
    '--name', name, '--data-dir', dataDir,
    '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `${name}=${peerUrl}`, '--log-level', 'warn', '--logger', 'zap',
  ];
  const bin = opts.binary ?? 'etcd';
  const [cmd, argv] = opts.netnsPath ? ['nsenter', [`--net=${opts.netnsPath}`, bin, ...args]] : [bin, args];
  onProgress?.(`starting a local etcd at ${clientUrl} (data in ${dataDir})`);
  const fd = openSync(join(logDir, 'etcd.log'), 'a');
  const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  child.unref();
  if (child.pid !== undefined) writeFileSync(pidFile, String(child.pid));
  const deadline = Date.now() + 20000;
  // Whatever goes wrong from here, the etcd we spawned must not be left running.
  const giveUp = (err: CalicoError): never => {
    if (child.pid !== undefined && child.exitCode === null) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }
    throw err;
  };
  while (Date.now() < deadline) {
    const err = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(r, 100))]);
    if (err) giveUp(new CalicoError(`cannot start etcd (${bin}): ${err.message}`, { hint: 'install it: apt-get install etcd-server' }));
    if (child.exitCode !== null) {
      giveUp(new CalicoError(`etcd exited at once (code ${child.exitCode}); see ${join(logDir, 'etcd.log')}`));
    }
    if (await answers(clientUrl, opts.netnsPath)) return { endpoint: clientUrl, pid: child.pid ?? 0, started: true };
  }
  return giveUp(new CalicoError(`etcd did not answer at ${clientUrl} within 20 s; see ${join(logDir, 'etcd.log')}`));
}

export function localEtcdConfig(endpoint: string): EtcdConfig {
  return { endpoints: [endpoint], isDefault: false };
}
