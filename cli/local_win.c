/*
 * local_win.c: redirectctl's way to the local agent on Windows, client.h's
 * client_open. The agent's local endpoint there is loopback TCP with mutual
 * TLS (agent/rpc/local_win.c): the file at the socket path holds its
 * "127.0.0.1:PORT", and the local CA and the admin certificate and key lie
 * beside it, in the folder only SYSTEM and Administrators may read.
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "parse.h"
#include "paths.h"
#include "platform.h"

/* gRPC would only say "UNAVAILABLE"; connect once ourselves to say why. */
static int
probe_port(uint16_t port, const char *target, const char *path, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	WSADATA wsa;
	SOCKET s;
	int r = -1;

	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
		snprintf(err, errlen, "cannot start winsock");
		return -1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)) == INVALID_SOCKET) {
		snprintf(err, errlen, "socket: %s", err_str(sock_errno()));
	} else {
		if ((r = connect(s, (struct sockaddr *)&sin, sizeof(sin))) != 0)
			snprintf(err, errlen, "cannot reach the agent at %s (from %s): %s", target,
			    path, err_str(sock_errno()));
		closesocket(s);
	}
	WSACleanup();
	return r == 0 ? 0 : -1;
}

int
client_open(struct client *c, const char *socket_path, char *err, size_t errlen)
{
	char line[64], host[32], target[48], dir[256], ca[300], cert[300], key[300], *sep;
	uint16_t port;
	size_t n;
	FILE *f;

	if ((f = fopen(socket_path, "rb")) == NULL) {
		if (errno == ENOENT)
			snprintf(err, errlen,
			    "cannot reach the agent: %s does not exist (is it running?)",
			    socket_path);
		else
			snprintf(err, errlen, "cannot read %s: %s (run as an Administrator)",
			    socket_path, err_str(errno));
		return -1;
	}
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (parse_host_port(line, host, sizeof(host), &port) != 0 ||
	    strcmp(host, "127.0.0.1") != 0) {
		snprintf(err, errlen, "%s: not the agent's local endpoint (127.0.0.1:PORT)",
		    socket_path);
		return -1;
	}
	snprintf(target, sizeof(target), "127.0.0.1:%u", (unsigned)port);
	snprintf(dir, sizeof(dir), "%s", socket_path);
	sep = strrchr(dir, '\\');
	if (sep == NULL || (strrchr(dir, '/') != NULL && strrchr(dir, '/') > sep))
		sep = strrchr(dir, '/');
	if (sep == NULL) {
		snprintf(err, errlen, "%s: a path with its folder, please", socket_path);
		return -1;
	}
	*sep = '\0';
	paths_join(ca, sizeof(ca), dir, PATHS_LOCAL_CA);
	paths_join(cert, sizeof(cert), dir, PATHS_LOCAL_ADMIN);
	paths_join(key, sizeof(key), dir, PATHS_LOCAL_ADMIN_KEY);
	if (probe_port(port, target, socket_path, err, errlen) != 0 ||
	    client_open_tls(c, target, ca, cert, key, err, errlen) != 0)
		return -1;
	snprintf(c->where, sizeof(c->where), "the local endpoint %s (%s)", target, socket_path);
	return 0;
}
