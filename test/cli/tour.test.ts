/** `npm run tour`: the node-less calicoctl walk-through runs clean against a real etcd, twice. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';

let etcd: TestEtcd;
before(async () => { etcd = await startEtcd(); });
after(async () => { await etcd?.stop(); });

test('the tour runs end to end and is re-runnable', () => {
  const script = join(__dirname, '..', '..', 'scripts', 'demo.js');
  for (let i = 0; i < 2; i++) {
    const r = spawnSync(process.execPath, [script], { env: etcd.env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\$ calicoctl profile add PROF_A_C_E\nCreated profile PROF_A_C_E/);
    assert.match(r.stdout, /Profiles PROF_A_C_E appended to 1f2e3d4c5b6a79880123456789abcdef\./);
    assert.match(r.stderr, /'10\.0\.0\.0\/33' is not a valid CIDR/);
  }
});
