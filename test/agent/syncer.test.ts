/**
 * The datastore syncer: snapshot + watch, and a resync that loses nothing after the watch
 * breaks or etcd compacted the revision it needed. Once with a scripted KV (pure logic), once
 * against a real etcd that really compacts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatastoreSyncer, KvUpdate } from '../../node/agent/syncer.js';
import type { KV, KVEntry, WatchEvent, Watcher, TxnGuard, TxnOp } from '../../src/datastore/kv.js';
import { CompactedError } from '../../src/datastore/etcd-grpc.js';
import { createLogger } from '../../src/log.js';
import { startEtcd } from '../harness/etcd.js';
import { waitFor, freePort } from '../harness/ports.js';
import { startProcess, OwnedProcess } from '../harness/process.js';
import { connectKV } from '../../src/datastore/connect.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

const log = createLogger({ level: 'error', stream: new Writable({ write(_c, _e, cb) { cb(); } }) });

/** A minimal in-memory KV whose watches can be broken on demand. */
class ScriptedKV implements KV {
  readonly endpoints = ['scripted'];
  rev = 1n;
  data = new Map<string, { value: string; mod: bigint }>();
  watches: Array<{ prefix: string; onEvents: (e: WatchEvent[]) => void; onError: (e: Error) => void; open: boolean }> = [];
  /** While true, writes are not delivered to watchers (a broken stream). */
  silent = false;

  write(key: string, value: string | undefined): void {
    this.rev++;
    if (value === undefined) this.data.delete(key);
    else this.data.set(key, { value, mod: this.rev });
    if (this.silent) return;
    for (const w of this.watches) {
      if (w.open && key.startsWith(w.prefix)) {
        w.onEvents([{ type: value === undefined ? 'delete' : 'put', key, value: value ?? '', modRevision: String(this.rev) }]);
      }
    }
  }

  async list(prefix: string) {
    const entries: KVEntry[] = [...this.data].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, v]) => ({ key, value: v.value, modRevision: String(v.mod) }));
    return { entries, revision: String(this.rev) };
  }

  async watch(prefix: string, _after: string, onEvents: (e: WatchEvent[]) => void, onError: (e: Error) => void): Promise<Watcher> {
    const w = { prefix, onEvents, onError, open: true };
    this.watches.push(w);
    return { close: async () => { w.open = false; } };
  }

  breakWatches(err: Error): void {
    for (const w of this.watches) if (w.open) w.onError(err);
  }

  async get(): Promise<KVEntry | undefined> { throw new Error('unused'); }
  async create(): Promise<string> { throw new Error('unused'); }
  async update(): Promise<string> { throw new Error('unused'); }
  async put(): Promise<string> { throw new Error('unused'); }
  async delete(): Promise<boolean> { throw new Error('unused'); }
  async deletePrefix(): Promise<number> { throw new Error('unused'); }
  async txn(_g: TxnGuard[], _o: TxnOp[]): Promise<string> { throw new Error('unused'); }
  close(): void {}
}

function mirror() {
  const state = new Map<string, string>();
  let inSync = 0;
  return {
    state,
    get inSync() { return inSync; },
    handler: {
      onUpdates(us: KvUpdate[]) { for (const u of us) { if (u.value === undefined) state.delete(u.key); else state.set(u.key, u.value); } },
      onInSync() { inSync++; },
    },
  };
}

test('syncer (scripted): snapshot, watch, and a resync after compaction that delivers what was missed, deletions included', async () => {
  const kv = new ScriptedKV();
  kv.write('/calico/v1/a', '1');
  kv.write('/calico/v1/b', '2');
  kv.write('/other/x', 'not ours');
  const m = mirror();
  const s = new DatastoreSyncer(kv, ['/calico/v1/'], m.handler, log, { minBackoffMs: 1 });
  await s.start();
  assert.deepEqual([...m.state], [['/calico/v1/a', '1'], ['/calico/v1/b', '2']]);
  assert.equal(m.inSync, 1);
  kv.write('/calico/v1/c', '3');
  assert.equal(m.state.get('/calico/v1/c'), '3');

  // The stream breaks; meanwhile the store moves on; then etcd says the revision is compacted.
  kv.silent = true;
  kv.write('/calico/v1/a', '1b');
  kv.write('/calico/v1/b', undefined);
  kv.write('/calico/v1/d', '4');
  kv.silent = false;
  kv.breakWatches(new CompactedError('99'));
  await waitFor('resync', async () => m.inSync === 2, 2000, 5);
  assert.deepEqual([...m.state].sort(), [['/calico/v1/a', '1b'], ['/calico/v1/c', '3'], ['/calico/v1/d', '4']]);
  assert.equal(s.resyncs, 1);
  // The new watch is live; the old one is ignored.
  kv.write('/calico/v1/e', '5');
  assert.equal(m.state.get('/calico/v1/e'), '5');
  assert.equal(kv.watches.filter((w) => w.open).length, 1);
  await s.stop();
});

test('syncer (real etcd): a watch from a compacted revision fails, and the resync picks up every change', async () => {
  const etcd = await startEtcd();
  try {
    const real = etcd.kv('daemon');
    const writer = etcd.kv('cli');
    await writer.put('/calico/v1/k1', 'v1');
    await writer.put('/calico/v1/k2', 'v2');
    let hook: (() => Promise<void>) | undefined = async () => {
      // Between the snapshot and its watch: changes, then a compaction past the snapshot.
      await writer.put('/calico/v1/k3', 'v3');
      await writer.delete('/calico/v1/k1');
      const rev = await writer.put('/calico/v1/k2', 'v2b');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Etcd3 } = require('etcd3') as typeof import('etcd3');
      const c = new Etcd3({ hosts: etcd.endpoint });
      try { await c.kv.compact({ revision: rev, physical: true }); } finally { c.close(); }
    };
    const kv: KV = Object.create(real, {
      list: { value: async (p: string) => { const r = await real.list(p); const h = hook; hook = undefined; if (h) await h(); return r; } },
    });
    const m = mirror();
    const s = new DatastoreSyncer(kv, ['/calico/v1/'], m.handler, log, { minBackoffMs: 10 });
    await s.start();
    await waitFor('state to converge', async () => m.state.get('/calico/v1/k3') === 'v3' && !m.state.has('/calico/v1/k1'), 10000);
    assert.deepEqual([...m.state].sort(), [['/calico/v1/k2', 'v2b'], ['/calico/v1/k3', 'v3']]);
    assert.ok(m.inSync >= 2, 'a second snapshot was taken');
    // And the watch that followed is live.
    await writer.put('/calico/v1/k4', 'v4');
    await waitFor('live watch', async () => m.state.get('/calico/v1/k4') === 'v4', 5000);
    await s.stop();
  } finally {
    await etcd.stop();
  }
});

test('syncer (real etcd): etcd stops and comes back; changes made afterwards arrive, none is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calico-syncer-'));
  const client = await freePort();
  const peer = await freePort();
  const endpoint = `http://127.0.0.1:${client}`;
  const launch = (n: number): OwnedProcess => startProcess('etcd', [
    '--name', 'one', '--data-dir', join(dir, 'data'),
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `one=http://127.0.0.1:${peer}`, '--log-level', 'error', '--logger', 'zap',
  ], join(dir, `etcd${n}.log`), { env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch } });
  let etcd = launch(1);
  const cfg = { endpoints: [endpoint], isDefault: false };
  const writer = connectKV(cfg, 'cli');
  const kv = connectKV(cfg, 'daemon');
  const m = mirror();
  const s = new DatastoreSyncer(kv, ['/calico/v1/'], m.handler, log, { minBackoffMs: 50, maxBackoffMs: 500 });
  try {
    await waitFor('etcd', async () => { await writer.list('/x'); return true; }, 20000);
    await writer.put('/calico/v1/a', '1');
    await s.start();
    assert.equal(m.state.get('/calico/v1/a'), '1');
    await etcd.stop();
    etcd = launch(2);
    await waitFor('etcd back', async () => { await writer.list('/x'); return true; }, 20000);
    await writer.put('/calico/v1/b', '2');
    await writer.delete('/calico/v1/a');
    await writer.put('/calico/v1/c', '3');
    await waitFor('changes after the outage', async () => m.state.get('/calico/v1/c') === '3', 20000);
    assert.deepEqual([...m.state].sort(), [['/calico/v1/b', '2'], ['/calico/v1/c', '3']]);
  } finally {
    await s.stop();
    kv.close();
    writer.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
