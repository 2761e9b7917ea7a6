/**
 * `lab up`: the two hosts, each step checked first so that a second `up` (or one after a crash)
 * only does what is missing and says what it found running.
 */
import { LabConfig, hostList } from './config.js';
import { ensureNamespaces } from './netns.js';
import { ensureDockerd, dockerApi } from './dockerd.js';
import { ensureEtcd } from './etcd.js';
import { ensureNode, waitForMesh } from './node.js';
import { Progress } from './progress.js';
import { importBusybox, BUSYBOX_IMAGE } from '../../test/harness/busybox-image.js';
import { CalicoError } from '../../src/errors.js';

export async function up(cfg: LabConfig, say: Progress): Promise<void> {
  const hosts = hostList(cfg);
  await ensureNamespaces(cfg, say);
  // The two engines start independently; each takes a few seconds.
  await Promise.all(hosts.map((h) => ensureDockerd(h, say)));
  await Promise.all(hosts.map(async (h) => {
    const env = { DOCKER_HOST: `unix://${h.dockerSocket}`, DOCKER_CONFIG: h.dockerCliConfig, DOCKER_CONTEXT: '' };
    try {
      const had = (await dockerApi(h.dockerSocket, 'GET', `/images/${BUSYBOX_IMAGE}/json`)).status === 200;
      const id = await importBusybox(env);
      say(`${h.name}: image ${BUSYBOX_IMAGE} ${had ? 'already there' : 'imported from Debian\'s busybox-static'} (${id.replace(/^sha256:/, '').slice(0, 12)})`);
    } catch (err) {
      throw new CalicoError(`could not make the busybox image on ${h.name}: ${(err as Error).message}`, { hint: 'install busybox-static: sudo npm run setup' });
    }
  }));
  await ensureEtcd(cfg, say);
  // One after the other: the first `calicoctl node` creates the default pool, and the log reads in order.
  for (const h of hosts) await ensureNode(cfg, h, say);
  await waitForMesh(cfg, say);
}
