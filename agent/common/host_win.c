/*
 * host_win.c: host.h on Windows.
 */
#include "host.h"

#include <windows.h>
#include <winsock2.h>

#include <stdio.h>

const char *
host_machine_id(char *buf, size_t len)
{
	DWORD size = (DWORD)len;

	buf[0] = '\0';
	/* 64-bit view: a 32-bit process would read the WOW64 copy otherwise. */
	if (RegGetValueA(HKEY_LOCAL_MACHINE, "SOFTWARE\\Microsoft\\Cryptography", "MachineGuid",
		RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY, NULL, buf, &size) != ERROR_SUCCESS)
		buf[0] = '\0';
	return buf;
}

const char *
host_name(char *buf, size_t len)
{
	DWORD size = (DWORD)len;

	if (!GetComputerNameExA(ComputerNameDnsHostname, buf, &size))
		buf[0] = '\0';
	return buf;
}

unsigned
host_cpus(void)
{
	DWORD_PTR process, system;
	unsigned n = 0;

	if (GetProcessAffinityMask(GetCurrentProcess(), &process, &system))
		for (; process != 0; process &= process - 1)
			n++;
	return n > 0 ? n : 1;
}
