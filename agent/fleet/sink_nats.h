/*
 * sink_nats.h: the NATS JetStream sink (sink_nats.c). Private to fleet/.
 */
#ifndef RA_SINK_NATS_H
#define RA_SINK_NATS_H

#include <stddef.h>

#include "shipper.h"

struct config;
struct fleet;

/*
 * Start shipping to <prefix>.conn.<uuid> over fleet. base gives the
 * shipper's common options. Returns 0 with *out set, or -1 with err set.
 */
int sink_nats_start(struct shipper **out, const struct config *cfg, struct fleet *fleet,
    const char *uuid, const struct shipper_options *base, char *err, size_t errlen);

#endif
