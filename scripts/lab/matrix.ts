/**
 * The demo's ping matrix: every workload pings every other one from inside its container
 * (`docker exec <C> ping -c 1 -W 1 <ip>` on the container's host), all pairs at once, and each
 * result is compared with what the profiles say. With the default profile rules (inbound: allow
 * from the profile's own tag; outbound: allow all), a ping goes through exactly when both ends
 * share a profile: A, C, E and F reach each other; B and D reach no one and no one reaches them.
 */
import { LabConfig, HostName } from './config.js';
import { onHost } from './hosts.js';

export interface Workload {
  /** Container name, e.g. workload-A. */
  name: string;
  host: HostName;
  ip: string;
  profiles: string[];
}

export interface Cell {
  from: string;
  to: string;
  expected: boolean;
  seen: boolean;
}

export interface MatrixResult {
  workloads: Workload[];
  cells: Cell[];
  mismatches: Cell[];
  ok: boolean;
}

export function expectedReach(from: Workload, to: Workload): boolean {
  return from.profiles.some((p) => to.profiles.includes(p));
}

export async function pingOnce(cfg: LabConfig, from: Workload, ip: string): Promise<boolean> {
  const r = await onHost(cfg, cfg.hosts[from.host], 'docker', ['exec', from.name, 'ping', '-c', '1', '-W', '1', ip], { timeoutMs: 30000 });
  return r.code === 0;
}

export async function pingMatrix(cfg: LabConfig, workloads: Workload[]): Promise<MatrixResult> {
  const pairs = workloads.flatMap((from) => workloads.filter((to) => to !== from).map((to) => ({ from, to })));
  const cells = await Promise.all(pairs.map(async ({ from, to }): Promise<Cell> => ({
    from: from.name, to: to.name, expected: expectedReach(from, to), seen: await pingOnce(cfg, from, to.ip),
  })));
  const mismatches = cells.filter((c) => c.expected !== c.seen);
  return { workloads, cells, mismatches, ok: mismatches.length === 0 };
}

const short = (name: string) => name.replace(/^workload-/, '');

/** Rows: from; columns: to; each cell `expected/seen` and PASS or FAIL. */
export function formatMatrix(m: MatrixResult): string {
  const yn = (b: boolean) => (b ? 'yes' : 'no');
  const head = ['from \\ to', ...m.workloads.map((w) => `${short(w.name)} ${w.ip}`)];
  const rows = m.workloads.map((from) => [
    `${short(from.name)} ${from.ip}`,
    ...m.workloads.map((to) => {
      if (to === from) return '-';
      const c = m.cells.find((x) => x.from === from.name && x.to === to.name)!;
      return `${yn(c.expected)}/${yn(c.seen)} ${c.expected === c.seen ? 'PASS' : 'FAIL'}`;
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const reached = m.cells.filter((c) => c.seen).length;
  const out = [
    'Ping matrix (rows ping columns; each cell: expected/seen reply)',
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `${m.cells.length} pings: ${m.cells.length - m.mismatches.length} as expected (${reached} answered, ${m.cells.length - reached} blocked), ${m.mismatches.length} mismatch(es)`,
  ];
  for (const c of m.mismatches) {
    out.push(`  FAIL: ${c.from} -> ${c.to}: expected ${c.expected ? 'a reply' : 'no reply'}, got ${c.seen ? 'a reply' : 'none'}`);
  }
  return out.join('\n');
}
