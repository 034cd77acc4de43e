/*
 * owner_probe_linux.c: the process holding a client socket, from /proc
 * (owner_probe.h), in a helper process that alone holds the capabilities
 * for it, or in-process when the helper cannot run.
 */
#include "owner_probe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define RECENT       16 /* processes that opened connections lately, tried first */
#define MAX_CHANNELS 16
#define ASK_WAIT_S   3 /* a probe's bound is 2 x 1 s of wall time */

extern char **environ;

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

/* Larger first: the newest descriptors, the newest processes. */
static int
cmp_int_desc(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Whether process pid, running as uid, has the socket with this inode open;
 * 0 once the budget is spent (a process may hold thousands of descriptors).
 * The socket's owner is its creator's uid: only that user's processes are
 * searched, so one user holding many descriptors slows the search for its
 * own connections only, never another user's.
 */
static int
holds(int pid, uint32_t uid, const char *want, const struct budget *b)
{
	char path[64], link[64];
	struct stat sb;
	DIR *d;
	struct dirent *e;
	int found = 0, *fds = NULL;
	size_t n = 0, cap = 0;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &sb) != 0 || sb.st_uid != uid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	/* Newest descriptors first: a socket opened for this connection usually
	 * has the highest number, even in a process that holds thousands. */
	while ((e = readdir(d)) != NULL && budget_left(b)) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end != '\0' || end == e->d_name || fd < 0 || fd > INT_MAX)
			continue; /* ".", "..": not descriptors */
		if (n == cap) {
			int *bigger = realloc(fds, (cap = cap ? 2 * cap : 64) * sizeof(*fds));

			if (bigger == NULL)
				break;
			fds = bigger;
		}
		fds[n++] = (int)fd;
	}
	if (n > 0)
		qsort(fds, n, sizeof(*fds), cmp_int_desc);
	for (size_t i = 0; i < n && !found && budget_left(b); i++) {
		char name[16];
		ssize_t len;

		snprintf(name, sizeof(name), "%d", fds[i]);
		len = readlinkat(dirfd(d), name, link, sizeof(link) - 1);
		if (len > 0) {
			link[len] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	free(fds);
	return found;
}

/*
 * The process holding the socket: recent owners first, then every process,
 * newest first (a client that just started, like curl, has a high pid). The
 * whole search, listing /proc included, stops when its budget is spent.
 */
static struct {
	pthread_mutex_t lock;
	int pid[RECENT];
	unsigned next;
} recent = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static int
find_pid(uint32_t uid, uint32_t inode)
{
	char want[40];
	struct budget b = {
	    thread_cpu_us() + OWNER_SCAN_MAX_US, clock_mono_us() + OWNER_SCAN_WALL_MAX_US};
	DIR *proc;
	struct dirent *e;
	int *pids = NULL, pid = -1, tried[RECENT];
	size_t n = 0, cap = 0;

	snprintf(want, sizeof(want), "socket:[%u]", inode);
	pthread_mutex_lock(&recent.lock);
	memcpy(tried, recent.pid, sizeof(tried));
	pthread_mutex_unlock(&recent.lock);
	for (unsigned i = 0; i < RECENT; i++)
		if (tried[i] > 0 && holds(tried[i], uid, want, &b))
			return tried[i];
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
	if (n > 0) /* pids is NULL when nothing was listed */
		qsort(pids, n, sizeof(*pids), cmp_int_desc);
	for (size_t i = 0; i < n && budget_left(&b); i++) {
		if (holds(pids[i], uid, want, &b)) {
			pid = pids[i];
			pthread_mutex_lock(&recent.lock);
			recent.pid[recent.next++ % RECENT] = pid;
			pthread_mutex_unlock(&recent.lock);
			break;
		}
	}
	free(pids);
	return pid;
}

static void
read_exe(int pid, char *exe, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, len - 1);
	exe[n > 0 ? n : 0] = '\0';
}

/*
 * Whether the hook's pid, the one that called connect(), is the owner: it
 * still holds the socket, and its program is the same before and after that
 * is checked. A process that called connect() and then exec'd (or passed
 * the socket on and exited) is not believed: the search decides. exe is
 * set when it is.
 */
static int
confirm(int pid, uint32_t uid, uint32_t inode, char *exe, size_t len)
{
	struct budget b = {
	    thread_cpu_us() + OWNER_SCAN_MAX_US, clock_mono_us() + OWNER_SCAN_WALL_MAX_US};
	char want[40], again[OWNER_EXE_MAX];

	snprintf(want, sizeof(want), "socket:[%u]", inode);
	read_exe(pid, exe, len);
	if (exe[0] == '\0' || inode == 0 || !holds(pid, uid, want, &b))
		return 0;
	read_exe(pid, again, sizeof(again));
	return strcmp(exe, again) == 0;
}

/* The probe itself, wherever it runs. */
static void
probe(int hint, uint32_t uid, uint32_t inode, struct owner *out)
{
	out->by_hook = 0;
	out->exe[0] = '\0';
	if (hint > 0 && confirm(hint, uid, inode, out->exe, sizeof(out->exe))) {
		out->pid = hint;
		out->by_hook = 1;
		return;
	}
	out->exe[0] = '\0';
	out->pid = inode != 0 ? find_pid(uid, inode) : -1;
	if (out->pid > 0)
		read_exe(out->pid, out->exe, sizeof(out->exe));
}

/* ---- the helper and its channels ---- */

struct probe_req {
	uint32_t id; /* echoed: a late answer is never taken for another's */
	int32_t hint;
	uint32_t uid, inode;
};

struct probe_rep {
	uint32_t id;
	int32_t pid, by_hook;
	char exe[OWNER_EXE_MAX];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int fd[MAX_CHANNELS];
	unsigned char busy[MAX_CHANNELS], dead[MAX_CHANNELS];
	unsigned n;     /* 0: no helper, probe in-process (set before any thread) */
	unsigned alive; /* channels not closed after a failure */
	uint32_t next_id;
	pid_t pid;
	int reaped; /* it died and was waited for */
} helper = {.lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

/* One question on channel i: 0 with r filled, or -1 (no answer in time, or none at all). */
static int
exchange(unsigned i, const struct probe_req *q, struct probe_rep *r)
{
	uint64_t deadline = clock_mono_us() + (uint64_t)ASK_WAIT_S * 1000000;

	if (send(helper.fd[i], q, sizeof(*q), MSG_NOSIGNAL) != (ssize_t)sizeof(*q))
		return -1;
	for (;;) {
		ssize_t got = recv(helper.fd[i], r, sizeof(*r), 0);

		if (got == (ssize_t)sizeof(*r) && r->id == q->id)
			return 0;
		if (clock_mono_us() >= deadline)
			return -1;
		if (got == (ssize_t)sizeof(*r) || (got < 0 && errno == EINTR))
			continue; /* an answer to an earlier question, or a signal */
		return -1;
	}
}

void
owner_probe_ask(int hint, uint32_t uid, uint32_t inode, struct owner *out)
{
	struct probe_req q = {0, hint, uid, inode};
	struct probe_rep r;
	unsigned i;
	int rc;

	if (helper.n == 0) {
		probe(hint, uid, inode, out);
		return;
	}
	out->pid = -1;
	out->exe[0] = '\0';
	out->by_hook = 0;
	pthread_mutex_lock(&helper.lock);
	for (;;) {
		for (i = 0; i < helper.n && (helper.busy[i] || helper.dead[i]); i++)
			;
		if (i < helper.n || helper.alive == 0)
			break;
		pthread_cond_wait(&helper.idle, &helper.lock);
	}
	if (i == helper.n) { /* every channel failed: the helper is gone */
		pthread_mutex_unlock(&helper.lock);
		return;
	}
	helper.busy[i] = 1;
	q.id = ++helper.next_id;
	pthread_mutex_unlock(&helper.lock);
	rc = exchange(i, &q, &r);
	pthread_mutex_lock(&helper.lock);
	helper.busy[i] = 0;
	if (rc != 0) {
		/* Never asked again: whatever it still says is nobody's answer. */
		helper.dead[i] = 1;
		close(helper.fd[i]);
		helper.alive--;
		if (!helper.reaped && waitpid(helper.pid, NULL, WNOHANG) == helper.pid) {
			helper.reaped = 1; /* dead: every channel with it */
			for (unsigned j = 0; j < helper.n; j++)
				if (!helper.dead[j] && !helper.busy[j]) {
					helper.dead[j] = 1;
					close(helper.fd[j]);
					helper.alive--;
				}
		}
		if (helper.alive == 0)
			log_warnx(
			    "owner: the ra-owner helper does not answer: programs are unknown "
			    "until the agent is restarted");
		else
			log_warnx("owner: a lookup got no answer from the helper within %d s: that "
				  "channel is closed, %u remain",
			    ASK_WAIT_S, helper.alive);
	}
	pthread_cond_broadcast(&helper.idle);
	pthread_mutex_unlock(&helper.lock);
	if (rc == 0) {
		r.exe[sizeof(r.exe) - 1] = '\0';
		out->pid = r.pid;
		out->by_hook = r.by_hook;
		memcpy(out->exe, r.exe, sizeof(out->exe));
	}
}

const char *
owner_problem(void)
{
	int gone;

	pthread_mutex_lock(&helper.lock);
	gone = helper.n > 0 && helper.alive == 0;
	pthread_mutex_unlock(&helper.lock);
	return gone ? "the ra-owner helper is gone: the programs of connections are unknown until "
		      "a restart"
		    : NULL;
}

/* Keep (keep = 1) or drop (0) exactly these capabilities in this thread. */
static int
caps_only(const int *caps, size_t n, int keep)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	if (keep) {
		struct __user_cap_data_struct k[_LINUX_CAPABILITY_U32S_3];

		memset(k, 0, sizeof(k));
		for (size_t i = 0; i < n; i++)
			k[caps[i] / 32].permitted |=
			    d[caps[i] / 32].permitted & (1u << caps[i] % 32);
		for (size_t w = 0; w < _LINUX_CAPABILITY_U32S_3; w++)
			k[w].effective = k[w].permitted;
		memcpy(d, k, sizeof(d));
	} else {
		for (size_t i = 0; i < n; i++) {
			d[caps[i] / 32].effective &= ~(1u << caps[i] % 32);
			d[caps[i] / 32].permitted &= ~(1u << caps[i] % 32);
			d[caps[i] / 32].inheritable &= ~(1u << caps[i] % 32);
		}
	}
	return (int)syscall(SYS_capset, &h, d);
}

static const int probe_caps[] = {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};

int
owner_helper_start(unsigned n, char *err, size_t errlen)
{
	int ours[MAX_CHANNELS], theirs[MAX_CHANNELS];
	char count[16], parent[16], ready;
	char *argv[] = {OWNER_HELPER_ARGV0, count, parent, NULL};
	posix_spawn_file_actions_t fa;
	struct timeval tv = {ASK_WAIT_S, 0};
	pid_t pid;
	unsigned i, made = 0;
	int rc;

	if (n == 0 || n > MAX_CHANNELS)
		n = n == 0 ? 1 : MAX_CHANNELS;
	for (; made < n; made++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
			break;
		ours[made] = sv[0];
		/* out of the way of 3..3+n-1, where the helper finds them */
		theirs[made] = fcntl(sv[1], F_DUPFD_CLOEXEC, 3 + MAX_CHANNELS);
		close(sv[1]);
		if (theirs[made] < 0) {
			close(sv[0]);
			break;
		}
	}
	if (made < n) {
		snprintf(err, errlen, "cannot make the helper's channels: %s", strerror(errno));
		for (i = 0; i < made; i++) {
			close(ours[i]);
			close(theirs[i]);
		}
		return -1;
	}
	snprintf(count, sizeof(count), "%u", n);
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	posix_spawn_file_actions_init(&fa);
	/* nothing of the agent's terminal or pipes: a caller waiting on them is not held */
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
	for (i = 0; i < n; i++)
		posix_spawn_file_actions_adddup2(&fa, theirs[i], 3 + (int)i);
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	for (i = 0; i < n; i++)
		close(theirs[i]);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the helper: %s", strerror(rc));
		for (i = 0; i < n; i++)
			close(ours[i]);
		return -1;
	}
	for (i = 0; i < n; i++)
		setsockopt(ours[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* It says it is ready once it holds only its two capabilities. */
	if (recv(ours[0], &ready, 1, 0) != 1 || ready != 'R') {
		snprintf(err, errlen, "the helper did not start");
		kill(pid, SIGKILL); /* not reaped yet: the pid is still its */
		waitpid(pid, NULL, 0);
		for (i = 0; i < n; i++)
			close(ours[i]);
		return -1;
	}
	memcpy(helper.fd, ours, n * sizeof(ours[0]));
	helper.n = helper.alive = n;
	helper.pid = pid;
	log_info("owner: programs are looked up by the ra-owner helper (pid %d)", (int)pid);
	return 0;
}

int
owner_drop_caps(char *err, size_t errlen)
{
	if (caps_only(probe_caps, sizeof(probe_caps) / sizeof(probe_caps[0]), 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "cannot drop CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
owner_helper_stop(void)
{
	pid_t reaped = 0;

	if (helper.n == 0)
		return;
	for (unsigned i = 0; i < helper.n; i++)
		if (!helper.dead[i])
			close(helper.fd[i]); /* it leaves at the end of its channels */
	helper.n = 0;
	if (helper.reaped)
		return;
	for (int i = 0; i < 100 && (reaped = waitpid(helper.pid, NULL, WNOHANG)) == 0; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	if (reaped == 0) { /* still there after 1 s, and still ours: not reaped */
		kill(helper.pid, SIGKILL);
		waitpid(helper.pid, NULL, 0);
	}
}

/* One channel: requests until the agent closes it. */
static void *
serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct probe_req q;
	struct probe_rep r;
	struct owner o;
	ssize_t got;

	while ((got = recv(fd, &q, sizeof(q), 0)) == (ssize_t)sizeof(q)) {
		probe(q.hint, q.uid, q.inode, &o);
		memset(&r, 0, sizeof(r));
		r.id = q.id;
		r.pid = o.pid;
		r.by_hook = o.by_hook;
		memcpy(r.exe, o.exe, sizeof(r.exe));
		if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
			break;
	}
	return NULL;
}

int
owner_helper_main(int argc, char **argv)
{
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[1], NULL, 10) : 0;
	pid_t agent = argc > 2 ? (pid_t)strtol(argv[2], NULL, 10) : 0;
	struct stat st;
	pthread_t t;

	if (n == 0 || n > MAX_CHANNELS)
		return 2;
	/* It lives exactly as long as the agent: systemd's SIGTERM is the agent's to act on. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != agent) /* the agent died before the line above */
		return 1;
	for (unsigned i = 0; i < n; i++) /* what the agent passed, or nothing */
		if (fstat(3 + (int)i, &st) != 0 || !S_ISSOCK(st.st_mode))
			return 2;
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	(void)prctl(PR_SET_NAME, "ra-owner");
	if (caps_only(probe_caps, sizeof(probe_caps) / sizeof(probe_caps[0]), 1) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return 1;
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)(3 + (int)i)) == 0)
			pthread_detach(t);
	if (send(3, "R", 1, MSG_NOSIGNAL) != 1)
		return 1;
	serve((void *)(intptr_t)3);
	_exit(0); /* the agent is gone: so are the other channels */
}
