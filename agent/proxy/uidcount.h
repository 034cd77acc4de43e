/*
 * uidcount.h: sessions per client uid, for one event loop's fair share
 * ([proxy] max_sessions_per_uid). An open-addressing table sized for the
 * loop's sessions: add and remove are O(1) and never allocate after init.
 * Loop thread only.
 */
#ifndef RA_UIDCOUNT_H
#define RA_UIDCOUNT_H

#include <stddef.h>
#include <stdint.h>

struct uidcount {
	struct uidcount_slot {
		uint32_t uid;
		uint32_t count; /* 0: free */
	} * slots;
	size_t mask; /* slots - 1: a power of two, at least twice the sessions */
};

/* For up to max_sessions sessions at once. Returns 0 or -ENOMEM. */
int uidcount_init(struct uidcount *u, unsigned max_sessions);
void uidcount_free(struct uidcount *u);

/* Sessions uid holds now. */
unsigned uidcount_get(const struct uidcount *u, uint32_t uid);

/* One more session of uid (the caller keeps within max_sessions in all). */
void uidcount_add(struct uidcount *u, uint32_t uid);

/* One fewer (uid must hold one). */
void uidcount_remove(struct uidcount *u, uint32_t uid);

#endif
