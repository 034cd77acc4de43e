/*
 * route.h: the policy routing TPROXY mode needs (Linux, rtnetlink).
 *
 * Packets the agent's prerouting rule marked with tproxy_mark must be
 * delivered locally, to the agent's transparent listener: a rule sends them
 * to table tproxy_table, whose only route is "local default dev lo".
 * The accepted socket inherits that mark (tcp_fwmark_accept), and so would
 * its SYN-ACK: a rule just before, for packets this host sends itself
 * ("iif lo"), keeps those on the main table, so replies are not captured.
 * IPv4 and IPv6 each get the pair of rules and the route.
 */
#ifndef RA_ROUTE_H
#define RA_ROUTE_H

#include <stddef.h>

#include "config.h"

#define ROUTE_RULE_PREF 9000 /* and 9001 */

/*
 * Install the rules and routes, replacing any left by a crashed instance.
 * Returns 0, or a negative errno with err set (nothing left installed).
 */
int route_tproxy_install(const struct config *cfg, char *err, size_t errlen);

/* Remove them; what is already gone is not an error. Returns 0 or a negative errno. */
int route_tproxy_remove(const struct config *cfg);

#endif
