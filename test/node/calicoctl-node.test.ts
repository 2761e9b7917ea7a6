/**
 * `calicoctl node` start / restart / status / stop / dryrun / diags / checksystem, for real: the
 * node daemon runs and programs a namespace standing in for the host (CALICO_NETNS).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { calicoctl, CALICOCTL } from '../harness/calicoctl.js';
import { freePort } from '../harness/ports.js';
import { createNetns, deleteNetns, ipBatch } from '../../src/dataplane/index.js';
import { keys } from '../../src/datastore/keys.js';
import { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let dir: string;
let env: NodeJS.ProcessEnv;
let port: number;
const ns = `ctn-${randomBytes(3).toString('hex')}`;
const NODE = 'nodetest';

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

before(async () => {
  etcd = await startEtcd();
  kv = etcd.kv();
  dir = mkdtempSync(join(tmpdir(), 'calico-nodetest-'));
  const netns = await createNetns(ns);
  await ipBatch(['addr add 10.98.0.1/32 dev lo', 'link add up0 type veth peer name up1', 'addr add 10.98.0.2/24 dev up0', 'link set up0 up', 'link set up1 up', 'route add default dev up0'], { netns });
  port = await freePort();
  env = { ...etcd.env, CALICO_NODENAME: NODE, CALICO_RUN_DIR: join(dir, 'run'), CALICO_NETNS: ns };
});

after(async () => {
  // Whatever a failed test left running is stopped by pid.
  const pidFile = join(dir, 'run', 'calico-node.pid');
  if (existsSync(pidFile)) {
    const pid = Number(spawnSync('cat', [pidFile], { encoding: 'utf8' }).stdout);
    if (pid > 0 && pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  await deleteNetns(ns).catch(() => undefined);
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const startArgs = () => ['node', '--ip=10.98.0.1', `--log-dir=${join(dir, 'log')}`, '--docker-socket=/nonexistent/docker.sock',
  `--proxy-listen=127.0.0.1:${port}`, '--backend=none', '--metrics-port=0'];

test('node start: records, default pool, the daemon running and ready, the DOCKER_HOST hint', async () => {
  const r = await calicoctl(env, startArgs());
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Created default IP pool 192\.168\.0\.0\/16/);
  assert.match(r.stdout, new RegExp(`Docker Remote API is on port ${port}\\.  Run \\n\\nexport DOCKER_HOST=localhost:${port}\\n\\nbefore using \`docker run\` for Calico networking\\.`));
  const pid = Number(/Calico node is running with id: (\d+)/.exec(r.stdout)![1]);
  assert.ok(pidAlive(pid));
  assert.match(r.stderr, /WARNING: no Docker daemon socket at \/nonexistent\/docker\.sock/);
  assert.equal((await kv.get(keys.birdIp(NODE)))!.value, '10.98.0.1');
  assert.equal((await kv.get(keys.bgpHostIpV4(NODE)))!.value, '10.98.0.1');
  assert.equal((await kv.get(keys.ready))!.value, 'true');
  assert.ok(await kv.get(keys.pool('192.168.0.0/16', 4)));
  const st = await calicoctl(env, ['status']);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, new RegExp(`calico-node is running\\. Status: Up \\d+ seconds \\(pid ${pid}\\)`));
  assert.match(st.stdout, /Node nodetest, IPv4 10\.98\.0\.1/);
  assert.match(st.stdout, /Agent: in sync at revision \d+, 0 local endpoint\(s\)/);
  assert.match(st.stdout, /BGP: disabled/);
  // The agent programmed the host namespace, not ours.
  assert.match(spawnSync('nsenter', [`--net=/run/netns/${ns}`, 'nft', 'list', 'tables'], { encoding: 'utf8' }).stdout, /table inet calico/);

  // A second `calicoctl node` restarts cleanly.
  const again = await calicoctl(env, startArgs());
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`Restarting the running Calico node \\(pid ${pid}\\)`));
  const pid2 = Number(/Calico node is running with id: (\d+)/.exec(again.stdout)![1]);
  assert.notEqual(pid2, pid);
  assert.ok(!pidAlive(pid), 'the old daemon is gone');
});

test('node: bad input, dry run, another node with the same address, non-root', async () => {
  const bad = await calicoctl(env, ['node', '--ip=300.1.1.1']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Invalid IPv4 address specified with --ip argument\./);
  const badAs = await calicoctl(env, ['node', '--ip=10.98.0.1', '--as=99999999999']);
  assert.match(badAs.stderr, /Invalid AS Number specified\./);
  // Without --ip: the address of the host's interface that holds the default route.
  const auto = await calicoctl({ ...env, CALICO_NODENAME: 'autonode' }, ['node', '--dryrun', '--backend=none']);
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stdout, /^No IP provided\. Using detected IP: 10\.98\.0\.2\n/);
  const dry = await calicoctl({ ...env, CALICO_NODENAME: 'drynode' }, ['node', '--ip=10.98.0.7', '--dryrun', '--backend=none']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /Would write node drynode: bird_ip=10\.98\.0\.7/);
  assert.match(dry.stdout, /Would run: .*daemon\.js --name drynode --ip 10\.98\.0\.7/);
  assert.equal(await kv.get(keys.birdIp('drynode')), undefined, 'dry run wrote nothing');
  const clash = await calicoctl({ ...env, CALICO_NODENAME: 'other', CALICO_RUN_DIR: join(dir, 'run2') }, [...startArgs()]);
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /IP address 10\.98\.0\.1 is already in use by node nodetest/);
  const nobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', CALICOCTL, 'node', '--ip=10.98.0.1'], { env, encoding: 'utf8' });
  assert.equal(nobody.status, 2);
  assert.match(nobody.stderr, /This command must be run as root\./);
});

test('checksystem and diags', async () => {
  const cs = await calicoctl(env, ['checksystem', '--docker-socket=/nonexistent/docker.sock']);
  assert.equal(cs.code, 0, cs.stderr);
  assert.match(cs.stderr, /WARNING: no Docker daemon socket/);
  // Docker's FORWARD policy DROP would drop all forwarded workload traffic: reported, and fixed.
  const ipt = (...a: string[]) => spawnSync('nsenter', [`--net=/run/netns/${ns}`, 'iptables', ...a], { encoding: 'utf8' });
  assert.equal(ipt('-P', 'FORWARD', 'DROP').status, 0);
  const dropped = await calicoctl(env, ['checksystem', '--docker-socket=/nonexistent/docker.sock']);
  assert.equal(dropped.code, 1);
  assert.match(dropped.stderr, /ERROR: the iptables FORWARD policy is DROP/);
  const fixed = await calicoctl(env, ['checksystem', '--fix', '--docker-socket=/nonexistent/docker.sock']);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(ipt('-S', 'FORWARD').stdout, /-A FORWARD -i cali\+ -j ACCEPT/);
  assert.match(ipt('-S', 'FORWARD').stdout, /-A FORWARD -o cali\+ -j ACCEPT/);
  ipt('-F', 'FORWARD');
  ipt('-P', 'FORWARD', 'ACCEPT');
  const d = await calicoctl(env, ['diags', `--log-dir=${join(dir, 'log')}`]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^Collecting diags\nUsing temp dir: /);
  const tarball = /Diags saved to (\S+\.tar\.gz)/.exec(d.stdout)![1]!;
  const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout;
  for (const f of ['diags/etcd_calico', 'diags/nftables', 'diags/routes', 'diags/links', 'diags/node-status.json', 'diags/logs/calico-node.log']) {
    assert.ok(list.includes(f), `${f} in the bundle`);
  }
  const etcdDump = spawnSync('tar', ['-xzOf', tarball, 'diags/etcd_calico'], { encoding: 'utf8' }).stdout;
  assert.match(etcdDump, /\/calico\/v1\/host\/nodetest\/bird_ip = 10\.98\.0\.1/);
  rmSync(join(tarball, '..'), { recursive: true, force: true });
});

test('node stop refuses while endpoints exist, --force removes everything', async () => {
  const pid = Number(spawnSync('cat', [join(dir, 'run', 'calico-node.pid')], { encoding: 'utf8' }).stdout);
  await kv.put(keys.workloadEndpoint(NODE, 'docker', 'c0', 'e0'), JSON.stringify({ state: 'active', name: 'calie0', mac: null, profile_ids: [], ipv4_nets: ['192.168.0.9/32'], ipv6_nets: [], ipv4_gateway: null, ipv6_gateway: null }));
  const refused = await calicoctl(env, ['node', 'stop']);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, "Current host has active endpoints so can't be stopped. Force with --force\n");
  assert.ok(pidAlive(pid));
  const forced = await calicoctl(env, ['node', 'stop', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, 'Node stopped and all configuration removed\n');
  assert.ok(!pidAlive(pid));
  assert.deepEqual((await kv.list(keys.host(NODE))).entries, []);
  assert.deepEqual((await kv.list(keys.bgpHost(NODE))).entries, []);
  assert.doesNotMatch(spawnSync('nsenter', [`--net=/run/netns/${ns}`, 'nft', 'list', 'tables'], { encoding: 'utf8' }).stdout, /table inet calico/);
  const st = await calicoctl(env, ['status']);
  assert.equal(st.code, 1);
  assert.match(st.stderr, /calico-node is not running/);
});
