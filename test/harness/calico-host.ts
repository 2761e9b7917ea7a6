/**
 * One Calico host for tests: a network namespace standing in for the host (an address on lo and a
 * default route, as a real host has), a dockerd inside it, the busybox image, and the node daemon
 * (agent + Docker API proxy) programming that namespace, against a real etcd. `stop()` removes all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEtcd, TestEtcd } from './etcd.js';
import { startDockerd, TestDockerd } from './dockerd.js';
import { importBusybox } from './busybox-image.js';
import { startProcess, OwnedProcess, runCollect, RunResult } from './process.js';
import { freePort, waitFor } from './ports.js';
import { createNetns, deleteNetns, ipBatch, writeSysctls, Netns } from '../../src/dataplane/index.js';
import { keys } from '../../src/datastore/keys.js';
import { readStatus } from '../../node/status.js';
import { nodePaths } from '../../node/paths.js';
import { KV } from '../../src/datastore/kv.js';

const DAEMON = join(__dirname, '..', '..', 'node', 'daemon.js');

export interface CalicoHost {
  name: string;
  hostIp: string;
  netns: Netns;
  etcd: TestEtcd;
  kv: KV;
  dockerd: TestDockerd;
  node: OwnedProcess;
  runDir: string;
  proxyAddress: string;
  /** Environment for the docker CLI through the proxy (DOCKER_HOST=tcp://127.0.0.1:PORT). */
  proxyEnv: NodeJS.ProcessEnv;
  /** Environment for the docker CLI against the daemon's own socket. */
  directEnv: NodeJS.ProcessEnv;
  /** Environment for calicoctl (etcd, node name, docker socket). */
  calicoctlEnv: NodeJS.ProcessEnv;
  docker(args: string[], opts?: { direct?: boolean; input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** One ping from the host namespace (busybox's: no iputils needed); true when answered. */
  ping(ip: string, from?: string): Promise<boolean>;
  /** Runs a command in the host namespace. */
  inHost(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  restartNode(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<RunResult> {
  return runCollect(cmd, args, { env, input });
}

export async function startCalicoHost(opts: { name?: string; hostIp?: string; hostIp6?: string; etcd?: TestEtcd } = {}): Promise<CalicoHost> {
  const suffix = randomBytes(3).toString('hex');
  const name = opts.name ?? `wl-${suffix}`;
  const hostIp = opts.hostIp ?? '10.99.0.1';
  const nsName = `cth-${suffix}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  const undo = async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); };
  try {
    const etcd = opts.etcd ?? (await startEtcd());
    if (!opts.etcd) cleanups.push(() => etcd.stop());
    const kv = etcd.kv();
    const netns = await createNetns(nsName);
    cleanups.push(() => deleteNetns(nsName));
    await ipBatch([
      `addr add ${hostIp}/32 dev lo`,
      'link add up0 type veth peer name up1', 'link set up0 up', 'link set up1 up', 'route add default dev up0',
    ], { netns });
    await writeSysctls([{ key: 'net/ipv4/ip_forward', value: '1' }, { key: 'net/ipv6/conf/all/forwarding', value: '1' }], { netns });
    const dockerd = await startDockerd({ netns: nsName });
    cleanups.push(() => dockerd.stop());
    await importBusybox(dockerd.env);
    // The node's records, as `calicoctl node` writes them.
    await kv.txn([], [
      { op: 'put', key: keys.hostMetadata(name), value: '{}' },
      { op: 'put', key: keys.birdIp(name), value: hostIp },
      { op: 'put', key: keys.bgpHostIpV4(name), value: hostIp },
      ...(opts.hostIp6 ? [{ op: 'put' as const, key: keys.bird6Ip(name), value: opts.hostIp6 }, { op: 'put' as const, key: keys.bgpHostIpV6(name), value: opts.hostIp6 }] : []),
    ]);
    const runDir = mkdtempSync(join(tmpdir(), 'calico-run-'));
    cleanups.push(async () => rmSync(runDir, { recursive: true, force: true }));
    const port = await freePort();
    const startNode = () => startProcess(process.execPath, [DAEMON, '--name', name, '--ip', hostIp, '--run-dir', runDir,
      '--docker-socket', dockerd.socket, '--proxy-listen', `127.0.0.1:${port}`, '--backend', 'none', '--metrics-port', '0', '--netns', nsName],
    join(runDir, 'node.log'), { env: { ...etcd.env, CALICO_NODENAME: name } });
    let node = startNode();
    const waitReady = async () => {
      await waitFor('the node to be ready', async () => {
        if (node.child.exitCode !== null) throw new Error(`node exited with ${node.child.exitCode}; see ${node.logFile}`);
        return (await readStatus(nodePaths(runDir).statusSocket))?.ready;
      }, 30000, 100);
    };
    cleanups.push(() => node.stop());
    await waitReady();
    const proxyEnv = { ...dockerd.env, DOCKER_HOST: `tcp://127.0.0.1:${port}` };
    const host: CalicoHost = {
      name, hostIp, netns, etcd, kv, dockerd, node, runDir, proxyAddress: `127.0.0.1:${port}`, proxyEnv, directEnv: dockerd.env,
      calicoctlEnv: { ...etcd.env, CALICO_NODENAME: name, DOCKER_HOST: `unix://${dockerd.socket}` },
      docker: (args, o = {}) => run('docker', args, o.direct ? dockerd.env : proxyEnv, o.input),
      ping: async (ip) => (await run('nsenter', [`--net=${netns.path}`, 'busybox', ip.includes(':') ? 'ping6' : 'ping', '-c', '1', '-W', '2', ip], process.env)).code === 0,
      inHost: (cmd, args) => run('nsenter', [`--net=${netns.path}`, cmd, ...args], process.env),
      async restartNode(signal: NodeJS.Signals = 'SIGTERM') {
        if (signal === 'SIGKILL') { try { process.kill(node.pid, 'SIGKILL'); } catch { /* gone */ } await node.exited; } else await node.stop();
        node = startNode();
        host.node = node;
        await waitReady();
      },
      stop: undo,
    };
    return host;
  } catch (err) {
    await undo();
    throw err;
  }
}
