/**
 * Runs inside calico-01's namespace (`nsenter --net=... node etcd-in-netns.js '<json>'`) and
 * starts the lab's etcd there with the project's own launcher, ensureLocalEtcd.
 *
 * Why a child process instead of ensureLocalEtcd({ netnsPath }) from the lab: that option starts
 * etcd inside the namespace but probes the client URL from the caller's namespace, where
 * 172.17.8.101 does not exist, so it would wait 20 s and fail. In here, the probe and etcd share
 * the namespace. Prints the LocalEtcd result as JSON on stdout.
 */
import { ensureLocalEtcd, LocalEtcdOptions } from '../../src/datastore/local-etcd.js';
import { errorMessage } from '../../src/errors.js';

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as LocalEtcdOptions;
  const r = await ensureLocalEtcd(opts);
  process.stdout.write(JSON.stringify(r) + '\n');
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exit(1);
});
