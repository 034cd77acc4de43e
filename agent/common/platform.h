/*
 * platform.h: the system headers for sockets and the few POSIX names that
 * the shared files (event loops, sessions, the store, the RPC server, the
 * CLI's client) use, so that they build for Linux and, with mingw-w64, for
 * Windows alike: socket handles (sock_t) and their calls, errno values for
 * winsock errors (err.h), listener options, thread names and priority, the
 * platform's name, mkdir, fsync, wiping secrets.
 *
 * Platform-specific files (redirect_linux.c, redirect_win.c, service_win.c,
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
#include <io.h>
#include <sys/types.h>

/* Windows has no numeric users or groups: the fields exist, always unknown. */
typedef unsigned int uid_t;
typedef unsigned int gid_t;

typedef SOCKET sock_t; /* what libuv calls uv_os_sock_t */
#define SOCK_INVALID INVALID_SOCKET
#define SHUT_WR      SD_SEND

#define PLATFORM_PATH_SEPS "/\\"
#define PLATFORM_REUSEPORT 0 /* no SO_REUSEPORT: one listener per port */
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

typedef int sock_t;
#define SOCK_INVALID (-1)

#define PLATFORM_PATH_SEPS "/"
#define PLATFORM_REUSEPORT 1 /* SO_REUSEPORT: a listener per event loop */
#endif

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

/*
 * A winsock error as an errno value (EAGAIN, EINTR, EMFILE, EADDRINUSE,
 * ...), for the codes the agent tells apart; any other becomes EIO.
 */
#ifdef _WIN32
static inline int
sock_errno_from_wsa(int wsa)
{
	switch (wsa) {
	case 0:
		return 0;
	case WSAEWOULDBLOCK:
		return EAGAIN;
	case WSAEINPROGRESS:
		return EINPROGRESS;
	case WSAEALREADY:
		return EALREADY;
	case WSAEINTR:
		return EINTR;
	case WSAECONNABORTED:
		return ECONNABORTED;
	case WSAECONNRESET:
		return ECONNRESET;
	case WSAECONNREFUSED:
		return ECONNREFUSED;
	case WSAETIMEDOUT:
		return ETIMEDOUT;
	case WSAEHOSTUNREACH:
		return EHOSTUNREACH;
	case WSAENETUNREACH:
		return ENETUNREACH;
	case WSAENETDOWN:
		return ENETDOWN;
	case WSAENETRESET:
		return ECONNRESET;
	case WSAESHUTDOWN:
		return EPIPE;
	case WSAEMFILE:
		return EMFILE;
	case WSAENOBUFS:
		return ENOBUFS;
	case WSAEADDRINUSE:
		return EADDRINUSE;
	case WSAEADDRNOTAVAIL:
		return EADDRNOTAVAIL;
	case WSAEAFNOSUPPORT:
		return EAFNOSUPPORT;
	case WSAENOTCONN:
		return ENOTCONN;
	case WSAEISCONN:
		return EISCONN;
	case WSAENOTSOCK:
		return ENOTSOCK;
	case WSAEOPNOTSUPP:
		return ENOTSUP;
	case WSAEINVAL:
		return EINVAL;
	case WSAEFAULT:
		return EFAULT;
	case WSAEACCES:
		return EACCES;
	case WSAEMSGSIZE:
		return EMSGSIZE;
	default:
		return EIO;
	}
}
#endif

/* The last socket call's error as an errno value (positive). */
static inline int
sock_errno(void)
{
#ifdef _WIN32
	return sock_errno_from_wsa(WSAGetLastError());
#else
	return errno;
#endif
}

/* The socket's pending error (SO_ERROR, which it clears) as a negative errno; 0: none. */
static inline int
sock_pending_error(sock_t fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&e, &len) != 0)
		return -sock_errno();
#ifdef _WIN32
	return -sock_errno_from_wsa(e);
#else
	return -e;
#endif
}

static inline void
sock_close(sock_t s)
{
#ifdef _WIN32
	closesocket(s);
#else
	close(s);
#endif
}

/* send(2) and recv(2) on a stream socket: bytes, or -1 (sock_errno). No SIGPIPE. */
static inline long
sock_send(sock_t s, const void *buf, size_t len)
{
#ifdef _WIN32
	return send(s, (const char *)buf, (int)len, 0);
#else
	return send(s, buf, len, MSG_NOSIGNAL);
#endif
}

static inline long
sock_recv(sock_t s, void *buf, size_t len)
{
#ifdef _WIN32
	return recv(s, (char *)buf, (int)len, 0);
#else
	return recv(s, buf, len, 0);
#endif
}

/* A non-blocking TCP socket, not inherited by child processes. */
static inline sock_t
sock_stream(int family)
{
#ifdef _WIN32
	u_long on = 1;
	SOCKET s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
	    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);

	if (s != INVALID_SOCKET && ioctlsocket(s, FIONBIO, &on) != 0) {
		closesocket(s);
		return INVALID_SOCKET;
	}
	return s;
#else
	return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#endif
}

/*
 * Claim a listening port before bind. Linux: SO_REUSEADDR (a restart binds
 * over connections in TIME_WAIT; two sockets never listen on one port) and,
 * with reuseport, SO_REUSEPORT so that every event loop has its own
 * listener. Windows: SO_EXCLUSIVEADDRUSE (its SO_REUSEADDR would let another
 * socket take the port over) and one listener. Returns 0 or a negative errno.
 */
static inline int
sock_listen_options(sock_t fd, int reuseport)
{
	int one = 1;

#ifdef _WIN32
	(void)reuseport;
	if (setsockopt(fd, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof(one)) != 0)
		return -sock_errno();
#else
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0))
		return -sock_errno();
#endif
	return 0;
}

/* A blocking unix-domain stream socket (the admin endpoint), not inherited. */
static inline sock_t
sock_unix_stream(void)
{
#ifdef _WIN32
	return WSASocketW(AF_UNIX, SOCK_STREAM, 0, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
#else
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
}

/* accept(2), the new socket non-blocking and not inherited. peer and len may be NULL. */
static inline sock_t
sock_accept(sock_t l, struct sockaddr *peer, socklen_t *len)
{
#ifdef _WIN32
	u_long on = 1;
	int ilen = len != NULL ? (int)*len : 0;
	SOCKET s = accept(l, peer, len != NULL ? &ilen : NULL);

	if (len != NULL)
		*len = (socklen_t)ilen;
	if (s != INVALID_SOCKET && ioctlsocket(s, FIONBIO, &on) != 0) {
		closesocket(s);
		return INVALID_SOCKET;
	}
	return s;
#else
	return accept4(l, peer, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#endif
}

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

/* The platform's name as the API reports it. */
static inline const char *
platform_name(void)
{
#ifdef _WIN32
	return "windows";
#else
	return "linux";
#endif
}

/*
 * Which file is at a path: the store notices its database deleted or
 * replaced under it. On Windows an open database cannot be deleted or
 * replaced (no FILE_SHARE_DELETE): there, only whether it exists.
 */
struct platform_file_id {
	int valid; /* 0: nothing at the path */
	unsigned long long dev, ino;
};

static inline struct platform_file_id
platform_file_id(const char *path)
{
	struct platform_file_id id = {0, 0, 0};
	struct stat sb;

	if (stat(path, &sb) == 0) {
		id.valid = 1;
#ifndef _WIN32
		id.dev = (unsigned long long)sb.st_dev;
		id.ino = (unsigned long long)sb.st_ino;
#endif
	}
	return id;
}

static inline int
platform_file_id_equal(const struct platform_file_id *a, const struct platform_file_id *b)
{
	return a->valid == b->valid && a->dev == b->dev && a->ino == b->ino;
}

/* A FILE's data (flushed first by the caller) on the disk. 0 or -1 (errno). */
static inline int
platform_fsync(FILE *f)
{
#ifdef _WIN32
	return _commit(_fileno(f));
#else
	return fdatasync(fileno(f));
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
