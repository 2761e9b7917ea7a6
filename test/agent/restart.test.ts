/**
 * The agent as a daemon (child process): killed with SIGKILL and started again, it produces the
 * same ruleset and routes, and an open TCP connection keeps flowing while it is down and while
 * the restarted agent atomically replaces the table.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { startProcess, OwnedProcess } from '../harness/process.js';
import { waitFor } from '../harness/ports.js';
import { Lab, Workload, ping, eventually, putEndpoint, putDefaultProfile, normaliseRuleset, waitListening } from './lab.js';
import type { KV } from '../../src/datastore/kv.js';
import { runInNetns, nftListTable, CALICO_TABLE } from '../../src/dataplane/index.js';

const NODE = 'host-r';
const lab = new Lab();
let etcd: TestEtcd;
let kv: KV;
let dir: string;
let A: Workload;
let B: Workload;
let C: Workload;
const agents: OwnedProcess[] = [];

function startAgent(n: number): OwnedProcess {
  const p = startProcess(process.execPath, [
    'dist/node/agent/main.js', '--node', NODE, '--netns', lab.host.name!, '--metrics-port', '0', '--check-interval-ms', '0',
  ], join(dir, `agent${n}.log`), { env: { ...etcd.env, CALICO_LOG_LEVEL: 'info' } });
  agents.push(p);
  return p;
}

async function waitReady(n: number): Promise<void> {
  await waitFor(`agent ${n} ready`, async () => readFileSync(join(dir, `agent${n}.log`), 'utf8').includes('"msg":"agent ready"'), 20000);
}

async function dumps(): Promise<{ nft: string; routes: string }> {
  const nft = normaliseRuleset((await nftListTable(CALICO_TABLE, { netns: lab.host })) ?? '');
  const routes = (await runInNetns(lab.host, 'ip', ['route', 'show', 'proto', '80'])).stdout + (await runInNetns(lab.host, 'ip', ['-6', 'route', 'show', 'proto', '80'])).stdout;
  return { nft, routes: routes.split('\n').filter(Boolean).sort().join('\n') };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'calico-agent-restart-'));
  etcd = await startEtcd();
  kv = etcd.kv('daemon');
  await lab.makeHost();
  A = await lab.makeWorkload('A', '10.67.0.1', { ip6: 'fd67::1' });
  B = await lab.makeWorkload('B', '10.67.0.2');
  C = await lab.makeWorkload('C', '10.67.0.3');
  await putDefaultProfile(kv, 'PROF_A_C_E');
  await putDefaultProfile(kv, 'PROF_B');
  await putEndpoint(kv, NODE, A, ['PROF_A_C_E']);
  await putEndpoint(kv, NODE, B, ['PROF_B']);
  await putEndpoint(kv, NODE, C, ['PROF_A_C_E']);
});

after(async () => {
  for (const a of agents) await a.stop(2000);
  await lab.cleanup();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('SIGKILL and restart: same ruleset and routes; an open connection keeps flowing; still fail-closed while down', async () => {
  const first = startAgent(1);
  await waitReady(1);
  assert.ok(await eventually(() => ping(A.ns, C.ip)), 'A -> C under the first agent');
  assert.equal(await ping(A.ns, B.ip), false);
  const before1 = await dumps();
  assert.match(before1.nft, new RegExp(`"${C.iface}" : goto tw-PROF_A_C_E`));
  assert.match(before1.routes, /10\.67\.0\.3 dev cali\S+ scope link/);

  // A TCP session A -> C.
  const server = lab.spawnIn(C.ns, 'busybox', ['nc', '-l', '-p', '7000']);
  let received = '';
  server.stdout!.on('data', (d: Buffer) => { received += d.toString(); });
  await waitListening(C.ns, 7000);
  const client = lab.spawnIn(A.ns, 'busybox', ['nc', C.ip, '7000']);
  let clientExited = false;
  client.once('exit', () => { clientExited = true; });
  client.stdin!.write('before\n');
  await waitFor('first line', async () => received.includes('before'), 5000);

  // Down.
  process.kill(first.pid, 'SIGKILL');
  await first.exited;
  client.stdin!.write('during\n');
  await waitFor('line sent while the agent is down', async () => received.includes('during'), 5000);
  assert.equal(await ping(B.ns, A.ip), false, 'policy still enforced with no agent running');

  // Up again.
  startAgent(2);
  await waitReady(2);
  const after2 = await dumps();
  assert.equal(after2.nft, before1.nft, 'identical ruleset (normalised)');
  assert.equal(after2.routes, before1.routes, 'identical routes');
  client.stdin!.write('after\n');
  await waitFor('line sent after the restart', async () => received.includes('after'), 5000);
  assert.equal(clientExited, false, 'the connection was never reset');
  assert.deepEqual(received.trim().split('\n'), ['before', 'during', 'after']);

  // The restarted agent is live.
  await putEndpoint(kv, NODE, B, ['PROF_B', 'PROF_A_C_E']);
  assert.ok(await eventually(() => ping(B.ns, A.ip)), 'a change after the restart is applied');
  client.stdin!.end();
});
