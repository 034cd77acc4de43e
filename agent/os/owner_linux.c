#include "owner.h"

#include <dirent.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

#define RECENT 16 /* processes that opened connections lately, tried first */

struct owner_ctx {
	pthread_mutex_t lock; /* lookups run on several threads at once */
	int nl;               /* under lock */
	uint32_t seq;         /* under lock */
	int recent[RECENT];   /* under lock */
	unsigned next;        /* under lock */
};

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
	return c;
}

void
owner_close(struct owner_ctx *c)
{
	if (c == NULL)
		return;
	close(c->nl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* sock_diag: the socket with exactly this 4-tuple. */
static int
diag(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst, uint32_t *uid,
    uint32_t *inode)
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
				return 0;
			}
		}
	}
}

/*
 * Whether process pid, running as uid, has the socket with this inode open;
 * 0 once the budget is spent (a process may hold thousands of descriptors).
 * The socket's owner is its creator's uid: only that user's processes are
 * searched, so one user holding many descriptors slows the search for its
 * own connections only, never another user's.
 */
/* Where a search must stop: OWNER_SCAN_MAX_US of the thread's CPU, or OWNER_SCAN_WALL_MAX_US. */
struct budget {
	uint64_t cpu_end, wall_end;
};

static uint64_t
thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int
budget_left(const struct budget *b)
{
	return thread_cpu_us() < b->cpu_end && clock_mono_us() < b->wall_end;
}

static int
holds(int pid, uint32_t uid, const char *want, const struct budget *b)
{
	char path[64], link[64];
	struct stat sb;
	DIR *d;
	struct dirent *e;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &sb) != 0 || sb.st_uid != uid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while (!found && (e = readdir(d)) != NULL && budget_left(b)) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	return found;
}

static int
cmp_desc(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * The process holding the socket: recent owners first, then every process,
 * newest first (a client that just started, like curl, has a high pid). The
 * whole search, listing /proc included, stops when its budget is spent.
 */
static int
find_pid(struct owner_ctx *c, uint32_t uid, uint32_t inode)
{
	char want[40];
	struct budget b = {
	    thread_cpu_us() + OWNER_SCAN_MAX_US, clock_mono_us() + OWNER_SCAN_WALL_MAX_US};
	DIR *proc;
	struct dirent *e;
	int *pids = NULL, pid = -1, recent[RECENT];
	size_t n = 0, cap = 0;

	snprintf(want, sizeof(want), "socket:[%u]", inode);
	pthread_mutex_lock(&c->lock);
	memcpy(recent, c->recent, sizeof(recent));
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < RECENT; i++)
		if (recent[i] > 0 && holds(recent[i], uid, want, &b))
			return recent[i];
	if ((proc = opendir("/proc")) == NULL)
		return -1;
	while ((e = readdir(proc)) != NULL && budget_left(&b)) {
		char *end;
		long p = strtol(e->d_name, &end, 10); /* digits only: the rest are not processes */

		if (*end != '\0' || p <= 0 || p == getpid())
			continue;
		if (n == cap) {
			int *bigger = realloc(pids, (cap = cap ? 2 * cap : 512) * sizeof(*pids));

			if (bigger == NULL)
				break;
			pids = bigger;
		}
		pids[n++] = (int)p;
	}
	closedir(proc);
	qsort(pids, n, sizeof(*pids), cmp_desc);
	for (size_t i = 0; i < n && budget_left(&b); i++) {
		if (holds(pids[i], uid, want, &b)) {
			pid = pids[i];
			pthread_mutex_lock(&c->lock);
			c->recent[c->next++ % RECENT] = pid;
			pthread_mutex_unlock(&c->lock);
			break;
		}
	}
	free(pids);
	return pid;
}

int32_t
owner_uid(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst)
{
	uint32_t uid = 0, inode = 0;
	int r;

	if (c == NULL || src->family != dst->family)
		return -1;
	pthread_mutex_lock(&c->lock);
	r = diag(c, src, dst, &uid, &inode);
	pthread_mutex_unlock(&c->lock);
	return r == 0 ? (int32_t)uid : -1;
}

int
owner_lookup(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst,
    int with_process, struct owner *out)
{
	uint32_t uid = 0, inode = 0;
	int r;

	out->uid = out->pid = -1;
	out->exe[0] = '\0';
	if (c == NULL || src->family != dst->family)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	r = diag(c, src, dst, &uid, &inode);
	pthread_mutex_unlock(&c->lock);
	if (r != 0)
		return r == -ENOENT ? 0 : r;
	out->uid = (int32_t)uid;
	if (with_process && inode != 0 && (out->pid = find_pid(c, uid, inode)) > 0) {
		char path[64];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/exe", out->pid);
		n = readlink(path, out->exe, sizeof(out->exe) - 1);
		out->exe[n > 0 ? n : 0] = '\0';
	}
	return 0;
}
