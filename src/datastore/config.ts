/**
 * Where etcd is and how to talk to it. Sources, strongest first: environment
 * (ETCD_ENDPOINTS, legacy ETCD_AUTHORITY, ETCD_CA_CERT_FILE/ETCD_CERT_FILE/ETCD_KEY_FILE), then the
 * config file (`-c/--config`, default /etc/calico/calicoctl.cfg, YAML or JSON,
 * `kind: calicoApiConfig`), then the default http://127.0.0.1:2379.
 */
import { readFileSync, existsSync } from 'node:fs';
import { ValidationError } from '../errors.js';

export const DEFAULT_CONFIG_FILE = '/etc/calico/calicoctl.cfg';
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';

export interface EtcdConfig {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  /** True when nothing configured etcd and the default is in use. */
  isDefault: boolean;
}

interface ApiConfigSpec {
  datastoreType?: string;
  etcdEndpoints?: string;
  etcdAuthority?: string;
  etcdCACertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
}

export function parseEndpoints(text: string, source: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new ValidationError(`${source} is empty`, source);
  return list.map((e) => {
    let url: URL;
    try {
      url = new URL(e);
    } catch {
      throw new ValidationError(`${source}: '${e}' is not a URL (expected e.g. http://127.0.0.1:2379)`, source);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ValidationError(`${source}: '${e}' must use http:// or https://`, source);
    }
    return `${url.protocol}//${url.host}`;
  });
}

function readConfigFile(path: string): ApiConfigSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError(`cannot read config file ${path}: ${(err as Error).message}`, 'config');
  }
  let doc: unknown;
  try {
    // YAML is a superset of JSON; the yaml package is loaded only when a file is present.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const YAML = require('yaml') as typeof import('yaml');
    doc = YAML.parse(text);
  } catch (err) {
    throw new ValidationError(`config file ${path} is not valid YAML or JSON: ${(err as Error).message}`, 'config');
  }
  const d = (doc ?? {}) as { kind?: string; spec?: ApiConfigSpec };
  if (d.kind !== undefined && d.kind !== 'calicoApiConfig' && d.kind !== 'CalicoAPIConfig') {
    throw new ValidationError(`config file ${path}: kind must be calicoApiConfig, not '${d.kind}'`, 'kind');
  }
  const spec = d.spec ?? {};
  if (spec.datastoreType && spec.datastoreType !== 'etcdv3' && spec.datastoreType !== 'etcdv2') {
    throw new ValidationError(`config file ${path}: datastoreType '${spec.datastoreType}' is not supported (use etcdv3)`, 'datastoreType');
  }
  return spec;
}

export function loadEtcdConfig(opts: { configFile?: string; env?: NodeJS.ProcessEnv } = {}): EtcdConfig {
  const env = opts.env ?? process.env;
  const explicitFile = opts.configFile !== undefined;
  const file = opts.configFile ?? DEFAULT_CONFIG_FILE;
  let spec: ApiConfigSpec = {};
  if (explicitFile || existsSync(file)) spec = readConfigFile(file);

  let endpoints: string[] | undefined;
  if (env.ETCD_ENDPOINTS) endpoints = parseEndpoints(env.ETCD_ENDPOINTS, 'ETCD_ENDPOINTS');
  else if (env.ETCD_AUTHORITY) endpoints = parseEndpoints(`http://${env.ETCD_AUTHORITY}`, 'ETCD_AUTHORITY');
  else if (spec.etcdEndpoints) endpoints = parseEndpoints(spec.etcdEndpoints, 'spec.etcdEndpoints');
  else if (spec.etcdAuthority) endpoints = parseEndpoints(`http://${spec.etcdAuthority}`, 'spec.etcdAuthority');

  return {
    endpoints: endpoints ?? [DEFAULT_ENDPOINT],
    caFile: env.ETCD_CA_CERT_FILE || spec.etcdCACertFile || undefined,
    certFile: env.ETCD_CERT_FILE || spec.etcdCertFile || undefined,
    keyFile: env.ETCD_KEY_FILE || spec.etcdKeyFile || undefined,
    username: env.ETCD_USERNAME || spec.etcdUsername || undefined,
    password: env.ETCD_PASSWORD || spec.etcdPassword || undefined,
    isDefault: endpoints === undefined,
  };
}

/** Reads a TLS file named in the configuration, with an error that says which setting points where. */
export function readTlsFile(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ValidationError(`cannot read ${setting} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, setting);
  }
}
