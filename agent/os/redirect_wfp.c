/* Redirect records and context on Windows (see redirect_wfp.h). Windows only. */
#include "redirect_wfp.h"

#include <stdlib.h>
#include <string.h>

static int
real_ioctl(SOCKET s, DWORD code, void *in, DWORD inlen, void *out, DWORD outlen, DWORD *returned,
    int *wsa_error)
{
	*returned = 0;
	if (WSAIoctl(s, code, in, inlen, out, outlen, returned, NULL, NULL) == 0)
		return 0;
	*wsa_error = WSAGetLastError();
	return SOCKET_ERROR;
}

static wfp_ioctl_fn do_ioctl = real_ioctl;

void
wfp_set_ioctl(wfp_ioctl_fn fn)
{
	do_ioctl = fn != NULL ? fn : real_ioctl;
}

void
wfp_blob_free(struct wfp_blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/*
 * The documentation disagrees on how a too-small buffer is reported:
 * ERROR_INSUFFICIENT_BUFFER with the needed size, WSAEINVAL with none, or
 * WSAEFAULT. Any of them means "try again with more room".
 */
static int
too_small(int error)
{
	return error == WSAEFAULT || error == WSAEINVAL || error == ERROR_INSUFFICIENT_BUFFER ||
	       error == WSAENOBUFS;
}

static int
query_blob(SOCKET s, DWORD code, int none_is_ok, struct wfp_blob *out)
{
	size_t size = WFP_RECORDS_INITIAL;

	out->data = NULL;
	out->len = 0;
	for (;;) {
		uint8_t *buf = malloc(size);
		DWORD got = 0;
		int error = 0;

		if (buf == NULL)
			return WSA_NOT_ENOUGH_MEMORY;
		if (do_ioctl(s, code, NULL, 0, buf, (DWORD)size, &got, &error) == 0) {
			if (got > size) {
				free(buf);
				return WSAEFAULT; /* a stack that wrote past our buffer? never trust
						     it */
			}
			out->data = buf;
			out->len = got;
			return 0;
		}
		free(buf);
		if (none_is_ok && error == FWP_E_NOT_FOUND)
			return 0;
		if (!too_small(error) || size >= WFP_RECORDS_CAP)
			return error;
		/* WSAEINVAL with no larger size asked for may be a real "invalid":
		 * doubling up to the cap bounds how often it is retried. */
		if (got > size && got <= WFP_RECORDS_CAP)
			size = got;
		else
			size = size * 2 > WFP_RECORDS_CAP ? WFP_RECORDS_CAP : size * 2;
	}
}

int
wfp_query_records(SOCKET s, struct wfp_blob *out)
{
	return query_blob(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, 0, out);
}

int
wfp_query_context(SOCKET s, struct wfp_blob *out)
{
	return query_blob(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, 1, out);
}

int
wfp_set_records(SOCKET s, const struct wfp_blob *records)
{
	DWORD got = 0;
	int error = 0;

	if (records->len == 0 || records->len > WFP_RECORDS_CAP)
		return WSAEINVAL;
	if (do_ioctl(s, SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, records->data, (DWORD)records->len,
		NULL, 0, &got, &error) != 0)
		return error;
	return 0;
}

int
wfp_context_addresses(const struct wfp_blob *ctx, SOCKADDR_STORAGE *remote, SOCKADDR_STORAGE *local)
{
	if (ctx->len != 2 * sizeof(SOCKADDR_STORAGE))
		return -1;
	memcpy(remote, ctx->data, sizeof(*remote));
	memcpy(local, ctx->data + sizeof(*remote), sizeof(*local));
	if ((remote->ss_family != AF_INET && remote->ss_family != AF_INET6) ||
	    local->ss_family != remote->ss_family)
		return -1;
	return 0;
}

const char *
wfp_error_reason(int error)
{
	switch (error) {
	case 0:
		return "no error";
	case WSAEACCES:
		return "redirect records: access denied (the agent must run as LocalSystem or an "
		       "administrator)";
	case WSAEINVAL:
		return "redirect records: invalid argument (the connection was not redirected, "
		       "or the records are malformed)";
	case WSAEOPNOTSUPP:
		return "redirect records: not supported on this socket or system (needs Windows 8 "
		       "/ "
		       "Server 2012 and a TCP socket)";
	case WSAENOTSOCK:
		return "redirect records: not a socket";
	case WSAEFAULT:
		return "redirect records: the buffer was not accepted (bad address or size)";
	case WSAENOBUFS:
	case WSA_NOT_ENOUGH_MEMORY:
		return "redirect records: out of memory";
	case ERROR_INSUFFICIENT_BUFFER:
		return "redirect records: larger than the agent accepts (64 KiB)";
	case WSANOTINITIALISED:
		return "redirect records: winsock not initialised";
	case WSAENETDOWN:
		return "redirect records: the network subsystem failed";
	case FWP_E_NOT_FOUND:
		return "redirect context: none attached to this connection";
	default:
		return "redirect records: unexpected Windows error";
	}
}
