/**
 * bin/calicoctl's start-up: the V8 snapshot (cli/snapshot.ts) when it is usable, the plain start
 * when it is missing, stale or made by another node binary, and NODE_EXTRA_CA_CERTS handed over
 * past Node's start-up without changing which CAs etcd is verified against.
 *
 * Runs on a copy of the launcher and of dist/cli + dist/src in a temp dir, with its own blob, so
 * that the repository's dist/ (which other test runs use) is never touched.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { makePki, Pki } from '../harness/pki.js';
import { calicoctl, RunResult } from '../harness/calicoctl.js';

const REPO = join(__dirname, '..', '..', '..');

let dir: string;
let launcher: string;
let blob: string;
let etcd: TestEtcd;
let tlsEtcd: TestEtcd;
let pki: Pki;

function buildSnapshot(): void {
  const r = spawnSync(process.execPath, [join(dir, 'dist', 'cli', 'build-snapshot.js')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<RunResult> {
  // The node that built the blob first on PATH, as where setup builds it and calicoctl runs.
  return calicoctl({ ...env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, CALICOCTL_STARTUP_TRACE: '1' }, args, '', launcher);
}

const FROM_SNAPSHOT = /^calicoctl start-up: started from the snapshot$/m;
const FROM_DISK = /^calicoctl start-up: no snapshot, loading dist\/ from disk$/m;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'calicoctl-launcher-'));
  mkdirSync(join(dir, 'bin'));
  cpSync(join(REPO, 'bin', 'calicoctl'), join(dir, 'bin', 'calicoctl'));
  for (const d of ['cli', 'src']) cpSync(join(REPO, 'dist', d), join(dir, 'dist', d), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  launcher = join(dir, 'bin', 'calicoctl');
  blob = join(dir, 'dist', 'calicoctl.blob');
  buildSnapshot();
  etcd = await startEtcd();
  pki = makePki(join(dir, 'pki'));
  tlsEtcd = await startEtcd({ tls: pki });
});
after(async () => {
  await etcd?.stop();
  await tlsEtcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('from the snapshot: fast-path and commander commands, their errors and exit codes', async () => {
  const add = await run(etcd.env, ['profile', 'add', 'SNAP1']);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stderr, FROM_SNAPSHOT);
  assert.equal(add.stdout, 'Created profile SNAP1\n');
  const show = await run(etcd.env, ['profile', 'show']);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stderr, FROM_SNAPSHOT);
  assert.match(show.stdout, /^\| SNAP1 \|$/m);
  // yaml is a package, loaded at run time by Node's loader for a module in the snapshot.
  const yaml = await run(etcd.env, ['get', 'profile', '-o', 'yaml']);
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.match(yaml.stdout, /name: SNAP1/);
  const badKind = await run(etcd.env, ['get', 'gizmo']);
  assert.equal(badKind.code, 1);
  assert.match(badKind.stderr, /resource type 'gizmo' is not supported/);
  const usage = await run(etcd.env, ['profile', 'show', 'extra']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /too many arguments/);
  const help = await run(etcd.env, ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: calicoctl \[options\] \[command\]/);
  // The error comes from etcd-h2.ts, loaded from disk at run time, and is still recognised as a
  // CalicoError of the snapshot's errors.ts: a message and exit 1, not "Unexpected error".
  const down = await run({ ...etcd.env, ETCD_ENDPOINTS: 'http://127.0.0.1:1' }, ['profile', 'show']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^cannot reach etcd at http:\/\/127\.0\.0\.1:1/m);
  assert.doesNotMatch(down.stderr, /Unexpected error/);
});

test('a stale snapshot (a dist/ file changed since it was built) runs the files on disk', async () => {
  const file = join(dir, 'dist', 'cli', 'commands', 'profile.js');
  const original = readFileSync(file, 'utf8');
  assert.ok(original.includes("prettyTable)(['Name']"), 'profile.js prints the Name header');
  writeFileSync(file, original.replace("prettyTable)(['Name']", "prettyTable)(['Profile name']"));
  try {
    const r = await run(etcd.env, ['profile', 'show']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^calicoctl start-up: snapshot is stale \(.*profile\.js changed since it was built\): loading dist\/ from disk$/m);
    assert.equal(r.stdout.match(/\| Profile name \|/g)?.length, 1, `the command ran once: ${r.stdout}`);
  } finally {
    writeFileSync(file, original);
    buildSnapshot();
  }
  assert.match((await run(etcd.env, ['profile', 'show'])).stderr, FROM_SNAPSHOT);
});

test('no blob, a blob from another node binary, or CALICOCTL_SNAPSHOT=off: the plain start', async () => {
  const off = await run({ ...etcd.env, CALICOCTL_SNAPSHOT: 'off' }, ['profile', 'show']);
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stderr, FROM_DISK);
  // Node refuses (exit 14) a snapshot from another binary; the launcher tells by the mtime of the
  // node binary that the build copied onto calicoctl.blob.node.
  utimesSync(`${blob}.node`, new Date(0), new Date(0));
  const otherNode = await run(etcd.env, ['profile', 'show']);
  assert.equal(otherNode.code, 0, otherNode.stderr);
  assert.match(otherNode.stderr, FROM_DISK);
  rmSync(blob);
  const none = await run(etcd.env, ['profile', 'show']);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, FROM_DISK);
  assert.match(none.stdout, /^\| +Name +\|$/m);
  buildSnapshot();
  assert.match((await run(etcd.env, ['profile', 'show'])).stderr, FROM_SNAPSHOT);
});

test('NODE_EXTRA_CA_CERTS: not parsed at start-up, still trusted for etcd over TLS', async () => {
  // Node reports an unreadable NODE_EXTRA_CA_CERTS as it starts; handed over, nothing reads it
  // for a command that does no TLS.
  const missing = join(dir, 'no-such-ca.pem');
  const plain = await run({ ...etcd.env, NODE_EXTRA_CA_CERTS: missing }, ['profile', 'show']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr, /Ignoring extra certs/);
  // A command line with a `node` word keeps it for Node (the node daemon may run in-process).
  const nodeWord = await run({ ...etcd.env, NODE_EXTRA_CA_CERTS: missing }, ['get', 'node']);
  assert.match(nodeWord.stderr, /Ignoring extra certs from `.*no-such-ca\.pem`, load failed/);

  // etcd's CA only in NODE_EXTRA_CA_CERTS (no ETCD_CA_CERT_FILE): trusted, as Node would.
  const tlsEnv = { ...tlsEtcd.env, ETCD_CA_CERT_FILE: '' };
  const trusted = await run({ ...tlsEnv, NODE_EXTRA_CA_CERTS: pki.ca }, ['profile', 'show']);
  assert.equal(trusted.code, 0, trusted.stderr);
  assert.match(trusted.stdout, /^\| +Name +\|$/m);
  const untrusted = await run(tlsEnv, ['profile', 'show']);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /^cannot reach etcd at https:\/\/127\.0\.0\.1:\d+/m);
  const unreadable = await run({ ...tlsEnv, NODE_EXTRA_CA_CERTS: missing }, ['profile', 'show']);
  assert.equal(unreadable.code, 1);
  assert.match(unreadable.stderr, /Ignoring extra certs from `.*no-such-ca\.pem`, load failed/);
});
