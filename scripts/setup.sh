#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root): the system packages the project
# uses for real (etcd, Docker engine, nftables, BGP daemons for interop tests, busybox for test
# images), then `npm ci` and the TypeScript build, then `calicoctl` on the PATH. Anything already
# present is skipped, so running it before every `npm test` / `npm run demo` costs a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(etcd-server etcd-client nftables docker.io busybox-static bird2 gobgpd frr conntrack iproute2 kmod procps tar gzip
      util-linux openssl time vagrant gcc libc6-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages (${missing[*]}); run as root: sudo npm run setup" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's packages start no services here on their own (no systemd in CI); ours start by pid.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The project runs on Node.js 20 or newer (Debian 12's own nodejs is 18).
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "${major:-0}" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is needed (found ${major:-none}): install Node 20 (e.g. from the Node.js binary distributions), then run this again" >&2
  exit 1
fi

# Debian's frr/bird/etcd packages may have started their own daemons where systemd runs; ours
# never rely on them, and the tests use their own ports and namespaces.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# Build when any source is newer than the last build.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src cli proxy node test bench scripts tsconfig.json package.json -newer "$stamp" -type f 2>/dev/null | head -1)" ]; then
  echo "setup: building" >&2
  npx tsc -p tsconfig.json
  touch "$stamp"
fi
# calicoctl's start-up snapshot (cli/snapshot.ts): after a build of dist/, or for another node
# binary. calicoctl works without it (it only starts slower), so a failure here is a warning.
node dist/cli/build-snapshot.js --if-stale || echo "setup: the calicoctl start-up snapshot was not built; calicoctl starts without it" >&2
# The BGP speaker's netlink route programmer (C, libc only); the speaker falls back to `ip -batch` without it.
if [ ! -x dist/native/calico-fib ] || [ native/calico-fib.c -nt dist/native/calico-fib ]; then
  echo "setup: building dist/native/calico-fib" >&2
  mkdir -p dist/native
  cc -O2 -o dist/native/calico-fib.tmp native/calico-fib.c && mv dist/native/calico-fib.tmp dist/native/calico-fib
fi
# The workload wiring helper (C, libc only); the proxy and calicoctl fall back to `ip` without it.
if [ ! -x dist/native/calico-wire ] || [ native/calico-wire.c -nt dist/native/calico-wire ]; then
  echo "setup: building dist/native/calico-wire" >&2
  mkdir -p dist/native
  cc -O2 -o dist/native/calico-wire.tmp native/calico-wire.c && mv dist/native/calico-wire.tmp dist/native/calico-wire
fi
# The node daemon's memory reducer (native/malloc-trim.c, a Node-API addon built without node-gyp);
# without it the daemon simply keeps freed heap memory resident.
if [ ! -f dist/native/malloc-trim.node ] || [ native/malloc-trim.c -nt dist/native/malloc-trim.node ]; then
  echo "setup: building dist/native/malloc-trim.node" >&2
  mkdir -p dist/native
  cc -O2 -shared -fPIC -o dist/native/malloc-trim.node.tmp native/malloc-trim.c && mv dist/native/malloc-trim.node.tmp dist/native/malloc-trim.node
fi

# calicoctl on the PATH (root only; a user can run ./bin/calicoctl).
if [ "$(id -u)" = 0 ] && [ "$(readlink -f /usr/local/bin/calicoctl 2>/dev/null)" != "$(pwd)/bin/calicoctl" ]; then
  ln -sf "$(pwd)/bin/calicoctl" /usr/local/bin/calicoctl
fi
