/**
 * Network namespaces: named ones under /run/netns (what `ip netns` manages) and any other one by
 * path, e.g. a container's /proc/<pid>/ns/net.
 *
 * Every primitive in this directory takes `{ netns }`: absent means "the namespace this process
 * is in" (the production case: the node agent and the proxy run in the host's namespace), present
 * means the command runs inside that namespace. Node cannot switch a thread's namespace, so
 * commands are run there instead: `ip -n <name>` when the namespace has a name (one exec),
 * `nsenter --net=<path>` otherwise (one extra exec, ~0.7 ms measured).
 */
import { existsSync, readdirSync } from 'node:fs';
import { run, RunOptions, RunResult } from './exec.js';
import { NetnsExistsError, NetnsNotFoundError, CommandFailedError } from './errors.js';
import { ValidationError } from '../errors.js';

export const NETNS_RUN_DIR = '/run/netns';

export interface Netns {
  /** A path that opens the namespace: /run/netns/<name> or /proc/<pid>/ns/net. */
  readonly path: string;
  /** Set when the namespace is a named one under /run/netns (lets `ip -n` be used). */
  readonly name?: string;
}

/** Options every primitive takes: the namespace to act in (default: our own). */
export interface InNetns {
  netns?: Netns;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function netnsByName(name: string): Netns {
  if (!NAME_RE.test(name) || name === '.' || name === '..') {
    throw new ValidationError(`'${name}' is not a valid network namespace name (letters, digits, '_', '.', '-')`, 'netns');
  }
  return { name, path: `${NETNS_RUN_DIR}/${name}` };
}

export function netnsByPath(path: string): Netns {
  const m = new RegExp(`^${NETNS_RUN_DIR}/([^/]+)$`).exec(path);
  if (m && NAME_RE.test(m[1]!)) return { name: m[1]!, path };
  if (!path.startsWith('/')) throw new ValidationError(`network namespace path '${path}' must be absolute`, 'netns');
  return { path };
}

export function netnsOfPid(pid: number): Netns {
  if (!Number.isInteger(pid) || pid <= 0) throw new ValidationError(`'${pid}' is not a process id`, 'pid');
  return { path: `/proc/${pid}/ns/net` };
}

export function describeNetns(ns: Netns | undefined): string {
  if (!ns) return 'the current network namespace';
  return ns.name ? `netns ${ns.name}` : `netns ${ns.path}`;
}

export function netnsExists(ns: Netns): boolean {
  return existsSync(ns.path);
}

/** argv that runs `cmd args` inside `ns` (unchanged when ns is absent). */
export function commandInNetns(ns: Netns | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  if (!ns) return [cmd, [...args]];
  if (cmd === 'ip' && ns.name) return ['ip', ['-n', ns.name, ...args]];
  return ['nsenter', [`--net=${ns.path}`, cmd, ...args]];
}

/** Runs a command inside a network namespace. */
export async function runInNetns(ns: Netns | undefined, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [c, a] = commandInNetns(ns, cmd, args);
  try {
    return await run(c, a, opts);
  } catch (err) {
    if (ns && err instanceof CommandFailedError && !netnsExists(ns)) throw new NetnsNotFoundError(ns.name ?? ns.path);
    throw err;
  }
}

/** Creates a named namespace (with its loopback up unless told otherwise). */
export async function createNetns(name: string, opts: { loopbackUp?: boolean } = {}): Promise<Netns> {
  const ns = netnsByName(name);
  if (netnsExists(ns)) throw new NetnsExistsError(name);
  await run('ip', ['netns', 'add', name]);
  if (opts.loopbackUp ?? true) {
    try {
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    } catch (err) {
      await run('ip', ['netns', 'del', name]).catch(() => undefined);
      throw err;
    }
  }
  return ns;
}

/** Deletes a named namespace. Returns false when it did not exist. */
export async function deleteNetns(name: string): Promise<boolean> {
  const ns = netnsByName(name);
  if (!netnsExists(ns)) return false;
  await run('ip', ['netns', 'del', name]);
  return true;
}

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch {
    return [];
  }
}
