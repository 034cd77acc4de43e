/*
 * addr.h: addresses, CIDR blocks, port ranges and endpoints.
 *
 * Pure functions with no I/O, shared by the config parser, the nft rule
 * builder, the session and the store. An endpoint is the compact form kept
 * in events (20 bytes instead of a sockaddr_storage); IPv4-mapped IPv6
 * addresses are folded to IPv4 so that one connection always reads the same.
 */
#ifndef RA_ADDR_H
#define RA_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#endif

#define ADDR_STRLEN      46 /* INET6_ADDRSTRLEN */
#define ADDR_CIDR_STRLEN (ADDR_STRLEN + 4)

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t prefix;
};

struct port_range {
	uint16_t lo, hi; /* inclusive, lo <= hi, lo >= 1 */
};

struct endpoint {
	uint8_t family; /* AF_INET, AF_INET6, or 0 when unknown */
	uint16_t port;  /* host byte order */
	uint8_t addr[16];
};

/*
 * Parse "10.0.0.0/8", "fd00::/64" or a bare address (a host route).
 * Host bits set beyond the prefix are an error: a typo in a policy file should
 * not silently widen or narrow what is matched. On failure returns -EINVAL and,
 * if err is given, writes the reason.
 */
int addr_parse_cidr(const char *s, struct cidr *out, char *err, size_t errlen);

/*
 * Parse a list separated by commas and/or blanks. An empty or blank string is
 * the empty list. At most max entries; more is an error (-E2BIG).
 */
int addr_parse_cidr_list(
    const char *s, struct cidr *out, size_t max, size_t *n, char *err, size_t errlen);

/* "80", "8000-8080", lists as above. Port 0 and reversed ranges are errors. */
int addr_parse_port_list(
    const char *s, struct port_range *out, size_t max, size_t *n, char *err, size_t errlen);

/* Format as "a.b.c.d/n". Returns buf. */
const char *addr_format_cidr(const struct cidr *c, char *buf, size_t len);

/* True when addr (family-sized) falls in c. */
bool addr_cidr_contains(const struct cidr *c, int family, const uint8_t *addr);

/* Fill e from a sockaddr (AF_INET or AF_INET6). Returns 0 or -EAFNOSUPPORT. */
int endpoint_from_sockaddr(struct endpoint *e, const struct sockaddr *sa);

/*
 * A numeric address ("10.0.0.1", "fd00::1") and a port as a sockaddr: no
 * name is looked up. Returns 0, or -EINVAL when host is not an address.
 */
int addr_parse_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *out);

/* Build a sockaddr for e. Returns the length used, or -EAFNOSUPPORT. */
int endpoint_to_sockaddr(const struct endpoint *e, struct sockaddr_storage *ss);

/* The address part as text ("" when unknown). Returns buf. */
const char *endpoint_format_addr(const struct endpoint *e, char *buf, size_t len);

bool endpoint_equal(const struct endpoint *a, const struct endpoint *b);

/* 127.0.0.0/8, ::1, or an IPv4-mapped loopback. */
bool endpoint_is_loopback(const struct endpoint *e);

struct sockaddr_un;

/*
 * Fill sun for a unix socket at path (Windows: AF_UNIX from Windows 10
 * 1803). Returns 0, or -ENAMETOOLONG with "PATH: socket path too long" in err.
 */
int addr_unix(struct sockaddr_un *sun, const char *path, char *err, size_t errlen);

#endif
