/*
 * parse.c: shared text parsers (parse.h).
 */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
parse_u64(const char *s, int allow_hex, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int base = 10;

	if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!isxdigit((unsigned char)s[2]))
			return -EINVAL;
	} else if (!isdigit((unsigned char)s[0])) {
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	if (errno != 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int
parse_port(const char *s, uint16_t *out)
{
	uint64_t v;
	int r = parse_u64(s, 0, 1, 65535, &v);

	if (r == 0)
		*out = (uint16_t)v;
	return r;
}

int
parse_port_range(const char *s, struct port_range *out)
{
	char lo[8];
	const char *dash = strchr(s, '-');
	struct port_range pr;
	size_t n;

	if (dash == NULL) {
		if (parse_port(s, &pr.lo) != 0)
			return -EINVAL;
		pr.hi = pr.lo;
	} else {
		n = (size_t)(dash - s);
		if (n == 0 || n >= sizeof(lo))
			return -EINVAL;
		memcpy(lo, s, n);
		lo[n] = '\0';
		if (parse_port(lo, &pr.lo) != 0 || parse_port(dash + 1, &pr.hi) != 0)
			return -EINVAL;
		if (pr.hi < pr.lo)
			return -ERANGE;
	}
	*out = pr;
	return 0;
}

int
parse_host_port(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h = s;
	size_t n;
	uint16_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -EINVAL; /* a bare IPv6 address needs its brackets */
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hostlen || parse_port(colon + 1, &p) != 0)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = p;
	return 0;
}

int
parse_duration_us(const char *s, int64_t *out)
{
	static const struct {
		char unit;
		int64_t us;
	} units[] = {{'s', 1000000}, {'m', 60000000}, {'h', 3600000000LL}, {'d', 86400000000LL}};
	char num[24];
	size_t n = strlen(s);
	int64_t mult = 1000000;
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (num[n - 1] == units[i].unit) {
			mult = units[i].us;
			num[--n] = '\0';
			break;
		}
	}
	if (parse_u64(num, 0, 0, UINT64_C(100) * 365 * 86400 * 1000000 / (uint64_t)mult, &v) != 0)
		return -EINVAL;
	*out = (int64_t)v * mult;
	return 0;
}
