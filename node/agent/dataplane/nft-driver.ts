/**
 * Keeps table `inet calico` equal to the rendered model: full atomic rebuilds (start, repair)
 * through a one-shot `nft -f`, and differences through a long-lived `nft -i` session (see
 * src/dataplane/nftables.ts for why). Any failed difference falls back to a full rebuild, so a
 * kernel state we did not expect can never wedge the agent.
 *
 * The drift check reads the table back (`nft -j list table`) and compares what can be compared
 * cheaply and exactly: chain names, base chain hooks, the hash comment of every rule (in order),
 * set and map elements.
 */
import { Netns, NftSession, nftApply, nftListTable, CALICO_TABLE, NftTableRef } from '../../../src/dataplane/index.js';
import type { Logger } from '../../../src/log.js';
import { errorMessage } from '../../../src/errors.js';
import { Ruleset } from '../render/ruleset.js';
import { fullScript, diffScript } from '../render/script.js';

export interface NftApplyStats {
  mode: 'full' | 'diff' | 'noop';
  commands: number;
  changedChains: number;
}

interface NftJsonEntry {
  chain?: { name: string; type?: string; hook?: string; prio?: number; policy?: string };
  set?: { name: string; elem?: unknown[] };
  map?: { name: string; elem?: unknown[] };
  rule?: { chain: string; comment?: string };
}

export class NftDriver {
  private applied?: Ruleset;
  private readonly session: NftSession;
  private readonly table: NftTableRef;

  constructor(private readonly netns: Netns | undefined, private readonly log: Logger, table: NftTableRef = CALICO_TABLE) {
    this.table = table;
    this.session = new NftSession({ netns, table, logger: log });
  }

  get current(): Ruleset | undefined {
    return this.applied;
  }

  /** Forgets what was applied: the next apply is a full rebuild. */
  invalidate(): void {
    this.applied = undefined;
  }

  async apply(next: Ruleset): Promise<NftApplyStats> {
    if (this.applied) {
      const d = diffScript(this.applied, next, this.table);
      if (!d.needsRebuild) {
        if (d.commands.length === 0) {
          this.applied = next;
          return { mode: 'noop', commands: 0, changedChains: 0 };
        }
        try {
          await this.session.apply(d.commands.join('\n'));
          this.applied = next;
          return { mode: 'diff', commands: d.commands.length, changedChains: d.changedChains };
        } catch (err) {
          this.log.warn('incremental nftables update failed; rebuilding the table', { error: errorMessage(err).slice(0, 1000) });
        }
      }
    }
    const cmds = fullScript(next, this.table);
    this.applied = undefined;
    await nftApply(cmds.join('\n') + '\n', { netns: this.netns, table: this.table });
    this.applied = next;
    return { mode: 'full', commands: cmds.length, changedChains: next.chains.size };
  }

  /** Differences between the kernel and the last applied model (empty: in sync). */
  async findDrift(): Promise<string[]> {
    const want = this.applied;
    if (!want) return ['nothing applied yet'];
    const text = await nftListTable(this.table, { netns: this.netns, json: true });
    if (text === undefined) return ['table is missing'];
    const entries = (JSON.parse(text) as { nftables: NftJsonEntry[] }).nftables;
    const drift: string[] = [];
    const chains = new Map<string, { base?: string; comments: string[] }>();
    const sets = new Map<string, string[]>();
    const maps = new Map<string, string[]>();
    for (const e of entries) {
      if (e.chain) chains.set(e.chain.name, { base: e.chain.hook ? `${e.chain.type}/${e.chain.hook}/${e.chain.prio}/${e.chain.policy}` : undefined, comments: [] });
      else if (e.set) sets.set(e.set.name, (e.set.elem ?? []).map(elementText));
      else if (e.map) maps.set(e.map.name, (e.map.elem ?? []).map(mapElementText));
      else if (e.rule) chains.get(e.rule.chain)?.comments.push(e.rule.comment ?? '(no comment)');
    }
    for (const [name, c] of want.chains) {
      const k = chains.get(name);
      if (!k) { drift.push(`chain ${name} missing`); continue; }
      const base = c.base ? `${c.base.type}/${c.base.hook}/${c.base.priority}/${c.base.policy}` : undefined;
      if (base !== k.base) drift.push(`chain ${name} hook changed`);
      if (k.comments.length !== c.hashes.length || k.comments.some((h, i) => h !== c.hashes[i])) {
        drift.push(`chain ${name}: ${k.comments.length} rules in the kernel, ${c.hashes.length} expected, or changed`);
      }
    }
    for (const name of chains.keys()) if (!want.chains.has(name)) drift.push(`unexpected chain ${name}`);
    for (const [name, s] of want.sets) {
      const k = sets.get(name);
      if (!k) { drift.push(`set ${name} missing`); continue; }
      // Our elements are nft syntax (quoted interface names, /32 on interval sets); the kernel's are bare.
      const exp = new Set([...s.elements].map((x) => x.replace(/"/g, '').replace(/\/(32|128)$/, '')));
      if (k.length !== exp.size || k.some((x) => !exp.has(x))) drift.push(`set ${name}: elements differ (${k.length} in the kernel, ${exp.size} expected)`);
    }
    for (const name of sets.keys()) if (!want.sets.has(name)) drift.push(`unexpected set ${name}`);
    for (const [name, m] of want.maps) {
      const k = maps.get(name);
      if (!k) { drift.push(`map ${name} missing`); continue; }
      const exp = new Set([...m.elements].map(([a, b]) => `${a} ${b}`));
      if (k.length !== exp.size || k.some((x) => !exp.has(x))) drift.push(`map ${name}: elements differ`);
    }
    return drift;
  }

  /** Rebuilds the table from the last applied model. */
  async repair(): Promise<void> {
    const want = this.applied;
    if (!want) return;
    this.applied = undefined;
    await this.apply(want);
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

function elementText(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    if (o.prefix && typeof o.prefix === 'object') {
      const p = o.prefix as { addr: string; len: number };
      return `${p.addr}/${p.len}`;
    }
    if (Array.isArray(o.range)) return `${String(o.range[0])}-${String(o.range[1])}`;
    if (Array.isArray(o.concat)) return o.concat.map(elementText).join(' . ');
    if (o.elem && typeof o.elem === 'object') return elementText((o.elem as { val: unknown }).val);
  }
  return JSON.stringify(e);
}

function mapElementText(e: unknown): string {
  if (Array.isArray(e) && e.length === 2) {
    const v = e[1] as Record<string, { target?: string }>;
    const verb = Object.keys(v)[0] ?? '?';
    return `${elementText(e[0])} ${verb} ${v[verb]?.target ?? ''}`.trim();
  }
  return JSON.stringify(e);
}
