/**
 * The two-host lab (`sudo npm run lab -- <command>`): calico-01 and calico-02 as network
 * namespaces on this machine, each with its own dockerd and Calico node, etcd on calico-01.
 *
 *   up                       start (or complete) the lab
 *   exec <host> -- <cmd...>  run a command on a host, with that host's environment
 *   demo [--json FILE]       the classic demo and its ping matrix
 *   matrix [--json FILE]     just the ping matrix of the demo's workloads
 *   status                   what runs where
 *   down                     remove everything the lab made
 *
 * LAB_ID=<id> selects an independent lab (tests use one, never touching yours).
 */
import { labConfig, hostByName } from './config.js';
import { progress } from './progress.js';
import { CalicoError, errorMessage } from '../../src/errors.js';

const USAGE = `usage: npm run lab -- <command>
  up                        start the two hosts (idempotent)
  exec <host> -- <cmd...>   run a command on calico-01 or calico-02 (e.g. exec calico-01 -- docker ps)
  demo [--json FILE]        the classic demo: workloads A-F, profiles, the ping matrix, BGP status
  matrix [--json FILE]      only the ping matrix of the demo's workloads
  status                    per host: namespace, dockerd, node, etcd, workloads
  down                      remove every namespace, process, mount and file the lab made`;

function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new CalicoError('the lab needs root (namespaces, dockerd, routes)', { exitCode: 2, hint: 'sudo npm run lab -- ' + process.argv.slice(2).join(' ') });
  }
}

function jsonOption(args: string[]): string | undefined {
  const i = args.findIndex((a) => a === '--json' || a.startsWith('--json='));
  if (i < 0) return undefined;
  const a = args[i]!;
  const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1];
  if (!v) throw new CalicoError('--json needs a file name', { exitCode: 2 });
  return v;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') { console.log(USAGE); return cmd ? 0 : 2; }
  requireRoot();
  const cfg = labConfig();
  switch (cmd) {
    case 'up': {
      const { up } = await import('./up.js');
      await up(cfg, progress);
      const { hostList } = await import('./config.js');
      progress(`the lab is up${cfg.id ? ` (LAB_ID=${cfg.id})` : ''}: ${hostList(cfg).map((h) => `${h.name} ${h.ip}`).join(', ')}, etcd ${cfg.etcdUrl}`);
      progress('try: sudo npm run lab -- exec calico-01 -- docker run -e CALICO_IP=192.168.1.1 --name workload-A -tid busybox');
      return 0;
    }
    case 'down': {
      const { down } = await import('./down.js');
      await down(cfg, progress);
      progress('the lab is down');
      return 0;
    }
    case 'status': {
      const { printStatus } = await import('./status.js');
      return (await printStatus(cfg)) ? 0 : 1;
    }
    case 'exec': {
      const [host, sep, ...command] = rest;
      if (!host) throw new CalicoError('exec needs a host', { exitCode: 2, hint: 'npm run lab -- exec calico-01 -- docker ps' });
      const argvOnHost = sep === '--' ? command : [sep, ...command].filter((x): x is string => x !== undefined);
      const { execInteractive } = await import('./hosts.js');
      return execInteractive(cfg, hostByName(cfg, host), argvOnHost);
    }
    case 'demo': {
      const { demo } = await import('./demo.js');
      return (await demo(cfg, { jsonFile: jsonOption(rest) })) ? 0 : 1;
    }
    case 'matrix': {
      const { runMatrixOnly } = await import('./demo.js');
      return (await runMatrixOnly(cfg, { jsonFile: jsonOption(rest) })) ? 0 : 1;
    }
    default:
      throw new CalicoError(`unknown lab command '${cmd}'`, { exitCode: 2, hint: USAGE });
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`lab: ${errorMessage(err)}\n`);
    if (err instanceof CalicoError && err.hint) process.stderr.write(`${err.hint}\n`);
    if (process.env.LAB_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof CalicoError ? err.exitCode : 1;
  });
}
