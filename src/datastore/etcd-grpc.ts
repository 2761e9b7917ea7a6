/**
 * etcd v3 over gRPC with the `etcd3` package: the backend of the long-running daemons (node
 * agent, proxy), which keep one connection and need watches. See etcd-h2.ts for why the CLI
 * uses its own small gRPC client instead.
 */
import type { Etcd3, IOptions, IRequestOp, ICompare, IKeyValue } from 'etcd3';
import { KV, KVEntry, TxnGuard, TxnOp, WatchEvent, Watcher } from './kv.js';
import { ConflictError, DatastoreUnreachableError, CalicoError } from '../errors.js';
import { EtcdConfig, readTlsFile } from './config.js';
import { prefixEnd } from './prefix.js';

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The store compacted the revision a watch asked for: the caller must resync from a fresh list. */
export class CompactedError extends CalicoError {
  constructor(readonly compactRevision: string) {
    super(`etcd compacted history up to revision ${compactRevision}; a resync is needed`);
  }
}

export class EtcdGrpcKV implements KV {
  readonly endpoints: string[];
  private readonly client: Etcd3;

  constructor(cfg: EtcdConfig) {
    this.endpoints = cfg.endpoints;
    // Loaded here, not at module load, so that importing the datastore stays cheap.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Etcd3: Client } = require('etcd3') as typeof import('etcd3');
    const opts: IOptions = { hosts: cfg.endpoints, dialTimeout: 3000 };
    if (cfg.caFile || cfg.certFile) {
      opts.credentials = {
        rootCertificate: cfg.caFile ? readTlsFile(cfg.caFile, 'ETCD_CA_CERT_FILE') : Buffer.alloc(0),
        privateKey: cfg.keyFile ? readTlsFile(cfg.keyFile, 'ETCD_KEY_FILE') : undefined,
        certChain: cfg.certFile ? readTlsFile(cfg.certFile, 'ETCD_CERT_FILE') : undefined,
      };
    }
    if (cfg.username) opts.auth = { username: cfg.username, password: cfg.password ?? '' };
    // Fail fast on a dead endpoint instead of the package's default long retry policy.
    opts.defaultCallOptions = () => ({ deadline: Date.now() + 5000 });
    this.client = new Client(opts);
  }

  private async rpc<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CalicoError) throw err;
      const name = (err as Error).constructor?.name ?? '';
      if (/Unavailable|DeadlineExceeded|ConnectFailed|Cancelled/.test(name) || /ECONNREFUSED|No connection|deadline/i.test(String((err as Error).message))) {
        throw new DatastoreUnreachableError(this.endpoints, err);
      }
      throw new CalicoError(`etcd error: ${(err as Error).message}`, { cause: err });
    }
  }

  private static entry(kv: IKeyValue): KVEntry {
    return { key: kv.key.toString('utf8'), value: kv.value.toString('utf8'), modRevision: String(kv.mod_revision) };
  }

  async get(key: string): Promise<KVEntry | undefined> {
    const r = await this.rpc(() => this.client.kv.range({ key: buf(key) }));
    return r.kvs[0] ? EtcdGrpcKV.entry(r.kvs[0]) : undefined;
  }

  async list(prefix: string, opts: { keysOnly?: boolean } = {}): Promise<{ entries: KVEntry[]; revision: string }> {
    const r = await this.rpc(() => this.client.kv.range({ key: buf(prefix), range_end: Buffer.from(prefixEnd(prefix), 'latin1'), keys_only: opts.keysOnly === true }));
    return { entries: r.kvs.map(EtcdGrpcKV.entry), revision: String(r.header.revision) };
  }

  private static op(o: TxnOp): IRequestOp {
    switch (o.op) {
      case 'put': return { request_put: { key: buf(o.key), value: buf(o.value) } };
      case 'delete': return { request_delete_range: { key: buf(o.key) } };
      case 'deletePrefix': return { request_delete_range: { key: buf(o.prefix), range_end: Buffer.from(prefixEnd(o.prefix), 'latin1') } };
    }
  }

  private async txnRaw(guards: TxnGuard[], ops: TxnOp[]) {
    const compare: ICompare[] = guards.map((g) => ({ key: buf(g.key), target: 'Mod', result: 'Equal', mod_revision: g.modRevision }));
    return this.rpc(() => this.client.kv.txn({ compare, success: ops.map(EtcdGrpcKV.op), failure: [] }));
  }

  async create(key: string, value: string): Promise<string> {
    const r = await this.txnRaw([{ key, modRevision: '0' }], [{ op: 'put', key, value }]);
    if (!r.succeeded) throw new ConflictError(key);
    return String(r.header.revision);
  }

  async update(key: string, value: string, modRevision: string): Promise<string> {
    const r = await this.txnRaw([{ key, modRevision }], [{ op: 'put', key, value }]);
    if (!r.succeeded) throw new ConflictError(key);
    return String(r.header.revision);
  }

  async put(key: string, value: string): Promise<string> {
    const r = await this.rpc(() => this.client.kv.put({ key: buf(key), value: buf(value) }));
    return String(r.header.revision);
  }

  async delete(key: string, modRevision?: string): Promise<boolean> {
    if (modRevision !== undefined) {
      const r = await this.txnRaw([{ key, modRevision }], [{ op: 'delete', key }]);
      if (!r.succeeded) throw new ConflictError(key);
      return Number(r.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
    }
    const r = await this.rpc(() => this.client.kv.deleteRange({ key: buf(key) }));
    return Number(r.deleted) > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const r = await this.rpc(() => this.client.kv.deleteRange({ key: buf(prefix), range_end: Buffer.from(prefixEnd(prefix), 'latin1') }));
    return Number(r.deleted);
  }

  async txn(guards: TxnGuard[], ops: TxnOp[]): Promise<string> {
    const r = await this.txnRaw(guards, ops);
    if (!r.succeeded) throw new ConflictError(guards.map((g) => g.key).join(', '));
    return String(r.header.revision);
  }

  async watch(
    prefix: string,
    afterRevision: string,
    onEvents: (events: WatchEvent[]) => void,
    onError: (err: Error) => void,
  ): Promise<Watcher> {
    const w = await this.rpc(() =>
      this.client.watch().prefix(prefix).startRevision(String(BigInt(afterRevision) + 1n)).create(),
    );
    w.on('data', (res) => {
      if (res.compact_revision && String(res.compact_revision) !== '0') {
        onError(new CompactedError(String(res.compact_revision)));
        return;
      }
      if (!res.events?.length) return;
      onEvents(
        res.events.map((e) => ({
          type: e.type === 'Delete' || (e.type as unknown) === 1 ? 'delete' : 'put',
          key: e.kv.key.toString('utf8'),
          value: e.kv.value.toString('utf8'),
          modRevision: String(e.kv.mod_revision),
        })),
      );
    });
    w.on('error', (err) => onError(err));
    return { close: () => w.cancel() };
  }

  close(): void {
    this.client.close();
  }
}
