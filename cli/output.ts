/**
 * Output formats: PrettyTable-style ASCII tables (the Powerstrip-era commands), Go-tabwriter-style
 * columns (`calicoctl get`, minwidth 5, padding 3, a blank line after), and YAML/JSON lists.
 */
export type Align = 'l' | 'c' | 'r';

function pad(s: string, w: number, a: Align): string {
  const gap = w - s.length;
  if (gap <= 0) return s;
  if (a === 'l') return s + ' '.repeat(gap);
  if (a === 'r') return ' '.repeat(gap) + s;
  // PrettyTable's rule for an odd gap: the extra space goes right of odd-length text, left of even.
  const half = Math.floor(gap / 2);
  if (gap % 2 === 0) return ' '.repeat(half) + s + ' '.repeat(half);
  return s.length % 2 ? ' '.repeat(half) + s + ' '.repeat(half + 1) : ' '.repeat(half + 1) + s + ' '.repeat(half);
}

/** A PrettyTable (default style): `+---+` borders, centred headers, cells centred unless told. */
export function prettyTable(headers: string[], rows: string[][], align: Align | Align[] = 'c'): string {
  const al = (i: number): Align => (Array.isArray(align) ? align[i] ?? 'c' : align);
  // Multi-line cells (e.g. several addresses) become several table lines.
  const split = rows.map((r) => r.map((c) => String(c).split('\n')));
  const widths = headers.map((h, i) => Math.max(h.length, ...split.map((r) => Math.max(...(r[i] ?? ['']).map((l) => l.length)))));
  const sep = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const line = (cells: string[], hdr: boolean) => '| ' + cells.map((c, i) => pad(c, widths[i]!, hdr ? 'c' : al(i))).join(' | ') + ' |';
  const out = [sep, line(headers, true), sep];
  for (const r of split) {
    const height = Math.max(1, ...r.map((c) => c.length));
    for (let k = 0; k < height; k++) out.push(line(headers.map((_, i) => r[i]?.[k] ?? ''), false));
  }
  out.push(sep);
  return out.join('\n');
}

/** Go tabwriter column widths (minwidth 5, tabwidth 1, padding 3) over the header and the rows. */
function tabWidths(headers: string[], rows: string[][]): number[] {
  return headers.map((h, i) => {
    let w = h.length;
    for (const r of rows) w = Math.max(w, (r[i] ?? '').length);
    return Math.max(5, w + 3);
  });
}

/** One tabwriter line: cells padded with spaces; the last column unpadded. */
function tabLine(r: string[], widths: number[]): string {
  return r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('').trimEnd();
}

/**
 * A Go tabwriter table (minwidth 5, tabwidth 1, padding 3, pad with spaces; last column unpadded)
 * and the blank line after it, as `calicoctl get` prints it, handed to `write` a few hundred lines
 * at a time rather than built as one string. Why: for 10 000 workload endpoints that string, and
 * the copies made to write it, were ~3 MiB of `get`'s peak memory (55 -> 52 MiB, bench/cli.ts),
 * at the same speed.
 */
export function writeTabTable(headers: string[], rows: string[][], write: (text: string) => void): void {
  const widths = tabWidths(headers, rows);
  let batch = [tabLine(headers, widths)];
  for (const r of rows) {
    batch.push(tabLine(r, widths));
    if (batch.length === 512) {
      write(batch.join('\n') + '\n');
      batch = [];
    }
  }
  write((batch.length ? batch.join('\n') + '\n' : '') + '\n');
}

export function toYaml(v: unknown): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  return YAML.stringify(v, { lineWidth: 0 });
}

export function toJson(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

export type OutputFormat = 'ps' | 'wide' | 'yaml' | 'json' | { columns: string[] };

export function parseOutputFormat(text: string | undefined, allowTable = true): OutputFormat {
  const t = (text ?? (allowTable ? 'ps' : 'table')).trim();
  if (t === 'yaml' || t === 'json') return t;
  if (allowTable && (t === 'ps' || t === 'wide')) return t;
  if (allowTable && t.startsWith('custom-columns=')) {
    const cols = t.slice('custom-columns='.length).split(',').map((c) => c.trim().toUpperCase()).filter(Boolean);
    if (cols.length) return { columns: cols };
  }
  if (!allowTable && t === 'table') return 'ps';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { UsageError } = require('../src/errors.js') as typeof import('../src/errors.js');
  throw new UsageError(`unrecognised output format '${t}'`, allowTable ? 'use -o ps, wide, yaml, json or custom-columns=COL1,COL2' : 'use -o table, yaml or json');
}

/** For the Powerstrip-era listings: a table by default, or `-o json|yaml` of the same data. */
export function emitListing(format: string | undefined, data: unknown, table: () => string): void {
  const f = parseOutputFormat(format, false);
  if (f === 'yaml') process.stdout.write(toYaml(data));
  else if (f === 'json') process.stdout.write(toJson(data) + '\n');
  else {
    // A table that ends in a newline prints a blank line after it, as several originals did.
    const t = table();
    if (t) process.stdout.write(t + '\n');
  }
}
