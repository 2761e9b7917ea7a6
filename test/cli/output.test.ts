/** `calicoctl get`'s tabwriter table, written in batches of lines: the same bytes as one string. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeTabTable } from '../../cli/output.js';

/** The table as one string: Go tabwriter, minwidth 5, padding 3, last column unpadded, blank line after. */
function expected(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(5, Math.max(...all.map((r) => (r[i] ?? '').length)) + 3));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('').trimEnd()).join('\n') + '\n\n';
}

function written(headers: string[], rows: string[][]): { text: string; writes: number } {
  let text = '';
  let writes = 0;
  writeTabTable(headers, rows, (t) => { text += t; writes++; });
  return { text, writes };
}

test('a small table: padded columns, the last one not, trailing spaces trimmed, a blank line after', () => {
  const { text } = written(['NAME', 'NODE'], [['a', 'host-1'], ['a-much-longer-name', '']]);
  assert.equal(text, 'NAME                 NODE\na                    host-1\na-much-longer-name\n\n');
  assert.equal(written(['NAME'], []).text, 'NAME\n\n');
});

test('batches of lines add up to the same bytes, whatever the row count', () => {
  for (const n of [0, 1, 2, 510, 511, 512, 1023, 1024, 1500]) {
    const rows = Array.from({ length: n }, (_, i) => [`host-${i % 7}`, 'docker', `c${i}`.padEnd(i % 40, 'x'), `${i}`]);
    const headers = ['NODE', 'ORCHESTRATOR', 'WORKLOAD', 'NAME'];
    const { text, writes } = written(headers, rows);
    assert.equal(text, expected(headers, rows), `${n} rows`);
    assert.equal(writes, Math.floor((n + 1) / 512) + 1, `${n} rows: written in batches of 512 lines`);
  }
});
