/** Shared benchmark helpers: timing external commands (wall time and peak RSS), percentiles, tables. */
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';

export interface Sample { ms: number; maxRssKb: number }

/** Runs a command under GNU time: wall time measured here, peak RSS from time's %M. */
export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Sample {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { env, encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  return { ms, maxRssKb: Number(lines[lines.length - 1]) };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function machine(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
}

export interface Row { metric: string; ours: string; baseline: string; ratio: string; goal: string; ok: boolean }

export function table(title: string, baselineName: string, rows: Row[]): string {
  const head = ['metric', 'ours', baselineName, 'ratio', 'goal', 'met'];
  // A row without a goal is information, not a check: its "met" cell stays empty.
  const body = rows.map((r) => [r.metric, r.ours, r.baseline, r.ratio, r.goal, r.goal === '' ? '' : r.ok ? 'yes' : 'NO']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => '| ' + c.map((x, i) => x.padEnd(w[i]!)).join(' | ') + ' |';
  return [`### ${title}`, '', line(head), '|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|', ...body.map(line), ''].join('\n');
}

export function saveResults(name: string, markdown: string): string {
  const dir = join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.md`);
  writeFileSync(file, `# ${name} benchmark\n\nMachine: ${machine()}\nDate: ${new Date().toISOString()}\n\n${markdown}\n`);
  return file;
}
