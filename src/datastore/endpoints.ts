/**
 * Workload endpoints at the stored level: finding them (by id, host, orchestrator, workload) and
 * changing them with a compare-and-swap. Shared by calicoctl, the proxy and the node.
 */
import { KV, mutate, NO_CHANGE } from './kv.js';
import { keys, parseWorkloadEndpointKey } from './keys.js';
import { StoredWorkloadEndpoint, normaliseStoredEndpoint } from '../model/stored.js';
import { CalicoError, NotFoundError } from '../errors.js';

export interface EndpointRecord {
  key: string;
  node: string;
  orchestrator: string;
  workload: string;
  id: string;
  ep: StoredWorkloadEndpoint;
  modRevision: string;
}

export interface EndpointFilter {
  host?: string;
  orchestrator?: string;
  workload?: string;
  endpoint?: string;
}

export async function listEndpoints(kv: KV, f: EndpointFilter = {}): Promise<EndpointRecord[]> {
  const prefix = f.host && f.orchestrator && f.workload
    ? keys.workloadEndpointsOf(f.host, f.orchestrator, f.workload)
    : f.host && f.orchestrator ? keys.workloadsOfOrchestrator(f.host, f.orchestrator)
      : f.host ? keys.workloadsOfHost(f.host) : keys.workloadPrefixAll;
  const { entries } = await kv.list(prefix);
  const out: EndpointRecord[] = [];
  for (const e of entries) {
    const k = parseWorkloadEndpointKey(e.key);
    if (!k) continue;
    if ((f.orchestrator && k.orchestrator !== f.orchestrator) || (f.workload && k.workload !== f.workload) || (f.endpoint && k.name !== f.endpoint)) continue;
    let ep: StoredWorkloadEndpoint;
    try { ep = normaliseStoredEndpoint(JSON.parse(e.value) as StoredWorkloadEndpoint); } catch { continue; }
    out.push({ key: e.key, node: k.node, orchestrator: k.orchestrator, workload: k.workload, id: k.name, ep, modRevision: e.modRevision });
  }
  return out;
}

/** Exactly one endpoint, or the originals' messages. */
export async function findEndpoint(kv: KV, endpointId: string, f: EndpointFilter = {}): Promise<EndpointRecord> {
  const hits = await listEndpoints(kv, { ...f, endpoint: endpointId });
  if (hits.length === 0) throw new NotFoundError(`Endpoint ${endpointId} is unknown to Calico.`);
  if (hits.length > 1) {
    throw new CalicoError('More than 1 endpoint matches the provided criteria.  Please provide additional parameters to refine the search.', {
      hint: 'add --host, --orchestrator or --workload',
    });
  }
  return hits[0]!;
}

/** Compare-and-swap update of one endpoint; `fn` returns the new endpoint or undefined for no change. */
export async function updateEndpoint<T>(
  kv: KV,
  key: string,
  fn: (ep: StoredWorkloadEndpoint) => { ep?: StoredWorkloadEndpoint; result: T },
): Promise<T> {
  return (await mutate<T>(kv, key, (cur) => {
    if (cur === undefined) throw new NotFoundError(`Endpoint ${key.split('/').pop()} is unknown to Calico.`);
    const out = fn(normaliseStoredEndpoint(JSON.parse(cur) as StoredWorkloadEndpoint));
    return { value: out.ep ? JSON.stringify(out.ep) : NO_CHANGE, result: out.result };
  })) as T;
}

export type ProfileAction = 'append' | 'remove' | 'set';

/** The profile list after `append|remove|set`, with the originals' messages for what cannot be done. */
export function changeProfiles(current: readonly string[], action: ProfileAction, names: readonly string[]): string[] {
  if (action === 'append') {
    const dup = names.find((n) => current.includes(n));
    if (dup) throw new CalicoError(`Profile ${dup} is already in endpoint profile list`);
    return [...current, ...names];
  }
  if (action === 'remove') {
    const missing = names.find((n) => !current.includes(n));
    if (missing) throw new CalicoError(`Profile ${missing} is not in endpoint profile list.`);
    return current.filter((p) => !names.includes(p));
  }
  return [...names];
}
