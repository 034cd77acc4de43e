/*
 * export.c: the export sinks, started and stopped together (export.h).
 */
#include "export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "shipper.h"
#include "sink_file.h"
#include "sink_nats.h"
#include "store.h"

#define EXPORT_MAX_SINKS 2

struct exporter {
	struct shipper *sinks[EXPORT_MAX_SINKS];
	size_t n;
};

size_t
export_sink_names(const struct config *cfg, const char **names, size_t max)
{
	size_t n = 0;

	if (cfg->fleet_servers[0] != '\0' && n < max)
		names[n++] = "nats";
	if (cfg->ecs_file[0] != '\0' && n < max)
		names[n++] = "ecs_file";
	return n;
}

int
export_start(struct exporter **out, const struct config *cfg, struct store *store,
    const struct ecs_agent *agent, struct fleet *fleet, char *err, size_t errlen)
{
	struct shipper_options base = {
	    .include_open = cfg->include_open,
	    .db_path = cfg->db_path,
	    .store = store,
	    .agent = agent,
	};
	struct exporter *ex;

	*out = NULL;
	if (cfg->fleet_servers[0] == '\0' && cfg->ecs_file[0] == '\0')
		return 0;
	if ((ex = calloc(1, sizeof(*ex))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cfg->fleet_servers[0] != '\0' &&
	    sink_nats_start(&ex->sinks[ex->n++], cfg, fleet, agent->uuid, &base, err, errlen) != 0)
		goto fail;
	if (cfg->ecs_file[0] != '\0' &&
	    sink_file_start(&ex->sinks[ex->n++], cfg->ecs_file, cfg->ecs_file_max_mb,
		cfg->ecs_file_keep, &base, err, errlen) != 0)
		goto fail;
	*out = ex;
	return 0;
fail:
	ex->n--; /* the one that failed was not started */
	export_stop(ex, 0);
	return -1;
}

void
export_stop(struct exporter *ex, unsigned timeout_ms)
{
	if (ex == NULL)
		return;
	for (size_t i = 0; i < ex->n; i++)
		shipper_stop(ex->sinks[i], timeout_ms);
	free(ex);
}

size_t
export_get_stats(struct exporter *ex, struct export_sink_stats *out, size_t max)
{
	size_t n = 0;

	for (; ex != NULL && n < ex->n && n < max; n++)
		shipper_get_stats(ex->sinks[n], &out[n]);
	return n;
}
