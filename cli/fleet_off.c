/*
 * fleet_off.c: fleet.h in a build without the NATS client (a Windows build
 * made from Debian's sources alone).
 */
#include "fleet.h"

#include <stdio.h>
#include <string.h>

int
fleet_run(const struct request *rq, const char *doc)
{
	(void)rq, (void)doc;
	fprintf(stderr, "redirectctl: this build has no NATS client: fleet commands are not "
			"available\n");
	return EXIT_USAGE;
}

int
fleet_client_open(struct client *c, const struct request *rq)
{
	memset(c, 0, sizeof(*c));
	return fleet_run(rq, NULL);
}

void
fleet_client_close(struct client *c)
{
	(void)c;
}
