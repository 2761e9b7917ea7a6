/** etcd with TLS and client certificates: both KV flavours and calicoctl, and a wrong CA refused clearly. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { makePki, Pki } from '../harness/pki.js';
import { calicoctl } from '../harness/calicoctl.js';
import { connectKV, KVFlavour } from '../../src/datastore/connect.js';

let dir: string;
let pki: Pki;
let other: Pki;
let etcd: TestEtcd;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'calico-tls-'));
  pki = makePki(join(dir, 'pki'));
  other = makePki(join(dir, 'other'), 'another-ca');
  etcd = await startEtcd({ tls: pki });
});
after(async () => {
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

for (const flavour of ['cli', 'daemon'] as KVFlavour[]) {
  test(`${flavour} KV over TLS with a client certificate`, async () => {
    const kv = etcd.kv(flavour);
    await kv.put(`/calico/tls-${flavour}`, 'secure');
    assert.equal((await kv.get(`/calico/tls-${flavour}`))?.value, 'secure');
    kv.close();
  });
}

test('calicoctl over TLS from the environment; a wrong CA or no client certificate is refused with a message', async () => {
  const ok = await calicoctl(etcd.env, ['profile', 'add', 'TLSPROF']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'Created profile TLSPROF\n');
  const wrongCa = await calicoctl({ ...etcd.env, ETCD_CA_CERT_FILE: other.ca }, ['profile', 'show']);
  assert.equal(wrongCa.code, 1);
  assert.match(wrongCa.stderr, /cannot reach etcd at https:\/\/127\.0\.0\.1:\d+/);
  const noCert = await calicoctl({ ...etcd.env, ETCD_CERT_FILE: '', ETCD_KEY_FILE: '' }, ['profile', 'show']);
  assert.equal(noCert.code, 1);
  assert.doesNotMatch(noCert.stderr, /\n\s+at /);
  const missing = await calicoctl({ ...etcd.env, ETCD_CA_CERT_FILE: join(dir, 'nope.pem') }, ['profile', 'show']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.split('\n')[0], `cannot read ETCD_CA_CERT_FILE ${join(dir, 'nope.pem')}: no such file`);
  for (const flavour of ['cli', 'daemon'] as KVFlavour[]) {
    const kv = connectKV({ ...etcd.config, caFile: other.ca }, flavour);
    await assert.rejects(kv.get('/calico/x'), /cannot reach etcd/);
    kv.close();
  }
});
