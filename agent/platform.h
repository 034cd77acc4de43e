/*
 * platform.h: the system headers for sockets and the few POSIX names that
 * the portable files (config, policy, the store, the RPC handlers) use, so
 * that they build for Linux and, with mingw-w64, for Windows alike.
 *
 * Platform-specific files (redirect_linux.c, redirect_wfp.c, service_win.c,
 * owner_linux.c, ...) include their system headers directly instead.
 */
#ifndef RA_PLATFORM_H
#define RA_PLATFORM_H

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>

#include <direct.h>
#include <sys/types.h>

/* Windows has no numeric users or groups: the fields exist, always unknown. */
typedef unsigned int uid_t;
typedef unsigned int gid_t;

#define PLATFORM_PATH_SEPS "/\\"
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PLATFORM_PATH_SEPS "/"
#endif

/* Name the calling thread (at most 15 characters): top -H, perf and debuggers show it. */
static inline void
platform_thread_name(const char *name)
{
	pthread_setname_np(pthread_self(), name);
}

/*
 * Lower the calling thread's priority below the event loops' (nice 10 on
 * Linux, which applies nice per thread; BELOW_NORMAL on Windows).
 * Returns 0, or -1 with errno (Linux) or GetLastError() (Windows) set.
 */
static inline int
platform_thread_lower_priority(void)
{
#ifdef _WIN32
	return SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_BELOW_NORMAL) ? 0 : -1;
#else
	return setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
#endif
}

/* Clear a secret (a private key) in a way the compiler may not drop. */
static inline void
platform_wipe(void *p, size_t len)
{
#ifdef _WIN32
	SecureZeroMemory(p, len);
#else
	explicit_bzero(p, len);
#endif
}

/* mkdir(2) with a mode; Windows has no mode (the installer sets the folder's ACL). */
static inline int
platform_mkdir(const char *dir, unsigned mode)
{
#ifdef _WIN32
	(void)mode;
	return _mkdir(dir);
#else
	return mkdir(dir, (mode_t)mode);
#endif
}

#endif
