/** What every command needs: the datastore (connected lazily, once) and this host's node name. */
import type { KV } from '../src/datastore/kv.js';

export interface GlobalOptions {
  config?: string;
  logLevel?: string;
}

let kvInstance: KV | undefined;
let globals: GlobalOptions = {};

export function setGlobals(g: GlobalOptions): void {
  globals = g;
}

export function getGlobals(): GlobalOptions {
  return globals;
}

export function kv(): KV {
  if (!kvInstance) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadEtcdConfig } = require('../src/datastore/config.js') as typeof import('../src/datastore/config.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { connectKV } = require('../src/datastore/connect.js') as typeof import('../src/datastore/connect.js');
    kvInstance = connectKV(loadEtcdConfig({ configFile: globals.config }), 'cli');
  }
  return kvInstance;
}

export function closeKv(): void {
  kvInstance?.close();
  kvInstance = undefined;
}

export function nodeName(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../src/nodename.js') as typeof import('../src/nodename.js')).nodeName();
}

/** Prints a line to stdout. */
export function say(line = ''): void {
  process.stdout.write(line + '\n');
}

/**
 * The network namespace calicoctl treats as "this host" for dataplane work (node, container):
 * CALICO_NETNS (a name under /run/netns or a path), for hosts that are namespaces (the lab, tests).
 * Undefined means the namespace calicoctl runs in.
 */
export function hostNetnsRef(): string | undefined {
  return process.env.CALICO_NETNS?.trim() || undefined;
}
