/**
 * The lab's layout: two hosts, their addresses, and where everything of theirs lives. One place
 * computes every name and path, so `up`, `status` and `down` can never disagree about what the
 * lab owns.
 *
 * LAB_ID (optional) gives a second, independent lab: namespaces `calico-01-<id>`, dirs
 * `/var/lib/calico-lab-<id>` and `/run/calico-lab-<id>`. Tests use it so that they never touch a
 * user's running lab. The host names (calico-01/02) and addresses stay the same in every lab: they
 * exist only inside that lab's own namespaces and its own etcd.
 */
import { join } from 'node:path';
import { CalicoError } from '../../src/errors.js';

export const HOST_NAMES = ['calico-01', 'calico-02'] as const;
export type HostName = (typeof HOST_NAMES)[number];

/** The host link, as the Vagrant lab's private network: 172.17.8.0/24. */
export const LINK_PREFIX_LEN = 24;
/** A gateway address on the link that nobody answers for: a real VM's default route, minus the internet. */
export const GATEWAY = '172.17.8.1';
export const LINK_IFACE = 'eth1';
export const ETCD_PORT = 2379;
export const PROXY_PORT = 2377;
/** Where the repository is (dist/scripts/lab -> the checkout), for bin/calicoctl. */
export const REPO_DIR = join(__dirname, '..', '..', '..');
export const CALICOCTL = join(REPO_DIR, 'bin', 'calicoctl');

export interface HostConfig {
  name: HostName;
  ip: string;
  /** Network namespace name (/run/netns/<netns>). */
  netns: string;
  netnsPath: string;
  /** Persistent state: docker's data root, containerd's root, logs. */
  stateDir: string;
  /** Run-time state: sockets, pid files, the node's run dir. */
  runDir: string;
  logDir: string;
  dockerDataRoot: string;
  /** Short on purpose: containerd puts sockets under it and sun_path is 108 bytes. */
  dockerExecRoot: string;
  dockerSocket: string;
  dockerPidFile: string;
  dockerConfigFile: string;
  /** The docker CLI's config dir for this host (a VM's ~/.docker; keeps the real one untouched). */
  dockerCliConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  containerdConfig: string;
  containerdPidFile: string;
  /** CALICO_RUN_DIR of the node on this host. */
  calicoRunDir: string;
  /** PATH entry holding this host's `calicoctl` (see hosts.ts for why it is a wrapper). */
  binDir: string;
}

export interface LabConfig {
  /** '' for the default lab. */
  id: string;
  /** /var/lib/calico-lab[-id] */
  stateRoot: string;
  /** /run/calico-lab[-id] */
  runRoot: string;
  etcdHost: HostName;
  etcdUrl: string;
  etcdDataDir: string;
  /** ensureLocalEtcd writes etcd.pid into this dir. */
  etcdRunDir: string;
  etcdLogDir: string;
  hosts: Record<HostName, HostConfig>;
}

const ID_RE = /^[a-z0-9]{1,12}$/;

export function labConfig(id: string = process.env.LAB_ID ?? ''): LabConfig {
  if (id !== '' && !ID_RE.test(id)) {
    throw new CalicoError(`LAB_ID=${id} is not valid`, { exitCode: 2, hint: 'use 1-12 lower-case letters or digits, e.g. LAB_ID=t1' });
  }
  const suffix = id ? `-${id}` : '';
  const stateRoot = `/var/lib/calico-lab${suffix}`;
  const runRoot = `/run/calico-lab${suffix}`;
  const host = (name: HostName, ip: string): HostConfig => {
    const stateDir = join(stateRoot, name);
    const runDir = join(runRoot, name);
    return {
      name, ip,
      netns: `${name}${suffix}`,
      netnsPath: `/run/netns/${name}${suffix}`,
      stateDir, runDir,
      logDir: join(stateDir, 'log'),
      dockerDataRoot: join(stateDir, 'docker'),
      dockerExecRoot: join(runDir, 'dx'),
      dockerSocket: join(runDir, 'docker.sock'),
      dockerPidFile: join(runDir, 'dockerd.pid'),
      dockerConfigFile: join(runDir, 'daemon.json'),
      dockerCliConfig: join(stateDir, 'docker-cli'),
      containerdRoot: join(stateDir, 'containerd'),
      containerdState: join(runDir, 'ctd'),
      containerdSocket: join(runDir, 'ctd', 'containerd.sock'),
      containerdConfig: join(runDir, 'containerd.toml'),
      containerdPidFile: join(runDir, 'containerd.pid'),
      calicoRunDir: join(runDir, 'calico'),
      binDir: join(runDir, 'bin'),
    };
  };
  const hosts = { 'calico-01': host('calico-01', '172.17.8.101'), 'calico-02': host('calico-02', '172.17.8.102') };
  return {
    id, stateRoot, runRoot,
    etcdHost: 'calico-01',
    etcdUrl: `http://${hosts['calico-01'].ip}:${ETCD_PORT}`,
    etcdDataDir: join(stateRoot, 'etcd'),
    etcdRunDir: join(runRoot, 'etcd'),
    etcdLogDir: join(stateRoot, 'etcd-log'),
    hosts,
  };
}

export function hostList(cfg: LabConfig): HostConfig[] {
  return HOST_NAMES.map((n) => cfg.hosts[n]);
}

export function hostByName(cfg: LabConfig, name: string): HostConfig {
  if (!(HOST_NAMES as readonly string[]).includes(name)) {
    throw new CalicoError(`no lab host named '${name}'`, { exitCode: 2, hint: `the hosts are ${HOST_NAMES.join(' and ')}` });
  }
  return cfg.hosts[name as HostName];
}

/** What a shell on that host has in its environment (a VM's login profile, in effect). */
export function hostEnv(cfg: LabConfig, h: HostConfig, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    DOCKER_HOST: `tcp://localhost:${PROXY_PORT}`,
    DOCKER_CONFIG: h.dockerCliConfig,
    DOCKER_CONTEXT: '',
    CALICO_NODENAME: h.name,
    ETCD_ENDPOINTS: cfg.etcdUrl,
    CALICO_RUN_DIR: h.calicoRunDir,
    PATH: `${h.binDir}:${join(REPO_DIR, 'bin')}:${base.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
    LAB_HOST: h.name,
  };
}
