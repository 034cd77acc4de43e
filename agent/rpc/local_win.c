/*
 * local_win.c: the local admin endpoint on Windows. gRPC listens itself on
 * a unix socket (AF_UNIX, Windows 10 1803 and later) at [api] local_socket,
 * by default %ProgramData%\redirect-agent\agent.sock. gRPC does not hand
 * the peer's identity to us here, so the gate is the folder's access list:
 * the agent sets it at every start to SYSTEM and Administrators only
 * (service_lock_dir), since wixl cannot set folder permissions.
 *
 * Not yet run on Windows: see README, "Windows".
 */
#include "rpc_internal.h"

#include <afunix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "paths.h"
#include "service_win.h"

struct rpc_local {
	int attached; /* gRPC listens on the path: remove it at close */
};

/* Is an agent already serving on path? A refused connect means a stale file. */
static int
socket_is_live(const char *path)
{
	struct sockaddr_un sun;
	SOCKET s;
	int live;

	if (addr_unix(&sun, path, NULL, 0) != 0 ||
	    (s = socket(AF_UNIX, SOCK_STREAM, 0)) == INVALID_SOCKET)
		return 0;
	live = connect(s, (struct sockaddr *)&sun, (int)sizeof(sun)) == 0;
	closesocket(s);
	return live;
}

/* The data folder, or a folder that does not exist yet (made here). */
static int
own_folder(const char *dir)
{
	char data[MAX_PATH];

	if (GetFileAttributesA(dir) == INVALID_FILE_ATTRIBUTES)
		return 1;
	return _stricmp(dir, paths_state_dir(data, sizeof(data))) == 0;
}

int
rpc_local_open(struct rpc_server *srv, char *err, size_t errlen)
{
	const char *path = srv->cfg->local_socket;
	struct sockaddr_un sun;
	char dir[MAX_PATH];
	char *sep;

	if (addr_unix(&sun, path, err, errlen) != 0)
		return -1;
	if ((srv->local = calloc(1, sizeof(*srv->local))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir; *p != '\0'; p++) /* C:/... names the same folder */
		if (*p == '/')
			*p = '\\';
	sep = strrchr(dir, '\\');
	if (sep == NULL || sep == dir) {
		snprintf(err, errlen, "%s: give the socket a folder of its own", path);
		return -1;
	}
	*sep = '\0';
	/* The folder's access list is the socket's only gate. The agent sets it,
	 * but only on a folder of its own: never on one someone else made. */
	if (!own_folder(dir)) {
		snprintf(err, errlen,
		    "%s: the admin socket needs a folder of its own (%s exists and is not "
		    "the agent's data folder): name a new one",
		    path, dir);
		return -1;
	}
	if (service_lock_dir(dir, err, errlen) != 0)
		return -1;
	if (socket_is_live(path)) {
		snprintf(err, errlen, "%s: another agent is serving on this socket", path);
		return -1;
	}
	(void)DeleteFileA(path); /* left by a crash */
	return 0;
}

int
rpc_local_attach(struct rpc_server *srv, char *err, size_t errlen)
{
	char uri[sizeof(srv->cfg->local_socket) + 8];

	snprintf(uri, sizeof(uri), "unix:%s", srv->cfg->local_socket);
	if (grpc_server_add_http2_port(srv->server, uri, srv->local_creds) == 0) {
		snprintf(err, errlen, "cannot listen on %s", srv->cfg->local_socket);
		return -1;
	}
	srv->local->attached = 1;
	return 0;
}

int
rpc_local_serve(struct rpc_server *srv, char *err, size_t errlen)
{
	(void)srv, (void)err, (void)errlen; /* gRPC accepts by itself */
	return 0;
}

void
rpc_local_close(struct rpc_server *srv)
{
	if (srv->local == NULL)
		return;
	if (srv->local->attached)
		(void)DeleteFileA(srv->cfg->local_socket);
	free(srv->local);
	srv->local = NULL;
}
