/*
 * fleet.h: redirectctl fleet, over NATS (fleet.c; fleet_off.c in a build
 * without the NATS client).
 */
#ifndef RA_CLI_FLEET_H
#define RA_CLI_FLEET_H

#include "client.h"
#include "parser.h"

/* Run a fleet command (rq->fleet). doc: the file of "fleet policy set". Returns the exit code. */
int fleet_run(const struct request *rq, const char *doc);

/*
 * A client whose unary calls go to agent rq->agent as NATS requests
 * ("fleet call"). Returns 0, or an exit code (the reason printed).
 */
int fleet_client_open(struct client *c, const struct request *rq);
void fleet_client_close(struct client *c);

#endif
