/*
 * host.h: facts about the machine the agent runs on, per platform
 * (host_linux.c, host_win.c).
 */
#ifndef RA_HOST_H
#define RA_HOST_H

#include <stddef.h>

/*
 * The machine's own id, which imaging tools reset on a clone: Linux's
 * /etc/machine-id (systemd-firstboot, virt-sysprep), Windows' MachineGuid
 * (sysprep). "" when there is none. Returns buf.
 */
const char *host_machine_id(char *buf, size_t len);

/* The host name ("" when unknown). Returns buf. */
const char *host_name(char *buf, size_t len);

#endif
