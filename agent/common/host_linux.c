/*
 * host_linux.c: host.h on Linux.
 */
#include "host.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *
host_machine_id(char *buf, size_t len)
{
	static const char *const files[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && buf[0] == '\0'; i++) {
		FILE *f = fopen(files[i], "re");

		if (f == NULL)
			continue;
		if (fgets(buf, (int)len, f) == NULL)
			buf[0] = '\0';
		buf[strcspn(buf, " \r\n")] = '\0';
		fclose(f);
	}
	return buf;
}

const char *
host_name(char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (gethostname(buf, len - 1) != 0)
		buf[0] = '\0';
	buf[len - 1] = '\0';
	return buf;
}

/* This process's cgroup path in one hierarchy (v2: ""), from /proc/self/cgroup. */
static int
cgroup_path(const char *controller, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512];
	int found = 0;

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL)
			continue;
		*c2 = '\0';
		line[strcspn(line, "\n")] = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		/* "0::/path" (v2), or "N:cpu,cpuacct:/path" (v1) */
		if (controller == NULL ? strcmp(c1 + 1, "") == 0
				       : strstr(c1 + 1, controller) != NULL) {
			snprintf(out, len, "%s", c2 + 1);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* The quota as CPUs (rounded up), or 0 for none. */
static unsigned
cgroup_quota_cpus(void)
{
	char path[512], file[700];
	long long quota = -1, period = 0;
	FILE *f;

	if (cgroup_path(NULL, path, sizeof(path))) {
		snprintf(file, sizeof(file), "/sys/fs/cgroup%s/cpu.max", path);
		if ((f = fopen(file, "re")) != NULL) {
			char q[32] = "";

			if (fscanf(f, "%31s %lld", q, &period) == 2 && strcmp(q, "max") != 0)
				sscanf(q, "%lld", &quota);
			fclose(f);
		}
	}
	if (quota <= 0 && cgroup_path("cpu", path, sizeof(path))) {
		static const char *const roots[] = {
		    "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"};

		for (size_t i = 0; i < 2 && quota <= 0; i++) {
			snprintf(file, sizeof(file), "%s%s/cpu.cfs_quota_us", roots[i], path);
			if ((f = fopen(file, "re")) == NULL)
				continue;
			if (fscanf(f, "%lld", &quota) != 1)
				quota = -1;
			fclose(f);
			snprintf(file, sizeof(file), "%s%s/cpu.cfs_period_us", roots[i], path);
			if ((f = fopen(file, "re")) != NULL) {
				if (fscanf(f, "%lld", &period) != 1)
					period = 0;
				fclose(f);
			}
		}
	}
	if (quota <= 0 || period <= 0)
		return 0;
	return (unsigned)((quota + period - 1) / period);
}

unsigned
host_cpus(void)
{
	cpu_set_t set;
	unsigned n = 0, quota;
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = (unsigned)CPU_COUNT(&set);
	if (n == 0)
		n = online > 0 ? (unsigned)online : 1;
	if ((quota = cgroup_quota_cpus()) > 0 && quota < n)
		n = quota;
	return n > 0 ? n : 1;
}
