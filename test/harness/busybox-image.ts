/**
 * The test image `busybox:latest`, made offline (Docker Hub is unreachable): a rootfs holding
 * Debian's busybox-static with a symlink for every applet it lists (sh, ping, nc, ip, ifconfig,
 * sleep, cat, wget, hostname, top, ...), fed to `docker import`. Idempotent: an existing
 * busybox:latest is kept.
 */
import { mkdtempSync, mkdirSync, copyFileSync, symlinkSync, writeFileSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, relative } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

export const BUSYBOX_IMAGE = 'busybox:latest';

/**
 * Imports busybox:latest into the daemon named by `dockerHostEnv` (an env holding DOCKER_HOST,
 * e.g. `TestDockerd.env`) unless it is already there. Resolves with the image id.
 */
export async function importBusybox(dockerHostEnv: NodeJS.ProcessEnv, image = BUSYBOX_IMAGE): Promise<string> {
  const env = { ...process.env, ...dockerHostEnv };
  const existing = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { env, encoding: 'utf8' });
  if (existing.status === 0) return existing.stdout.trim();

  const busybox = BUSYBOX_CANDIDATES.find((p) => existsSync(p));
  if (!busybox) throw new Error('busybox-static is not installed (apt-get install busybox-static)');
  const dir = mkdtempSync(join(tmpdir(), 'busybox-rootfs-'));
  try {
    const rootfs = join(dir, 'rootfs');
    buildRootfs(rootfs, busybox);
    return await tarInto(rootfs, env, image);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function buildRootfs(rootfs: string, busybox: string): void {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var/run', 'home']) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  // `--list-full` gives each applet's canonical path (bin/sh, sbin/ifconfig, usr/bin/wget, ...).
  const list = spawnSync(busybox, ['--list-full'], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`${busybox} --list-full failed: ${list.stderr}`);
  for (const applet of list.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    if (applet === 'bin/busybox' || applet.includes('..')) continue;
    const link = join(rootfs, applet);
    if (existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), join(rootfs, 'bin/busybox')), link);
  }
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

function tarInto(rootfs: string, env: NodeJS.ProcessEnv, image: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // CMD sh, like the real busybox image, so `docker run -it busybox` gives a shell.
    const imp = spawn('docker', ['import', '--change', 'CMD ["sh"]', '-', image], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    tar.stdout.pipe(imp.stdin);
    let out = '';
    let err = '';
    imp.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    imp.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    tar.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    tar.on('error', reject);
    imp.on('error', reject);
    imp.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`docker import of ${image} failed (exit ${code}): ${err.trim()}`));
    });
  });
}
