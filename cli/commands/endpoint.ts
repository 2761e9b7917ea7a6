/** The Powerstrip-era `endpoint` commands. */
import type { Command } from 'commander';
import { kv, say } from '../context.js';
import { prettyTable, emitListing } from '../output.js';
import { listEndpoints, findEndpoint, updateEndpoint, changeProfiles, EndpointFilter } from '../../src/datastore/endpoints.js';
import { profileExists } from '../../src/datastore/profiles.js';
import { validateProfileName } from '../../src/model/resources.js';
import { NotFoundError, UsageError } from '../../src/errors.js';

function filterOf(o: Record<string, string | boolean | undefined>): EndpointFilter {
  const f: EndpointFilter = {};
  if (typeof o.host === 'string') f.host = o.host;
  if (typeof o.orchestrator === 'string') f.orchestrator = o.orchestrator;
  if (typeof o.workload === 'string') f.workload = o.workload;
  if (typeof o.endpoint === 'string') f.endpoint = o.endpoint;
  return f;
}

export async function show(o: Record<string, string | boolean | undefined>): Promise<void> {
  const eps = await listEndpoints(kv(), filterOf(o));
  if (o.detailed) {
    const data = eps.map((e) => ({
      hostname: e.node, orchestrator: e.orchestrator, workload: e.workload, endpoint: e.id,
      addresses: [...e.ep.ipv4_nets, ...e.ep.ipv6_nets], mac: e.ep.mac, profiles: e.ep.profile_ids, state: e.ep.state,
    }));
    emitListing(o.output as string | undefined, data, () => prettyTable(
      ['Hostname', 'Orchestrator ID', 'Workload ID', 'Endpoint ID', 'Addresses', 'MAC', 'Profiles', 'State'],
      data.map((d) => [d.hostname, d.orchestrator, d.workload, d.endpoint, d.addresses.join('\n'), d.mac ?? '', d.profiles.join(','), d.state]),
    ) + '\n');
    return;
  }
  // One row per host and orchestrator. (The original took the names from the last endpoint it
  // iterated, a bug; these come from the keys.)
  const groups = new Map<string, { hostname: string; orchestrator: string; workloads: Set<string>; endpoints: number }>();
  for (const e of eps) {
    const k = `${e.node}\0${e.orchestrator}`;
    const g = groups.get(k) ?? { hostname: e.node, orchestrator: e.orchestrator, workloads: new Set<string>(), endpoints: 0 };
    g.workloads.add(e.workload);
    g.endpoints++;
    groups.set(k, g);
  }
  const data = [...groups.values()].map((g) => ({ hostname: g.hostname, orchestrator: g.orchestrator, numWorkloads: g.workloads.size, numEndpoints: g.endpoints }));
  emitListing(o.output as string | undefined, data, () => prettyTable(
    ['Hostname', 'Orchestrator ID', 'NumWorkloads', 'NumEndpoints'],
    data.map((d) => [d.hostname, d.orchestrator, String(d.numWorkloads), String(d.numEndpoints)]),
  ) + '\n');
}

export async function profileCmd(eid: string | undefined, args: string[], o: Record<string, string | undefined>, cmd: Command): Promise<void> {
  if (!eid) { cmd.outputHelp(); throw new UsageError('endpoint needs a subcommand'); }
  const [area, action, ...names] = args;
  if (area !== 'profile') throw new UsageError(`unknown endpoint command '${[eid, ...args].join(' ')}'`, 'expected: endpoint show, or endpoint <ENDPOINT_ID> profile append|remove|set|show [<PROFILES>...]');
  const f = filterOf(o);
  if (action === 'show') {
    if (names.length) throw new UsageError('profile show takes no profile names');
    const rec = await findEndpoint(kv(), eid, f);
    if (rec.ep.profile_ids.length === 0 && o.output === undefined) { say('Endpoint has no profiles associated with it.'); return; }
    emitListing(o.output, rec.ep.profile_ids.map((name) => ({ name })), () => prettyTable(['Name'], rec.ep.profile_ids.map((p) => [p])));
    return;
  }
  if (action !== 'append' && action !== 'remove' && action !== 'set') {
    throw new UsageError(`unknown endpoint profile command '${action ?? ''}'`, 'expected: append, remove, set or show');
  }
  if (action !== 'set' && names.length === 0) throw new UsageError(`profile ${action} needs at least one profile name`);
  const seen = new Set<string>();
  for (const n of names) {
    validateProfileName(n, 'profile');
    if (seen.has(n)) throw new UsageError(`Profile ${n} is listed more than once.`);
    seen.add(n);
  }
  for (const n of names) {
    if (!(await profileExists(kv(), n))) throw new NotFoundError(`Profile with name ${n} was not found.`);
  }
  const rec = await findEndpoint(kv(), eid, f);
  await updateEndpoint(kv(), rec.key, (ep) => ({ ep: { ...ep, profile_ids: changeProfiles(ep.profile_ids, action, names) }, result: undefined }));
  if (action === 'append') say(`Profiles ${names.join(', ')} appended to ${eid}.`);
  else if (action === 'set') say(`Profiles ${names.join(', ')} set for ${eid}.`);
  else say(`Profiles ${names.join(',')} removed from ${eid}.`);
  say();
}
