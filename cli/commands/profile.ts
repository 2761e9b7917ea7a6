/** The Powerstrip-era `profile` commands, with the originals' messages and tables. */
import type { Command } from 'commander';
import { kv, say } from '../context.js';
import { prettyTable, emitListing } from '../output.js';
import { readInput } from './io.js';
import { validateProfileName, validateProfileTag } from '../../src/model/resources.js';
import { defaultProfile, StoredProfileRules, StoredRule } from '../../src/model/stored.js';
import { parseRuleWords, formatRuleList, rulesEqual } from '../../src/model/rule-text.js';
import { validateStoredRule } from '../../src/model/rules.js';
import {
  createProfile, deleteProfile, listProfileNames, profileExists, readProfile, updateProfileRules, updateProfileTags,
} from '../../src/datastore/profiles.js';
import { listEndpoints } from '../../src/datastore/endpoints.js';
import { CalicoError, NotFoundError, UsageError, ValidationError } from '../../src/errors.js';

export async function add(name: string): Promise<void> {
  validateProfileName(name, 'profile');
  if (await createProfile(kv(), defaultProfile(name))) say(`Created profile ${name}`);
  else say(`Profile ${name} already exists.`);
}

export async function remove(name: string, o: { check: boolean }): Promise<void> {
  validateProfileName(name, 'profile');
  if (!(await profileExists(kv(), name))) throw new NotFoundError(`Couldn't find profile with name ${name}`);
  if (o.check) {
    // The original never checked (a TODO); removing a profile in use silently isolates endpoints.
    const users = (await listEndpoints(kv())).filter((r) => r.ep.profile_ids.includes(name));
    if (users.length) {
      throw new CalicoError(`Profile ${name} is in use by ${users.length} endpoint(s): ${users.slice(0, 5).map((u) => u.id).join(', ')}${users.length > 5 ? ', ...' : ''}`, {
        hint: 'remove it from those endpoints first (calicoctl endpoint <ID> profile remove ...), or pass --no-check',
      });
    }
  }
  await deleteProfile(kv(), name);
  say(`Deleted profile ${name}`);
}

export async function show(o: { detailed?: boolean; output?: string }): Promise<void> {
  const names = await listProfileNames(kv());
  if (!o.detailed) {
    emitListing(o.output, names.map((name) => ({ name })), () => prettyTable(['Name'], names.map((n) => [n])));
    return;
  }
  const eps = await listEndpoints(kv());
  const rows: Array<{ name: string; host: string | null; workloadType: string | null; workloadId: string | null; endpointId: string | null; state: string | null }> = [];
  for (const name of names) {
    const members = eps.filter((e) => e.ep.profile_ids.includes(name));
    if (members.length === 0) rows.push({ name, host: null, workloadType: null, workloadId: null, endpointId: null, state: null });
    for (const m of members) rows.push({ name, host: m.node, workloadType: m.orchestrator, workloadId: m.workload, endpointId: m.id, state: m.ep.state });
  }
  emitListing(o.output, rows, () => prettyTable(
    ['Name', 'Host', 'Workload Type', 'Workload ID', 'Endpoint ID', 'State'],
    rows.map((r) => [r.name, r.host ?? 'None', r.workloadType ?? 'None', r.workloadId ? r.workloadId.slice(0, 12) : 'None', r.endpointId ?? 'None', r.state ?? 'None']),
  ));
}

/** `profile <P> tag ...` and `profile <P> rule ...` */
export async function perProfile(name: string | undefined, args: string[], o: { at?: string }, cmd: Command): Promise<void> {
  if (!name) { cmd.outputHelp(); throw new UsageError('profile needs a subcommand'); }
  const [area, action, ...rest] = args;
  validateProfileName(name, 'profile');
  if (area === 'tag') return tagCmd(name, action, rest);
  if (area === 'rule') return ruleCmd(name, action, rest, o);
  if (area === 'member') throw new UsageError('`profile <P> member add` was removed in v0.4.7', 'use: calicoctl endpoint <ENDPOINT_ID> profile append <P>');
  throw new UsageError(`unknown profile command '${[name, ...args].join(' ')}'`, 'expected: profile add|remove|show, profile <P> tag add|remove|show, profile <P> rule add|remove|show|json|update');
}

async function tagCmd(name: string, action: string | undefined, rest: string[]): Promise<void> {
  if (action === 'show') {
    if (rest.length) throw new UsageError('tag show takes no arguments');
    const p = await readProfile(kv(), name);
    if (!p) throw new NotFoundError(`Profile ${name} not found.`);
    for (const t of p.tags) say(t);
    return;
  }
  if (action !== 'add' && action !== 'remove') throw new UsageError(`unknown tag command '${action ?? ''}'`, 'expected: profile <P> tag add|remove <TAG>, or tag show');
  if (rest.length !== 1) throw new UsageError(`tag ${action} takes one TAG`);
  const tag = validateProfileTag(rest[0], 'tag');
  if (action === 'add') {
    await updateProfileTags(kv(), name, (tags) => (tags.includes(tag) ? { result: undefined } : { tags: [...tags, tag], result: undefined }));
    say(`Tag ${tag} added to profile ${name}`);
  } else {
    const removed = await updateProfileTags(kv(), name, (tags) => (tags.includes(tag) ? { tags: tags.filter((t) => t !== tag), result: true } : { result: false }));
    if (!removed) throw new CalicoError(`Tag ${tag} is not on profile ${name}`);
    say(`Tag ${tag} removed from profile ${name}`);
  }
}

function parsePosition(at: string): number {
  if (!/^-?\d+$/.test(at)) throw new ValidationError(`--at: '${at}' is not a position (a whole number, 1 = first)`, 'at');
  return Number(at);
}

async function ruleCmd(name: string, action: string | undefined, rest: string[], o: { at?: string }): Promise<void> {
  switch (action) {
    case 'show': {
      const p = await readProfile(kv(), name);
      if (!p) throw new NotFoundError(`Profile ${name} not found.`);
      process.stdout.write(formatRuleList('Inbound', p.rules.inbound_rules) + '\n' + formatRuleList('Outbound', p.rules.outbound_rules) + '\n');
      return;
    }
    case 'json': {
      const p = await readProfile(kv(), name);
      if (!p) throw new NotFoundError(`Profile ${name} not found.`);
      say(JSON.stringify({ id: name, inbound_rules: p.rules.inbound_rules, outbound_rules: p.rules.outbound_rules }, null, 2));
      return;
    }
    case 'update': {
      const text = readInput('-');
      let doc: Partial<StoredProfileRules> & { id?: string };
      try { doc = JSON.parse(text) as typeof doc; } catch (err) { throw new ValidationError(`rules JSON on stdin is not valid JSON: ${(err as Error).message}`, 'rules'); }
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ValidationError('rules JSON must be an object with id, inbound_rules and outbound_rules', 'rules');
      if (doc.id !== name) throw new ValidationError(`Rules JSON "id"=${String(doc.id)} doesn't match profile name ${name}.`, 'id');
      for (const k of ['inbound_rules', 'outbound_rules'] as const) {
        if (!Array.isArray(doc[k])) throw new ValidationError(`rules JSON needs a list ${k}`, k);
      }
      const rules: StoredProfileRules = {
        id: name,
        inbound_rules: doc.inbound_rules!.map((r, i) => validateStoredRule(r, `inbound_rules[${i}]`)),
        outbound_rules: doc.outbound_rules!.map((r, i) => validateStoredRule(r, `outbound_rules[${i}]`)),
      };
      await updateProfileRules(kv(), name, () => ({ rules, result: undefined }));
      say(`Successfully updated rules on profile ${name}`);
      return;
    }
    case 'add':
    case 'remove': {
      const [dir, ...words] = rest;
      if (dir !== 'inbound' && dir !== 'outbound') throw new UsageError(`rule ${action} needs inbound or outbound, not '${dir ?? ''}'`);
      const listKey = dir === 'inbound' ? 'inbound_rules' : 'outbound_rules';
      if (action === 'add') {
        const rule = parseRuleWords(words);
        const pos = o.at === undefined ? undefined : parsePosition(o.at);
        const msg = await updateProfileRules(kv(), name, (r) => {
          const list: StoredRule[] = r[listKey];
          if (list.some((x) => rulesEqual(x, rule))) return { result: 'Rule already present, skipping.' };
          let note: string | undefined;
          let idx = pos === undefined ? list.length : pos - 1;
          if (pos !== undefined && (pos < 1 || pos > list.length + 1)) {
            // As the original: say so, then insert at the nearest end.
            note = `Position ${pos} is out-of-range.`;
            idx = pos < 1 ? 0 : list.length;
          }
          const next = [...list];
          next.splice(idx, 0, rule);
          return { rules: { ...r, [listKey]: next }, result: note };
        });
        if (msg) say(msg);
        return;
      }
      if (o.at !== undefined) {
        if (words.length) throw new UsageError('give either --at=<POS> or a rule, not both');
        const pos = parsePosition(o.at);
        const ok = await updateProfileRules(kv(), name, (r) => {
          const list = r[listKey];
          if (pos < 1 || pos > list.length) return { result: false };
          return { rules: { ...r, [listKey]: list.filter((_, i) => i !== pos - 1) }, result: true };
        });
        if (!ok) throw new CalicoError('Rule position out-of-range.');
        return;
      }
      const rule = parseRuleWords(words);
      const ok = await updateProfileRules(kv(), name, (r) => {
        const list = r[listKey];
        const i = list.findIndex((x) => rulesEqual(x, rule));
        if (i < 0) return { result: false };
        return { rules: { ...r, [listKey]: list.filter((_, j) => j !== i) }, result: true };
      });
      if (!ok) throw new CalicoError('Rule not found.');
      return;
    }
    default:
      throw new UsageError(`unknown rule command '${action ?? ''}'`, 'expected: profile <P> rule add|remove (inbound|outbound) <RULE>, or rule show|json|update');
  }
}
