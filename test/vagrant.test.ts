/**
 * The Vagrantfile: `vagrant validate` (Debian's vagrant; no provider needed with
 * --ignore-provider), and its provisioning, read out of the Vagrantfile by Ruby (vagrant's own
 * interpreter) with a stand-in for Vagrant.configure: two VMs on 172.17.8.101/.102, a Debian 12
 * box, scripts/setup.sh as the set-up, etcd on calico-01's address, `calicoctl node --ip=...` with
 * ETCD_ENDPOINTS, and every inline script valid bash.
 *
 * Skipped, with a message, only when `vagrant` is not installed (scripts/setup.sh installs it).
 * Vagrant's state goes to a temp dir (VAGRANT_HOME, VAGRANT_DOTFILE_PATH), not ~/.vagrant.d or the
 * checkout.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..');
const hasVagrant = spawnSync('sh', ['-c', 'command -v vagrant'], { stdio: 'ignore' }).status === 0;
const SKIP = hasVagrant ? false : 'vagrant is not installed: scripts/setup.sh installs it (apt-get install vagrant)';
const tmp = mkdtempSync(join(tmpdir(), 'vagrant-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const env = { ...process.env, VAGRANT_HOME: join(tmp, 'home'), VAGRANT_DOTFILE_PATH: join(tmp, 'dot'), VAGRANT_CHECKPOINT_DISABLE: '1' };

test('vagrant validate accepts the Vagrantfile', { skip: SKIP }, () => {
  const r = spawnSync('vagrant', ['validate', '--ignore-provider', '--no-color'], { cwd: REPO, env, encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /Vagrantfile validated successfully/);
  assert.equal(existsSync(join(REPO, '.vagrant')), false, 'nothing written into the checkout');
});

interface Machine { name: string; box: string; ip: string; hostname: string; provisioners: Array<{ name: string; inline: string }> }

/** Loads the Vagrantfile with a recording stand-in for Vagrant's config objects; prints JSON. */
const RECORDER = `
require 'json'
class Rec
  attr_reader :calls
  def initialize; @calls = []; end
  def method_missing(name, *args, **kw, &blk)
    child = Rec.new
    @calls << { 'name' => name.to_s, 'args' => args, 'kw' => kw.transform_keys(&:to_s), 'child' => child }
    blk.call(child) if blk
    child
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.configure(_version)
    root = Rec.new
    yield root
    $root = root
  end
end
load ARGV[0]
def find(rec, name) = rec.calls.select { |c| c['name'] == name }
vm = find($root, 'vm').map { |c| c['child'] }
box = vm.flat_map { |v| find(v, 'box=') }.first['args'][0]
machines = vm.flat_map { |v| find(v, 'define') }.map do |d|
  host_vm = find(d['child'], 'vm').map { |c| c['child'] }
  calls = host_vm.flat_map(&:calls)
  {
    'name' => d['args'][0], 'box' => box,
    'hostname' => calls.find { |c| c['name'] == 'hostname=' }['args'][0],
    'ip' => calls.find { |c| c['name'] == 'network' }['kw']['ip'],
    'provisioners' => calls.select { |c| c['name'] == 'provision' }.map { |c| { 'name' => c['args'][0], 'inline' => c['kw']['inline'] } },
  }
end
puts JSON.generate(machines)
`;

test('the VMs and their provisioning: setup.sh, etcd on calico-01, calicoctl node --ip, valid bash', { skip: SKIP }, () => {
  const recorder = join(tmp, 'recorder.rb');
  writeFileSync(recorder, RECORDER);
  const r = spawnSync('ruby', [recorder, join(REPO, 'Vagrantfile')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const machines = JSON.parse(r.stdout) as Machine[];
  assert.deepEqual(machines.map((m) => [m.name, m.hostname, m.ip, m.box]), [
    ['calico-01', 'calico-01', '172.17.8.101', 'debian/bookworm64'],
    ['calico-02', 'calico-02', '172.17.8.102', 'debian/bookworm64'],
  ]);
  for (const m of machines) {
    const all = m.provisioners.map((p) => p.inline).join('\n');
    assert.match(all, /cd \/vagrant\s+bash scripts\/setup\.sh/, `${m.name} is set up by scripts/setup.sh`);
    assert.match(all, new RegExp(`ExecStart=/usr/local/bin/calicoctl node --ip=${m.ip.replace(/\./g, '\\.')} `), `${m.name} starts its node`);
    assert.match(all, /Environment=ETCD_ENDPOINTS=http:\/\/172\.17\.8\.101:2379/);
    assert.match(all, /export DOCKER_HOST=localhost:2377/);
    const etcd = /--listen-client-urls http:\/\/172\.17\.8\.101:2379/.test(all);
    assert.equal(etcd, m.name === 'calico-01', `etcd listens on 172.17.8.101:2379 only on calico-01 (${m.name})`);
    for (const p of m.provisioners) {
      const file = join(tmp, `${m.name}-${p.name}.sh`);
      writeFileSync(file, p.inline);
      const n = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
      assert.equal(n.status, 0, `${m.name} provisioner ${p.name}: ${n.stderr}`);
    }
  }
});
