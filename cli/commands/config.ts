/**
 * `config set|get|unset <NAME>` (calicoctl v1.6): logLevel, nodeToNodeMesh, asNumber, ipip.
 * Each name maps onto the keys the BGP speaker and the node agent read.
 */
import { kv, say } from '../context.js';
import { keys } from '../../src/datastore/keys.js';
import { parseAsNumber, validateLogLevel, validateName } from '../../src/model/resources.js';
import { DEFAULT_AS } from '../../src/model/stored.js';
import { UsageError, ValidationError } from '../../src/errors.js';

interface Setting {
  perNode: boolean;
  /** key -> value to write, for the given input. */
  write(value: string, node?: string): Record<string, string>;
  keys(node?: string): string[];
  read(values: Array<string | undefined>): string | undefined;
  fallback: string;
}

const onOff = (v: string, name: string): boolean => {
  if (v !== 'on' && v !== 'off') throw new ValidationError(`${name} must be on or off, not '${v}'`, name);
  return v === 'on';
};

const SETTINGS: Record<string, Setting> = {
  logLevel: {
    perNode: true,
    keys: (n) => (n ? [keys.bgpHostLogLevel(n), keys.hostConfig(n, 'LogSeverityScreen')] : [keys.bgpLogLevel, keys.felixConfig('LogSeverityScreen')]),
    write(v, n) {
      const lvl = validateLogLevel(v, 'logLevel');
      const [bgpKey, felixKey] = this.keys(n) as [string, string];
      return { [bgpKey]: lvl, [felixKey]: lvl === 'none' ? 'FATAL' : lvl.toUpperCase() };
    },
    read: (vals) => vals[0],
    fallback: 'info',
  },
  nodeToNodeMesh: {
    perNode: false,
    keys: () => [keys.bgpNodeMesh],
    write: (v) => ({ [keys.bgpNodeMesh]: JSON.stringify({ enabled: onOff(v, 'nodeToNodeMesh') }) }),
    read: (vals) => {
      if (vals[0] === undefined) return undefined;
      try { return (JSON.parse(vals[0]) as { enabled?: boolean }).enabled === false ? 'off' : 'on'; } catch { return 'on'; }
    },
    fallback: 'on',
  },
  asNumber: {
    perNode: true,
    keys: (n) => [n ? keys.bgpHostAs(n) : keys.bgpGlobalAs],
    write(v, n) { return { [this.keys(n)[0]!]: String(parseAsNumber(v, 'asNumber')) }; },
    read: (vals) => vals[0] || undefined,
    fallback: String(DEFAULT_AS),
  },
  ipip: {
    perNode: false,
    keys: () => [keys.felixConfig('IpInIpEnabled')],
    write: (v) => ({ [keys.felixConfig('IpInIpEnabled')]: String(onOff(v, 'ipip')) }),
    read: (vals) => (vals[0] === undefined ? undefined : vals[0] === 'true' ? 'on' : 'off'),
    fallback: 'off',
  },
};

function setting(name: string, node: string | undefined): Setting {
  const s = SETTINGS[name];
  if (!s) throw new UsageError(`unknown setting '${name}'`, `settings: ${Object.keys(SETTINGS).join(', ')}`);
  if (node !== undefined) {
    validateName(node, '--node');
    if (!s.perNode) throw new UsageError(`${name} is global: it cannot be set per node (drop --node)`);
  }
  return s;
}

export async function set(name: string, value: string, o: { node?: string }): Promise<void> {
  const s = setting(name, o.node);
  const writes = s.write(value, o.node);
  await kv().txn([], Object.entries(writes).map(([key, v]) => ({ op: 'put' as const, key, value: v })));
}

export async function get(name: string, o: { node?: string }): Promise<void> {
  const s = setting(name, o.node);
  const vals = await Promise.all(s.keys(o.node).map(async (k) => (await kv().get(k))?.value));
  let v = s.read(vals);
  if (v === undefined && o.node) v = s.read(await Promise.all(s.keys().map(async (k) => (await kv().get(k))?.value)));
  say(v ?? s.fallback);
}

export async function unset(name: string, o: { node?: string }): Promise<void> {
  const s = setting(name, o.node);
  await kv().txn([], s.keys(o.node).map((key) => ({ op: 'delete' as const, key })));
}
