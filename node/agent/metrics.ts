/**
 * Prometheus metrics of the agent (prom-client, an own registry so that another component in
 * the same process cannot collide with our names), served on 127.0.0.1:9091/metrics by default.
 */
import { createServer, Server } from 'node:http';
import { Registry, Gauge, Histogram, Counter } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly localEndpoints = new Gauge({ name: 'calico_agent_local_endpoints', help: 'Workload endpoints on this host', registers: [this.registry] });
  readonly applySeconds = new Histogram({
    name: 'calico_agent_apply_seconds',
    help: 'Time to apply a batch of datastore changes to the dataplane',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    labelNames: ['mode'],
    registers: [this.registry],
  });
  readonly driftRepairs = new Counter({ name: 'calico_agent_drift_repairs_total', help: 'Dataplane drift found and repaired, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly applyErrors = new Counter({ name: 'calico_agent_apply_errors_total', help: 'Failed dataplane applies (retried)', registers: [this.registry] });
  readonly resyncs = new Counter({ name: 'calico_agent_datastore_resyncs_total', help: 'Full datastore resyncs after a broken or compacted watch', registers: [this.registry] });
  private server?: Server;

  /** Starts the HTTP endpoint. Resolves with the bound port. */
  serve(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found; try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return Promise.resolve();
    return new Promise((r) => s.close(() => r()));
  }
}
