/*
 * outbox.h: the export outbox. The committed, sequence-numbered event log
 * (connection_events) is what every export sink ships; a sink's cursor,
 * stored in export_cursors, is the newest sequence it has acknowledged, so
 * a restart resumes right after it. Retention keeps what no sink has
 * acknowledged yet, up to its cap (retention.h).
 *
 * A struct outbox is one sink's: its own read connection for the events and
 * a read-write one for its cursor, used by that sink's thread alone. Reads
 * never wait for the writer (WAL); a cursor write waits for it briefly.
 */
#ifndef RA_OUTBOX_H
#define RA_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "query.h"

struct outbox;

/*
 * Open the outbox of sink at path (the schema must exist: store_open ran,
 * and made the sink's cursor row). Returns 0 with *out set, or a negative
 * errno with err set.
 */
int outbox_open(const char *path, const char *sink, struct outbox **out, char *err, size_t errlen);

void outbox_close(struct outbox *o);

/* The sink's cursor and the final events lost before it could ship them. Returns 0 or -EIO. */
int outbox_cursor(struct outbox *o, uint64_t *acked, uint64_t *lost);

/* Store the cursor: every event up to acked is shipped. Returns 0 or -EIO. */
int outbox_set_cursor(struct outbox *o, uint64_t acked);

/*
 * Call cb for up to limit events after seq, in order, each the connection
 * as it stood at that event (conn_row.seq and .at_us set). Returns how many,
 * or -EIO.
 */
int outbox_read(struct outbox *o, uint64_t after, unsigned limit, conn_row_cb cb, void *arg);

/* The time of the first event after seq (0: none). Returns 0 or -EIO. */
int outbox_first_after(struct outbox *o, uint64_t seq, int64_t *at_us);

/* The last database error, for logs. */
const char *outbox_errmsg(struct outbox *o);

#endif
