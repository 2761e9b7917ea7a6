/**
 * Kernel settings under /proc/sys/net. /proc/sys/net shows the namespace of the process that
 * opens it, so in our own namespace these are plain file writes (microseconds), and in another
 * namespace one `nsenter ... sh` applies a whole list (values passed as positional parameters,
 * never interpolated into the script).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { InNetns, runInNetns, describeNetns } from './netns.js';
import { validateIfName } from './links.js';
import { DataplaneError } from './errors.js';
import { ValidationError } from '../errors.js';

/** `key` is the path under /proc/sys with slashes (interface names may contain dots). */
export interface SysctlSetting {
  key: string;
  value: string;
}

export class SysctlError extends DataplaneError {
  constructor(readonly failed: string[], where: string) {
    super(`cannot set ${failed.join(', ').slice(0, 500)} in ${where}`);
  }
}

const SEGMENT_RE = /^[A-Za-z0-9_.@-]+$/;

export function validateSysctlKey(key: string): string {
  const segs = key.split('/');
  if (segs.length < 2 || segs.some((s) => !SEGMENT_RE.test(s) || s === '.' || s === '..')) {
    throw new ValidationError(`'${key}' is not a sysctl path like net/ipv4/conf/eth0/forwarding`, 'sysctl');
  }
  return key;
}

/**
 * The host-side settings of a workload interface (Felix's per-interface configuration):
 * answer ARP for the fake gateway (proxy_arp, without the default 0.8 s delay), forward, and for
 * IPv6 forward, answer NDP by proxy and ignore router advertisements coming from the workload.
 */
export function workloadInterfaceSysctls(ifName: string, opts: { ipv6: boolean }): SysctlSetting[] {
  validateIfName(ifName);
  const s: SysctlSetting[] = [
    { key: `net/ipv4/conf/${ifName}/proxy_arp`, value: '1' },
    { key: `net/ipv4/neigh/${ifName}/proxy_delay`, value: '0' },
    { key: `net/ipv4/conf/${ifName}/forwarding`, value: '1' },
  ];
  if (opts.ipv6) {
    s.push(
      { key: `net/ipv6/conf/${ifName}/accept_ra`, value: '0' },
      { key: `net/ipv6/conf/${ifName}/forwarding`, value: '1' },
      { key: `net/ipv6/conf/${ifName}/proxy_ndp`, value: '1' },
    );
  }
  return s;
}

const WRITE_SCRIPT =
  'while [ $# -gt 1 ]; do ' +
  'if [ ! -e "/proc/sys/$1" ]; then echo "MISSING $1"; ' +
  'elif ! { printf "%s\\n" "$2" > "/proc/sys/$1"; } 2>/dev/null; then echo "FAILED $1"; fi; ' +
  'shift 2; done';

const READ_SCRIPT =
  'for k; do if v=$(cat "/proc/sys/$k" 2>/dev/null); then printf "%s\\t%s\\n" "$k" "$v"; else printf "%s\\n" "$k"; fi; done';

/** Chunks keep argv far below ARG_MAX even with thousands of interfaces. */
const CHUNK = 800;

export interface SysctlWriteResult {
  /** Keys that do not exist (e.g. the interface went away). */
  missing: string[];
}

/**
 * Writes settings. Keys that do not exist are reported in `missing` (or thrown with
 * `strict`); any other failure throws SysctlError.
 */
export async function writeSysctls(settings: SysctlSetting[], opts: InNetns & { strict?: boolean } = {}): Promise<SysctlWriteResult> {
  for (const s of settings) validateSysctlKey(s.key);
  const missing: string[] = [];
  const failed: string[] = [];
  if (!opts.netns) {
    for (const s of settings) {
      try {
        writeFileSync(`/proc/sys/${s.key}`, s.value + '\n');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') missing.push(s.key);
        else failed.push(`${s.key} (${(err as Error).message})`);
      }
    }
  } else {
    for (let i = 0; i < settings.length; i += CHUNK) {
      const chunk = settings.slice(i, i + CHUNK);
      const args = ['-c', WRITE_SCRIPT, 'sh', ...chunk.flatMap((s) => [s.key, s.value])];
      const r = await runInNetns(opts.netns, 'sh', args);
      for (const line of r.stdout.split('\n')) {
        if (line.startsWith('MISSING ')) missing.push(line.slice(8));
        else if (line.startsWith('FAILED ')) failed.push(line.slice(7));
      }
    }
  }
  if (opts.strict && missing.length) failed.push(...missing.map((m) => `${m} (does not exist)`));
  if (failed.length) throw new SysctlError(failed, describeNetns(opts.netns));
  return { missing };
}

/** Reads settings; a key that does not exist maps to undefined. */
export async function readSysctls(keys: string[], opts: InNetns = {}): Promise<Map<string, string | undefined>> {
  for (const k of keys) validateSysctlKey(k);
  const out = new Map<string, string | undefined>();
  if (!opts.netns) {
    for (const k of keys) {
      try {
        out.set(k, readFileSync(`/proc/sys/${k}`, 'utf8').trim());
      } catch {
        out.set(k, undefined);
      }
    }
    return out;
  }
  for (let i = 0; i < keys.length; i += CHUNK) {
    const chunk = keys.slice(i, i + CHUNK);
    const r = await runInNetns(opts.netns, 'sh', ['-c', READ_SCRIPT, 'sh', ...chunk]);
    for (const line of r.stdout.split('\n')) {
      if (!line) continue;
      const tab = line.indexOf('\t');
      if (tab < 0) out.set(line, undefined);
      else out.set(line.slice(0, tab), line.slice(tab + 1).trim());
    }
  }
  return out;
}
