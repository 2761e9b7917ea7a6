/**
 * Conntrack cleanup for an address that no longer belongs to a workload, so that a flow the old
 * owner had open is not accepted as "established" for a new owner of the same address. Felix
 * deletes flows by original source, original destination and reply source; so do we.
 */
import { InNetns, runInNetns } from './netns.js';
import { parseIp, formatIp } from '../net/ip.js';

const SCRIPT =
  'fam=$1; a=$2; n=0; for f in --orig-src --orig-dst --reply-src; do ' +
  'out=$(conntrack -D -f "$fam" "$f" "$a" 2>&1); rc=$?; ' +
  'case "$out" in *"flow entries have been deleted"*) ;; *) if [ $rc -ne 0 ]; then echo "ERROR $out"; fi;; esac; ' +
  'c=$(printf "%s" "$out" | sed -n "s/.* \\([0-9][0-9]*\\) flow entries have been deleted.*/\\1/p"); n=$((n + ${c:-0})); done; echo "DELETED $n"';

/** Deletes the conntrack entries of an address. Returns how many were deleted. */
export async function flushConntrackFor(address: string, opts: InNetns = {}): Promise<number> {
  const a = parseIp(address.split('/')[0]!);
  const r = await runInNetns(opts.netns, 'sh', ['-c', SCRIPT, 'sh', a.version === 4 ? 'ipv4' : 'ipv6', formatIp(a)]);
  const err = r.stdout.split('\n').find((l) => l.startsWith('ERROR '));
  if (err) throw new Error(`conntrack cleanup for ${formatIp(a)}: ${err.slice(6)}`);
  const m = /DELETED (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}
