/*
 * local_win.c: the local admin endpoint on Windows. gRPC 1.51 has no unix
 * sockets on Windows (and wine none at all), so the endpoint is loopback
 * TCP with mutual TLS:
 *
 *   - gRPC listens on 127.0.0.1, on a port the system picks, and requires a
 *     client certificate from a CA made for this agent alone (local_cert.h).
 *   - The file at [api] local_socket (by default
 *     %ProgramData%\redirect-agent\agent.sock) holds "127.0.0.1:PORT". The
 *     agent keeps it open, shared for reading only, while it serves: a
 *     second agent cannot take it over, and a crash releases it.
 *   - The credentials live beside that file, in a folder the agent locks at
 *     every start to SYSTEM and Administrators (service_lock_dir). Reading
 *     the admin key is the gate, as reading a root-only socket is on Linux;
 *     redirectctl reads the file and the key by default.
 *
 * A caller that presents exactly the admin certificate is an administrator
 * (rpc_local_is_admin); any other certificate gets nothing here, since no
 * other certificate chains to the local CA. Remote consoles keep their own
 * listener ([api] remote_listen), CA and roles.
 */
#include "rpc_internal.h"

#include <grpc/grpc_security.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local_cert.h"
#include "log.h"
#include "paths.h"
#include "service_win.h"

#define LOCAL_PEM_MAX 16384 /* one P-256 certificate or key, with room */

struct rpc_local {
	HANDLE endpoint; /* the file at local_socket, held while serving */
	char dir[MAX_PATH];
	char *ca, *cert, *key; /* PEM, for gRPC's credentials */
};

/*
 * The admin certificate's SHA-256, for rpc_local_is_admin on the RPC
 * threads. Written before the server starts; admin_set is cleared at close
 * (calls may still be finishing then, so nothing is freed).
 */
static unsigned char admin_sha256[32];
static atomic_int admin_set;

/* The data folder, or a folder that does not exist yet (made here). */
static int
own_folder(const char *dir)
{
	char data[MAX_PATH];

	if (GetFileAttributesA(dir) == INVALID_FILE_ATTRIBUTES)
		return 1;
	return _stricmp(dir, paths_state_dir(data, sizeof(data))) == 0;
}

/* A PEM file of the set, whole, NUL-terminated (heap). NULL with err set. */
static char *
read_pem(const char *dir, const char *name, char *err, size_t errlen)
{
	char path[MAX_PATH];
	FILE *f;
	char *buf;
	size_t n;

	paths_join(path, sizeof(path), dir, name);
	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "cannot read %s", path);
		return NULL;
	}
	if ((buf = malloc(LOCAL_PEM_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, LOCAL_PEM_MAX + 1, f);
	fclose(f);
	if (n == 0 || n > LOCAL_PEM_MAX) {
		snprintf(err, errlen, "%s: empty or larger than %d bytes", path, LOCAL_PEM_MAX);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void
free_key(char *key)
{
	if (key != NULL) {
		platform_wipe(key, strlen(key));
		free(key);
	}
}

int
rpc_local_open(struct rpc_server *srv, char *err, size_t errlen)
{
	const char *path = srv->cfg->local_socket;
	struct rpc_local *l;
	char *sep, *admin = NULL;
	int made = 0;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l->endpoint = INVALID_HANDLE_VALUE;
	srv->local = l;
	snprintf(l->dir, sizeof(l->dir), "%s", path);
	for (char *p = l->dir; *p != '\0'; p++) /* C:/... names the same folder */
		if (*p == '/')
			*p = '\\';
	sep = strrchr(l->dir, '\\');
	if (sep == NULL || sep == l->dir) {
		snprintf(err, errlen, "%s: give the local endpoint a folder of its own", path);
		return -1;
	}
	*sep = '\0';
	/* The folder's access list guards the admin key. The agent sets it, but
	 * only on a folder of its own: never on one someone else made. */
	if (!own_folder(l->dir)) {
		snprintf(err, errlen,
		    "%s: the local endpoint needs a folder of its own (%s exists and is not "
		    "the agent's data folder): name a new one",
		    path, l->dir);
		return -1;
	}
	if (service_lock_dir(l->dir, err, errlen) != 0)
		return -1;
	/* Shared for reading only: a second agent's open fails while we hold it. */
	l->endpoint = CreateFileA(
	    path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
	if (l->endpoint == INVALID_HANDLE_VALUE) {
		DWORD e = GetLastError();

		if (e == ERROR_SHARING_VIOLATION)
			snprintf(
			    err, errlen, "%s: another agent is serving on this endpoint", path);
		else
			snprintf(err, errlen, "cannot create %s: Windows error %lu", path,
			    (unsigned long)e);
		return -1;
	}
	if (local_cert_ensure(l->dir, &made, err, errlen) != 0)
		return -1;
	if (made)
		log_info("rpc: made the local endpoint's CA and admin certificate in %s", l->dir);
	if ((l->ca = read_pem(l->dir, PATHS_LOCAL_CA, err, errlen)) == NULL ||
	    (l->cert = read_pem(l->dir, PATHS_LOCAL_SERVER, err, errlen)) == NULL ||
	    (l->key = read_pem(l->dir, PATHS_LOCAL_SERVER_KEY, err, errlen)) == NULL ||
	    (admin = read_pem(l->dir, PATHS_LOCAL_ADMIN, err, errlen)) == NULL)
		return -1;
	if (local_cert_digest(admin, strlen(admin), admin_sha256) != 0) {
		snprintf(err, errlen, "%s\\%s: no certificate", l->dir, PATHS_LOCAL_ADMIN);
		free(admin);
		return -1;
	}
	free(admin);
	atomic_store(&admin_set, 1);
	return 0;
}

int
rpc_local_attach(struct rpc_server *srv, char *err, size_t errlen)
{
	struct rpc_local *l = srv->local;
	grpc_ssl_pem_key_cert_pair pair = {l->key, l->cert};
	grpc_server_credentials *creds;
	char line[32];
	DWORD wrote = 0;
	int port, n;

	creds = grpc_ssl_server_credentials_create_ex(
	    l->ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
	if (creds == NULL) {
		snprintf(
		    err, errlen, "%s: gRPC cannot use the local endpoint's certificates", l->dir);
		return -1;
	}
	/* These replace the insecure credentials server.c made for a unix
	 * socket; server.c releases whichever srv->local_creds holds at stop. */
	grpc_server_credentials_release(srv->local_creds);
	srv->local_creds = creds;
	if ((port = grpc_server_add_http2_port(srv->server, "127.0.0.1:0", creds)) == 0) {
		snprintf(err, errlen,
		    "the local endpoint cannot listen on 127.0.0.1 (loopback TCP): gRPC refused "
		    "the port (see its message above)");
		return -1;
	}
	n = snprintf(line, sizeof(line), "127.0.0.1:%d\n", port);
	if (!WriteFile(l->endpoint, line, (DWORD)n, &wrote, NULL) || wrote != (DWORD)n ||
	    !FlushFileBuffers(l->endpoint)) {
		snprintf(err, errlen, "cannot write %s: Windows error %lu", srv->cfg->local_socket,
		    (unsigned long)GetLastError());
		return -1;
	}
	log_info("rpc: local endpoint 127.0.0.1:%d (mutual TLS, credentials in %s)", port, l->dir);
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
	struct rpc_local *l = srv->local;

	if (l == NULL)
		return;
	atomic_store(&admin_set, 0);
	if (l->endpoint != INVALID_HANDLE_VALUE) {
		/* Ours to remove: nobody else could open it for writing meanwhile. */
		CloseHandle(l->endpoint);
		(void)DeleteFileA(srv->cfg->local_socket);
	}
	free(l->ca);
	free(l->cert);
	free_key(l->key);
	free(l);
	srv->local = NULL;
}

int
rpc_local_is_admin(const grpc_auth_context *ctx)
{
	grpc_auth_property_iterator it;
	const grpc_auth_property *p;
	unsigned char got[32];

	if (!atomic_load(&admin_set))
		return 0;
	it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME);
	while ((p = grpc_auth_property_iterator_next(&it)) != NULL)
		if (local_cert_digest(p->value, p->value_length, got) == 0 &&
		    memcmp(got, admin_sha256, sizeof(got)) == 0)
			return 1;
	return 0;
}
