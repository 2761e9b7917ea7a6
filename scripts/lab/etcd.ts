/**
 * The lab's datastore: one etcd on calico-01's address (http://172.17.8.101:2379), started inside
 * calico-01's namespace, data under the lab's dir. calico-02 reaches it over eth1, as the second
 * VM of the Vagrant lab does.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { LabConfig } from './config.js';
import { ownedPid, runIn } from './proc.js';
import { Progress } from './progress.js';
import { CalicoError } from '../../src/errors.js';

const CHILD = join(__dirname, 'etcd-in-netns.js');

export function etcdHostConfig(cfg: LabConfig) {
  return cfg.hosts[cfg.etcdHost];
}

export const etcdPid = (cfg: LabConfig) => ownedPid(join(cfg.etcdRunDir, 'etcd.pid'), cfg.etcdDataDir);

/** etcdctl from inside a lab host (the only place the lab's etcd can be reached from). */
export function etcdctl(cfg: LabConfig, args: string[], fromHost = cfg.etcdHost) {
  return runIn(cfg.hosts[fromHost].netnsPath, 'etcdctl', ['--endpoints', cfg.etcdUrl, '--dial-timeout=2s', '--command-timeout=3s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeoutMs: 10000,
  });
}

export async function etcdAnswers(cfg: LabConfig): Promise<boolean> {
  if (!existsSync(etcdHostConfig(cfg).netnsPath)) return false;
  return (await etcdctl(cfg, ['endpoint', 'health'])).code === 0;
}

/** The store's current revision: agents report the revision they have applied, to compare with. */
export async function etcdRevision(cfg: LabConfig): Promise<bigint> {
  const r = await etcdctl(cfg, ['endpoint', 'status', '-w', 'json']);
  if (r.code !== 0) throw new CalicoError(`cannot read etcd's revision: ${r.stderr.trim()}`);
  const [s] = JSON.parse(r.stdout) as Array<{ Status: { header: { revision: number | string } } }>;
  return BigInt(s!.Status.header.revision);
}

export async function ensureEtcd(cfg: LabConfig, say: Progress): Promise<void> {
  const h = etcdHostConfig(cfg);
  if (await etcdAnswers(cfg)) {
    say(`${h.name}: etcd already running at ${cfg.etcdUrl}${etcdPid(cfg) ? ` (pid ${etcdPid(cfg)})` : ''}`);
    return;
  }
  const opts = {
    dataDir: cfg.etcdDataDir, runDir: cfg.etcdRunDir, logDir: cfg.etcdLogDir,
    clientUrl: cfg.etcdUrl, peerUrl: `http://${h.ip}:2380`, name: h.name,
  };
  const r = await runIn(h.netnsPath, process.execPath, [CHILD, JSON.stringify(opts)], { timeoutMs: 60000 });
  if (r.code !== 0) {
    throw new CalicoError(`etcd did not start on ${h.name}: ${r.stderr.trim()}`, { hint: `see ${join(cfg.etcdLogDir, 'etcd.log')}` });
  }
  const started = JSON.parse(r.stdout.trim().split('\n').pop()!) as { pid: number };
  say(`${h.name}: etcd started at ${cfg.etcdUrl} (pid ${started.pid}, data in ${cfg.etcdDataDir})`);
}
