/*
 * err.c: error codes to words (err.h).
 */
#include "err.h"

#include <errno.h>
#include <string.h>

/* libuv's wording (uv.h's UV_ERRNO_MAP), so that rows read as they always did. */
static const struct {
	int code;
	const char *text;
} words[] = {
    {E2BIG, "argument list too long"},
    {EACCES, "permission denied"},
    {EADDRINUSE, "address already in use"},
    {EADDRNOTAVAIL, "address not available"},
    {EAFNOSUPPORT, "address family not supported"},
    {EAGAIN, "resource temporarily unavailable"},
    {EALREADY, "connection already in progress"},
    {EBADF, "bad file descriptor"},
    {EBUSY, "resource busy or locked"},
    {ECANCELED, "operation canceled"},
    {ECONNABORTED, "software caused connection abort"},
    {ECONNREFUSED, "connection refused"},
    {ECONNRESET, "connection reset by peer"},
    {EDESTADDRREQ, "destination address required"},
    {EEXIST, "file already exists"},
    {EFAULT, "bad address in system call argument"},
    {EFBIG, "file too large"},
    {EHOSTUNREACH, "host is unreachable"},
    {EINTR, "interrupted system call"},
    {EINVAL, "invalid argument"},
    {EIO, "i/o error"},
    {EISCONN, "socket is already connected"},
    {EISDIR, "illegal operation on a directory"},
    {ELOOP, "too many symbolic links encountered"},
    {EMFILE, "too many open files"},
    {EMSGSIZE, "message too long"},
    {ENAMETOOLONG, "name too long"},
    {ENETDOWN, "network is down"},
    {ENETUNREACH, "network is unreachable"},
    {ENFILE, "file table overflow"},
    {ENOBUFS, "no buffer space available"},
    {ENODEV, "no such device"},
    {ENOENT, "no such file or directory"},
    {ENOMEM, "not enough memory"},
    {ENOPROTOOPT, "protocol not available"},
    {ENOSPC, "no space left on device"},
    {ENOSYS, "function not implemented"},
    {ENOTCONN, "socket is not connected"},
    {ENOTDIR, "not a directory"},
    {ENOTEMPTY, "directory not empty"},
    {ENOTSOCK, "socket operation on non-socket"},
    {ENOTSUP, "operation not supported on socket"},
    {EOVERFLOW, "value too large for defined data type"},
    {EPERM, "operation not permitted"},
    {EPIPE, "broken pipe"},
    {EPROTO, "protocol error"},
    {EPROTONOSUPPORT, "protocol not supported"},
    {EPROTOTYPE, "protocol wrong type for socket"},
    {ERANGE, "result too large"},
    {EROFS, "read-only file system"},
    {ESPIPE, "invalid seek"},
    {ESRCH, "no such process"},
    {ETIMEDOUT, "connection timed out"},
    {ETXTBSY, "text file is busy"},
    {EXDEV, "cross-device link not permitted"},
    {ENXIO, "no such device or address"},
    {EMLINK, "too many links"},
    {EILSEQ, "illegal byte sequence"},
#ifdef EHOSTDOWN
    {EHOSTDOWN, "host is down"},
#endif
#ifdef ESHUTDOWN
    {ESHUTDOWN, "cannot send after transport endpoint shutdown"},
#endif
#ifdef EDQUOT
    {EDQUOT, "disk quota exceeded"},
#endif
};

const char *
err_str(int e)
{
	if (e < 0)
		e = -e;
	if (e == 0)
		return "success";
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (words[i].code == e)
			return words[i].text;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	{
		const char *d = strerrordesc_np(e); /* static, unlike strerror's buffer */

		if (d != NULL)
			return d;
	}
#endif
	return "unknown error";
}
