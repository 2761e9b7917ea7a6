/**
 * `calicoctl node status` output: the peer table in the shape the original calicoctl printed
 * (PrettyTable, centred cells, "IPv4 BGP status" then "IPv6 BGP status").
 */
export interface PeerStatusRow {
  /** 4 or 6: which table the row belongs to. */
  ipVersion: 4 | 6;
  peerAddress: string;
  peerType: 'node-to-node mesh' | 'global' | 'node specific';
  /** BIRD's protocol state: 'up' when Established, 'start' while trying, 'down' when stopped. */
  state: 'up' | 'start' | 'down';
  /** HH:MM:SS of the last state change (BIRD 1.x format). */
  since: string;
  /** BGP state, plus the last error as BIRD shows it (e.g. "Active Socket: Connection refused"). */
  info: string;
  /** BIRD-style protocol name (Mesh_10_0_0_2 ...). */
  name: string;
  routesReceived?: number;
}

const HEADERS = ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'];

/** PrettyTable's centring: with uneven padding, odd-length text gets the extra space on the right, even-length on the left. */
function centre(text: string, width: number): string {
  const excess = width - text.length;
  const half = Math.floor(excess / 2);
  if (excess % 2 === 0) return ' '.repeat(half) + text + ' '.repeat(half);
  return text.length % 2 ? ' '.repeat(half) + text + ' '.repeat(half + 1) : ' '.repeat(half + 1) + text + ' '.repeat(half);
}

/** A PrettyTable-style table (+---+ borders, one space of padding, centred). */
export function prettyTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const line = (cells: string[]) => '|' + cells.map((c, i) => ' ' + centre(c, widths[i]!) + ' ').join('|') + '|';
  return [rule, line(headers), rule, ...rows.map(line), rule].join('\n');
}

export function formatPeerStatus(rows: PeerStatusRow[]): string {
  const out: string[] = [];
  for (const v of [4, 6] as const) {
    out.push(`IPv${v} BGP status`);
    const mine = rows.filter((r) => r.ipVersion === v);
    if (mine.length === 0) out.push(`No IPv${v} peers found.`);
    else out.push(prettyTable(HEADERS, mine.map((r) => [r.peerAddress, r.peerType, r.state, r.since, r.info])));
    out.push('');
  }
  return out.join('\n');
}

export function hhmmss(d: Date): string {
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}
