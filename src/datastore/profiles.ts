/**
 * Profiles at the stored level: the keys `rules`, `tags` and `labels` under
 * /calico/v1/policy/profile/<name>/. Used by the Powerstrip-era commands and the proxy (which
 * creates the profile a container names in CALICO_PROFILE).
 */
import { KV, mutate, NO_CHANGE } from './kv.js';
import { keys, parseProfileKey } from './keys.js';
import { StoredProfile, StoredProfileRules } from '../model/stored.js';
import { NotFoundError } from '../errors.js';

export async function listProfileNames(kv: KV): Promise<string[]> {
  const { entries } = await kv.list(keys.profilePrefix);
  const names = new Set<string>();
  for (const e of entries) {
    const p = parseProfileKey(e.key);
    if (p && (p.leaf === 'rules' || p.leaf === 'tags')) names.add(p.name);
  }
  return [...names].sort();
}

export async function readProfile(kv: KV, name: string): Promise<StoredProfile | undefined> {
  const { entries } = await kv.list(keys.profile(name));
  if (!entries.some((e) => e.key === keys.profileRules(name) || e.key === keys.profileTags(name))) return undefined;
  const leaf = (k: string) => entries.find((e) => e.key === k)?.value;
  const parse = <T>(v: string | undefined, d: T): T => { try { return v ? (JSON.parse(v) as T) : d; } catch { return d; } };
  const rules = parse<Partial<StoredProfileRules>>(leaf(keys.profileRules(name)), {});
  return {
    name,
    rules: { ...rules, inbound_rules: rules.inbound_rules ?? [], outbound_rules: rules.outbound_rules ?? [] },
    tags: parse<string[]>(leaf(keys.profileTags(name)), []),
    labels: parse<Record<string, string>>(leaf(keys.profileLabels(name)), {}),
  };
}

export async function profileExists(kv: KV, name: string): Promise<boolean> {
  return (await kv.get(keys.profileRules(name))) !== undefined || (await kv.get(keys.profileTags(name))) !== undefined;
}

/** Creates the profile atomically; false if it already existed (nothing is changed then). */
export async function createProfile(kv: KV, p: StoredProfile): Promise<boolean> {
  try {
    await kv.txn(
      [{ key: keys.profileRules(p.name), modRevision: '0' }, { key: keys.profileTags(p.name), modRevision: '0' }],
      [
        { op: 'put', key: keys.profileRules(p.name), value: JSON.stringify(p.rules) },
        { op: 'put', key: keys.profileTags(p.name), value: JSON.stringify(p.tags) },
        { op: 'put', key: keys.profileLabels(p.name), value: JSON.stringify(p.labels) },
      ],
    );
    return true;
  } catch (err) {
    if ((err as Error).name === 'ConflictError') return false;
    throw err;
  }
}

export async function deleteProfile(kv: KV, name: string): Promise<boolean> {
  return (await kv.deletePrefix(keys.profile(name))) > 0;
}

const notFound = (name: string) => new NotFoundError(`Profile ${name} not found.`);

/** Read-modify-write of the rules, compared on mod revision. `fn` returns undefined for no change. */
export async function updateProfileRules<T>(kv: KV, name: string, fn: (r: StoredProfileRules) => { rules?: StoredProfileRules; result: T }): Promise<T> {
  return (await mutate<T>(kv, keys.profileRules(name), async (cur) => {
    if (cur === undefined && !(await profileExists(kv, name))) throw notFound(name);
    const parsed = cur ? (JSON.parse(cur) as Partial<StoredProfileRules>) : {};
    const rules: StoredProfileRules = { id: parsed.id ?? name, ...parsed, inbound_rules: parsed.inbound_rules ?? [], outbound_rules: parsed.outbound_rules ?? [] };
    const out = fn(rules);
    return { value: out.rules ? JSON.stringify(out.rules) : NO_CHANGE, result: out.result };
  })) as T;
}

export async function updateProfileTags<T>(kv: KV, name: string, fn: (tags: string[]) => { tags?: string[]; result: T }): Promise<T> {
  return (await mutate<T>(kv, keys.profileTags(name), async (cur) => {
    if (cur === undefined && !(await profileExists(kv, name))) throw notFound(name);
    const out = fn(cur ? (JSON.parse(cur) as string[]) : []);
    return { value: out.tags ? JSON.stringify(out.tags) : NO_CHANGE, result: out.result };
  })) as T;
}
