/** The out-of-the-box local etcd: started detached, found again, inside a namespace, and failures leave nothing. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureLocalEtcd } from '../../src/datastore/local-etcd.js';
import { createNetns, deleteNetns, ipBatch } from '../../src/dataplane/index.js';
import { CalicoError } from '../../src/errors.js';

const ns = `cte-${randomBytes(3).toString('hex')}`;
let dir: string;
const pids: number[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'calico-localetcd-'));
  const netns = await createNetns(ns);
  await ipBatch(['addr add 172.31.250.1/32 dev lo'], { netns });
});
after(async () => {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  await deleteNetns(ns).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('inside a namespace, on an address only that namespace has: started, then found running', async () => {
  const opts = {
    dataDir: join(dir, 'data'), runDir: join(dir, 'run'), logDir: join(dir, 'log'),
    clientUrl: 'http://172.31.250.1:2379', peerUrl: 'http://172.31.250.1:2380', netnsPath: `/run/netns/${ns}`,
  };
  const first = await ensureLocalEtcd(opts);
  pids.push(first.pid);
  assert.equal(first.started, true);
  assert.ok(alive(first.pid));
  assert.equal(Number(readFileSync(join(dir, 'run', 'etcd.pid'), 'utf8')), first.pid);
  const second = await ensureLocalEtcd(opts);
  assert.equal(second.started, false, 'an etcd already answering is used, not started again');
  assert.equal(second.pid, first.pid);
});

test('an etcd binary that cannot start: a clear error, and no process left', async () => {
  await assert.rejects(
    ensureLocalEtcd({ dataDir: join(dir, 'd2'), runDir: join(dir, 'r2'), logDir: join(dir, 'l2'), clientUrl: 'http://127.0.0.1:1', binary: join(dir, 'no-such-etcd') }),
    (err: unknown) => err instanceof CalicoError && /cannot start etcd/.test(err.message) && err.hint === 'install it: apt-get install etcd-server',
  );
  // A binary that exits at once.
  await assert.rejects(
    ensureLocalEtcd({ dataDir: join(dir, 'd3'), runDir: join(dir, 'r3'), logDir: join(dir, 'l3'), clientUrl: 'http://127.0.0.1:1', binary: '/bin/false' }),
    /etcd exited at once \(code 1\)/,
  );
});
