/*
 * err.h: the one error convention.
 *
 * Every function that can fail returns 0 (or a count) or a negative errno
 * value (-ECONNREFUSED, -EAGAIN, ...), on every platform; setup code may add
 * a sentence in an err buffer. Platform codes are mapped where they enter:
 * sock_errno() (platform.h) for the last socket call (winsock's WSAE* on
 * Windows), sock_pending_error() for SO_ERROR, evio_err() (proxy/) for
 * libuv's codes. err_str() is the one way to turn a code into words: a
 * record's error column, a log line and a CLI message read the same on both
 * platforms, and it is safe from any thread (strerror is not).
 */
#ifndef RA_ERR_H
#define RA_ERR_H

/*
 * The words for e, a negative (or positive) errno value: the same text
 * libuv uses ("connection refused"), a static string. 0 gives "success".
 */
const char *err_str(int e);

#endif
