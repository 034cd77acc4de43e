/*
 * fleet_off.c: fleet.h and control.h for a build without the NATS C client. The ECS file
 * sink still ships every connection; a [fleet] servers setting is refused
 * at start with this message.
 */
#include "control.h"
#include "fleet.h"
#include "sink_nats.h"

#include <stdio.h>

int
fleet_available(void)
{
	return 0;
}

int
fleet_open(struct fleet **out, const struct config *cfg, const char *uuid, char *err, size_t errlen)
{
	(void)cfg, (void)uuid;
	if (out != NULL)
		*out = NULL;
	snprintf(err, errlen,
	    "[fleet] servers: this build has no NATS client (export to [export] ecs_file instead)");
	return -1;
}

int
fleet_check(const struct config *cfg, const char *uuid, char *err, size_t errlen)
{
	return fleet_open(NULL, cfg, uuid, err, errlen);
}

int
fleet_reconfigure(
    struct fleet *f, const struct config *cfg, const char *uuid, char *err, size_t errlen)
{
	(void)f;
	return fleet_check(cfg, uuid, err, errlen);
}

void
fleet_close(struct fleet *f)
{
	(void)f;
}

int
fleet_connected(struct fleet *f, char *why, size_t whylen)
{
	(void)f;
	snprintf(why, whylen, "this build has no NATS client");
	return 0;
}

int
fleet_jetstream(struct fleet *f, void *js_options, void **js, unsigned *gen)
{
	(void)f, (void)js_options, (void)js, (void)gen;
	return -1;
}

unsigned
fleet_generation(struct fleet *f)
{
	(void)f;
	return 0;
}

int
sink_nats_start(struct shipper **out, const struct config *cfg, struct fleet *fleet,
    const char *uuid, const struct shipper_options *base, char *err, size_t errlen)
{
	(void)cfg, (void)fleet, (void)uuid, (void)base;
	*out = NULL;
	snprintf(err, errlen, "this build has no NATS client");
	return -1;
}

int
fleet_attach(struct fleet *f, int (*fn)(void *nc, void *arg), void *arg, unsigned *gen)
{
	(void)f, (void)fn, (void)arg, (void)gen;
	return -1;
}

int
fleet_control_new(struct fleet_control **out, const struct config *cfg, struct fleet *fleet,
    const char *uuid, const char *hostname, int64_t started_at_us, const struct fleet_hooks *hooks,
    char *err, size_t errlen)
{
	(void)cfg, (void)fleet, (void)uuid, (void)hostname, (void)started_at_us, (void)hooks;
	*out = NULL;
	snprintf(err, errlen, "this build has no NATS client");
	return -1;
}

int
fleet_control_sync(struct fleet_control *c)
{
	(void)c;
	return 0;
}

int
fleet_control_start(struct fleet_control *c, char *err, size_t errlen)
{
	(void)c;
	snprintf(err, errlen, "this build has no NATS client");
	return -1;
}

int
fleet_control_reconfigure(struct fleet_control *c, const struct config *cfg)
{
	(void)c, (void)cfg;
	return -1;
}

void
fleet_control_free(struct fleet_control *c)
{
	(void)c;
}
