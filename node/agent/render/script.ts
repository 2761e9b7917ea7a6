/**
 * Ruleset model -> nft commands: a full (re)build, or the difference between two models.
 *
 * The full build replaces the table atomically: `add table; delete table; add table; ...` in one
 * transaction, so packets see either the old ruleset or the new one, never none; established
 * flows survive because conntrack is untouched and every endpoint chain accepts established.
 *
 * The difference touches only what changed, in an order the kernel accepts within one
 * transaction: new sets/maps, set element deltas, new chains (empty), chain contents (flush and
 * refill), map element deltas, then removed chains (flushed first so that removed chains that
 * jump to each other can go), then removed sets/maps.
 */
import { Ruleset, ChainSpec, SetSpec } from './ruleset.js';
import { NftTableRef, tableSpec } from '../../../src/dataplane/nftables.js';

function chainDecl(t: string, c: ChainSpec): string {
  if (!c.base) return `add chain ${t} ${c.name}`;
  const b = c.base;
  return `add chain ${t} ${c.name} { type ${b.type} hook ${b.hook} priority ${b.priority}; policy ${b.policy}; }`;
}

function setDecl(t: string, s: SetSpec): string {
  return `add set ${t} ${s.name} { type ${s.type};${s.interval ? ' flags interval;' : ''} }`;
}

const ELEMENT_CHUNK = 4000;

function elementCmds(verb: 'add' | 'delete', t: string, set: string, items: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < items.length; i += ELEMENT_CHUNK) out.push(`${verb} element ${t} ${set} { ${items.slice(i, i + ELEMENT_CHUNK).join(', ')} }`);
  return out;
}

const mapItem = (k: string, v: string) => `"${k}" : ${v}`;

/** Commands that (re)build the whole table from nothing, atomically replacing what is there. */
export function fullScript(rs: Ruleset, table: NftTableRef): string[] {
  const t = tableSpec(table);
  const cmds = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  for (const s of rs.sets.values()) {
    cmds.push(setDecl(t, s));
    if (s.elements.size) cmds.push(...elementCmds('add', t, s.name, [...s.elements]));
  }
  for (const m of rs.maps.values()) cmds.push(`add map ${t} ${m.name} { type ifname : verdict; }`);
  for (const c of rs.chains.values()) cmds.push(chainDecl(t, c));
  for (const c of rs.chains.values()) for (const r of c.rules) cmds.push(`add rule ${t} ${c.name} ${r}`);
  for (const m of rs.maps.values()) {
    if (m.elements.size) cmds.push(...elementCmds('add', t, m.name, [...m.elements].map(([k, v]) => mapItem(k, v))));
  }
  return cmds;
}

export interface DiffResult {
  commands: string[];
  /** Something changed that a difference cannot express (a base chain's hook, a set's type): rebuild. */
  needsRebuild: boolean;
  changedChains: number;
}

function sameRules(a: ChainSpec, b: ChainSpec): boolean {
  if (a === b) return true;
  if (a.hashes.length !== b.hashes.length) return false;
  for (let i = 0; i < a.hashes.length; i++) if (a.hashes[i] !== b.hashes[i]) return false;
  return true;
}

function sameBase(a: ChainSpec, b: ChainSpec): boolean {
  if (!a.base || !b.base) return !a.base && !b.base;
  return a.base.type === b.base.type && a.base.hook === b.base.hook && a.base.priority === b.base.priority && a.base.policy === b.base.policy;
}

export function diffScript(prev: Ruleset, next: Ruleset, table: NftTableRef): DiffResult {
  const t = tableSpec(table);
  const cmds: string[] = [];
  const rebuild = (): DiffResult => ({ commands: [], needsRebuild: true, changedChains: 0 });

  // 1-2: sets
  for (const s of next.sets.values()) {
    const p = prev.sets.get(s.name);
    if (!p) {
      cmds.push(setDecl(t, s));
      if (s.elements.size) cmds.push(...elementCmds('add', t, s.name, [...s.elements]));
      continue;
    }
    if (p.type !== s.type || p.interval !== s.interval) return rebuild();
    if (p.elements === s.elements) continue;
    const del = [...p.elements].filter((e) => !s.elements.has(e));
    const add = [...s.elements].filter((e) => !p.elements.has(e));
    cmds.push(...elementCmds('delete', t, s.name, del), ...elementCmds('add', t, s.name, add));
  }
  for (const m of next.maps.values()) if (!prev.maps.has(m.name)) cmds.push(`add map ${t} ${m.name} { type ifname : verdict; }`);

  // 3-4: chains
  let changed = 0;
  for (const c of next.chains.values()) {
    const p = prev.chains.get(c.name);
    if (!p) cmds.push(chainDecl(t, c));
    else if (!sameBase(p, c)) return rebuild();
  }
  for (const c of next.chains.values()) {
    const p = prev.chains.get(c.name);
    if (p && sameRules(p, c)) continue;
    changed++;
    if (p) cmds.push(`flush chain ${t} ${c.name}`);
    for (const r of c.rules) cmds.push(`add rule ${t} ${c.name} ${r}`);
  }

  // 5: verdict maps
  for (const m of next.maps.values()) {
    const p = prev.maps.get(m.name);
    const old = p?.elements ?? new Map<string, string>();
    if (old === m.elements) continue;
    const del: string[] = [];
    const add: string[] = [];
    for (const [k, v] of old) if (m.elements.get(k) !== v) del.push(`"${k}"`);
    for (const [k, v] of m.elements) if (old.get(k) !== v) add.push(mapItem(k, v));
    cmds.push(...elementCmds('delete', t, m.name, del), ...elementCmds('add', t, m.name, add));
  }

  // 6-7: removals
  const gone = [...prev.chains.keys()].filter((n) => !next.chains.has(n));
  for (const n of gone) cmds.push(`flush chain ${t} ${n}`);
  for (const n of gone) cmds.push(`delete chain ${t} ${n}`);
  for (const m of prev.maps.keys()) if (!next.maps.has(m)) cmds.push(`delete map ${t} ${m}`);
  for (const s of prev.sets.keys()) if (!next.sets.has(s)) cmds.push(`delete set ${t} ${s}`);
  return { commands: cmds, needsRebuild: false, changedChains: changed + gone.length };
}
