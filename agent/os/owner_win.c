/*
 * owner_win.c: owner.h on Windows. The TCP table with owning processes
 * (GetExtendedTcpTable, TCP_TABLE_OWNER_PID_CONNECTIONS) gives the pid of
 * the socket whose local end is the client's; QueryFullProcessImageName
 * gives its executable. Windows identifies users by SID, not uid: uid stays
 * -1.
 *
 * Each lookup reads the whole table, so it costs more with more open
 * connections; the table is kept in one buffer per event loop, grown as
 * needed. Not yet run on Windows: see deploy/windows/README.md.
 */
#include "owner.h"

#include <winsock2.h>
#include <ws2tcpip.h>

#include <iphlpapi.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OWNER_TABLE_MAX (16u << 20) /* never read a bigger table than this */

struct owner_ctx {
	void *table;
	DWORD size;
};

struct owner_ctx *
owner_open(void)
{
	return calloc(1, sizeof(struct owner_ctx));
}

void
owner_close(struct owner_ctx *c)
{
	if (c == NULL)
		return;
	free(c->table);
	free(c);
}

/* Read the family's table into c->table. Returns 0 or a negative errno. */
static int
read_table(struct owner_ctx *c, int family)
{
	for (int tries = 0; tries < 4; tries++) {
		DWORD size = c->size;
		DWORD r = GetExtendedTcpTable(
		    c->table, &size, FALSE, (ULONG)family, TCP_TABLE_OWNER_PID_CONNECTIONS, 0);
		void *bigger;

		if (r == NO_ERROR)
			return 0;
		if (r != ERROR_INSUFFICIENT_BUFFER || size > OWNER_TABLE_MAX)
			return -EIO;
		/* Connections come and go between the two calls: leave room. */
		size += size / 4 + 4096;
		if ((bigger = realloc(c->table, size)) == NULL)
			return -ENOMEM;
		c->table = bigger;
		c->size = size;
	}
	return -EAGAIN;
}

static int32_t
find_pid(struct owner_ctx *c, const struct endpoint *src)
{
	if (src->family == AF_INET) {
		const MIB_TCPTABLE_OWNER_PID *t = c->table;

		for (DWORD i = 0; i < t->dwNumEntries; i++) {
			const MIB_TCPROW_OWNER_PID *row = &t->table[i];

			if (ntohs((u_short)row->dwLocalPort) == src->port &&
			    memcmp(&row->dwLocalAddr, src->addr, 4) == 0)
				return (int32_t)row->dwOwningPid;
		}
	} else {
		const MIB_TCP6TABLE_OWNER_PID *t = c->table;

		for (DWORD i = 0; i < t->dwNumEntries; i++) {
			const MIB_TCP6ROW_OWNER_PID *row = &t->table[i];

			if (ntohs((u_short)row->dwLocalPort) == src->port &&
			    memcmp(row->ucLocalAddr, src->addr, 16) == 0)
				return (int32_t)row->dwOwningPid;
		}
	}
	return -1;
}

/* Windows has no numeric users: every client's uid is unknown. */
int32_t
owner_uid(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst)
{
	(void)c, (void)src, (void)dst;
	return -1;
}

int
owner_lookup(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst,
    int with_process, struct owner *out)
{
	HANDLE h;
	DWORD len = sizeof(out->exe);
	int r;

	(void)dst; /* the client's local end is unique among live connections */
	out->uid = out->pid = -1;
	out->exe[0] = '\0';
	out->by_hook = 0;
	if (src->family != AF_INET && src->family != AF_INET6)
		return -EAFNOSUPPORT;
	if ((r = read_table(c, src->family)) != 0)
		return r;
	out->pid = find_pid(c, src);
	if (!with_process || out->pid < 0)
		return 0;
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)out->pid);
	if (h == NULL)
		return 0;
	if (!QueryFullProcessImageNameA(h, 0, out->exe, &len))
		out->exe[0] = '\0';
	CloseHandle(h);
	return 0;
}

const char *
owner_problem(void)
{
	return NULL;
}
