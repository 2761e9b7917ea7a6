/**
 * Runs OPEN probes from inside a namespace (`ip netns exec <ns> node probe-main.js '<json>'`)
 * and prints the answers as JSON: used to see which NOTIFICATION a real daemon sends.
 */
import { probeOpen, OpenProbe } from './raw.js';

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as { host: string; port: number; local: string; gapMs: number; cases: OpenProbe[] };
  const out: Record<string, string> = {};
  for (const c of a.cases) {
    // Daemons refuse a peer for a moment after a failed session ("error wait"): retry once.
    let r = await probeOpen(a.host, a.port, a.local, c).catch((e: Error) => `error ${e.message}`);
    if (r === 'closed' || r.startsWith('error')) {
      await new Promise((res) => setTimeout(res, 3000));
      r = await probeOpen(a.host, a.port, a.local, c).catch((e: Error) => `error ${e.message}`);
    }
    out[c.name] = r;
    await new Promise((res) => setTimeout(res, a.gapMs));
  }
  process.stdout.write(JSON.stringify(out));
}

void main();
