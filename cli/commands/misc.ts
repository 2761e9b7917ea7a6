/** `version`. */
import { say } from '../context.js';

export function version(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require('../../../package.json') as { version: string };
  say(`Client Version:    v${pkg.version}`);
  say('Datastore:         etcd v3');
  say(`Node.js:           ${process.version}`);
}
