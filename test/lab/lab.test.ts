/**
 * The two-host lab, end to end, as a user drives it (`node dist/scripts/lab/main.js <command>`):
 * `up` (twice), the classic demo and its ping matrix, faults across the hosts (the node on
 * calico-02 killed and restarted; a container removed on calico-01), and `down` leaving nothing.
 *
 * A private LAB_ID keeps this lab apart from a user's: its own namespaces, dirs and etcd. The host
 * addresses are the lab's usual 172.17.8.101/102; they exist only inside the test's namespaces,
 * so all traffic stays there. `down` runs in after() even when a test failed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labConfig, LabConfig } from '../../scripts/lab/config.js';
import { nodeStartArgs, nodePid, nodeStatus } from '../../scripts/lab/node.js';
import { labPids, mountsUnder, shimSocketsOf } from '../../scripts/lab/down.js';
import { etcdctl } from '../../scripts/lab/etcd.js';
import { pidAlive, waitUntil } from '../../scripts/lab/proc.js';
import type { MatrixResult } from '../../scripts/lab/matrix.js';
import { runCollect, RunResult } from '../harness/process.js';

const MAIN = join(__dirname, '..', '..', 'scripts', 'lab', 'main.js');
const id = `t${randomBytes(3).toString('hex')}`;
const cfg: LabConfig = labConfig(id);
const tmp = mkdtempSync(join(tmpdir(), 'lab-test-'));

type Out = RunResult;

function lab(args: string[]): Promise<Out> {
  return runCollect(process.execPath, [MAIN, ...args], { env: { ...process.env, LAB_ID: id } });
}

const onHost = (host: string, argv: string[]) => lab(['exec', host, '--', ...argv]);

/** The spec's matrix, written out independently of the lab's code: PROF_A_C_E = A, C, E, F. */
const SHARED = new Set(['workload-A', 'workload-C', 'workload-E', 'workload-F']);
const expected = (from: string, to: string) => SHARED.has(from) && SHARED.has(to);
const NAMES = ['A', 'B', 'C', 'D', 'E', 'F'].map((x) => `workload-${x}`);

function assertClassicMatrix(m: MatrixResult): void {
  assert.deepEqual(m.workloads.map((w) => w.name), NAMES);
  assert.equal(m.cells.length, 30);
  for (const from of NAMES) {
    for (const to of NAMES.filter((t) => t !== from)) {
      const c = m.cells.find((x) => x.from === from && x.to === to);
      assert.ok(c, `a ping ${from} -> ${to}`);
      assert.equal(c.seen, expected(from, to), `${from} -> ${to}: expected ${expected(from, to) ? 'a reply' : 'no reply'}`);
    }
  }
  assert.equal(m.ok, true);
}

async function routesOf(ns: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('ip', ['-n', ns, 'route', 'show', 'proto', 'bird']);
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('close', () => resolve(out));
  });
}

before(async () => {
  const r = await lab(['up']);
  assert.equal(r.code, 0, `lab up failed:\n${r.stdout}\n${r.stderr}`);
});

after(async () => {
  await lab(['down']);
  rmSync(tmp, { recursive: true, force: true });
});

test('up is idempotent: a second up finds everything running and says so', async () => {
  const r = await lab(['up']);
  assert.equal(r.code, 0, r.stderr);
  for (const what of [
    /calico-01: network namespace calico-01-\w+ already there/, /calico-02: network namespace calico-02-\w+ already there/,
    /link eth1 172\.17\.8\.101 <-> 172\.17\.8\.102 already up/,
    /calico-01: dockerd already running/, /calico-02: dockerd already running/,
    /calico-01: image busybox:latest already there/, /calico-02: image busybox:latest already there/,
    /etcd already running at http:\/\/172\.17\.8\.101:2379/,
    /calico-01: calico node already running/, /calico-02: calico node already running/,
  ]) assert.match(r.stdout, what);
  assert.doesNotMatch(r.stdout, /started|created|imported/);
  const st = await lab(['status']);
  assert.equal(st.code, 0, st.stdout);
  assert.match(st.stdout, /calico-02 \(172\.17\.8\.102\)[\s\S]*node\s+up/);
});

test('exec runs on the host with its environment and returns its exit code', async () => {
  const r = await onHost('calico-02', ['sh', '-c', 'echo "$CALICO_NODENAME $ETCD_ENDPOINTS $DOCKER_HOST"; ip -o -4 addr show dev eth1; exit 7']);
  assert.equal(r.code, 7);
  assert.match(r.stdout, /^calico-02 http:\/\/172\.17\.8\.101:2379 tcp:\/\/localhost:2377\n/);
  assert.match(r.stdout, /inet 172\.17\.8\.102\/24/);
  const ps = await onHost('calico-01', ['docker', 'ps']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /^CONTAINER ID/);
  const bad = await lab(['exec', 'calico-03', '--', 'true']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no lab host named 'calico-03'/);
});

test('demo: the classic sequence and the ping matrix exactly as expected; a second demo starts clean', async () => {
  const json = join(tmp, 'demo.json');
  const r = await lab(['demo', '--json', json]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  // The steps as a user types them, on the right host.
  assert.match(r.stdout, /calico-01\$ docker run -e CALICO_IP=192\.168\.1\.1 --name workload-A -tid busybox/);
  assert.match(r.stdout, /calico-02\$ docker run -e CALICO_IP=192\.168\.1\.5 --name workload-E -tid busybox/);
  assert.match(r.stdout, /calico-01\$ calicoctl profile add PROF_A_C_E\nCreated profile PROF_A_C_E/);
  assert.match(r.stdout, /calico-02\$ calicoctl container workload-D endpoint-id show\n([0-9a-f]{32})\n\n[^\n]*calico-02\$ calicoctl endpoint \1 profile append PROF_D/);
  assert.match(r.stdout, /calico-01\$ docker run -e CALICO_IP=auto -e CALICO_PROFILE=PROF_A_C_E --name workload-F -tid busybox/);
  assert.match(r.stdout, /calico-02\$ calicoctl node status[\s\S]*172\.17\.8\.101 \| node-to-node mesh \|\s+up\s+\|[^\n]*Established/);
  assert.match(r.stdout, /30 pings: 30 as expected \(12 answered, 18 blocked\), 0 mismatch/);
  assert.match(r.stdout, /RESULT: PASS/);
  const m = JSON.parse(readFileSync(json, 'utf8')) as MatrixResult & { meshEstablished: boolean };
  assertClassicMatrix(m);
  assert.equal(m.meshEstablished, true);
  const f = m.workloads.find((w) => w.name === 'workload-F')!;
  assert.match(f.ip, /^192\.168\.\d+\.\d+$/);
  assert.ok(!['192.168.1.1', '192.168.1.2', '192.168.1.3', '192.168.1.4', '192.168.1.5'].includes(f.ip));

  const again = await lab(['demo', '--json', json]);
  assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
  assert.match(again.stdout, /removed what an earlier demo made: 6 container\(s\), 3 profile\(s\)/);
  assertClassicMatrix(JSON.parse(readFileSync(json, 'utf8')) as MatrixResult);
});

test('the node on calico-02 killed (SIGKILL) and started again: routes come back, the matrix holds', async () => {
  const h2 = cfg.hosts['calico-02'];
  const h1 = cfg.hosts['calico-01'];
  const old = nodePid(h2);
  assert.ok(old, 'the node on calico-02 runs');
  const peerOf = async () => (await nodeStatus(h1))?.bgp?.find((p) => p.peerAddress === h2.ip);
  const sessionBefore = await peerOf();
  assert.equal(sessionBefore?.state, 'up');
  process.kill(old, 'SIGKILL');
  await waitUntil('the killed node to be gone', () => !pidAlive(old), 10000, 20);

  const r = await onHost('calico-02', ['calicoctl', ...nodeStartArgs(h2)]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /Calico node is running with id: \d+/);
  const fresh = nodePid(h2);
  assert.ok(fresh && fresh !== old, 'a new node process');

  // The new speaker's session with calico-01, and its routes in calico-01's kernel (and back).
  await waitUntil('calico-01 to route 192.168.1.4 and .5 via calico-02 again, and calico-02 the block via calico-01', async () => {
    const r1 = await routesOf(cfg.hosts['calico-01'].netns);
    const r2 = await routesOf(h2.netns);
    return /^192\.168\.1\.4 via 172\.17\.8\.102 dev eth1/m.test(r1) && /^192\.168\.1\.5 via 172\.17\.8\.102 dev eth1/m.test(r1)
      && /^192\.168\.1\.0\/26 via 172\.17\.8\.101 dev eth1/m.test(r2);
  }, 60000, 200);
  // calico-01 saw the old session end and a new one come up (GR may have kept the routes meanwhile).
  await waitUntil('calico-01 to have a new Established session with calico-02', async () => {
    const p = await peerOf();
    return p?.state === 'up' && p.since !== sessionBefore!.since;
  }, 60000, 200);
  const st = await onHost('calico-02', ['calicoctl', 'node', 'status']);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, new RegExp(`pid ${fresh}\\)`));

  const json = join(tmp, 'after-restart.json');
  const m = await lab(['matrix', '--json', json]);
  assert.equal(m.code, 0, `${m.stdout}\n${m.stderr}`);
  assertClassicMatrix(JSON.parse(readFileSync(json, 'utf8')) as MatrixResult);
});

test('a container removed on calico-01: its address and its route disappear on calico-02 too', async () => {
  // calico-02 claims a block of its own; calico-01 then takes an address inside it, so calico-01
  // must announce that one address (a /32) to calico-02.
  const own = await onHost('calico-02', ['docker', 'run', '-e', 'CALICO_IP=auto', '-e', 'CALICO_PROFILE=PROF_A_C_E', '--name', 'blockholder', '-tid', 'busybox']);
  assert.equal(own.code, 0, own.stderr);
  const keys = await etcdctl(cfg, ['get', '--prefix', '--keys-only', '/calico/ipam/v2/host/calico-02/ipv4/block/']);
  const block = /block\/(\d+\.\d+\.\d+\.\d+)-(\d+)/.exec(keys.stdout);
  assert.ok(block, `calico-02 has a block: ${keys.stdout}`);
  const base = block[1]!.split('.').map(Number);
  const ip = [base[0], base[1], base[2], base[3]! + 10].join('.');

  const run = await onHost('calico-01', ['docker', 'run', '-e', `CALICO_IP=${ip}`, '-e', 'CALICO_PROFILE=PROF_A_C_E', '--name', 'borrower', '-tid', 'busybox']);
  assert.equal(run.code, 0, run.stderr);
  const ns2 = cfg.hosts['calico-02'].netns;
  const routeRe = new RegExp(`^${ip.replace(/\./g, '\\.')} via 172\\.17\\.8\\.101 dev eth1`, 'm');
  await waitUntil(`calico-02 to route ${ip} via calico-01`, async () => routeRe.test(await routesOf(ns2)), 30000, 100);
  const seen = await onHost('calico-02', ['calicoctl', 'endpoint', 'show', '--host=calico-01', '--detailed']);
  assert.match(seen.stdout, new RegExp(`${ip.replace(/\./g, '\\.')}/32`));
  // It is reachable from calico-02's workload in the same profile, which proves the route works.
  const ping = await onHost('calico-02', ['docker', 'exec', 'blockholder', 'ping', '-c', '1', '-W', '2', ip]);
  assert.equal(ping.code, 0, `blockholder -> borrower: ${ping.stdout}${ping.stderr}`);

  const rm = await onHost('calico-01', ['docker', 'rm', '-f', 'borrower']);
  assert.equal(rm.code, 0, rm.stderr);
  await waitUntil(`the route to ${ip} to leave calico-02`, async () => !routeRe.test(await routesOf(ns2)), 30000, 100);
  const ipam = await onHost('calico-02', ['calicoctl', 'ipam', 'show', `--ip=${ip}`]);
  assert.notEqual(ipam.code, 0);
  assert.match(ipam.stderr, new RegExp(`IP address ${ip.replace(/\./g, '\\.')} is not assigned`));
  const gone = await onHost('calico-02', ['calicoctl', 'endpoint', 'show', '--host=calico-01', '--detailed']);
  assert.doesNotMatch(gone.stdout, new RegExp(`${ip.replace(/\./g, '\\.')}/32`));
  assert.equal((await onHost('calico-02', ['docker', 'rm', '-f', 'blockholder'])).code, 0);
});

test('the Vagrant demo script (scripts/lab/vagrant-demo.sh) drives the same demo over `vagrant ssh`', async () => {
  // A stand-in for `vagrant ssh <vm> -c <command>` that runs the command on the lab's host of that
  // name, with `sudo` a no-op (we are root), as the VM's login shell would run it.
  const fake = join(tmp, 'vagrant');
  writeFileSync(fake, [
    '#!/usr/bin/env bash',
    '[ "$1" = ssh ] && [ "$3" = -c ] || { echo "fake vagrant: only ssh VM -c CMD" >&2; exit 2; }',
    'sudo() { [ "${1:-}" = -E ] && shift; "$@"; }',
    'export -f sudo',
    `exec ${process.execPath} ${MAIN} exec "$2" -- bash -c "$4"`,
    '',
  ].join('\n'), { mode: 0o755 });
  const r = await runCollect('bash', [join(__dirname, '..', '..', '..', 'scripts', 'lab', 'vagrant-demo.sh')], {
    env: { ...process.env, LAB_ID: id, VAGRANT: fake },
  });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /calico-02\$ docker run -e CALICO_IP=192\.168\.1\.4 --name workload-D -tid busybox/);
  assert.match(r.stdout, /calico-01\$ sudo calicoctl endpoint [0-9a-f]{32} profile append PROF_B/);
  for (const from of NAMES) {
    const row = new RegExp(`^${from.slice(-1)} 192\\.168\\.\\d+\\.\\d+ +(.*)$`, 'm').exec(r.stdout);
    assert.ok(row, `a matrix row for ${from}`);
    const cells = row[1]!.trim().split(/ {2,}/);
    assert.deepEqual(cells, NAMES.map((to) => (to === from ? '-' : `${expected(from, to) ? 'yes/yes' : 'no/no'} PASS`)));
  }
  assert.match(r.stdout, /30 pings, 0 mismatch\(es\)/);
  assert.match(r.stdout, /RESULT: PASS/);
});

test('down leaves nothing behind, even after calico-01\'s engine crashed: no namespace, link, process, mount or shim socket', async () => {
  const before = labPids(cfg);
  assert.ok(before.length >= 7, `the lab's processes are found before down: ${before.join(' ')}`);
  const sockets = shimSocketsOf(cfg).filter((f) => existsSync(f));
  assert.ok(sockets.length >= 4, `shim sockets of the running containers: ${sockets.join(' ')}`);
  // A crash of calico-01's engine: its shims, containers and layer mounts stay behind for down.
  const h1 = cfg.hosts['calico-01'];
  for (const f of [h1.dockerPidFile, h1.containerdPidFile]) process.kill(Number(readFileSync(f, 'utf8')), 'SIGKILL');
  assert.ok(mountsUnder([h1.stateDir, h1.runDir]).length > 0, 'layer mounts left by the crashed dockerd');

  const r = await lab(['down']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /stopping \d+ leftover process\(es\): .*containerd-shim/);
  assert.match(r.stdout, /the lab is down/);
  for (const f of sockets) assert.equal(existsSync(f), false, `shim socket ${f} removed`);
  for (const h of Object.values(cfg.hosts)) assert.equal(existsSync(h.netnsPath), false, `${h.netns} is gone`);
  for (const pid of before) assert.equal(pidAlive(pid), false, `pid ${pid} is gone`);
  assert.deepEqual(labPids(cfg), []);
  assert.deepEqual(mountsUnder([cfg.stateRoot, cfg.runRoot]), []);
  assert.equal(existsSync(cfg.stateRoot), false);
  assert.equal(existsSync(cfg.runRoot), false);
  // No veth of ours surfaced in the machine's namespace either.
  const links = await new Promise<string>((resolve) => {
    const c = spawn('ip', ['-o', 'link', 'show']);
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('close', () => resolve(out));
  });
  assert.doesNotMatch(links, new RegExp(`link-netns (calico-01|calico-02)-${id}\\b`));
  const again = await lab(['down']);
  assert.equal(again.code, 0, again.stderr);
});
