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

/*
 * The CPUs this process may use, as HAProxy's nbthread counts them: the
 * CPUs of its affinity mask (taskset, systemd's CPUAffinity=), no more than
 * its cgroup's CPU quota allows (cpu.max, or cpu.cfs_quota_us / period;
 * rounded up). At least 1.
 */
unsigned host_cpus(void);

#endif
