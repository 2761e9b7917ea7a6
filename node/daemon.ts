/**
 * The Calico node daemon, one process per host (what the calico-node container ran): the agent
 * (routes and nftables), the BGP speaker, and the Docker API proxy with the Calico interceptor,
 * the daemon event watcher and the start-up reconciler. `calicoctl node` starts it detached;
 * `calicoctl node --init-system` runs it in the foreground for systemd.
 *
 *   node dist/node/daemon.js --name calico-01 --ip 172.17.8.101 [--run-dir ...] [--proxy-listen ...]
 */
import http from 'node:http';
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { Command } from 'commander';
import { connectKV } from '../src/datastore/connect.js';
import { loadEtcdConfig } from '../src/datastore/config.js';
import { KV } from '../src/datastore/kv.js';
import { createLogger, LogLevel, Logger } from '../src/log.js';
import { CalicoError, errorMessage } from '../src/errors.js';
import { Agent } from './agent/agent.js';
import { BgpSpeaker } from './bgp/speaker.js';
import { startProxy, RunningProxy } from '../proxy/server.js';
import { createDaemonClient } from '../proxy/daemon-client.js';
import { WorkloadManager } from '../proxy/workload/manager.js';
import { CalicoInterceptor } from '../proxy/workload/interceptor.js';
import { DockerEventWatcher } from '../proxy/workload/events.js';
import { NodeStatus, serveStatus } from './status.js';
import { nodePaths } from './paths.js';
import { Netns, netnsByName, netnsByPath } from '../src/dataplane/index.js';

export interface NodeDaemonOptions {
  name: string;
  ip?: string;
  ip6?: string;
  runDir: string;
  dockerSocket: string;
  proxyListen: string;
  backend: 'builtin' | 'none';
  proxy: boolean;
  metricsPort: number;
  bgpPort: number;
  configFile?: string;
  logLevel: LogLevel;
  /** Program this network namespace instead of our own (tests: a namespace standing in for a host). */
  netns?: Netns;
}

export class NodeDaemon {
  private kv?: KV;
  private agent?: Agent;
  private bgp?: BgpSpeaker;
  private proxy?: RunningProxy;
  private workloads?: WorkloadManager;
  private workloadKv?: KV;
  private events?: DockerEventWatcher;
  private statusServer?: http.Server;
  private readonly startedAt = new Date();
  private readonly errors: string[] = [];
  private readonly components: NodeStatus['components'];
  private ready = false;
  private readonly log: Logger;

  constructor(private readonly o: NodeDaemonOptions, logger: Logger) {
    this.log = logger.child({ node: o.name });
    this.components = { datastore: false, agent: false, bgp: o.backend === 'none' ? 'disabled' : false, proxy: o.proxy ? false : 'disabled' };
  }

  status(): NodeStatus {
    return {
      pid: process.pid, node: this.o.name, startedAt: this.startedAt.toISOString(), ready: this.ready,
      components: { ...this.components }, ipv4: this.o.ip, ipv6: this.o.ip6,
      proxy: this.proxy ? { address: this.proxy.address, dockerHost: this.proxy.dockerHost } : undefined,
      dockerSocket: this.o.proxy ? this.o.dockerSocket : undefined,
      agent: this.agent?.status, bgp: this.bgp?.peerStatus(), errors: [...this.errors],
    };
  }

  async start(): Promise<void> {
    const paths = nodePaths(this.o.runDir);
    this.statusServer = await serveStatus(paths.statusSocket, () => this.status());
    writeFileSync(paths.pidFile, String(process.pid));

    this.kv = connectKV(loadEtcdConfig({ configFile: this.o.configFile }), 'daemon');
    await this.kv.get('/calico/v1/Ready');
    this.components.datastore = true;

    this.agent = new Agent({ kv: this.kv, nodeName: this.o.name, logger: this.log, metricsPort: this.o.metricsPort, netns: this.o.netns });
    await this.agent.start();

    if (this.o.backend === 'builtin') {
      this.bgp = new BgpSpeaker({ kv: this.kv, nodeName: this.o.name, logger: this.log, port: this.o.bgpPort });
      await this.bgp.start();
      this.components.bgp = true;
    }

    if (this.o.proxy) await this.startProxy();

    await this.agent.ready;
    this.components.agent = true;
    this.ready = true;
    this.log.info('calico node ready', { proxy: this.proxy?.address, bgp: this.o.backend });
  }

  private async startProxy(): Promise<void> {
    const agent = this.agent!;
    const daemon = createDaemonClient(this.o.dockerSocket, new http.Agent({ keepAlive: true }));
    // The wiring's own connection, on the lean client: a container start makes a handful of
    // etcd calls in a row, and gRPC-js's per-call CPU showed in `docker run` times. No watches needed.
    this.workloadKv = connectKV(loadEtcdConfig({ configFile: this.o.configFile }), 'cli');
    const mgr = this.workloads = new WorkloadManager({
      kv: this.workloadKv, nodeName: this.o.name, daemon, logger: this.log, hostNetns: this.o.netns,
      // `docker run -d` returns only once the agent has programmed the new endpoint's ACLs.
      onEndpointWritten: (rev) => agent.waitForRevision(rev, 10000).catch((err: unknown) => {
        this.log.warn('agent slow to program a new endpoint', { err: err as Error });
      }),
    });
    mgr.prepareWiring();
    this.proxy = await startProxy({
      proxyListen: this.o.proxyListen, dockerSocket: this.o.dockerSocket, interceptors: [new CalicoInterceptor(mgr)], logger: this.log,
    });
    this.components.proxy = true;
    if (existsSync(this.o.dockerSocket)) {
      mgr.reconcile()
        .then((r) => this.log.info('reconciled with the docker daemon', { removed: r.removed.length, rewired: r.rewired.length }))
        .catch((err: unknown) => { this.errors.push(`reconcile: ${errorMessage(err)}`); this.log.error('reconcile failed', { err: err as Error }); });
    } else {
      this.log.warn('docker socket not found; the proxy will answer once dockerd runs', { socket: this.o.dockerSocket });
    }
    this.events = new DockerEventWatcher(mgr, this.log);
    this.events.start();
  }

  /** A stop for a restart keeps BGP routes at the peers (graceful restart) and the dataplane in place. */
  async stop(): Promise<void> {
    this.log.info('stopping');
    await this.events?.stop().catch(() => undefined);
    await this.proxy?.close().catch(() => undefined);
    await this.workloads?.close().catch(() => undefined);
    await this.bgp?.stop({ graceful: true }).catch(() => undefined);
    await this.agent?.stop().catch(() => undefined);
    this.kv?.close();
    this.workloadKv?.close();
    await new Promise<void>((r) => (this.statusServer ? this.statusServer.close(() => r()) : r()));
    const paths = nodePaths(this.o.runDir);
    rmSync(paths.statusSocket, { force: true });
    rmSync(paths.pidFile, { force: true });
  }
}

export function daemonProgram(): Command {
  return new Command('calico-node')
    .description('The Calico node: agent, BGP speaker and Docker API proxy')
    .requiredOption('--name <name>', 'this node\'s name in the datastore')
    .option('--ip <ip>', 'this node\'s IPv4 address')
    .option('--ip6 <ip6>', 'this node\'s IPv6 address')
    .option('--run-dir <dir>', 'pid file and status socket', '/var/run/calico')
    .option('--docker-socket <path>', 'the Docker daemon socket', '/var/run/docker.sock')
    .option('--proxy-listen <addr>', 'where the Docker API proxy listens', '127.0.0.1:2377')
    .option('--no-proxy', 'do not run the Docker API proxy')
    .option('--backend <backend>', 'builtin (BGP speaker) or none', 'builtin')
    .option('--metrics-port <port>', 'Prometheus metrics on 127.0.0.1 (0 = off)', '9091')
    .option('--bgp-port <port>', 'BGP port', '179')
    .option('-c, --config <file>', 'datastore config file')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--netns <name|path>', 'program this network namespace instead of our own (tests)');
}

export async function runDaemon(argv: string[]): Promise<NodeDaemon> {
  const o = daemonProgram().parse(argv, { from: 'user' }).opts<{
    name: string; ip?: string; ip6?: string; runDir: string; dockerSocket: string; proxyListen: string; proxy: boolean;
    backend: string; metricsPort: string; bgpPort: string; config?: string; logLevel: string; netns?: string;
  }>();
  if (o.backend !== 'builtin' && o.backend !== 'none') throw new CalicoError(`--backend must be builtin or none, not '${o.backend}'`, { exitCode: 2 });
  const logger = createLogger({ level: o.logLevel as LogLevel, base: { component: 'calico-node' } });
  const daemon = new NodeDaemon({
    name: o.name, ip: o.ip, ip6: o.ip6, runDir: o.runDir, dockerSocket: o.dockerSocket, proxyListen: o.proxyListen, proxy: o.proxy,
    backend: o.backend, metricsPort: Number(o.metricsPort), bgpPort: Number(o.bgpPort), configFile: o.config, logLevel: o.logLevel as LogLevel,
    netns: o.netns ? (o.netns.includes('/') ? netnsByPath(o.netns) : netnsByName(o.netns)) : undefined,
  }, logger);
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('signal', { signal: sig });
    daemon.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await daemon.start();
  } catch (err) {
    await daemon.stop().catch(() => undefined);
    throw err;
  }
  return daemon;
}

if (require.main === module) {
  runDaemon(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'calico node failed to start', error: errorMessage(err), hint: err instanceof CalicoError ? err.hint : undefined }) + '\n');
    process.exit(err instanceof CalicoError ? err.exitCode : 1);
  });
}
