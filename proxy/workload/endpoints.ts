/** The Docker workload endpoints of one node: lookup by container, and the record we write. */
import { randomBytes } from 'node:crypto';
import { KV } from '../../src/datastore/kv.js';
import { keys, parseWorkloadEndpointKey } from '../../src/datastore/keys.js';
import { StoredWorkloadEndpoint, normaliseStoredEndpoint } from '../../src/model/stored.js';

export const ORCHESTRATOR = 'docker';

export interface DockerEndpoint {
  key: string;
  containerId: string;
  endpointId: string;
  ep: StoredWorkloadEndpoint;
  modRevision: string;
}

/**
 * A new endpoint id: 32 hex characters, as the original's uuid1().hex. Random rather than
 * time-based so that two hosts creating endpoints at once never collide.
 */
export function newEndpointId(): string {
  return randomBytes(16).toString('hex');
}

function parseDockerEndpoints(entries: Array<{ key: string; value: string; modRevision: string }>): DockerEndpoint[] {
  return entries.flatMap((e) => {
    const k = parseWorkloadEndpointKey(e.key);
    if (!k) return [];
    try {
      return [{ key: e.key, containerId: k.workload, endpointId: k.name, ep: normaliseStoredEndpoint(JSON.parse(e.value) as StoredWorkloadEndpoint), modRevision: e.modRevision }];
    } catch {
      return [];
    }
  });
}

export async function endpointsOfContainer(kv: KV, node: string, containerId: string): Promise<DockerEndpoint[]> {
  return parseDockerEndpoints((await kv.list(keys.workloadEndpointsOf(node, ORCHESTRATOR, containerId))).entries);
}

export async function allDockerEndpoints(kv: KV, node: string): Promise<DockerEndpoint[]> {
  return parseDockerEndpoints((await kv.list(keys.workloadsOfOrchestrator(node, ORCHESTRATOR))).entries);
}
