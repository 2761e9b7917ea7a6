/**
 * The interception API with a test interceptor, driven by the real docker CLI and raw requests
 * against a real dockerd: create rewriting/refusal, start hooks that hold the answer, inspect
 * rewriting, delete observation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, Stack, docker, uniq, portOf, rawExchange, TEST_TIMEOUT_MS } from './helpers.js';
import type { DockerInterceptor, ContainerActionContext, CreateResult } from '../../proxy/hooks.js';
import { InterceptRefusal } from '../../proxy/hooks.js';

interface StartCall { hook: 'before' | 'after'; action: string; ref: string; id: string; status?: number; runningSeen?: boolean }

const starts: StartCall[] = [];
const creates: CreateResult[] = [];
const deletes: { ref: string; id: string }[] = [];
const order: string[] = [];
let gate: { entered: () => void; release: Promise<void> } | undefined;

function envOf(ctx: { daemon: unknown }, env: string[] | null | undefined, key: string): boolean {
  return (env ?? []).includes(key);
}

async function containerEnv(ctx: ContainerActionContext): Promise<string[]> {
  return (await ctx.daemon.inspectContainer(ctx.containerId))?.Config.Env ?? [];
}

const first: DockerInterceptor = {
  name: 'first',
  onCreate(ctx) {
    order.push('first.onCreate');
    const env = ctx.body.get(['Env']) as string[] | null | undefined;
    if (envOf(ctx, env, 'REFUSE=1')) throw new InterceptRefusal(409, 'calico test: refused by interceptor');
    if (envOf(ctx, env, 'BOOM=1')) throw new Error('boom');
    if (envOf(ctx, env, 'TEST_NET=1')) {
      ctx.body.set(['HostConfig', 'NetworkMode'], 'none');
      // Current CLIs also send NetworkingConfig.EndpointsConfig.default; left in place the daemon
      // answers "network default not found".
      ctx.body.set(['NetworkingConfig', 'EndpointsConfig'], {});
    }
    ctx.body.set(['Labels', 'calico-test'], 'created-through-proxy');
  },
  afterCreate(_ctx, result) { creates.push(result); },
  async beforeStart(ctx) {
    starts.push({ hook: 'before', action: ctx.action, ref: ctx.containerRef, id: ctx.containerId });
    if ((await containerEnv(ctx)).includes('REFUSE_START=1')) throw new InterceptRefusal(500, 'calico test: start refused');
  },
  async afterStart(ctx, answer) {
    const info = await ctx.daemon.inspectContainer(ctx.containerId);
    starts.push({ hook: 'after', action: ctx.action, ref: ctx.containerRef, id: ctx.containerId, status: answer.status, runningSeen: info?.State.Running });
    const env = info?.Config.Env ?? [];
    if (env.includes('GATE=1') && gate) {
      gate.entered();
      await gate.release;
    }
    if (env.includes('FAIL_AFTER_START=1')) throw new InterceptRefusal(500, 'calico test: wiring failed');
  },
  onInspect(ctx) {
    if (ctx.body.get(['Config', 'Labels', 'calico-test']) === 'created-through-proxy') {
      ctx.body.set(['NetworkSettings', 'IPAddress'], '10.65.0.9');
    }
  },
  afterDelete(ctx) { deletes.push({ ref: ctx.containerRef, id: ctx.containerId }); },
};

/** A second interceptor: runs after the first and sees its edits. */
const second: DockerInterceptor = {
  name: 'second',
  onCreate(ctx) {
    order.push('second.onCreate');
    const seen = ctx.body.get(['Labels', 'calico-test']);
    ctx.body.set(['Labels', 'second-saw'], String(seen));
  },
};

let s: Stack;
before(async () => { s = await startStack({ interceptors: [first, second] }); });
after(async () => { await s?.stop(); });

function post(path: string, body: string, contentType = 'application/json'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: portOf(s.proxy.address), method: 'POST', path,
      headers: { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The daemon's raw inspect text (JSON.parse would round int64 values). */
function rawInspect(id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: s.dockerd.socket, path: `/containers/${id}/json` }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}

test('create: the body is edited; unknown fields and int64 values survive; hooks run in order', { timeout: TEST_TIMEOUT_MS }, async () => {
  order.length = 0;
  const name = uniq('raw');
  const body = `{"Image":"busybox","Cmd":["true"],"CalicoUnknownField":{"n":12345678901234567890},
    "HostConfig":{"Memory":9007199254740993,"MemorySwap":-1},"Labels":{"keep":"me"}}`;
  const r = await post(`/v1.41/containers/create?name=${name}`, body);
  assert.equal(r.status, 201, r.body);
  const id = (JSON.parse(r.body) as { Id: string }).Id;
  const raw = await rawInspect(id);
  assert.match(raw, /"Memory":9007199254740993[,}]/, 'int64 kept exactly');
  const info = JSON.parse(raw) as { Config: { Labels: Record<string, string> } };
  assert.deepEqual(info.Config.Labels, { keep: 'me', 'calico-test': 'created-through-proxy', 'second-saw': 'created-through-proxy' });
  assert.deepEqual(order, ['first.onCreate', 'second.onCreate']);
  assert.deepEqual(creates.at(-1), { status: 201, containerId: id });
  // Unversioned and percent-encoded paths are hooked just the same.
  for (const path of ['/containers/create', '/v1.41/containers/cr%65ate']) {
    const u = await post(path, '{"Image":"busybox","Cmd":["true"]}');
    assert.equal(u.status, 201, u.body);
    const uid = (JSON.parse(u.body) as { Id: string }).Id;
    assert.match(await rawInspect(uid), /"calico-test":"created-through-proxy"/, path);
  }
});

test('docker run through the proxy: HostConfig edited by the hook is what the daemon applies', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('net');
  const r = await docker(s.proxied, ['run', '-d', '--name', name, '-e', 'TEST_NET=1', 'busybox', 'sleep', '600']);
  assert.equal(r.status, 0, r.stderr);
  const check = await docker(s.direct, ['inspect', '-f', '{{.HostConfig.NetworkMode}} {{index .Config.Labels "calico-test"}}', name]);
  assert.equal(check.stdout, 'none created-through-proxy\n');
  const ifaces = await docker(s.direct, ['exec', name, 'ls', '/sys/class/net']);
  assert.equal(ifaces.stdout, 'lo\n', 'NetworkMode none: only loopback');
});

test('a refused create: docker run prints the interceptor\'s message, exit 125, nothing created', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('refused');
  const r = await docker(s.proxied, ['run', '--name', name, '-e', 'REFUSE=1', 'busybox', 'true']);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /^docker: Error response from daemon: calico test: refused by interceptor/);
  assert.equal((await docker(s.direct, ['ps', '-aq', '--filter', `name=${name}`])).stdout, '');
  const boom = await docker(s.proxied, ['run', '--rm', '-e', 'BOOM=1', 'busybox', 'true']);
  assert.equal(boom.status, 125);
  assert.match(boom.stderr, /Error response from daemon: docker proxy interceptor failed: boom/);
});

test('invalid JSON in a create body is refused by the proxy with 400 before the daemon sees it', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await post('/v1.41/containers/create', '{"Image": "busybox",');
  assert.equal(r.status, 400);
  assert.match((JSON.parse(r.body) as { message: string }).message, /invalid JSON in the container create request/);
  // Not JSON at all: the daemon's own refusal, unchanged.
  const t = await post('/v1.41/containers/create', 'Image=busybox', 'text/plain');
  assert.equal(t.status, 400);
  assert.match(t.body, /Content-Type specified \(text\/plain\) must be 'application\/json'/);
});

test('docker run -d returns only after afterStart finished; hooks get the full id', { timeout: TEST_TIMEOUT_MS }, async () => {
  let entered: () => void = () => undefined;
  const hookEntered = new Promise<void>((r) => { entered = r; });
  let release: () => void = () => undefined;
  gate = { entered, release: new Promise<void>((r) => { release = r; }) };
  try {
    let cliDone = false;
    const cli = docker(s.proxied, ['run', '-d', '-e', 'GATE=1', 'busybox', 'sleep', '600']).then((r) => { cliDone = true; return r; });
    await hookEntered;
    // The daemon has started the container, and the CLI is still waiting for the start answer.
    const after = starts.at(-1)!;
    assert.equal(after.hook, 'after');
    assert.equal(after.runningSeen, true);
    assert.equal((await docker(s.direct, ['inspect', '-f', '{{.State.Running}}', after.id])).stdout, 'true\n');
    assert.equal(cliDone, false, 'docker run -d returned before the afterStart hook finished');
    release();
    const r = await cli;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), after.id);
    assert.match(after.id, /^[0-9a-f]{64}$/);
    const before = starts.at(-2)!;
    assert.deepEqual([before.hook, before.action, before.id], ['before', 'start', after.id]);
    assert.equal(after.status, 204);
  } finally {
    release();
    gate = undefined;
  }
});

test('start by name and restart by short id: hooks see the reference and the full id', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('byname');
  const c = await docker(s.direct, ['create', '--name', name, 'busybox', 'sleep', '600']);
  const id = c.stdout.trim();
  const st = await docker(s.proxied, ['start', name]);
  assert.deepEqual([st.status, st.stdout], [0, `${name}\n`]);
  assert.deepEqual(starts.slice(-2).map((x) => [x.hook, x.action, x.ref, x.id]), [['before', 'start', name, id], ['after', 'start', name, id]]);
  const rs = await docker(s.proxied, ['restart', '-t', '0', id.slice(0, 12)]);
  assert.equal(rs.status, 0, rs.stderr);
  assert.deepEqual(starts.slice(-2).map((x) => [x.hook, x.action, x.ref, x.id, x.status ?? null]), [
    ['before', 'restart', id.slice(0, 12), id, null], ['after', 'restart', id.slice(0, 12), id, 204]]);
  // Already running: the daemon's 304 reaches afterStart and the CLI.
  const again = await docker(s.proxied, ['start', name]);
  assert.equal(again.status, 0);
  assert.equal(starts.at(-1)!.status, 304);
  // Unknown container: no hooks, the daemon's own error.
  const count = starts.length;
  const missing = await docker(s.proxied, ['start', 'no-such-ctr']);
  assert.match(missing.stderr, /No such container: no-such-ctr/);
  assert.equal(starts.length, count);
});

test('afterStart can turn a started container into an error; beforeStart can stop the start', { timeout: TEST_TIMEOUT_MS }, async () => {
  const failed = await docker(s.proxied, ['run', '-d', '-e', 'FAIL_AFTER_START=1', 'busybox', 'sleep', '600']);
  assert.equal(failed.status, 125);
  assert.match(failed.stderr, /Error response from daemon: calico test: wiring failed/);

  const name = uniq('nostart');
  const refused = await docker(s.proxied, ['run', '-d', '--name', name, '-e', 'REFUSE_START=1', 'busybox', 'sleep', '600']);
  assert.equal(refused.status, 125);
  assert.match(refused.stderr, /Error response from daemon: calico test: start refused/);
  assert.equal((await docker(s.direct, ['inspect', '-f', '{{.State.Status}}', name])).stdout, 'created\n');
});

test('inspect: the hook rewrites the daemon\'s answer (and only through the proxy)', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('insp');
  assert.equal((await docker(s.proxied, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0);
  const fmt = ['inspect', '-f', '{{.NetworkSettings.IPAddress}}', name];
  assert.equal((await docker(s.proxied, fmt)).stdout, '10.65.0.9\n');
  assert.equal((await docker(s.direct, fmt)).stdout, '\n');
  const full = await docker(s.proxied, ['inspect', name]);
  const parsed = JSON.parse(full.stdout) as { Name: string; NetworkSettings: { IPAddress: string } }[];
  assert.equal(parsed[0].Name, `/${name}`);
  assert.equal(parsed[0].NetworkSettings.IPAddress, '10.65.0.9');
  // A container the hook does not touch reads the same both ways.
  const other = uniq('plain');
  assert.equal((await docker(s.direct, ['run', '-d', '--name', other, 'busybox', 'sleep', '600'])).status, 0);
  assert.equal((await docker(s.proxied, ['inspect', other])).stdout, (await docker(s.direct, ['inspect', other])).stdout);
});

test('delete: observed after the daemon removed the container, with its full id', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('del');
  const id = (await docker(s.direct, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).stdout.trim();
  const r = await docker(s.proxied, ['rm', '-f', name]);
  assert.deepEqual(r, { status: 0, stdout: `${name}\n`, stderr: '' });
  assert.deepEqual(deletes.at(-1), { ref: name, id });
  const count = deletes.length;
  const missing = await docker(s.proxied, ['rm', 'no-such-ctr']);
  assert.equal(missing.stderr, (await docker(s.direct, ['rm', 'no-such-ctr'])).stderr);
  assert.equal(deletes.length, count);
});

test('a hooked endpoint sent as an upgrade is refused (it would bypass the hooks)', { timeout: TEST_TIMEOUT_MS }, async () => {
  const body = '{"Image":"busybox"}';
  const r = await rawExchange({ port: portOf(s.proxy.address) },
    `POST /v1.41/containers/create HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  assert.match(r.toString(), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*does not accept Upgrade on POST \/v1\.41\/containers\/create/);
});
