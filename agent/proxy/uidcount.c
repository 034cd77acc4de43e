/*
 * uidcount.c: sessions per uid (uidcount.h). Linear probing; a removal that
 * empties a slot shifts the entries after it back, so lookups never need
 * tombstones.
 */
#include "uidcount.h"

#include <errno.h>
#include <stdlib.h>

static size_t
home(const struct uidcount *u, uint32_t uid)
{
	return (size_t)(uid * 2654435761u) & u->mask; /* Knuth's multiplicative hash */
}

int
uidcount_init(struct uidcount *u, unsigned max_sessions)
{
	size_t n = 16;

	while (n < 2 * (size_t)max_sessions)
		n *= 2;
	u->mask = n - 1;
	u->slots = calloc(n, sizeof(*u->slots));
	return u->slots != NULL ? 0 : -ENOMEM;
}

void
uidcount_free(struct uidcount *u)
{
	free(u->slots);
	u->slots = NULL;
}

/* The slot holding uid, or the free slot where it would go. */
static size_t
find(const struct uidcount *u, uint32_t uid)
{
	size_t i = home(u, uid);

	while (u->slots[i].count != 0 && u->slots[i].uid != uid)
		i = (i + 1) & u->mask;
	return i;
}

unsigned
uidcount_get(const struct uidcount *u, uint32_t uid)
{
	return u->slots[find(u, uid)].count;
}

void
uidcount_add(struct uidcount *u, uint32_t uid)
{
	size_t i = find(u, uid);

	u->slots[i].uid = uid;
	u->slots[i].count++;
}

void
uidcount_remove(struct uidcount *u, uint32_t uid)
{
	size_t i = find(u, uid), j = i;

	if (u->slots[i].count == 0 || --u->slots[i].count > 0)
		return;
	/* Backward shift: every entry after the gap that could sit in it moves up. */
	for (;;) {
		size_t h;

		j = (j + 1) & u->mask;
		if (u->slots[j].count == 0)
			break;
		h = home(u, u->slots[j].uid);
		/* j's entry may move to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
			u->slots[i] = u->slots[j];
			u->slots[j].count = 0;
			i = j;
		}
	}
}
