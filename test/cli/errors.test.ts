/** Bad input and an unreachable etcd: a clear message, the right exit code, no stack, nothing written. */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { spawn } from 'node:child_process';
import { boundCalicoctl, calicoctl, CALICOCTL } from '../harness/calicoctl.js';
import { freePort } from '../harness/ports.js';
import { KV } from '../../src/datastore/kv.js';

let etcd: TestEtcd;
let kv: KV;
let cc: ReturnType<typeof boundCalicoctl>;
let dir: string;

before(async () => {
  etcd = await startEtcd();
  kv = etcd.kv();
  cc = boundCalicoctl(etcd.env);
  dir = mkdtempSync(join(tmpdir(), 'calicoctl-errors-'));
});
after(async () => { await etcd?.stop(); rmSync(dir, { recursive: true, force: true }); });
beforeEach(async () => { await etcd.wipe(); });

async function nothingWritten(): Promise<void> {
  assert.deepEqual((await kv.list('/calico/')).entries.map((e) => e.key), []);
}

function assertClean(r: { code: number; stderr: string }, code: number, re: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

test('invalid YAML names the line and writes nothing', async () => {
  const r = await cc.run(['create', '-f', '-'], 'apiVersion: v1\nkind: profile\nmetadata: {name: a\n  spec: [\n');
  assertClean(r, 1, /stdin: invalid YAML at line \d+, column \d+/);
  await nothingWritten();
});

test('an unknown kind is refused with the list of kinds', async () => {
  const r = await cc.run(['apply', '-f', '-'], 'apiVersion: v1\nkind: gizmo\nmetadata: {name: a}\n');
  assertClean(r, 1, /resource type 'gizmo' is not supported\nknown kinds: /);
  assertClean(await cc.run(['get', 'gizmos']), 1, /resource type 'gizmos' is not supported/);
});

test('bad field values name the field and the value', async () => {
  const cases: Array<[string, RegExp]> = [
    ['apiVersion: v1\nkind: profile\nmetadata: {name: "bad name!"}\n', /metadata\.name: 'bad name!' is not a valid profile name/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: "a1234567890123456789012345678901234567890"}\n', /is not a valid profile name: profile names must be < 40 character long/],
    ['apiVersion: v1\nkind: ipPool\nmetadata: {cidr: 10.0.0.0/33}\n', /metadata\.cidr: '10\.0\.0\.0\/33' is not a valid CIDR/],
    ['apiVersion: v1\nkind: ipPool\nmetadata: {cidr: 10.0.0.0/28}\n', /smaller than one IPAM block \(\/26\)/],
    ['apiVersion: v1\nkind: ipPool\nmetadata: {cidr: 169.254.0.0/16}\n', /overlaps the link-local range/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: allow, protocol: tcp, destination: {ports: [70000]}}\n', /spec\.ingress\[0\]\.destination\.ports\[0\]: '70000' is not a valid port/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: allow, protocol: tcp, destination: {ports: ["90:80"]}}\n', /'90:80' is not a valid port or port range/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: allow, protocol: icmp, icmp: {type: 255}}\n', /icmp\.type: '255' is not a valid ICMP type or code \(0-254\)/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: allow, protocol: udp, source: {ports: [53]}, icmp: {type: 1}}\n', /ICMP fields need protocol icmp/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: allow, source: {ports: [53]}}\n', /ports are only valid with protocol tcp or udp/],
    ['apiVersion: v1\nkind: profile\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: pass}\n', /spec\.ingress\[0\]\.action: 'pass' is not valid here/],
    ['apiVersion: v1\nkind: bgpPeer\nmetadata: {scope: global, peerIP: 1.2.3.4}\nspec: {asNumber: 4294967296}\n', /spec\.asNumber: '4294967296' is not a valid AS number/],
    ['apiVersion: v1\nkind: bgpPeer\nmetadata: {scope: global, peerIP: 1.2.3.999}\nspec: {asNumber: 1}\n', /metadata\.peerIP: '1\.2\.3\.999' is not a valid IPv4 or IPv6 address/],
    ["apiVersion: v1\nkind: policy\nmetadata: {name: p}\nspec: {selector: \"role == 'db' &&\"}\n", /spec\.selector: invalid selector/],
    ['apiVersion: v1\nkind: policy\nmetadata: {name: p}\nspec: {selector: "has(a)", colour: blue}\n', /spec\.colour: unknown field/],
    ['apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: x}\nspec: {cidr: 10.5.0.0/16, ipipMode: Sometimes}\n', /spec\.ipipMode: 'Sometimes' must be Always, CrossSubnet or Never/],
    ['apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: x}\n', /kind 'NetworkSet' is not supported in projectcalico.org\/v3/],
    ['apiVersion: v2\nkind: profile\nmetadata: {name: x}\n', /apiVersion 'v2' is not supported/],
  ];
  for (const [doc, re] of cases) {
    assertClean(await cc.run(['create', '-f', '-'], doc), 1, re);
  }
  await nothingWritten();
});

test('one invalid document in a file means nothing from the file is written', async () => {
  const f = join(dir, 'mixed.yaml');
  writeFileSync(f, [
    'apiVersion: v1\nkind: profile\nmetadata: {name: good1}',
    'apiVersion: v1\nkind: ipPool\nmetadata: {cidr: 10.7.0.0/16}',
    'apiVersion: v1\nkind: profile\nmetadata: {name: "no good"}',
  ].join('\n---\n'));
  assertClean(await cc.run(['create', '-f', f]), 1, new RegExp(`${f}\\[2\\]\\.metadata\\.name: 'no good'`));
  await nothingWritten();
  // ... and when the failure is that one already exists, still nothing of the file is written.
  await cc.ok(['profile', 'add', 'taken']);
  writeFileSync(f, 'kind: List\napiVersion: v1\nitems:\n- {apiVersion: v1, kind: profile, metadata: {name: fresh}}\n- {apiVersion: v1, kind: profile, metadata: {name: taken}}\n');
  assertClean(await cc.run(['create', '-f', f]), 1, /resource already exists: profile taken/);
  assert.equal(await kv.get('/calico/v1/policy/profile/fresh/rules'), undefined);
  assert.match(await cc.ok(['create', '-f', f, '--skip-exists']), /Successfully created 1 'profile' resource\(s\)\nSkipped 1 'profile' resource\(s\) that already existed/);
  assertClean(await cc.run(['replace', '-f', '-'], 'apiVersion: v1\nkind: profile\nmetadata: {name: ghost}\n'), 1, /resource does not exist: profile ghost/);
  assertClean(await cc.run(['delete', 'profile', 'ghost']), 1, /resource does not exist: profile ghost/);
  assert.match(await cc.ok(['delete', 'profile', 'ghost', 'fresh', '--skip-not-exists']), /Successfully deleted 1 'profile' resource/);
  assertClean(await cc.run(['create', '-f', join(dir, 'missing.yaml')]), 1, /cannot read .*missing\.yaml: no such file/);
});

test('usage errors exit 2; --help exits 0 and describes the command', async () => {
  assertClean(await cc.run(['frobnicate']), 2, /unknown command 'frobnicate'/);
  assertClean(await cc.run(['get', 'profile', '--colour']), 2, /unknown option '--colour'/);
  assertClean(await cc.run(['create']), 2, /required option '-f, --filename <file>' not specified/);
  assertClean(await cc.run(['get', 'profile', '-o', 'xml']), 2, /unrecognised output format 'xml'/);
  assertClean(await cc.run(['profile', 'P', 'dance']), 2, /unknown profile command 'P dance'/);
  const help = await cc.run(['profile', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: calicoctl profile add\|remove <PROFILE>/);
  for (const c of ['get', 'create', 'pool', 'bgp', 'endpoint', 'config', 'ipam', 'node']) {
    const h = await cc.run([c, '--help']);
    assert.equal(h.code, 0, c);
    assert.match(h.stdout, new RegExp(`Usage: calicoctl ${c}`));
  }
});

test('an unreachable etcd: a clear message naming the endpoint, exit 1, no stack', async () => {
  const port = await freePort();
  const env = { ...process.env, ETCD_ENDPOINTS: `http://127.0.0.1:${port}` };
  for (const args of [['profile', 'show'], ['get', 'nodes'], ['profile', 'add', 'X'], ['create', '-f', '-']]) {
    const r = await calicoctl(env, args, 'apiVersion: v1\nkind: profile\nmetadata: {name: x}\n');
    assertClean(r, 1, new RegExp(`cannot reach etcd at http://127\\.0\\.0\\.1:${port}: start one, or set ETCD_ENDPOINTS`));
  }
  const legacy = await calicoctl({ ...process.env, ETCD_ENDPOINTS: '', ETCD_AUTHORITY: `127.0.0.1:${port}` }, ['pool', 'show']);
  assertClean(legacy, 1, new RegExp(`cannot reach etcd at http://127\\.0\\.0\\.1:${port}`));
  const bad = await calicoctl({ ...process.env, ETCD_ENDPOINTS: 'not a url' }, ['pool', 'show']);
  assertClean(bad, 1, /ETCD_ENDPOINTS: 'not a url' is not a URL/);
});

test('the config file (-c) is read, and the environment beats it', async () => {
  const port = await freePort();
  const cfg = join(dir, 'calicoctl.cfg');
  writeFileSync(cfg, `apiVersion: v1\nkind: calicoApiConfig\nmetadata: {}\nspec:\n  etcdEndpoints: ${etcd.endpoint}\n`);
  const env = { ...process.env, ETCD_ENDPOINTS: '', ETCD_AUTHORITY: '' };
  assert.equal((await calicoctl(env, ['-c', cfg, 'profile', 'add', 'fromfile'])).stdout, 'Created profile fromfile\n');
  const envWins = await calicoctl({ ...env, ETCD_ENDPOINTS: `http://127.0.0.1:${port}` }, ['-c', cfg, 'profile', 'show']);
  assertClean(envWins, 1, new RegExp(`127\\.0\\.0\\.1:${port}`));
  writeFileSync(cfg, '{"kind": "calicoApiConfig", "spec": {"etcdEndpoints": "' + etcd.endpoint + '"}}');
  assert.match((await calicoctl(env, ['--config', cfg, 'profile', 'show'])).stdout, /fromfile/);
  writeFileSync(cfg, 'kind: somethingElse\n');
  assertClean(await calicoctl(env, ['-c', cfg, 'profile', 'show']), 1, /kind must be calicoApiConfig/);
});

test('a reader that goes away (calicoctl ... | head -1) ends calicoctl quietly, exit 0, no stack', async () => {
  for (const args of [['version'], ['--help'], ['profile', 'show']]) {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(CALICOCTL, args, { env: { ...etcd.env, CALICO_LOG_LEVEL: 'warn' } });
      // Close our end of stdout before calicoctl has started: its first write fails with EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
    assert.equal(r.code, 0, `${args.join(' ')}: exit 0`);
  }
});
