/**
 * etcd v3 through its JSON gateway (`/v3/kv/*`), on node's own http/https.
 *
 * Why not the `etcd3` package here: it loads @grpc/grpc-js and a protobuf loader, which costs
 * about 100 ms before the first request. calicoctl runs once per command and must start in well
 * under 150 ms, so the short-lived CLI uses this small client; the long-running daemons, which
 * need watches and keep one connection, use `etcd-grpc.ts` (the etcd3 package). Both implement
 * the same `KV` contract and are tested against the same real etcd.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { KV, KVEntry, TxnGuard, TxnOp } from './kv.js';
import { ConflictError, DatastoreUnreachableError, CalicoError } from '../errors.js';
import { EtcdConfig } from './config.js';
import { prefixEnd } from './prefix.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

interface RawKv { key: string; value?: string; mod_revision?: string }
interface RangeResponse { header?: { revision?: string }; kvs?: RawKv[]; count?: string }

const REQUEST_TIMEOUT_MS = 5000;

export class EtcdHttpKV implements KV {
  readonly endpoints: string[];
  private readonly agent: http.Agent;
  private readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private active = 0;
  private readonly auth?: string;

  constructor(cfg: EtcdConfig) {
    this.endpoints = cfg.endpoints;
    const secure = cfg.endpoints.some((e) => e.startsWith('https:'));
    if (secure || cfg.caFile || cfg.certFile) {
      this.tls = {
        ca: cfg.caFile ? readFileSync(cfg.caFile) : undefined,
        cert: cfg.certFile ? readFileSync(cfg.certFile) : undefined,
        key: cfg.keyFile ? readFileSync(cfg.keyFile) : undefined,
      };
    }
    this.agent = secure ? new https.Agent({ keepAlive: true, ...this.tls }) : new http.Agent({ keepAlive: true });
    if (cfg.username) this.auth = `${cfg.username}:${cfg.password ?? ''}`;
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    let lastErr: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const idx = (this.active + i) % this.endpoints.length;
      try {
        const res = await this.request<T>(this.endpoints[idx]!, path, body);
        this.active = idx;
        return res;
      } catch (err) {
        if (err instanceof CalicoError) throw err;
        lastErr = err;
      }
    }
    throw new DatastoreUnreachableError(this.endpoints, lastErr);
  }

  private request<T>(endpoint: string, path: string, body: unknown): Promise<T> {
    const url = new URL(`/v3/${path}`, endpoint);
    const payload = JSON.stringify(body);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          timeout: REQUEST_TIMEOUT_MS,
          auth: this.auth,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              let msg = text;
              try { msg = (JSON.parse(text) as { message?: string; error?: string }).message ?? msg; } catch { /* raw text */ }
              reject(new CalicoError(`etcd at ${endpoint} refused ${path}: ${msg.trim()}`));
              return;
            }
            try { resolve(JSON.parse(text) as T); } catch (err) { reject(err); }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${endpoint} within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  private toEntry(kv: RawKv): KVEntry {
    return { key: unb64(kv.key), value: unb64(kv.value), modRevision: kv.mod_revision ?? '0' };
  }

  async get(key: string): Promise<KVEntry | undefined> {
    const r = await this.call<RangeResponse>('kv/range', { key: b64(key) });
    const kv = r.kvs?.[0];
    return kv ? this.toEntry(kv) : undefined;
  }

  async list(prefix: string): Promise<{ entries: KVEntry[]; revision: string }> {
    const r = await this.call<RangeResponse>('kv/range', { key: b64(prefix), range_end: b64(prefixEnd(prefix)) });
    return { entries: (r.kvs ?? []).map((kv) => this.toEntry(kv)), revision: r.header?.revision ?? '0' };
  }

  private static opToRequest(op: TxnOp): unknown {
    switch (op.op) {
      case 'put': return { request_put: { key: b64(op.key), value: b64(op.value) } };
      case 'delete': return { request_delete_range: { key: b64(op.key) } };
      case 'deletePrefix': return { request_delete_range: { key: b64(op.prefix), range_end: b64(prefixEnd(op.prefix)) } };
    }
  }

  private async txnRaw(guards: TxnGuard[], ops: TxnOp[]): Promise<{ succeeded: boolean; revision: string }> {
    const r = await this.call<{ succeeded?: boolean; header?: { revision?: string } }>('kv/txn', {
      compare: guards.map((g) => ({ target: 'MOD', key: b64(g.key), mod_revision: g.modRevision, result: 'EQUAL' })),
      success: ops.map((o) => EtcdHttpKV.opToRequest(o)),
    });
    return { succeeded: r.succeeded === true, revision: r.header?.revision ?? '0' };
  }

  async create(key: string, value: string): Promise<string> {
    const r = await this.txnRaw([{ key, modRevision: '0' }], [{ op: 'put', key, value }]);
    if (!r.succeeded) throw new ConflictError(key);
    return r.revision;
  }

  async update(key: string, value: string, modRevision: string): Promise<string> {
    const r = await this.txnRaw([{ key, modRevision }], [{ op: 'put', key, value }]);
    if (!r.succeeded) throw new ConflictError(key);
    return r.revision;
  }

  async put(key: string, value: string): Promise<string> {
    const r = await this.call<{ header?: { revision?: string } }>('kv/put', { key: b64(key), value: b64(value) });
    return r.header?.revision ?? '0';
  }

  async delete(key: string, modRevision?: string): Promise<boolean> {
    if (modRevision !== undefined) {
      const r = await this.call<{ succeeded?: boolean; responses?: Array<{ response_delete_range?: { deleted?: string } }> }>('kv/txn', {
        compare: [{ target: 'MOD', key: b64(key), mod_revision: modRevision, result: 'EQUAL' }],
        success: [{ request_delete_range: { key: b64(key) } }],
      });
      if (r.succeeded !== true) throw new ConflictError(key);
      return Number(r.responses?.[0]?.response_delete_range?.deleted ?? 0) > 0;
    }
    const r = await this.call<{ deleted?: string }>('kv/deleterange', { key: b64(key) });
    return Number(r.deleted ?? 0) > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const r = await this.call<{ deleted?: string }>('kv/deleterange', { key: b64(prefix), range_end: b64(prefixEnd(prefix)) });
    return Number(r.deleted ?? 0);
  }

  async txn(guards: TxnGuard[], ops: TxnOp[]): Promise<void> {
    const r = await this.txnRaw(guards, ops);
    if (!r.succeeded) throw new ConflictError(guards.map((g) => g.key).join(', '));
  }

  close(): void {
    this.agent.destroy();
  }
}
