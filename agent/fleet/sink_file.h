/*
 * sink_file.h: the ECS file sink (sink_file.c). Private to fleet/.
 */
#ifndef RA_SINK_FILE_H
#define RA_SINK_FILE_H

#include <stddef.h>

#include "shipper.h"

/*
 * Start shipping to path, rotated at max_mb MiB, keep files kept. base
 * gives the shipper's common options (ops, sink and window are the file's).
 * Returns 0 with *out set, or -1 with err set.
 */
int sink_file_start(struct shipper **out, const char *path, unsigned max_mb, unsigned keep,
    const struct shipper_options *base, char *err, size_t errlen);

#endif
