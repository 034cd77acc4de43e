/*
 * redirect_wfp.h: the Windows side of redirect records (WFP, Windows only).
 *
 * A WFP callout at ALE_CONNECT_REDIRECT sends chosen connections to the
 * agent's listener. On each accepted socket the agent reads two opaque blobs:
 * the redirect records (which callouts have redirected this connection; the
 * stack needs them back on the agent's own connection, or the callouts
 * redirect that one again, and the connection loops) and the redirect
 * context, which the companion callout fills with the original remote and
 * local addresses. On the socket to the real destination, before bind and
 * connect, the agent sets exactly the records it read.
 *
 * The ioctl is reached through a function pointer, so that the buffer-growth
 * and error-mapping logic can be tested without a callout; by default it is
 * WSAIoctl.
 */
#ifndef RA_REDIRECT_WFP_H
#define RA_REDIRECT_WFP_H

#include <winsock2.h>
#include <ws2tcpip.h>

#include <stddef.h>
#include <stdint.h>

/* mingw-w64 lacks these; the values are the Windows SDK's (mstcpip.h, ws2def.h). */
#ifndef SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS
#define SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS _WSAIOW(IOC_VENDOR, 220)
#endif
#ifndef SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT
#define SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT _WSAIOW(IOC_VENDOR, 221)
#endif
#ifndef SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS
#define SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS _WSAIOW(IOC_VENDOR, 222)
#endif
#ifndef FWP_E_NOT_FOUND
#define FWP_E_NOT_FOUND ((int)0x80320008)
#endif

#define WFP_RECORDS_INITIAL 1024        /* first buffer; grown as the stack asks */
#define WFP_RECORDS_CAP     (64 * 1024) /* never more: a bigger answer is an error */

/* A blob read from, or to be set on, a socket. Owned; free with wfp_blob_free. */
struct wfp_blob {
	uint8_t *data;
	size_t len;
};

void wfp_blob_free(struct wfp_blob *b);

/* WSAIoctl's shape; returns 0 or SOCKET_ERROR with the error in *wsa_error. */
typedef int (*wfp_ioctl_fn)(SOCKET s, DWORD code, void *in, DWORD inlen, void *out, DWORD outlen,
    DWORD *returned, int *wsa_error);

/* Use fn instead of WSAIoctl (NULL: back to WSAIoctl). For tests. */
void wfp_set_ioctl(wfp_ioctl_fn fn);

/*
 * Read the redirect records of an accepted socket. The buffer starts at
 * WFP_RECORDS_INITIAL bytes and grows (to the size the stack reports, else
 * doubled) on WSAEFAULT, WSAEINVAL with a larger size, or
 * ERROR_INSUFFICIENT_BUFFER, up to WFP_RECORDS_CAP. Returns 0 with *out
 * filled (len 0: the connection carries no records), or the Windows error.
 */
int wfp_query_records(SOCKET s, struct wfp_blob *out);

/*
 * Read the redirect context. A connection without one (FWP_E_NOT_FOUND) is
 * not an error: 0 with out->len 0. Same growth rules as the records.
 */
int wfp_query_context(SOCKET s, struct wfp_blob *out);

/*
 * Set records on the new upstream socket, before bind and connect. Returns
 * 0 or the Windows error. The caller must refuse the connection on error:
 * relaying it without its records could make it loop.
 */
int wfp_set_records(SOCKET s, const struct wfp_blob *records);

/*
 * The original remote and local addresses from a context the companion
 * callout wrote (two SOCKADDR_STORAGE, remote first). Returns 0, or -1 when
 * the context has another shape.
 */
int wfp_context_addresses(
    const struct wfp_blob *ctx, SOCKADDR_STORAGE *remote, SOCKADDR_STORAGE *local);

/* A sentence for the connection's row, naming the error. Never NULL. */
const char *wfp_error_reason(int error);

#endif
