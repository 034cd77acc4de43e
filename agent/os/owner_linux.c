#include "owner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "owner_probe.h"

struct owner_ctx {
	pthread_mutex_t lock; /* lookups run on several threads at once */
	int nl;               /* under lock */
	uint32_t seq;         /* under lock */
};

/* ---- the connect hook: who called connect(), by socket cookie ---- */

/*
 * A cgroup BPF program on the root of the cgroup v2 hierarchy runs at every
 * TCP connect() on the host (IPv4 and IPv6) and puts, under the socket's
 * cookie, the calling process and the time. sock_diag gives the client
 * socket's cookie with its uid, so the candidate process is one map lookup
 * away, whoever else holds how many descriptors; owner_probe then confirms
 * it still holds the socket. The map is an LRU of HOOK_ENTRIES, each entry
 * taken out when read: a flood of connections evicts the oldest, and those
 * lookups fall back to the search. The programs are attached by links,
 * which the kernel removes when the agent exits, however it exits. One hook
 * serves the whole process (every event loop's owner_ctx).
 */
#define HOOK_ENTRIES 16384

struct hook_value {
	uint64_t pid_tgid; /* bpf_get_current_pid_tgid(): the process in the high half */
	uint64_t boot_ns;  /* bpf_ktime_get_boot_ns() at connect() */
};

static struct {
	pthread_mutex_t lock;
	unsigned users;
	int map, prog[2], link[2];
} hook = {PTHREAD_MUTEX_INITIALIZER, 0, -1, {-1, -1}, {-1, -1}};

static long
sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

/* map[cookie] = {pid_tgid, boot_ns}; connect() goes on (returns 1). */
static int
hook_prog(int map, enum bpf_attach_type type, char *why, size_t whylen)
{
	const struct bpf_insn insns[] = {
	    /* TCP only: a UDP connect() is free and sends nothing, and a flood
	     * of them must not push the TCP entries out */
	    INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1,
		(int16_t)offsetof(struct bpf_sock_addr, type), 0),
	    INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 16, SOCK_STREAM),
	    INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1,
		(int16_t)offsetof(struct bpf_sock_addr, protocol), 0),
	    INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 14, IPPROTO_TCP),
	    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),  /* r1: the context */
	    INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0), /* key */
	    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_current_pid_tgid),
	    INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -24, 0),
	    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ktime_get_boot_ns),
	    INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -16, 0),
	    INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map),
	    INSN(0, 0, 0, 0, 0),
	    INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
	    INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8),
	    INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
	    INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -24),
	    INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, BPF_ANY),
	    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_update_elem),
	    INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1),
	    INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	union bpf_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
	a.expected_attach_type = type;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	a.license = (uintptr_t) "GPL";
	snprintf(a.prog_name, sizeof(a.prog_name), "ra_owner");
	if ((fd = (int)sys_bpf(BPF_PROG_LOAD, &a)) < 0)
		snprintf(why, whylen, "cannot load the connect hook: %s", strerror(errno));
	return fd;
}

/* Where mounts (a /proc/<pid>/mounts) has the cgroup v2 hierarchy: 0 with dir set, or -1. */
static int
find_cgroup2(const char *mounts, char *dir, size_t len)
{
	char line[4096], dev[256], path[PATH_MAX], type[64];
	FILE *f = fopen(mounts, "re");
	int found = -1;

	while (f != NULL && found != 0 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%255s %4095s %63s", dev, path, type) == 3 &&
		    strcmp(type, "cgroup2") == 0)
			found = snprintf(dir, len, "%s", path) < (int)len ? 0 : -1;
	if (f != NULL)
		fclose(f);
	return found;
}

/*
 * The cgroup v2 hierarchy's root (/sys/fs/cgroup, or /sys/fs/cgroup/unified
 * on a hybrid host), as this process sees it, or else as init does: `ip
 * netns exec` gives its children a /sys without it.
 */
static int
cgroup2_root(char *why, size_t whylen)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	int fd;

	if (find_cgroup2("/proc/self/mounts", dir, sizeof(dir)) == 0)
		snprintf(path, sizeof(path), "%s", dir);
	else if (find_cgroup2("/proc/1/mounts", dir, sizeof(dir)) == 0)
		snprintf(path, sizeof(path), "/proc/1/root%s", dir);
	else {
		snprintf(why, whylen, "no cgroup v2 hierarchy is mounted");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		snprintf(why, whylen, "%.200s: %s", path, strerror(errno));
	return fd;
}

static void
hook_close(void)
{
	for (int i = 0; i < 2; i++) {
		if (hook.link[i] >= 0)
			close(hook.link[i]);
		if (hook.prog[i] >= 0)
			close(hook.prog[i]);
		hook.link[i] = hook.prog[i] = -1;
	}
	if (hook.map >= 0)
		close(hook.map);
	hook.map = -1;
}

/* The hook records pids as the host sees them: only then are they /proc's. */
static int
host_pid_namespace(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	int host = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "NSpid:", 6) == 0) {
			int a, b;

			/* one pid: no nested namespace */
			host = sscanf(line + 6, "%d %d", &a, &b) == 1;
			break;
		}
	if (f != NULL)
		fclose(f);
	return host;
}

/* Attach the hook (once per process). Under hook.lock. 0, or -1 with why set. */
static int
hook_open(char *why, size_t whylen)
{
	const enum bpf_attach_type types[2] = {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT};
	union bpf_attr a;
	int cg;

	if (!host_pid_namespace()) {
		snprintf(why, whylen, "the agent is not in the host's pid namespace");
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_LRU_HASH;
	a.key_size = sizeof(uint64_t);
	a.value_size = sizeof(struct hook_value);
	a.max_entries = HOOK_ENTRIES;
	snprintf(a.map_name, sizeof(a.map_name), "ra_owner");
	if ((hook.map = (int)sys_bpf(BPF_MAP_CREATE, &a)) < 0) {
		snprintf(why, whylen, "cannot make the connect hook's map: %s", strerror(errno));
		return -1;
	}
	if ((cg = cgroup2_root(why, whylen)) < 0) {
		hook_close();
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		if ((hook.prog[i] = hook_prog(hook.map, types[i], why, whylen)) < 0)
			break;
		memset(&a, 0, sizeof(a));
		a.link_create.prog_fd = (uint32_t)hook.prog[i];
		a.link_create.target_fd = (uint32_t)cg;
		a.link_create.attach_type = types[i];
		if ((hook.link[i] = (int)sys_bpf(BPF_LINK_CREATE, &a)) < 0) {
			snprintf(
			    why, whylen, "cannot attach the connect hook: %s", strerror(errno));
			break;
		}
	}
	close(cg);
	if (hook.link[1] < 0) {
		hook_close();
		return -1;
	}
	return 0;
}

static void
hook_get(void)
{
	char why[256];

	pthread_mutex_lock(&hook.lock);
	if (hook.users++ == 0) {
		if (hook_open(why, sizeof(why)) == 0)
			log_info("owner: processes are found by a connect hook (cgroup BPF)");
		else
			log_info("owner: %s; processes are searched for in /proc", why);
	}
	pthread_mutex_unlock(&hook.lock);
}

static void
hook_put(void)
{
	pthread_mutex_lock(&hook.lock);
	if (--hook.users == 0)
		hook_close();
	pthread_mutex_unlock(&hook.lock);
}

/* When process pid started, in ns since boot; 0 when unknown. */
static uint64_t
started_ns(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* after the name, which may hold anything but ends at the last ')' */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1,
		" %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
		"%*d %llu",
		&ticks) != 1 ||
	    hz <= 0)
		return 0;
	return (uint64_t)ticks * (1000000000ull / (uint64_t)hz);
}

/*
 * The process that called connect() on the socket with this cookie, from
 * the hook's map: -1 when the hook is off, the entry is gone (evicted, or
 * the socket predates the agent), or its pid now names a process started
 * after that connect() (reused).
 */
static int
hook_pid(uint64_t cookie)
{
	struct hook_value v;
	union bpf_attr a;
	uint64_t start;
	int pid, rc = -1;

	if (cookie == 0)
		return -1;
	/* Under the lock: the map is not closed under a lookup. Each entry is
	 * read once (a connection is looked up once) and taken out. */
	pthread_mutex_lock(&hook.lock);
	if (hook.map >= 0) {
		memset(&a, 0, sizeof(a));
		a.map_fd = (uint32_t)hook.map;
		a.key = (uintptr_t)&cookie;
		a.value = (uintptr_t)&v;
		rc = (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
		if (rc == 0)
			(void)sys_bpf(BPF_MAP_DELETE_ELEM, &a);
	}
	pthread_mutex_unlock(&hook.lock);
	if (rc != 0)
		return -1;
	pid = (int)(v.pid_tgid >> 32);
	/* The start time is rounded down to a clock tick: a process that started
	 * later than the connect() is another one with the same pid. */
	start = started_ns(pid);
	if (pid <= 0 || start == 0 || start > v.boot_ns)
		return -1;
	return pid;
}

/* ---- sock_diag, and the lookup ---- */

struct owner_ctx *
owner_open(void)
{
	struct owner_ctx *c = calloc(1, sizeof(*c));
	struct timeval tv = {0, 100000}; /* the kernel answers at once; never hang */

	if (c == NULL)
		return NULL;
	c->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (c->nl < 0) {
		free(c);
		return NULL;
	}
	setsockopt(c->nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pthread_mutex_init(&c->lock, NULL);
	hook_get();
	return c;
}

void
owner_close(struct owner_ctx *c)
{
	if (c == NULL)
		return;
	hook_put();
	close(c->nl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* sock_diag: the socket with exactly this 4-tuple. */
static int
diag(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst, uint32_t *uid,
    uint32_t *inode, uint64_t *cookie)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	union {
		char buf[1024];
		struct nlmsghdr align;
	} a;
	ssize_t n;
	struct nlmsghdr *h;

	memset(&q, 0, sizeof(q));
	q.nlh.nlmsg_len = sizeof(q);
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST;
	q.nlh.nlmsg_seq = ++c->seq;
	q.req.sdiag_family = src->family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0u & ~(1u << TCP_TIME_WAIT); /* owners are gone from those */
	q.req.id.idiag_sport = htons(src->port);
	q.req.id.idiag_dport = htons(dst->port);
	memcpy(q.req.id.idiag_src, src->addr, src->family == AF_INET6 ? 16 : 4);
	memcpy(q.req.id.idiag_dst, dst->addr, dst->family == AF_INET6 ? 16 : 4);
	q.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (sendto(c->nl, &q, sizeof(q), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		if ((n = recv(c->nl, a.buf, sizeof(a.buf), 0)) < 0)
			return -errno;
		for (h = &a.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != c->seq)
				continue; /* a late answer to an earlier question */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error != 0 ? e->error : -ENOENT;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
				const struct inet_diag_msg *m = NLMSG_DATA(h);

				/* No inode: an orphan, closed by its process (or a
				 * timewait socket); the uid the kernel then gives is
				 * 0, not the owner's. Unknown, not root. */
				if (m->idiag_inode == 0)
					return -ENOENT;
				*uid = m->idiag_uid;
				*inode = m->idiag_inode;
				*cookie =
				    (uint64_t)m->id.idiag_cookie[1] << 32 | m->id.idiag_cookie[0];
				return 0;
			}
		}
	}
}

int32_t
owner_uid(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst)
{
	uint32_t uid = 0, inode = 0;
	uint64_t cookie = 0;
	int r;

	if (c == NULL || src->family != dst->family)
		return -1;
	pthread_mutex_lock(&c->lock);
	r = diag(c, src, dst, &uid, &inode, &cookie);
	pthread_mutex_unlock(&c->lock);
	return r == 0 ? (int32_t)uid : -1;
}

int
owner_lookup(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst,
    int with_process, struct owner *out)
{
	uint32_t uid = 0, inode = 0;
	uint64_t cookie = 0;
	int r;

	out->uid = out->pid = -1;
	out->exe[0] = '\0';
	out->by_hook = 0;
	if (c == NULL || src->family != dst->family)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	r = diag(c, src, dst, &uid, &inode, &cookie);
	pthread_mutex_unlock(&c->lock);
	if (r != 0)
		return r == -ENOENT ? 0 : r;
	out->uid = (int32_t)uid;
	if (with_process)
		owner_probe_ask(hook_pid(cookie), uid, inode, out);
	return 0;
}
