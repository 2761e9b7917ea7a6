/**
 * calicoctl's command tree (commander). Both families live side by side: the resource commands of
 * calicoctl v1 (create/replace/apply/delete/get/config/ipam/version) and the Powerstrip-era
 * commands (profile, pool, bgp, endpoint, container, node ...). Handlers are `require`d only
 * when their command runs, so that start-up stays small. (main.ts loads this file only for the
 * command lines that fast.ts leaves to commander.)
 */
import { Command, Option } from 'commander';
import { setGlobals } from './context.js';

/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = <T>(path: string) => (): T => require(path) as T;
const resources = lazy<typeof import('./commands/resources.js')>('./commands/resources.js');
const profile = lazy<typeof import('./commands/profile.js')>('./commands/profile.js');
const pool = lazy<typeof import('./commands/pool.js')>('./commands/pool.js');
const bgp = lazy<typeof import('./commands/bgp.js')>('./commands/bgp.js');
const endpoint = lazy<typeof import('./commands/endpoint.js')>('./commands/endpoint.js');
const config = lazy<typeof import('./commands/config.js')>('./commands/config.js');
const ipam = lazy<typeof import('./commands/ipam.js')>('./commands/ipam.js');
const misc = lazy<typeof import('./commands/misc.js')>('./commands/misc.js');
const node = lazy<typeof import('./commands/node.js')>('./commands/node.js');
const container = lazy<typeof import('./commands/container.js')>('./commands/container.js');
/* eslint-enable @typescript-eslint/no-require-imports */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Action = (...args: any[]) => Promise<void> | void;

const outputOption = () => new Option('-o, --output <format>', 'output format: table (default), yaml or json');

export function buildProgram(): Command {
  const program = new Command('calicoctl');
  program
    .description('Manage Calico networking for Docker: profiles, endpoints, IP pools, BGP and the node.\n\n' +
      'Datastore: ETCD_ENDPOINTS (comma-separated URLs, default http://127.0.0.1:2379), ETCD_AUTHORITY (host:port), ' +
      'ETCD_CA_CERT_FILE / ETCD_CERT_FILE / ETCD_KEY_FILE for TLS, or the file given by -c.\n\n' +
      'CALICO_NODENAME overrides the host name used for this node.')
    .option('-c, --config <file>', 'datastore config file (kind: calicoApiConfig)', undefined)
    .option('-l, --log-level <level>', 'log level (debug prints stack traces on errors)', 'info')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();
  program.hook('preAction', (thisCommand) => {
    setGlobals(thisCommand.opts());
  });

  // ------------------------------------------------------------ resource commands (v1)
  for (const verb of ['create', 'replace', 'apply'] as const) {
    const c = program.command(verb)
      .description(`${verb === 'create' ? 'Create' : verb === 'replace' ? 'Replace' : 'Create or update'} resources from a file (YAML or JSON, v1 or projectcalico.org/v3)`)
      .requiredOption('-f, --filename <file>', 'file holding the resources, or - for stdin');
    if (verb === 'create') c.option('--skip-exists', 'skip resources that already exist instead of failing');
    c.action(((o: { filename: string; skipExists?: boolean }) => resources().write(verb, o)) as Action);
  }
  program.command('delete')
    .description('Delete resources, from a file or by KIND and NAME')
    .argument('[kind]', 'resource kind (profile, policy, workloadEndpoint, hostEndpoint, ipPool, bgpPeer, node, bgpConfiguration)')
    .argument('[names...]', 'resource names (for ipPool the CIDR, for bgpPeer the peer IP)')
    .option('-f, --filename <file>', 'file holding the resources, or - for stdin')
    .option('--node <node>', 'the node (workloadEndpoint, hostEndpoint, node-scoped bgpPeer)')
    .option('--orchestrator <orch>', 'the orchestrator (workloadEndpoint)')
    .option('--workload <workload>', 'the workload (workloadEndpoint)')
    .option('--scope <scope>', 'global or node (bgpPeer)')
    .option('--skip-not-exists', 'do not fail on resources that do not exist')
    .action(((kind: string | undefined, names: string[], o: Record<string, string | boolean>) => resources().del(kind, names, o)) as Action);
  program.command('get')
    .description('Show resources')
    .argument('[kind]', 'resource kind')
    .argument('[names...]', 'resource names')
    .option('-f, --filename <file>', 'get the resources named in a file')
    .option('-o, --output <format>', 'ps (default), wide, custom-columns=COL1,COL2, yaml or json', 'ps')
    .option('--node <node>', 'only resources of this node')
    .option('--orchestrator <orch>', 'only workload endpoints of this orchestrator')
    .option('--workload <workload>', 'only workload endpoints of this workload')
    .option('--scope <scope>', 'only bgp peers of this scope (global or node)')
    .action(((kind: string | undefined, names: string[], o: Record<string, string>) => resources().get(kind, names, o)) as Action);

  const cfg = program.command('config').description('Global and per-node settings: logLevel, nodeToNodeMesh, asNumber, ipip');
  cfg.command('set').argument('<name>').argument('<value>').option('--node <node>', 'set for one node only (logLevel, asNumber)')
    .description('Set a setting').action(((n: string, v: string, o: { node?: string }) => config().set(n, v, o)) as Action);
  cfg.command('get').argument('<name>').option('--node <node>', 'the value for one node')
    .description('Show a setting').action(((n: string, o: { node?: string }) => config().get(n, o)) as Action);
  cfg.command('unset').argument('<name>').option('--node <node>', 'unset for one node only')
    .description('Return a setting to its default').action(((n: string, o: { node?: string }) => config().unset(n, o)) as Action);

  const ip = program.command('ipam').description('IP address management');
  for (const sub of ['show', 'info'] as const) {
    ip.command(sub).description('Show the attributes of an assigned address, or usage per pool without --ip')
      .argument('[ip]').option('--ip <ip>', 'the address').addOption(outputOption())
      .action(((pos: string | undefined, o: { ip?: string; output?: string }) => ipam().show(o.ip ?? pos, o)) as Action);
  }
  ip.command('release').description('Release an address that leaked (the endpoint using it is not touched)')
    .argument('[ip]').option('--ip <ip>', 'the address')
    .action(((pos: string | undefined, o: { ip?: string }) => ipam().release(o.ip ?? pos)) as Action);

  program.command('version').description('Show the version').action((() => misc().version()) as Action);

  // ------------------------------------------------------------ Powerstrip-era commands
  const prof = program.command('profile').description('Security profiles: `profile add|remove|show`, `profile <P> tag ...`, `profile <P> rule ...`')
    .usage('add|remove <PROFILE> | show [--detailed] | <PROFILE> tag (add|remove) <TAG> | <PROFILE> tag show |\n' +
      '       <PROFILE> rule (add|remove) (inbound|outbound) [--at=<POS>] <RULE> | <PROFILE> rule (show|json|update)');
  prof.command('add').argument('<profile>').description('Create a profile with the default rules (allow from its own tag, allow out)')
    .action(((p: string) => profile().add(p)) as Action);
  prof.command('remove').argument('<profile>').option('--no-check', 'do not check whether endpoints still use it')
    .description('Delete a profile').action(((p: string, o: { check: boolean }) => profile().remove(p, o)) as Action);
  prof.command('show').option('--detailed', 'list the member endpoints').addOption(outputOption())
    .description('List profiles').action(((o: { detailed?: boolean; output?: string }) => profile().show(o)) as Action);
  prof.argument('[profile]').argument('[args...]')
    .option('--at <pos>', 'rule position (1-based) for rule add/remove')
    .allowUnknownOption(false)
    .action(((p: string | undefined, args: string[], o: { at?: string }) => profile().perProfile(p, args, o, prof)) as Action);

  const pl = program.command('pool').description('IP pools: `pool add|remove <CIDRS>...`, `pool show`');
  pl.command('add').argument('<cidrs...>').option('--ipip', 'use IP-in-IP for traffic between hosts').option('--nat-outgoing', 'NAT traffic leaving the pools')
    .description('Add (or update) pools').action(((c: string[], o: { ipip?: boolean; natOutgoing?: boolean }) => pool().add(c, o)) as Action);
  pl.command('remove').argument('<cidrs...>').description('Remove pools').action(((c: string[]) => pool().remove(c)) as Action);
  pl.command('show').option('--ipv4', 'IPv4 only').option('--ipv6', 'IPv6 only').addOption(outputOption())
    .description('List pools').action(((o: { ipv4?: boolean; ipv6?: boolean; output?: string }) => pool().show(o)) as Action);

  const addPeerCommands = (parent: Command, scope: 'global' | 'node') => {
    parent.command('add').argument('<peer_ip>').argument('<as>', 'the literal word "as"').argument('<as_num>')
      .description('Add a BGP peer').action(((ipText: string, asWord: string, asNum: string) => bgp().peerAdd(scope, ipText, asWord, asNum)) as Action);
    parent.command('remove').argument('<peer_ip>').description('Remove a BGP peer').action(((ipText: string) => bgp().peerRemove(scope, ipText)) as Action);
    parent.command('show').option('--ipv4', 'IPv4 only').option('--ipv6', 'IPv6 only').addOption(outputOption())
      .description('List BGP peers').action(((o: { ipv4?: boolean; ipv6?: boolean; output?: string }) => bgp().peerShow(scope, o)) as Action);
  };
  const bg = program.command('bgp').description('BGP: `bgp peer add|remove|show`, `bgp node-mesh [on|off]`, `bgp default-node-as [AS]`');
  addPeerCommands(bg.command('peer').description('Global BGP peers'), 'global');
  bg.command('node-mesh').argument('[state]', 'on or off').description('Show or set the node-to-node mesh').action(((s?: string) => bgp().nodeMesh(s)) as Action);
  bg.command('default-node-as').argument('[as_num]').description('Show or set the default AS of the nodes').action(((a?: string) => bgp().defaultAs(a)) as Action);
  // v0.4 spellings
  addPeerCommands(program.command('bgppeer').description('Global BGP peers (v0.4 spelling of `bgp peer`)'), 'global');
  program.command('bgp-node-mesh').argument('[state]').description('v0.4 spelling of `bgp node-mesh`').action(((s?: string) => bgp().nodeMesh(s)) as Action);
  program.command('default-node-as').argument('[as_num]').description('v0.4 spelling of `bgp default-node-as`').action(((a?: string) => bgp().defaultAs(a)) as Action);

  const nd = program.command('node')
    .summary('Start the Calico node on this host (--ip=<IP>), or stop / status / checksystem / diags / bgp peer')
    .description('Start the Calico node on this host (agent, BGP speaker, Docker API proxy), or manage it:\n' +
      '`node --ip=<IP>`, `node stop`, `node status`, `node checksystem`, `node diags`, `node bgp peer ...`')
    .option('--ip <ip>', "this host's IPv4 address, or autodetect (the address of the interface with the default route)")
    .option('--ip6 <ip6>', "this host's IPv6 address (needed for IPv6 workloads)")
    .option('--as <as_num>', 'this node\'s AS number (default: the global one, see bgp default-node-as)')
    .option('--name <name>', 'this node\'s name (default: CALICO_NODENAME or the host name)')
    .option('--log-dir <dir>', 'where the node writes its log', '/var/log/calico')
    .option('--docker-socket <path>', 'the Docker daemon socket the proxy forwards to', '/var/run/docker.sock')
    .option('--proxy-listen <addr>', 'where the Docker API proxy listens (host:port or a unix socket path)', '127.0.0.1:2377')
    .option('--backend <backend>', 'BGP: builtin (the node\'s own speaker) or none', 'builtin')
    .option('--no-default-ippools', 'do not create the default IP pools')
    .option('--metrics-port <port>', 'Prometheus metrics on 127.0.0.1 (0 = off)', '9091')
    .option('--bgp-port <port>', 'BGP port', '179')
    .option('--dryrun', 'print what would be done, and do nothing')
    .option('--init-system', 'run in the foreground (for systemd)')
    .option('--detach <bool>', 'run the node in the background', 'true')
    .action(((o: import('./commands/node.js').NodeStartOptions) => node().start(o)) as Action);
  addPeerCommands(nd.command('bgp').description('BGP of this node').command('peer').description('BGP peers of this node only'), 'node');
  addPeerCommands(nd.command('bgppeer').description('v0.4 spelling of `node bgp peer`'), 'node');
  nd.command('stop').option('--force', 'stop even though this host has endpoints (they are removed)')
    .description('Stop the node and remove its configuration').action(((o: { force?: boolean }) => node().stop(o)) as Action);
  nd.command('status').description('The node process, its agent, and the BGP peer table').action((() => node().status()) as Action);
  nd.command('checksystem').option('--fix', 'fix what can be fixed (sysctls, modules)').option('--docker-socket <path>', 'Docker socket', '/var/run/docker.sock')
    .description('Check that this host can run the node').action(((o: { fix?: boolean; dockerSocket: string }) => node().checksystem(o)) as Action);
  nd.command('diags').option('--log-dir <dir>', 'the node\'s log dir', '/var/log/calico')
    .description('Collect diagnostics into a tar.gz').action(((o: { logDir: string }) => node().diags(o)) as Action);

  const ep = program.command('endpoint').description('Workload endpoints: `endpoint show`, `endpoint <EID> profile append|remove|set|show`');
  ep.command('show').option('--host <host>').option('--orchestrator <orch>').option('--workload <workload>').option('--endpoint <eid>')
    .option('--detailed', 'one row per endpoint').addOption(outputOption())
    .description('List endpoints').action(((o: Record<string, string | boolean>) => endpoint().show(o)) as Action);
  ep.argument('[endpoint_id]').argument('[args...]')
    .option('--host <host>').option('--orchestrator <orch>').option('--workload <workload>').addOption(outputOption())
    .action(((eid: string | undefined, args: string[], o: Record<string, string>) => endpoint().profileCmd(eid, args, o, ep)) as Action);

  program.command('status').description('The node process, its agent, and the BGP peer table').action((() => node().status()) as Action);
  program.command('checksystem').option('--fix', 'fix what can be fixed (sysctls, modules)').option('--docker-socket <path>', 'Docker socket', '/var/run/docker.sock')
    .description('Check that this host can run the node').action(((o: { fix?: boolean; dockerSocket: string }) => node().checksystem(o)) as Action);
  program.command('diags').option('--log-dir <dir>', 'the node\'s log dir', '/var/log/calico')
    .description('Collect diagnostics (routes, nftables, links, logs, etcd data) into a tar.gz').action(((o: { logDir: string }) => node().diags(o)) as Action);

  const ct = program.command('container')
    .summary('Network containers by hand: add, remove, <C> ip|endpoint-id|profile ...')
    .description('Containers: `container add <C> <IP|auto> [--interface=eth1]`, `container remove <C>`,\n' +
      '`container <C> ip add|remove <IP>`, `container <C> endpoint-id show`, `container <C> profile append|remove|set [PROFILES...]`')
    .option('--docker-socket <path>', 'the Docker daemon socket', '/var/run/docker.sock');
  ct.command('add').argument('<container>').argument('<ip>', 'an address in a pool, auto, ipv4, ipv6, or a pool CIDR').option('--interface <name>', 'interface in the container', 'eth1')
    .description('Network a running container with Calico').action(((c: string, ip: string, o: { interface: string }) => container().add(c, ip, o, ct.opts())) as Action);
  ct.command('remove').argument('<container>').description('Remove Calico networking from a container')
    .action(((c: string) => container().remove(c, ct.opts())) as Action);
  ct.argument('[container]').argument('[args...]').option('--interface <name>', 'interface in the container', 'eth1')
    .action(((c: string | undefined, args: string[], o: { interface: string; dockerSocket: string }) => container().perContainer(c, args, o, ct)) as Action);
  return program;
}
