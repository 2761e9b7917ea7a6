/**
 * `npm run demo` (until the two-host lab lands): starts the out-of-the-box local etcd (or uses
 * ETCD_ENDPOINTS), then runs a node-less calicoctl session that shows the data model end to end,
 * each step printed as the command a user would type. Re-runnable: it first removes what an
 * earlier run made.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureLocalEtcd } from '../src/datastore/local-etcd.js';

const CALICOCTL = join(__dirname, '..', '..', 'bin', 'calicoctl');
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function run(args: string[], input?: string, mayFail = false): void {
  const shown = args.map((a) => (/[\s!]/.test(a) ? `'${a}'` : a)).join(' ');
  process.stdout.write(`\n${bold(`$ calicoctl ${shown}`)}${input ? ' <<EOF\n' + input.trimEnd() + '\nEOF' : ''}\n`);
  const r = spawnSync(CALICOCTL, args, { input: input ?? '', stdio: ['pipe', 'inherit', 'inherit'], env: process.env });
  if (r.status !== 0 && !mayFail) {
    process.stderr.write(`demo: step failed (exit ${r.status}): calicoctl ${args.join(' ')}\n`);
    process.exit(1);
  }
}

function quiet(args: string[]): void {
  spawnSync(CALICOCTL, args, { stdio: 'ignore', env: process.env });
}

async function main(): Promise<void> {
  if (!process.env.ETCD_ENDPOINTS && !process.env.ETCD_AUTHORITY) {
    const etcd = await ensureLocalEtcd({}, (m) => console.log(`demo: ${m}`));
    process.env.ETCD_ENDPOINTS = etcd.endpoint;
    console.log(`demo: etcd ${etcd.started ? 'started' : 'already running'} at ${etcd.endpoint}${etcd.pid ? ` (pid ${etcd.pid})` : ''}`);
  }
  process.env.CALICO_NODENAME ??= 'calico-01';
  // Start clean: remove what an earlier run made.
  for (const p of ['PROF_A_C_E', 'PROF_B', 'PROF_D']) quiet(['profile', 'remove', p, '--no-check']);
  quiet(['delete', 'wep', '1f2e3d4c5b6a79880123456789abcdef', '--skip-not-exists']);
  quiet(['pool', 'remove', '192.168.0.0/16']);
  quiet(['bgp', 'peer', 'remove', '172.17.8.200']);

  console.log(bold('\n# 1. Profiles, Powerstrip style: the three profiles of the classic demo'));
  for (const p of ['PROF_A_C_E', 'PROF_B', 'PROF_D']) run(['profile', 'add', p]);
  run(['profile', 'show']);
  run(['profile', 'PROF_A_C_E', 'rule', 'add', 'inbound', 'allow', 'tcp', 'to', 'ports', '80,443']);
  run(['profile', 'PROF_A_C_E', 'rule', 'show']);

  console.log(bold('\n# 2. The same profile through the resource commands (one model, the same etcd keys)'));
  run(['get', 'profile', 'PROF_A_C_E', '-o', 'yaml']);

  console.log(bold('\n# 3. An IP pool and a BGP peer, both ways'));
  run(['pool', 'add', '192.168.0.0/16', '--nat-outgoing']);
  run(['apply', '-f', '-'], 'apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor-switch\nspec:\n  peerIP: 172.17.8.200\n  asNumber: 64567\n');
  run(['pool', 'show']);
  run(['bgp', 'peer', 'show']);
  run(['get', 'bgpPeer', '-o', 'wide']);

  console.log(bold('\n# 4. A workload endpoint (what the Docker proxy writes for a container), then profiles on it'));
  run(['create', '-f', '-'], 'apiVersion: v1\nkind: workloadEndpoint\nmetadata:\n  name: 1f2e3d4c5b6a79880123456789abcdef\n  workload: workload-A\n  orchestrator: docker\n  node: calico-01\nspec:\n  interfaceName: cali1f2e3d4c5b6\n  ipNetworks: [192.168.1.1/32]\n  mac: ee:ee:ee:00:00:01\n');
  run(['endpoint', '1f2e3d4c5b6a79880123456789abcdef', 'profile', 'append', 'PROF_A_C_E']);
  run(['endpoint', 'show', '--detailed']);
  run(['get', 'workloadEndpoint', '-o', 'wide']);

  console.log(bold('\n# 5. Bad input is refused with a clear message, and nothing is written'));
  run(['create', '-f', '-'], 'apiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 10.0.0.0/33\n', true);
  run(['profile', 'add', 'no spaces allowed'], undefined, true);

  console.log(bold('\n# Done. Try your own: ETCD_ENDPOINTS=' + process.env.ETCD_ENDPOINTS + ' ./bin/calicoctl --help'));
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
