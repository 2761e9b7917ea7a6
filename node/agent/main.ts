#!/usr/bin/env node
/**
 * The node agent daemon: `node dist/node/agent/main.js [options]`.
 * etcd comes from ETCD_ENDPOINTS / ETCD_AUTHORITY / the calicoctl config file; the node name
 * from --node, CALICO_NODENAME or the host name.
 */
import { Command } from 'commander';
import { Agent } from './agent.js';
import { connectKV } from '../../src/datastore/connect.js';
import { loadEtcdConfig } from '../../src/datastore/config.js';
import { createLogger, LogLevel } from '../../src/log.js';
import { nodeName } from '../../src/nodename.js';
import { netnsByName, netnsByPath } from '../../src/dataplane/index.js';
import { CalicoError, errorMessage } from '../../src/errors.js';

const program = new Command()
  .name('calico-agent')
  .description('Calico node agent: programs routes and nftables from the datastore')
  .option('--node <name>', 'this node\'s name in the datastore (default: CALICO_NODENAME or the host name)')
  .option('--netns <name|path>', 'program this network namespace instead of our own')
  .option('--metrics-port <port>', 'Prometheus port on 127.0.0.1 (0 = off)', '9091')
  .option('--check-interval-ms <ms>', 'drift check period (0 = never)', '10000')
  .option('-c, --config <file>', 'etcd client config file (calicoctl format)')
  .option('--log-level <level>', 'debug, info, warn or error', process.env.CALICO_LOG_LEVEL ?? 'info');

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{ node?: string; netns?: string; metricsPort: string; checkIntervalMs: string; config?: string; logLevel: string }>();
  const logger = createLogger({ level: o.logLevel as LogLevel });
  const num = (v: string, flag: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new CalicoError(`${flag} must be a non-negative integer, not '${v}'`, { exitCode: 2 });
    return n;
  };
  const kv = connectKV(loadEtcdConfig({ configFile: o.config }), 'daemon');
  const netns = o.netns ? (o.netns.includes('/') ? netnsByPath(o.netns) : netnsByName(o.netns)) : undefined;
  const agent = new Agent({
    kv,
    nodeName: o.node ?? nodeName(),
    logger,
    netns,
    metricsPort: num(o.metricsPort, '--metrics-port'),
    checkIntervalMs: num(o.checkIntervalMs, '--check-interval-ms'),
  });
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal: sig });
    agent.stop().finally(() => { kv.close(); process.exit(0); });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await agent.start();
  logger.info('agent ready', { node: o.node ?? nodeName(), metricsPort: agent.metricsBoundPort });
}

main().catch((err) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'agent failed', error: errorMessage(err), hint: err instanceof CalicoError ? err.hint : undefined }) + '\n');
  process.exit(err instanceof CalicoError ? err.exitCode : 1);
});
