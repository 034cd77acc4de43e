/*
 * ecs.h: a connection event as one Elastic Common Schema (ECS 8.x) JSON
 * object, the record every export sink ships (the NATS stream, the file).
 *
 * The fields, and how the row maps onto them, are in deploy/nats/README.md
 * ("The exported record"). Unknown values are left out, never faked: no uid, no
 * pid, no executable, no server name, no bytes before the close.
 */
#ifndef RA_ECS_H
#define RA_ECS_H

#include <stddef.h>

#include "query.h"

#define ECS_VERSION    "8.11.0"
#define ECS_RECORD_MAX 16384 /* the largest record: an executable path is at most 4 KiB */

/* Who writes the records: the same for every record of one agent. */
struct ecs_agent {
	const char *uuid;     /* agent.id */
	const char *name;     /* agent.name: [proxy] agent_id */
	const char *version;  /* agent.version */
	const char *hostname; /* host.name */
	const char *os_type;  /* host.os.type: "linux", "windows" */
};

/*
 * Whether the export ships this event: a connection's final state (closed,
 * failed, interrupted), and with include_open its opening too.
 */
int ecs_ships(const struct conn_row *r, int include_open);

/*
 * Write r (an event from the outbox: seq and at_us set) as one JSON object,
 * no newline, into buf. Returns its length, or -ENOSPC when cap is too small
 * (ECS_RECORD_MAX always suffices).
 */
int ecs_format(const struct conn_row *r, const struct ecs_agent *a, char *buf, size_t cap);

#endif
