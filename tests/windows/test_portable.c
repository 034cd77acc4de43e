/*
 * The portable parsers built for Windows (mingw-w64) and run under wine:
 * addresses and CIDRs (winsock's inet_pton/inet_ntop), the redirect record
 * and context layouts, the server-name sniffer, log lines written to a
 * file (the service's log), and the socket helpers of platform.h on real
 * winsock sockets (non-blocking accept, errors mapped to errno values). The same code the Linux
 * agent runs; these checks mirror a few of its cmocka tests.
 */
#include <winsock2.h>
#include <ws2tcpip.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "check.h"
#include "log.h"
#include "platform.h"
#include "records.h"
#include "sniff.h"
#include "tls_hello.h"

static void
test_addresses(void)
{
	struct cidr c;
	char text[ADDR_CIDR_STRLEN], err[128];
	uint8_t in[16] = {10, 1, 2, 3};
	struct endpoint e = {AF_INET6, 443, {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}},
			back;
	struct sockaddr_storage ss;

	CHECK_EQ(addr_parse_cidr("10.0.0.0/8", &c, err, sizeof(err)), 0);
	CHECK(strcmp(addr_format_cidr(&c, text, sizeof(text)), "10.0.0.0/8") == 0);
	CHECK(addr_cidr_contains(&c, AF_INET, in));
	CHECK(addr_parse_cidr("10.0.0.1/8", &c, err, sizeof(err)) != 0);
	CHECK(strstr(err, "host bits") != NULL);
	CHECK_EQ(addr_parse_cidr("fd77::/64", &c, err, sizeof(err)), 0);
	CHECK(strcmp(addr_format_cidr(&c, text, sizeof(text)), "fd77::/64") == 0);
	CHECK(endpoint_to_sockaddr(&e, &ss) > 0);
	CHECK_EQ(endpoint_from_sockaddr(&back, (struct sockaddr *)&ss), 0);
	CHECK(endpoint_equal(&e, &back));
	CHECK(strcmp(endpoint_format_addr(&e, text, sizeof(text)), "fd77::2") == 0);
}

static void
test_records(void)
{
	struct records_v1 r = {0x3, 0x4, {AF_INET, 80, {10, 77, 0, 2}}}, rb;
	struct context_v1 c = {{AF_INET, 80, {10, 77, 0, 2}}, {AF_INET, 40000, {10, 77, 0, 1}},
			      "edge"},
			  cb;
	uint8_t buf[CONTEXT_V1_MAXLEN];
	size_t n;

	CHECK_EQ(records_encode(buf, sizeof(buf), &r), RECORDS_V1_LEN);
	CHECK_EQ(buf[0], 1);
	CHECK_EQ(buf[4], 3);
	CHECK_EQ(records_decode(buf, RECORDS_V1_LEN, &rb), 0);
	CHECK(
	    rb.incoming_mark == 3 && rb.own_mark == 4 && endpoint_equal(&rb.orig_dst, &r.orig_dst));
	n = context_encode(buf, sizeof(buf), &c);
	CHECK_EQ(n, 44);
	CHECK_EQ(context_decode(buf, n, &cb), 0);
	CHECK(strcmp(cb.agent_id, "edge") == 0 && cb.orig_src.port == 40000);
}

static void
test_sniff(void)
{
	const char *req = "GET / HTTP/1.1\r\nHost: Shop.Example.com:8080\r\n\r\n";
	struct sniff_names out;
	uint8_t hello[512];
	size_t n = tls_client_hello(hello, "www.example.org");

	CHECK_EQ(sniff_server_name(hello, n, &out), SNIFF_FOUND);
	CHECK(strcmp(out.name, "www.example.org") == 0);
	CHECK_EQ(sniff_server_name(hello, n - 1, &out), SNIFF_MORE);
	CHECK_EQ(sniff_server_name((const uint8_t *)req, strlen(req), &out), SNIFF_FOUND);
	CHECK(strcmp(out.name, "shop.example.com") == 0);
}

static void
test_log_stream(void)
{
	char line[256] = "";
	FILE *f = tmpfile();

	CHECK(f != NULL);
	if (f == NULL)
		return;
	log_init_stream(f, LOG_LEVEL_INFO);
	log_info("session %llu: %zu bytes", 42ULL, (size_t)7);
	log_debug("not written at info level");
	log_init_stream(NULL, LOG_LEVEL_INFO);
	rewind(f);
	CHECK(fgets(line, sizeof(line), f) != NULL);
	/* 2026-11-26T16:00:00.000Z info: ..., C99 formats included */
	CHECK(strlen(line) > 25 && line[4] == '-' && line[10] == 'T' && line[23] == 'Z');
	CHECK(strstr(line, " info: session 42: 7 bytes\n") != NULL);
	CHECK(fgets(line, sizeof(line), f) == NULL);
	fclose(f);
}

static void
test_sockets(void)
{
	struct sockaddr_in sin = {0};
	socklen_t len = sizeof(sin);
	sock_t l, c, a;
	fd_set wr;
	struct timeval tv = {5, 0};
	char byte;

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = sock_stream(AF_INET);
	CHECK(l != SOCK_INVALID);
	CHECK_EQ(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_EQ(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	CHECK_EQ(listen(l, 8), 0);
	/* Nobody waiting: a non-blocking accept says EAGAIN. */
	len = sizeof(sin);
	CHECK(sock_accept(l, NULL, NULL) == SOCK_INVALID);
	CHECK_EQ(sock_errno(), EAGAIN);

	c = sock_stream(AF_INET);
	CHECK(c != SOCK_INVALID);
	CHECK(connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0 || sock_errno() == EAGAIN);
	FD_ZERO(&wr);
	FD_SET(c, &wr);
	CHECK_EQ(select(0, NULL, &wr, NULL, &tv), 1);
	len = sizeof(sin);
	a = SOCK_INVALID;
	for (int i = 0; i < 100 && a == SOCK_INVALID; i++) {
		a = sock_accept(l, (struct sockaddr *)&sin, &len);
		if (a == SOCK_INVALID)
			Sleep(10);
	}
	CHECK(a != SOCK_INVALID);
	CHECK_EQ(len, (socklen_t)sizeof(struct sockaddr_in));
	/* The accepted socket is non-blocking too. */
	CHECK(recv(a, &byte, 1, 0) < 0);
	CHECK_EQ(sock_errno(), EAGAIN);
	CHECK_EQ(shutdown(c, SHUT_WR), 0);
	sock_close(a);
	sock_close(c);
	sock_close(l);
}

int
main(void)
{
	WSADATA wsa;

	CHECK_EQ(WSAStartup(MAKEWORD(2, 2), &wsa), 0);
	test_addresses();
	test_records();
	test_sniff();
	test_log_stream();
	test_sockets();
	WSACleanup();
	return check_finish("test_portable");
}
