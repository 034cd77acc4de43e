/*
 * paths.h: where the agent keeps its files by default, per platform.
 *
 *   Linux (paths_linux.c): the database in $STATE_DIRECTORY (systemd's
 *   StateDirectory=) or /var/lib/redirect-agent; the admin socket in
 *   $RUNTIME_DIRECTORY or /run/redirect-agent. systemd may pass several
 *   directories separated by ':'; the first is the agent's.
 *   Windows (paths_win.c): both in %ProgramData%\redirect-agent, the folder
 *   whose access list the agent locks to SYSTEM and Administrators.
 *
 * The agent's config defaults and redirectctl's default target both come
 * from here, so they cannot drift apart.
 */
#ifndef RA_PATHS_H
#define RA_PATHS_H

#include <stddef.h>

/*
 * Windows' local admin endpoint (loopback TCP with mutual TLS, see
 * agent/rpc/local_cert.h): the file at [api] local_socket holds its
 * "127.0.0.1:PORT"; these files beside it hold its credentials. The agent
 * writes them and redirectctl reads them, so both name them from here.
 */
#define PATHS_LOCAL_CA         "local-ca.pem"     /* the CA both sides verify against */
#define PATHS_LOCAL_SERVER     "local-server.pem" /* the endpoint's certificate */
#define PATHS_LOCAL_SERVER_KEY "local-server.key"
#define PATHS_LOCAL_ADMIN      "local-admin.pem" /* the admin client's certificate */
#define PATHS_LOCAL_ADMIN_KEY  "local-admin.key"

/* The folder of the database (and on Windows of everything). Returns buf. */
const char *paths_state_dir(char *buf, size_t len);

/* The folder of the admin socket. Returns buf. */
const char *paths_runtime_dir(char *buf, size_t len);

/* dir and file joined with the platform's separator into buf. Returns buf. */
const char *paths_join(char *buf, size_t len, const char *dir, const char *file);

/*
 * Whether path is absolute on this platform: "/..." on Linux; a drive
 * ("C:\...", "C:/...") or a UNC path ("\\server\share\...") on Windows.
 */
int paths_is_absolute(const char *path);

#endif
