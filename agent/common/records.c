#include "records.h"

#include <errno.h>
#include <string.h>

#define ENDPOINT_LEN 19

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put_endpoint(uint8_t *p, const struct endpoint *e)
{
	memset(p, 0, ENDPOINT_LEN);
	if (e->family == AF_INET) {
		p[0] = 4;
		memcpy(p + 1, e->addr, 4);
	} else if (e->family == AF_INET6) {
		p[0] = 6;
		memcpy(p + 1, e->addr, 16);
	}
	p[17] = (uint8_t)(e->port >> 8);
	p[18] = (uint8_t)e->port;
}

static int
get_endpoint(const uint8_t *p, struct endpoint *e)
{
	memset(e, 0, sizeof(*e));
	if (p[0] == 4) {
		e->family = AF_INET;
		memcpy(e->addr, p + 1, 4);
	} else if (p[0] == 6) {
		e->family = AF_INET6;
		memcpy(e->addr, p + 1, 16);
	} else if (p[0] != 0) {
		return -EINVAL;
	}
	e->port = (uint16_t)(p[17] << 8 | p[18]);
	return 0;
}

size_t
records_encode(uint8_t *buf, size_t len, const struct records_v1 *r)
{
	if (len < RECORDS_V1_LEN)
		return 0;
	buf[0] = RECORDS_VERSION;
	put32(buf + 1, r->incoming_mark);
	put32(buf + 5, r->own_mark);
	put_endpoint(buf + 9, &r->orig_dst);
	return RECORDS_V1_LEN;
}

int
records_decode(const uint8_t *buf, size_t len, struct records_v1 *out)
{
	if (len != RECORDS_V1_LEN || buf[0] != RECORDS_VERSION)
		return -EINVAL;
	out->incoming_mark = get32(buf + 1);
	out->own_mark = get32(buf + 5);
	return get_endpoint(buf + 9, &out->orig_dst);
}

size_t
context_encode(uint8_t *buf, size_t len, const struct context_v1 *c)
{
	size_t n = strnlen(c->agent_id, sizeof(c->agent_id));

	if (n > CONTEXT_ID_MAX || len < 40 + n)
		return 0;
	buf[0] = RECORDS_VERSION;
	put_endpoint(buf + 1, &c->orig_dst);
	put_endpoint(buf + 20, &c->orig_src);
	buf[39] = (uint8_t)n;
	memcpy(buf + 40, c->agent_id, n);
	return 40 + n;
}

int
context_decode(const uint8_t *buf, size_t len, struct context_v1 *out)
{
	size_t n;

	if (len < 40 || buf[0] != RECORDS_VERSION)
		return -EINVAL;
	n = buf[39];
	if (n > CONTEXT_ID_MAX || len != 40 + n)
		return -EINVAL;
	if (get_endpoint(buf + 1, &out->orig_dst) != 0 ||
	    get_endpoint(buf + 20, &out->orig_src) != 0)
		return -EINVAL;
	memcpy(out->agent_id, buf + 40, n);
	out->agent_id[n] = '\0';
	return 0;
}
