import { hostname } from 'node:os';

/**
 * This host's name in the datastore. CALICO_NODENAME overrides the host name everywhere (the
 * two lab hosts share one machine); otherwise the short host name, as the originals used.
 */
export function nodeName(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.CALICO_NODENAME?.trim() || env.NODENAME?.trim();
  if (fromEnv) return fromEnv;
  return hostname().split('.')[0]!;
}
