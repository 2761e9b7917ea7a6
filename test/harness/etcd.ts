/**
 * A real etcd (Debian's etcd-server) for one test file: free ports, a temp data dir, stopped by
 * pid and removed afterwards.
 */
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';
import { startProcess, OwnedProcess } from './process.js';
import { KV } from '../../src/datastore/kv.js';
import { EtcdConfig } from '../../src/datastore/config.js';
import { connectKV, KVFlavour } from '../../src/datastore/connect.js';
import type { Pki } from './pki.js';

export interface TestEtcd {
  endpoint: string;
  config: EtcdConfig;
  /** Environment to hand to a calicoctl child process. */
  env: NodeJS.ProcessEnv;
  dir: string;
  proc: OwnedProcess;
  kv(flavour?: KVFlavour): KV;
  /** Deletes every /calico key (between tests). */
  wipe(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEtcd(opts: { host?: string; name?: string; tls?: Pki } = {}): Promise<TestEtcd> {
  const host = opts.host ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'calico-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `${opts.tls ? 'https' : 'http'}://${host}:${clientPort}`;
  const tlsArgs = opts.tls
    ? ['--cert-file', opts.tls.serverCert, '--key-file', opts.tls.serverKey, '--trusted-ca-file', opts.tls.ca, '--client-cert-auth']
    : [];
  const proc = startProcess(
    'etcd',
    [
      '--name', opts.name ?? 'test',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://${host}:${peerPort}`,
      '--initial-advertise-peer-urls', `http://${host}:${peerPort}`,
      '--initial-cluster', `${opts.name ?? 'test'}=http://${host}:${peerPort}`,
      '--log-level', 'warn',
      '--logger', 'zap',
      ...tlsArgs,
    ],
    join(dir, 'etcd.log'),
    { env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch } },
  );
  const config: EtcdConfig = opts.tls
    ? { endpoints: [endpoint], isDefault: false, caFile: opts.tls.ca, certFile: opts.tls.clientCert, keyFile: opts.tls.clientKey }
    : { endpoints: [endpoint], isDefault: false };
  const probe = connectKV(config, 'cli');
  try {
    await waitFor('etcd to answer', async () => { await probe.list('/probe'); return true; }, 20000);
  } catch (err) {
    await proc.stop();
    const log = (() => { try { return readFileSync(join(dir, 'etcd.log'), 'utf8'); } catch { return ''; } })();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`etcd did not start: ${String(err)}\n${log.slice(-2000)}`);
  }
  const clients: KV[] = [probe];
  return {
    endpoint,
    config,
    env: opts.tls
      ? { ...process.env, ETCD_ENDPOINTS: endpoint, ETCD_AUTHORITY: '', ETCD_CA_CERT_FILE: opts.tls.ca, ETCD_CERT_FILE: opts.tls.clientCert, ETCD_KEY_FILE: opts.tls.clientKey }
      : { ...process.env, ETCD_ENDPOINTS: endpoint, ETCD_AUTHORITY: '' },
    dir,
    proc,
    kv(flavour: KVFlavour = 'cli') {
      const kv = connectKV(config, flavour);
      clients.push(kv);
      return kv;
    },
    async wipe() {
      await probe.deletePrefix('/calico');
    },
    async stop() {
      for (const c of clients) { try { c.close(); } catch { /* closed */ } }
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
