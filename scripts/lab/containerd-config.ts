/**
 * The config of a private containerd (the lab's hosts, and test dockerds when the machine runs a
 * containerd of its own): its own root, state and sockets, no CRI plugin (it would create
 * /etc/cni/net.d on the machine; `disable = true` in its section does not stop that), and its opt
 * dir inside its root (the default /opt/containerd is a directory nobody would remove).
 */
import { join } from 'node:path';

export interface ContainerdPaths {
  root: string;
  state: string;
  address: string;
  debugAddress: string;
}

export function containerdConfigToml(p: ContainerdPaths): string {
  return [
    'version = 2',
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    `root = "${p.root}"`,
    `state = "${p.state}"`,
    '[grpc]',
    `  address = "${p.address}"`,
    '[debug]',
    `  address = "${p.debugAddress}"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(p.root, 'opt')}"`,
    '',
  ].join('\n');
}
