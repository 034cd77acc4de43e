/*
 * owner_probe.h: which process holds a client socket, from /proc (Linux).
 * Private to os/: owner_linux.c asks, main.c starts the helper.
 *
 * Reading another user's /proc/<pid>/fd and /proc/<pid>/exe takes
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH. Those would let the agent, which
 * parses what any local user and remote peer send it, write into any
 * process's memory. So they live in a helper process of their own
 * ("ra-owner-helper", the agent's own executable), started before the
 * agent makes any thread; the agent then drops both. The helper keeps
 * those two capabilities and nothing else, answers over socket pairs what
 * the agent asks (a pid to confirm, a uid and a socket inode: which
 * process, which program), and dies with the agent. Where it cannot be
 * started, the agent probes in-process, with what capabilities it has.
 */
#ifndef RA_OWNER_PROBE_H
#define RA_OWNER_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "owner.h"

#define OWNER_HELPER_ARGV0    "ra-owner-helper"
#define OWNER_HELPER_CHANNELS 4 /* lookups at once: libuv's thread pool runs 4 */

/*
 * The process holding the socket with this inode, a process of uid: the
 * hint first (the connect hook's pid, -1 for none), believed only if it
 * holds the socket and runs the same program before and after the check;
 * else a search. Sets out->pid, exe and by_hook; uid is the caller's.
 * Through the helper when it runs.
 */
void owner_probe_ask(int hint, uint32_t uid, uint32_t inode, struct owner *out);

/*
 * Start the helper with n channels (lookups at once). Before any thread.
 * 0, or -1 with err set (lookups then run in-process).
 */
int owner_helper_start(unsigned n, char *err, size_t errlen);

/*
 * Drop CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH from this process for good
 * (and set no_new_privs), helper or not. Before any thread: capabilities
 * are per thread. 0, or -1 with err set.
 */
int owner_drop_caps(char *err, size_t errlen);

/* At the end, after every lookup: the helper leaves, and is waited for. */
void owner_helper_stop(void);

/*
 * The helper's main: argv[0] is OWNER_HELPER_ARGV0, argv[1] its channel
 * count (descriptors 3...), argv[2] the agent's pid.
 */
int owner_helper_main(int argc, char **argv);

#endif
