/** Builds a KV for the configured etcd: the lean gRPC-over-http2 client for one-shot commands, gRPC for daemons. */
import { KV } from './kv.js';
import { EtcdConfig, loadEtcdConfig } from './config.js';

export type KVFlavour = 'cli' | 'daemon';

export function connectKV(cfg: EtcdConfig = loadEtcdConfig(), flavour: KVFlavour = 'cli'): KV {
  if (flavour === 'daemon') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { EtcdGrpcKV } = require('./etcd-grpc.js') as typeof import('./etcd-grpc.js');
    return new EtcdGrpcKV(cfg);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { EtcdH2KV } = require('./etcd-h2.js') as typeof import('./etcd-h2.js');
  return new EtcdH2KV(cfg);
}
