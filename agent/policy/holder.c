/*
 * holder.c: the policy in force, swapped atomically (policy.h).
 */
#include <sched.h>
#include <stdlib.h>

#include "policy_internal.h"

struct policy_holder {
	_Atomic(struct policy *) cur;
	unsigned n;
	_Atomic(struct policy *) slots[];
};

struct policy_holder *
policy_holder_new(struct policy *initial, unsigned n_slots)
{
	struct policy_holder *h = calloc(1, sizeof(*h) + n_slots * sizeof(h->slots[0]));

	if (h == NULL)
		return NULL;
	h->n = n_slots;
	atomic_store(&h->cur, initial);
	return h;
}

void
policy_holder_free(struct policy_holder *h)
{
	if (h == NULL)
		return;
	policy_free(atomic_load(&h->cur));
	free(h);
}

struct policy *
policy_acquire(struct policy_holder *h, unsigned slot)
{
	struct policy *p;

	/* Publish, then check it is still current: a writer that swapped in
	 * between either sees our slot or we see its new policy. */
	do {
		p = atomic_load(&h->cur);
		atomic_store(&h->slots[slot], p);
	} while (p != atomic_load(&h->cur));
	return p;
}

void
policy_release(struct policy_holder *h, unsigned slot)
{
	atomic_store(&h->slots[slot], NULL);
}

struct policy *
policy_current(struct policy_holder *h)
{
	return atomic_load(&h->cur);
}

void
policy_install(struct policy_holder *h, struct policy *p)
{
	struct policy *old = atomic_exchange(&h->cur, p);

	/* A reader holds a policy for one verdict: microseconds. */
	for (unsigned i = 0; i < h->n; i++)
		while (atomic_load(&h->slots[i]) == old)
			sched_yield();
	policy_free(old);
}
