/** `version`, and the commands whose parts have not landed yet. */
import { say } from '../context.js';
import { CalicoError } from '../../src/errors.js';

export function version(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require('../../../package.json') as { version: string };
  say(`Client Version:    v${pkg.version}`);
  say('Datastore:         etcd v3');
  say(`Node.js:           ${process.version}`);
}

export function notYet(command: string): never {
  throw new CalicoError(`calicoctl ${command} is not available yet in this build: it needs the node and the Docker proxy.`, {
    hint: 'the data model commands work now: profile, pool, bgp, endpoint, get/create/apply/replace/delete, config, ipam',
  });
}
