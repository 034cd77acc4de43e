/*
 * The WFP records logic (agent/redirect_wfp.c): buffer growth and error
 * mapping against a scripted ioctl, then the real winsock calls (under wine
 * here; the records ioctls need a WFP callout, which wine does not have).
 */
#include <winsock2.h>
#include <ws2tcpip.h>

#include <stdint.h>
#include <string.h>

#include "check.h"
#include "redirect_wfp.h"

/* A scripted stack: it holds a blob of `need` bytes and answers like Windows. */
static struct {
	size_t need;     /* the records' size */
	int small_error; /* what a too-small buffer gets */
	int report_size; /* whether *returned says the size needed */
	int fail_error;  /* != 0: every call fails with this */
	int calls;       /* ioctl calls seen */
	DWORD last_code;
	uint8_t set[256]; /* what SIO_SET received */
	size_t set_len;
} fake;

static int
fake_ioctl(SOCKET s, DWORD code, void *in, DWORD inlen, void *out, DWORD outlen, DWORD *returned,
    int *wsa_error)
{
	(void)s;
	fake.calls++;
	fake.last_code = code;
	*returned = 0;
	if (fake.fail_error != 0) {
		*wsa_error = fake.fail_error;
		return SOCKET_ERROR;
	}
	if (code == SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS) {
		if (inlen > sizeof(fake.set)) {
			*wsa_error = WSAEINVAL;
			return SOCKET_ERROR;
		}
		memcpy(fake.set, in, inlen);
		fake.set_len = inlen;
		return 0;
	}
	if (outlen < fake.need) {
		if (fake.report_size)
			*returned = (DWORD)fake.need;
		*wsa_error = fake.small_error;
		return SOCKET_ERROR;
	}
	for (size_t i = 0; i < fake.need; i++)
		((uint8_t *)out)[i] = (uint8_t)(i * 7 + 1);
	*returned = (DWORD)fake.need;
	return 0;
}

static void
reset(size_t need, int small_error, int report_size)
{
	memset(&fake, 0, sizeof(fake));
	fake.need = need;
	fake.small_error = small_error;
	fake.report_size = report_size;
}

static void
test_growth(void)
{
	struct wfp_blob b;

	wfp_set_ioctl(fake_ioctl);

	/* Fits the first buffer: one call. */
	reset(300, WSAEFAULT, 0);
	CHECK_EQ(wfp_query_records(0, &b), 0);
	CHECK_EQ(b.len, 300);
	CHECK_EQ(fake.calls, 1);
	CHECK_EQ(fake.last_code, 0x980000DC);
	CHECK_EQ(b.data[299], (uint8_t)(299 * 7 + 1));
	wfp_blob_free(&b);

	/* ERROR_INSUFFICIENT_BUFFER with the size: straight to it, two calls. */
	reset(5000, ERROR_INSUFFICIENT_BUFFER, 1);
	CHECK_EQ(wfp_query_records(0, &b), 0);
	CHECK_EQ(b.len, 5000);
	CHECK_EQ(fake.calls, 2);
	wfp_blob_free(&b);

	/* WSAEINVAL without a size: doubling, 1K 2K 4K 8K. */
	reset(5000, WSAEINVAL, 0);
	CHECK_EQ(wfp_query_records(0, &b), 0);
	CHECK_EQ(b.len, 5000);
	CHECK_EQ(fake.calls, 4);
	wfp_blob_free(&b);

	/* WSAEFAULT: the same. */
	reset(3000, WSAEFAULT, 0);
	CHECK_EQ(wfp_query_records(0, &b), 0);
	CHECK_EQ(fake.calls, 3);
	wfp_blob_free(&b);

	/* Larger than the cap: give up at the cap, with the stack's error. */
	reset(WFP_RECORDS_CAP + 1, WSAEINVAL, 0);
	CHECK_EQ(wfp_query_records(0, &b), WSAEINVAL);
	CHECK_EQ(fake.calls, 7); /* 1K 2K 4K 8K 16K 32K 64K */
	CHECK(b.data == NULL && b.len == 0);

	/* A reported size beyond the cap is not believed either. */
	reset(1u << 30, ERROR_INSUFFICIENT_BUFFER, 1);
	CHECK_EQ(wfp_query_records(0, &b), ERROR_INSUFFICIENT_BUFFER);
	CHECK_EQ(fake.calls, 7);
}

static void
test_errors(void)
{
	static const int errors[] = {WSAEACCES, WSAEOPNOTSUPP, WSAENOTSOCK, WSANOTINITIALISED};
	struct wfp_blob b = {0}, ctx = {0};
	uint8_t rec[40];

	wfp_set_ioctl(fake_ioctl);
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		reset(10, WSAEFAULT, 0);
		fake.fail_error = errors[i];
		CHECK_EQ(wfp_query_records(0, &b), errors[i]);
		CHECK_EQ(fake.calls, 1); /* not a size problem: no retry */
		CHECK(strcmp(wfp_error_reason(errors[i]),
			  "redirect records: unexpected Windows error") != 0);
	}
	CHECK(strstr(wfp_error_reason(WSAEACCES), "access denied") != NULL);
	CHECK(strstr(wfp_error_reason(WSAEOPNOTSUPP), "not supported") != NULL);
	CHECK(strstr(wfp_error_reason(WSAENOTSOCK), "not a socket") != NULL);
	CHECK(strstr(wfp_error_reason(12345), "unexpected") != NULL);

	/* No context is not an error for the context, and is for the records. */
	reset(10, WSAEFAULT, 0);
	fake.fail_error = FWP_E_NOT_FOUND;
	CHECK_EQ(wfp_query_context(0, &ctx), 0);
	CHECK_EQ(ctx.len, 0);
	CHECK_EQ(fake.last_code, 0x980000DD);
	CHECK_EQ(wfp_query_records(0, &b), FWP_E_NOT_FOUND);

	/* Set passes exactly the bytes read. */
	reset(40, WSAEFAULT, 0);
	CHECK_EQ(wfp_query_records(0, &b), 0);
	memcpy(rec, b.data, 40);
	CHECK_EQ(wfp_set_records(0, &b), 0);
	CHECK_EQ(fake.last_code, 0x980000DE);
	CHECK_EQ(fake.set_len, 40);
	CHECK(memcmp(fake.set, rec, 40) == 0);
	wfp_blob_free(&b);
	/* Nothing to set is refused before any call. */
	reset(40, WSAEFAULT, 0);
	CHECK_EQ(wfp_set_records(0, &b), WSAEINVAL);
	CHECK_EQ(fake.calls, 0);
}

static void
test_context_addresses(void)
{
	SOCKADDR_STORAGE two[2], remote, local;
	struct sockaddr_in *r = (struct sockaddr_in *)&two[0], *l = (struct sockaddr_in *)&two[1];
	struct wfp_blob ctx = {(uint8_t *)two, sizeof(two)};

	memset(two, 0, sizeof(two));
	r->sin_family = AF_INET;
	r->sin_port = htons(443);
	inet_pton(AF_INET, "10.77.0.2", &r->sin_addr);
	l->sin_family = AF_INET;
	l->sin_port = htons(50000);
	inet_pton(AF_INET, "10.77.0.1", &l->sin_addr);
	CHECK_EQ(wfp_context_addresses(&ctx, &remote, &local), 0);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&remote)->sin_port), 443);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&local)->sin_port), 50000);
	ctx.len--;
	CHECK_EQ(wfp_context_addresses(&ctx, &remote, &local), -1);
	ctx.len++;
	l->sin_family = AF_INET6; /* mixed families: not what the callout writes */
	CHECK_EQ(wfp_context_addresses(&ctx, &remote, &local), -1);
}

/* The real calls: what this Windows (or wine) says without a callout. */
static void
test_real_winsock(void)
{
	WSADATA wsa;
	SOCKET s;
	struct wfp_blob b = {0}, ctx = {0};
	uint8_t one = 1;
	struct wfp_blob rec = {&one, 1};
	int e;

	wfp_set_ioctl(NULL);
	CHECK_EQ(WSAStartup(MAKEWORD(2, 2), &wsa), 0);
	s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	CHECK(s != INVALID_SOCKET);

	/* A socket nobody redirected has no records: a clean error, no loop. */
	e = wfp_query_records(s, &b);
	printf("records on a plain socket: %d (%s)\n", e, wfp_error_reason(e));
	CHECK(e != 0);
	CHECK(b.data == NULL);
	e = wfp_query_context(s, &ctx);
	printf("context on a plain socket: %d (%s)\n", e, wfp_error_reason(e));
	CHECK(ctx.len == 0);
	e = wfp_set_records(s, &rec);
	printf("set records on a plain socket: %d (%s)\n", e, wfp_error_reason(e));
	CHECK(e != 0);
	closesocket(s);

	/* A closed socket: Windows says WSAENOTSOCK; wine 8 answers
	 * WSAEOPNOTSUPP for these codes before it looks at the socket. Either
	 * way an error the agent names, not a retry. */
	e = wfp_query_records(s, &b);
	printf("records on a closed socket: %d (%s)\n", e, wfp_error_reason(e));
	CHECK(e == WSAENOTSOCK || e == WSAEOPNOTSUPP);
	CHECK(b.data == NULL);
	WSACleanup();
}

int
main(void)
{
	test_growth();
	test_errors();
	test_context_addresses();
	test_real_winsock();
	return check_finish("test_wfp");
}
