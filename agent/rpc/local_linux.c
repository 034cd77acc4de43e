/*
 * local_linux.c: the local admin endpoint on Linux. A unix socket, mode 0660,
 * group [api] admin_group; each peer's uid is checked with SO_PEERCRED
 * (root, the agent's own uid, or a member of the group) before its
 * connection is handed to gRPC with grpc_server_add_channel_from_fd.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <grpc/grpc_posix.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "log.h"

struct rpc_local {
	int listen_fd;
	int wake[2]; /* a byte on wake[1] ends the accept thread */
	gid_t admin_gid;
	int have_admin_gid;
	pthread_t accept_thread;
	int accept_running;
};

static int
peer_allowed(const struct rpc_local *l, int fd, uid_t *uid_out)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct passwd pw, *pwp;
	char buf[4096];
	gid_t groups[256];
	int ngroups = 256;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return 0;
	*uid_out = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return 1;
	if (!l->have_admin_gid)
		return 0;
	if (cr.gid == l->admin_gid)
		return 1;
	if (getpwuid_r(cr.uid, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return 0;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0)
		return 0;
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == l->admin_gid)
			return 1;
	return 0;
}

static void *
accept_main(void *arg)
{
	struct rpc_server *srv = arg;
	struct rpc_local *l = srv->local;
	struct pollfd pfd[2] = {{l->listen_fd, POLLIN, 0}, {l->wake[0], POLLIN, 0}};

	platform_thread_name("ra-rpc-accept");
	for (;;) {
		uid_t uid = (uid_t)-1;
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("rpc: poll");
			break;
		}
		if (pfd[1].revents != 0)
			break;
		fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				log_warn("rpc: accept on %s", srv->cfg->local_socket);
				usleep(100000); /* EMFILE and the like: do not spin */
			}
			continue;
		}
		if (!peer_allowed(l, fd, &uid)) {
			log_warnx(
			    "rpc: refused a local connection from uid %d: not root and not in "
			    "group %s",
			    (int)uid, srv->cfg->admin_group);
			close(fd);
			continue;
		}
		/* gRPC owns the fd from here; it must be non-blocking (accept4 made it so). */
		grpc_server_add_channel_from_fd(srv->server, fd, srv->local_creds);
	}
	return NULL;
}

int
rpc_local_open(struct rpc_server *srv, char *err, size_t errlen)
{
	const char *path = srv->cfg->local_socket;
	struct rpc_local *l;
	struct sockaddr_un sun, tmp;
	struct group gr, *grp;
	char buf[4096], dir[sizeof(sun.sun_path)];
	char *slash;
	int fd;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->listen_fd = l->wake[0] = l->wake[1] = -1;
	srv->local = l;
	if (pipe2(l->wake, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", err_str(errno));
		return -1;
	}
	if (addr_unix(&sun, path, err, errlen) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", dir, err_str(errno));
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", err_str(errno));
		return -1;
	}
	/* A socket file left by a crash: connect tells whether anyone still listens. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		snprintf(err, errlen, "%s: another agent is serving on this socket", path);
		close(fd);
		return -1;
	}
	/*
	 * Bound under a temporary name, given its owner and mode, and only then
	 * renamed into place: the socket is never reachable at its path with
	 * the mode the umask would give it.
	 */
	if (addr_unix(&tmp, path, err, errlen) != 0 ||
	    strlen(path) + 3 > sizeof(tmp.sun_path) - 1) {
		snprintf(err, errlen, "%s: socket path too long", path);
		close(fd);
		return -1;
	}
	{ /* the length was checked above: a copy and a suffix, no format */
		size_t n = strlen(path);

		memcpy(tmp.sun_path, path, n);
		memcpy(tmp.sun_path + n, ".n", 3);
	}
	(void)unlink(tmp.sun_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errlen, "%s: %s", path, err_str(errno));
		close(fd);
		return -1;
	}
	if (getgrnam_r(srv->cfg->admin_group, &gr, buf, sizeof(buf), &grp) == 0 && grp != NULL) {
		l->admin_gid = grp->gr_gid;
		l->have_admin_gid = 1;
		if (chown(tmp.sun_path, 0, grp->gr_gid) != 0)
			log_warn("rpc: cannot give %s to group %s", path, srv->cfg->admin_group);
	} else {
		log_info("rpc: group %s does not exist: only root may use %s",
		    srv->cfg->admin_group, path);
	}
	if (chmod(tmp.sun_path, 0660) != 0 || rename(tmp.sun_path, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, err_str(errno));
		close(fd);
		(void)unlink(tmp.sun_path);
		return -1;
	}
	l->listen_fd = fd;
	return 0;
}

int
rpc_local_attach(struct rpc_server *srv, char *err, size_t errlen)
{
	(void)srv, (void)err, (void)errlen; /* callers arrive as fds: see rpc_local_serve */
	return 0;
}

int
rpc_local_serve(struct rpc_server *srv, char *err, size_t errlen)
{
	struct rpc_local *l = srv->local;

	if (pthread_create(&l->accept_thread, NULL, accept_main, srv) != 0) {
		snprintf(err, errlen, "cannot start the RPC accept thread");
		return -1;
	}
	l->accept_running = 1;
	return 0;
}

void
rpc_local_close(struct rpc_server *srv)
{
	struct rpc_local *l = srv->local;

	if (l == NULL)
		return;
	if (l->accept_running) {
		if (write(l->wake[1], "x", 1) != 1)
			log_warn("rpc: cannot wake the accept thread");
		pthread_join(l->accept_thread, NULL);
	}
	/* gRPC owns the accepted connections; the listening socket is ours. */
	if (l->listen_fd >= 0) {
		close(l->listen_fd);
		(void)unlink(srv->cfg->local_socket);
	}
	for (int i = 0; i < 2; i++)
		if (l->wake[i] >= 0)
			close(l->wake[i]);
	free(l);
	srv->local = NULL;
}

int
rpc_local_is_admin(const grpc_auth_context *ctx)
{
	(void)ctx; /* local callers come through the uid-checked socket, never TLS */
	return 0;
}
