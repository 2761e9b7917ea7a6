#!/usr/bin/env bash
# The classic demo on the Vagrant VMs (see the Vagrantfile), driven from the host machine: every
# step is `vagrant ssh <vm> -c '<command>'`, printed as the command a user types on that VM. Ends
# with the ping matrix (rows ping columns, expected/seen) and `calicoctl node status` on both VMs;
# exits non-zero on any mismatch. Re-runnable: it first removes what an earlier run made.
#
#   vagrant up && bash scripts/lab/vagrant-demo.sh
#
# VAGRANT=<command> replaces `vagrant` (the lab's tests point it at the namespace lab).
set -euo pipefail
VAGRANT=${VAGRANT:-vagrant}
WORKLOADS=(A B C D E F)
declare -A HOST=([A]=calico-01 [B]=calico-01 [C]=calico-01 [D]=calico-02 [E]=calico-02 [F]=calico-01)
declare -A IP=([A]=192.168.1.1 [B]=192.168.1.2 [C]=192.168.1.3 [D]=192.168.1.4 [E]=192.168.1.5)
declare -A PROFILE=([A]=PROF_A_C_E [B]=PROF_B [C]=PROF_A_C_E [D]=PROF_D [E]=PROF_A_C_E [F]=PROF_A_C_E)
declare -A HOST_IP=([calico-01]=172.17.8.101 [calico-02]=172.17.8.102)

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

# on VM COMMAND: show it, run it there (a login shell: /etc/profile.d/calico.sh sets the environment).
on() {
  local vm=$1; shift
  printf '\n'; bold "$vm\$ $*"
  "$VAGRANT" ssh "$vm" -c "$*" 2>&1 | tr -d '\r'
  return "${PIPESTATUS[0]}"
}
# quietly VM COMMAND: run it, print nothing but its output (no echo of the command).
quietly() { local vm=$1; shift; "$VAGRANT" ssh "$vm" -c "$*" 2>/dev/null | tr -d '\r'; }
say() { printf 'demo: %s\n' "$*"; }
trap 'say "a step failed (exit $?): see its output above"' ERR

say "removing what an earlier run made (if anything)"
for vm in calico-01 calico-02; do
  quietly "$vm" "docker rm -f workload-A workload-B workload-C workload-D workload-E workload-F >/dev/null 2>&1; true" >/dev/null
done
for p in PROF_A_C_E PROF_B PROF_D; do quietly calico-01 "sudo calicoctl profile remove $p --no-check >/dev/null 2>&1; true" >/dev/null; done

say "1. five workloads through the Calico proxy (DOCKER_HOST=localhost:2377); no profiles yet, so no one reaches anyone"
for w in A B C D E; do on "${HOST[$w]}" "docker run -e CALICO_IP=${IP[$w]} --name workload-$w -tid busybox"; done

say "2. three profiles"
for p in PROF_A_C_E PROF_B PROF_D; do on calico-01 "sudo calicoctl profile add $p"; done

say "3. each endpoint into its profile, on the container's own host"
for w in A B C D E; do
  out=$(on "${HOST[$w]}" "sudo calicoctl container workload-$w endpoint-id show")
  printf '%s\n' "$out"
  on "${HOST[$w]}" "sudo calicoctl endpoint $(printf '%s\n' "$out" | tail -1) profile append ${PROFILE[$w]}"
done

say "4. workload-F: an address from the pool and its profile at creation"
on calico-01 "docker run -e CALICO_IP=auto -e CALICO_PROFILE=PROF_A_C_E --name workload-F -tid busybox"
out=$(on calico-01 "docker inspect --format '{{.NetworkSettings.IPAddress}}' workload-F")
printf '%s\n' "$out"
IP[F]=$(printf '%s\n' "$out" | tail -1)

# Commands typed by hand come seconds apart; these come back to back. Before pinging, wait until
# both agents have applied the latest etcd revision and each VM routes the other's workloads.
say "5. the ping matrix (docker exec <C> ping -c 1 -W 1 <ip>, all pairs at once)"
rev=$(quietly calico-01 'ETCDCTL_API=3 etcdctl --endpoints=$ETCD_ENDPOINTS endpoint status -w json' | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2)
for vm in calico-01 calico-02; do
  remote=()
  for w in "${WORKLOADS[@]}"; do
    [ "${HOST[$w]}" = "$vm" ] && continue
    remote+=("${IP[$w]}")
  done
  other_ip=${HOST_IP[$([ "$vm" = calico-01 ] && echo calico-02 || echo calico-01)]}
  quietly "$vm" "for i in \$(seq 1 150); do
      applied=\$(sudo calicoctl node status 2>/dev/null | sed -n 's/.*at revision \([0-9]*\).*/\1/p')
      ok=1; [ \"\${applied:-0}\" -ge ${rev:-0} ] || ok=0
      for ip in ${remote[*]}; do ip route get \$ip | grep -q 'via $other_ip ' || ok=0; done
      [ \$ok = 1 ] && exit 0; sleep 0.2
    done; echo 'not converged after 30 s; pinging anyway' >&2" || true
done

declare -A SEEN=()
for vm in calico-01 calico-02; do
  jobs=""
  for from in "${WORKLOADS[@]}"; do
    [ "${HOST[$from]}" = "$vm" ] || continue
    for to in "${WORKLOADS[@]}"; do
      [ "$from" = "$to" ] && continue
      jobs+="(docker exec workload-$from ping -c 1 -W 1 ${IP[$to]} >/dev/null 2>&1 && echo $from $to yes || echo $from $to no) & "
    done
  done
  while read -r from to seen; do
    [ -n "${from:-}" ] && SEEN[$from$to]=$seen
  done < <(quietly "$vm" "$jobs wait")
done

expected() { case "$1$2" in *B*|*D*) echo no ;; *) echo yes ;; esac; }
printf '\nPing matrix (rows ping columns; each cell: expected/seen reply)\n\n'
printf '%-15s' 'from \ to'; for to in "${WORKLOADS[@]}"; do printf '%-15s' "$to ${IP[$to]}"; done; printf '\n'
fails=0; total=0
for from in "${WORKLOADS[@]}"; do
  printf '%-15s' "$from ${IP[$from]}"
  for to in "${WORKLOADS[@]}"; do
    if [ "$from" = "$to" ]; then printf '%-15s' '-'; continue; fi
    e=$(expected "$from" "$to"); s=${SEEN[$from$to]:-no}; total=$((total + 1))
    if [ "$e" = "$s" ]; then r=PASS; else r=FAIL; fails=$((fails + 1)); fi
    printf '%-15s' "$e/$s $r"
  done
  printf '\n'
done
printf '\n%d pings, %d mismatch(es)\n' "$total" "$fails"

say "6. the BGP mesh between the VMs"
mesh=0
for vm in calico-01 calico-02; do
  out=$(on "$vm" "sudo calicoctl node status")
  printf '%s\n' "$out"
  other_ip=${HOST_IP[$([ "$vm" = calico-01 ] && echo calico-02 || echo calico-01)]}
  printf '%s\n' "$out" | grep " $other_ip " | grep -q Established || { mesh=1; say "FAIL: $vm has no Established session with $other_ip"; }
done

if [ "$fails" -eq 0 ] && [ "$mesh" -eq 0 ]; then
  bold "RESULT: PASS: ping matrix as expected ($total/$total); BGP mesh Established on both VMs"
else
  bold "RESULT: FAIL: $fails ping(s) not as expected; mesh $([ $mesh = 0 ] && echo Established || echo 'NOT Established')"
  exit 1
fi
