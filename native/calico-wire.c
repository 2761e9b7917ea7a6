/*
 * calico-wire: wires workloads (the veth, its addresses, routes and sysctls) through netlink, in
 * the host namespace and inside containers' namespaces, as one long-lived process.
 *
 * Why: the same work done with `ip -batch` needs a process in each namespace (nsenter + ip inside
 * the container, ip and sh on the host side), and a process spawn costs ~2 ms on the reference
 * machine while the netlink work itself takes microseconds. Node has no AF_NETLINK sockets and
 * cannot move a thread into another namespace, and the `netlink` addon crashed the process (see
 * node/bgp/fib.ts). This process opens a NETLINK_ROUTE socket inside a container's namespace by
 * switching into it (setns) just long enough to create the socket and write that namespace's
 * sysctls, then switches back; the socket stays bound to the namespace it was created in.
 *
 * Usage: calico-wire [<host netns path>]   (switches to that namespace first; default: its own)
 * Input, one request per line, fields separated by single spaces, "-" for an empty list:
 *   h <seq> <container netns path> <host if> <container if> <host mac> <container mac> <addrgen-none 0|1>
 *     <host link-local/len|-> <route protocol> <routes csv|-> [<sysctl key>=<value> ...]
 *       host side: the veth (peer created inside the container namespace), IPv6 address generation
 *       off when asked, the host side up, its link-local address (no DAD), the host routes
 *       (replace, scope link for IPv4), then the sysctls (paths under /proc/sys) in the host namespace
 *   c <seq> <container netns path> <container if> <addresses csv|-> <IPv4 gateway|-> <IPv6 gateway|-> <enable-ipv6 0|1>
 *       container side: disable_ipv6=0 on the interface when asked, the interface up, the
 *       addresses (IPv6 without DAD), a scope-link route to the IPv4 gateway and default routes
 *   p <seq>   answered "ok <seq>" (liveness check)
 * Output, one line per request:
 *   ok <seq>
 *   e <seq> <stage> <errno> <message>
 *     stage: netns (the container namespace cannot be opened), exists (an interface of that name
 *     exists; nothing was made), veth (the veth could not be made; nothing was made), host (the
 *     veth exists, the host side could not be configured), sysctl, container, input (bad request)
 * Nothing is undone here: the caller deletes the host side on failure (that removes everything).
 * Exits 0 when stdin closes, 1 if it cannot return to the host namespace (it must not go on in
 * the wrong one).
 *
 * Needs only libc and the Linux UAPI headers: cc -O2 -o calico-wire calico-wire.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef IFA_F_NODAD
#define IFA_F_NODAD 0x02
#endif
#ifndef IN6_ADDR_GEN_MODE_NONE
#define IN6_ADDR_GEN_MODE_NONE 1
#endif

#define MSG_CAP 4096
#define MAX_FIELDS 64

static int host_ns = -1;   /* our own (host) namespace, to come back to */
static int host_nl = -1;   /* NETLINK_ROUTE socket in the host namespace */
static uint32_t nl_seq = 1;

struct failure { const char *stage; int err; char text[256]; };

static int fail(struct failure *f, const char *stage, int err, const char *fmt, const char *arg) {
  f->stage = stage;
  f->err = err;
  char what[200];
  snprintf(what, sizeof what, fmt, arg ? arg : "");
  snprintf(f->text, sizeof f->text, "%s: %s", what, strerror(err));
  return -1;
}

/* ---- netlink message building ---- */

struct msg { struct nlmsghdr *h; char buf[MSG_CAP]; };

static void *msg_init(struct msg *m, uint16_t type, uint16_t flags, size_t hdrlen) {
  memset(m->buf, 0, sizeof m->buf);
  m->h = (struct nlmsghdr *)m->buf;
  m->h->nlmsg_len = NLMSG_LENGTH(hdrlen);
  m->h->nlmsg_type = type;
  m->h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  return NLMSG_DATA(m->h);
}

static struct rtattr *attr_put(struct msg *m, uint16_t type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(m->h->nlmsg_len);
  if (at + RTA_SPACE(len) > sizeof m->buf) return NULL; /* requests here are far smaller */
  struct rtattr *a = (struct rtattr *)(m->buf + at);
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  m->h->nlmsg_len = at + RTA_SPACE(len);
  return a;
}

static struct rtattr *nest_begin(struct msg *m, uint16_t type) { return attr_put(m, type, NULL, 0); }
static void nest_end(struct msg *m, struct rtattr *a) { a->rta_len = (char *)m->buf + m->h->nlmsg_len - (char *)a; }

/* Sends one request and waits for its ACK; returns 0 or a positive errno. */
static int nl_talk(int fd, struct msg *m) {
  m->h->nlmsg_seq = ++nl_seq;
  if (send(fd, m->buf, m->h->nlmsg_len, 0) < 0) return errno;
  char rb[8192];
  for (;;) {
    ssize_t n = recv(fd, rb, sizeof rb, 0);
    if (n < 0) { if (errno == EINTR) continue; return errno; }
    for (struct nlmsghdr *h = (struct nlmsghdr *)rb; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != m->h->nlmsg_seq) continue; /* an answer to an earlier, failed talk */
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error < 0 ? -e->error : 0;
      }
    }
  }
}

static int nl_socket(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one); /* ACKs without the request echoed */
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { close(fd); return -1; }
  return fd;
}

/* ---- parsing ---- */

static int parse_mac(const char *s, unsigned char out[6]) {
  unsigned v[6];
  if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) out[i] = (unsigned char)v[i];
  return 0;
}

struct prefix { int family; unsigned char addr[16]; int len; };

/* "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n"; without /n: a host prefix. */
static int parse_prefix(const char *text, struct prefix *p) {
  char s[64];
  if (strlen(text) >= sizeof s) return -1;
  strcpy(s, text);
  char *slash = strchr(s, '/');
  if (slash) *slash = 0;
  p->family = strchr(s, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(p->family, s, p->addr) != 1) return -1;
  int max = p->family == AF_INET ? 32 : 128;
  p->len = max;
  if (slash) {
    char *end;
    long l = strtol(slash + 1, &end, 10);
    if (*end || l < 0 || l > max) return -1;
    p->len = (int)l;
  }
  return 0;
}

static size_t addr_size(int family) { return family == AF_INET ? 4 : 16; }

/* Splits a csv list in place; "-" is empty. */
static int split_csv(char *s, char **out, int max) {
  if (strcmp(s, "-") == 0) return 0;
  int n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (n == max) return -1;
    out[n++] = tok;
  }
  return n;
}

/* ---- operations ---- */

static int link_up(int fd, int ifindex) {
  struct msg m;
  struct ifinfomsg *ifi = msg_init(&m, RTM_NEWLINK, 0, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return nl_talk(fd, &m);
}

static int addrgen_none(int fd, int ifindex) {
  struct msg m;
  struct ifinfomsg *ifi = msg_init(&m, RTM_NEWLINK, 0, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  struct rtattr *spec = nest_begin(&m, IFLA_AF_SPEC);
  struct rtattr *inet6 = nest_begin(&m, AF_INET6);
  uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
  attr_put(&m, IFLA_INET6_ADDR_GEN_MODE, &mode, 1);
  nest_end(&m, inet6);
  nest_end(&m, spec);
  return nl_talk(fd, &m);
}

static int addr_add(int fd, int ifindex, const struct prefix *p, unsigned char scope) {
  struct msg m;
  struct ifaddrmsg *ifa = msg_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof *ifa);
  ifa->ifa_family = (unsigned char)p->family;
  ifa->ifa_prefixlen = (unsigned char)p->len;
  ifa->ifa_scope = scope;
  ifa->ifa_index = (unsigned)ifindex;
  uint32_t flags = 0;
  if (p->family == AF_INET6) { ifa->ifa_flags = IFA_F_NODAD; flags = IFA_F_NODAD; }
  attr_put(&m, IFA_LOCAL, p->addr, addr_size(p->family));
  attr_put(&m, IFA_ADDRESS, p->addr, addr_size(p->family));
  if (flags) attr_put(&m, IFA_FLAGS, &flags, sizeof flags);
  return nl_talk(fd, &m);
}

/* Replaces a unicast route in the main table: dst via gw (NULL: directly on the link) dev ifindex. */
static int route_replace(int fd, int ifindex, const struct prefix *dst, const struct prefix *gw, unsigned char proto, unsigned char scope) {
  struct msg m;
  struct rtmsg *rt = msg_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof *rt);
  rt->rtm_family = (unsigned char)dst->family;
  rt->rtm_dst_len = (unsigned char)dst->len;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = proto;
  rt->rtm_scope = scope;
  rt->rtm_type = RTN_UNICAST;
  if (dst->len > 0) attr_put(&m, RTA_DST, dst->addr, addr_size(dst->family));
  if (gw) attr_put(&m, RTA_GATEWAY, gw->addr, addr_size(gw->family));
  uint32_t oif = (uint32_t)ifindex;
  attr_put(&m, RTA_OIF, &oif, sizeof oif);
  return nl_talk(fd, &m);
}

/* RTM_NEWLINK veth <host> address <hmac> peer <cont> address <cmac> netns <fd>, created exclusively. */
static int veth_add(int fd, const char *host_if, const unsigned char hmac[6], const char *cont_if, const unsigned char cmac[6], int peer_ns) {
  struct msg m;
  struct ifinfomsg *ifi = msg_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  attr_put(&m, IFLA_IFNAME, host_if, strlen(host_if) + 1);
  attr_put(&m, IFLA_ADDRESS, hmac, 6);
  struct rtattr *info = nest_begin(&m, IFLA_LINKINFO);
  attr_put(&m, IFLA_INFO_KIND, "veth", 4);
  struct rtattr *data = nest_begin(&m, IFLA_INFO_DATA);
  struct rtattr *peer = nest_begin(&m, VETH_INFO_PEER);
  /* The peer's attributes follow its own ifinfomsg header. */
  size_t at = NLMSG_ALIGN(m.h->nlmsg_len);
  memset(m.buf + at, 0, sizeof(struct ifinfomsg));
  m.h->nlmsg_len = at + NLMSG_ALIGN(sizeof(struct ifinfomsg));
  attr_put(&m, IFLA_IFNAME, cont_if, strlen(cont_if) + 1);
  attr_put(&m, IFLA_ADDRESS, cmac, 6);
  uint32_t nsfd = (uint32_t)peer_ns;
  attr_put(&m, IFLA_NET_NS_FD, &nsfd, sizeof nsfd);
  nest_end(&m, peer);
  nest_end(&m, data);
  nest_end(&m, info);
  return nl_talk(fd, &m);
}

static int write_sysctl(const char *key, const char *value, struct failure *f) {
  char path[300];
  if (strstr(key, "..") || snprintf(path, sizeof path, "/proc/sys/%s", key) >= (int)sizeof path) {
    errno = EINVAL;
    return fail(f, "sysctl", EINVAL, "sysctl %s", key);
  }
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(f, "sysctl", errno, "sysctl %s", key);
  char line[64];
  int n = snprintf(line, sizeof line, "%s\n", value);
  ssize_t w = write(fd, line, (size_t)n);
  int err = errno;
  close(fd);
  if (w != n) return fail(f, "sysctl", w < 0 ? err : EIO, "sysctl %s", key);
  return 0;
}

static void back_home_or_die(void) {
  if (setns(host_ns, CLONE_NEWNET) != 0) {
    fprintf(stderr, "calico-wire: cannot return to the host namespace: %s\n", strerror(errno));
    exit(1);
  }
}

/* h <seq> <nspath> <hostif> <contif> <hmac> <cmac> <addrgen-none> <ll6|-> <proto> <routes|-> [k=v ...] */
static int host_side(char **fl, int nf, struct failure *f) {
  if (nf < 11) return fail(f, "input", EINVAL, "host request needs at least 11 fields%s", NULL);
  const char *ns_path = fl[2], *host_if = fl[3], *cont_if = fl[4];
  unsigned char hmac[6], cmac[6];
  if (parse_mac(fl[5], hmac) || parse_mac(fl[6], cmac)) return fail(f, "input", EINVAL, "bad MAC address%s", NULL);
  int no_addrgen = strcmp(fl[7], "1") == 0;
  struct prefix ll;
  int has_ll = strcmp(fl[8], "-") != 0;
  if (has_ll && parse_prefix(fl[8], &ll)) return fail(f, "input", EINVAL, "bad link-local address %s", fl[8]);
  unsigned char proto = (unsigned char)atoi(fl[9]);
  char *routes_txt[32];
  int nroutes = split_csv(fl[10], routes_txt, 32);
  if (nroutes < 0) return fail(f, "input", EINVAL, "too many routes%s", NULL);
  struct prefix routes[32];
  for (int i = 0; i < nroutes; i++) {
    if (parse_prefix(routes_txt[i], &routes[i])) return fail(f, "input", EINVAL, "bad route %s", routes_txt[i]);
  }
  if (strlen(host_if) >= IFNAMSIZ || strlen(cont_if) >= IFNAMSIZ) return fail(f, "input", EINVAL, "interface name too long%s", NULL);

  int ns = open(ns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return fail(f, "netns", errno, "open %s", ns_path);
  int err = veth_add(host_nl, host_if, hmac, cont_if, cmac, ns);
  close(ns);
  if (err == EEXIST) return fail(f, "exists", err, "create veth %s", host_if);
  if (err) return fail(f, "veth", err, "create veth %s", host_if);

  int idx = (int)if_nametoindex(host_if);
  if (!idx) return fail(f, "host", errno, "find %s", host_if);
  if (no_addrgen && (err = addrgen_none(host_nl, idx))) return fail(f, "host", err, "addrgenmode none on %s", host_if);
  if ((err = link_up(host_nl, idx))) return fail(f, "host", err, "set %s up", host_if);
  if (has_ll && (err = addr_add(host_nl, idx, &ll, RT_SCOPE_LINK))) return fail(f, "host", err, "add link-local address on %s", host_if);
  for (int i = 0; i < nroutes; i++) {
    unsigned char scope = routes[i].family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    if ((err = route_replace(host_nl, idx, &routes[i], NULL, proto, scope))) return fail(f, "host", err, "route %s", routes_txt[i]);
  }
  for (int i = 11; i < nf; i++) {
    char *eq = strchr(fl[i], '=');
    if (!eq) return fail(f, "input", EINVAL, "sysctl without '=': %s", fl[i]);
    *eq = 0;
    if (write_sysctl(fl[i], eq + 1, f)) return -1;
  }
  return 0;
}

/* c <seq> <nspath> <contif> <addrs|-> <gw4|-> <gw6|-> <enable-ipv6> */
static int container_side(char **fl, int nf, struct failure *f) {
  if (nf != 8) return fail(f, "input", EINVAL, "container request needs 8 fields%s", NULL);
  const char *ns_path = fl[2], *cont_if = fl[3];
  char *addr_txt[32];
  int naddrs = split_csv(fl[4], addr_txt, 32);
  if (naddrs < 0) return fail(f, "input", EINVAL, "too many addresses%s", NULL);
  struct prefix addrs[32], gw4, gw6;
  for (int i = 0; i < naddrs; i++) {
    if (parse_prefix(addr_txt[i], &addrs[i])) return fail(f, "input", EINVAL, "bad address %s", addr_txt[i]);
  }
  int has_gw4 = strcmp(fl[5], "-") != 0, has_gw6 = strcmp(fl[6], "-") != 0;
  if (has_gw4 && (parse_prefix(fl[5], &gw4) || gw4.family != AF_INET)) return fail(f, "input", EINVAL, "bad IPv4 gateway %s", fl[5]);
  if (has_gw6 && (parse_prefix(fl[6], &gw6) || gw6.family != AF_INET6)) return fail(f, "input", EINVAL, "bad IPv6 gateway %s", fl[6]);
  int enable6 = strcmp(fl[7], "1") == 0;

  int ns = open(ns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return fail(f, "netns", errno, "open %s", ns_path);
  if (setns(ns, CLONE_NEWNET) != 0) { int e = errno; close(ns); return fail(f, "netns", e, "enter %s", ns_path); }
  close(ns);
  /* Inside the container's namespace: its socket, its interface index, its sysctl. */
  int fd = nl_socket();
  int sock_err = errno;
  int idx = fd < 0 ? 0 : (int)if_nametoindex(cont_if);
  int idx_err = errno;
  int rc = 0;
  if (fd >= 0 && idx && enable6) {
    char key[128];
    snprintf(key, sizeof key, "net/ipv6/conf/%s/disable_ipv6", cont_if);
    rc = write_sysctl(key, "0", f);
  }
  back_home_or_die();
  if (fd < 0) return fail(f, "container", sock_err, "netlink socket in %s", ns_path);
  if (!idx) { close(fd); return fail(f, "container", idx_err, "find %s in the container", cont_if); }
  if (rc) { close(fd); return -1; }

  int err = link_up(fd, idx);
  if (err) { close(fd); return fail(f, "container", err, "set %s up", cont_if); }
  for (int i = 0; i < naddrs && !err; i++) {
    if ((err = addr_add(fd, idx, &addrs[i], RT_SCOPE_UNIVERSE))) fail(f, "container", err, "add address %s", addr_txt[i]);
  }
  if (!err && has_gw4) {
    gw4.len = 32;
    struct prefix any4 = { .family = AF_INET, .len = 0 };
    if ((err = route_replace(fd, idx, &gw4, NULL, RTPROT_BOOT, RT_SCOPE_LINK))) fail(f, "container", err, "route to the gateway %s", fl[5]);
    else if ((err = route_replace(fd, idx, &any4, &gw4, RTPROT_BOOT, RT_SCOPE_UNIVERSE))) fail(f, "container", err, "default route via %s", fl[5]);
  }
  if (!err && has_gw6) {
    struct prefix any6 = { .family = AF_INET6, .len = 0 };
    if ((err = route_replace(fd, idx, &any6, &gw6, RTPROT_BOOT, RT_SCOPE_UNIVERSE))) fail(f, "container", err, "default route via %s", fl[6]);
  }
  close(fd);
  return err ? -1 : 0;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      fprintf(stderr, "calico-wire: cannot enter %s: %s\n", argv[1], strerror(errno));
      return 1;
    }
    close(ns);
  }
  host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host_ns < 0) host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  host_nl = nl_socket();
  if (host_ns < 0 || host_nl < 0) {
    fprintf(stderr, "calico-wire: cannot open the host namespace or a netlink socket: %s\n", strerror(errno));
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (line[n - 1] == '\n') line[--n] = 0;
    char *fl[MAX_FIELDS];
    int nf = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok && nf < MAX_FIELDS; tok = strtok_r(NULL, " ", &save)) fl[nf++] = tok;
    if (nf < 2) continue;
    struct failure f = { 0 };
    int rc;
    if (strcmp(fl[0], "h") == 0) rc = host_side(fl, nf, &f);
    else if (strcmp(fl[0], "c") == 0) rc = container_side(fl, nf, &f);
    else if (strcmp(fl[0], "p") == 0) rc = 0;
    else rc = fail(&f, "input", EINVAL, "unknown request %s", fl[0]);
    if (rc == 0) printf("ok %s\n", fl[1]);
    else printf("e %s %s %d %s\n", fl[1], f.stage, f.err, f.text);
    fflush(stdout);
  }
  free(line);
  return 0;
}
