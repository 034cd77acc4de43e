/* The Windows service wrapper (see service_win.h). Windows only. */
#include "service_win.h"

#include <sddl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

static const struct service_ops *svc_ops;
static SERVICE_STATUS_HANDLE svc_handle;
static DWORD svc_checkpoint;
static CRITICAL_SECTION svc_lock; /* the handler and run() both report */
static char svc_name[64];

void
service_status_for(SERVICE_STATUS *st, DWORD state, int exit_code, DWORD *checkpoint)
{
	memset(st, 0, sizeof(*st));
	st->dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	st->dwCurrentState = state;
	st->dwWin32ExitCode = NO_ERROR;
	switch (state) {
	case SERVICE_START_PENDING:
		st->dwWaitHint = SERVICE_START_HINT_MS;
		st->dwCheckPoint = ++*checkpoint;
		break;
	case SERVICE_STOP_PENDING:
		st->dwWaitHint = SERVICE_STOP_HINT_MS;
		st->dwCheckPoint = ++*checkpoint;
		break;
	case SERVICE_RUNNING:
		/* Only a running service takes STOP; SHUTDOWN gives it the same
		 * clean stop (rules removed, sessions drained, rows committed). */
		st->dwControlsAccepted = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN;
		*checkpoint = 0;
		break;
	case SERVICE_STOPPED:
	default:
		*checkpoint = 0;
		if (exit_code != 0) {
			st->dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR;
			st->dwServiceSpecificExitCode = (DWORD)exit_code;
		}
		break;
	}
}

static void
report(DWORD state, int exit_code)
{
	SERVICE_STATUS st;

	EnterCriticalSection(&svc_lock);
	service_status_for(&st, state, exit_code, &svc_checkpoint);
	if (svc_handle != NULL)
		SetServiceStatus(svc_handle, &st);
	LeaveCriticalSection(&svc_lock);
}

void
service_ready(void)
{
	report(SERVICE_RUNNING, 0);
}

static DWORD WINAPI
on_control(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
	(void)type;
	(void)data;
	(void)ctx;
	switch (control) {
	case SERVICE_CONTROL_STOP:
	case SERVICE_CONTROL_SHUTDOWN:
		report(SERVICE_STOP_PENDING, 0);
		svc_ops->stop(svc_ops->arg);
		return NO_ERROR;
	case SERVICE_CONTROL_INTERROGATE:
		return NO_ERROR;
	default:
		return ERROR_CALL_NOT_IMPLEMENTED;
	}
}

const char *
service_log_path(char *buf, size_t len)
{
	char dir[MAX_PATH];

	paths_join(buf, len, paths_state_dir(dir, sizeof(dir)), "agent.log");
	return buf;
}

static FILE *svc_log;

FILE *
service_log(void)
{
	return svc_log != NULL ? svc_log : stderr;
}

/*
 * Open the log file, appending. A service has no console, and the C
 * runtime leaves its stderr stream unusable (freopen and dup2 on it were
 * both seen to lose every line under wine), so the agent is given this
 * stream to log to instead.
 */
static void
open_log(void)
{
	char path[MAX_PATH], dir[MAX_PATH];
	char *slash;

	service_log_path(path, sizeof(path));
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '\\')) != NULL) {
		*slash = '\0';
		CreateDirectoryA(dir, NULL); /* the MSI makes it; a manual install may not */
	}
	if ((svc_log = fopen(path, "a")) != NULL)
		setvbuf(
		    svc_log, NULL, _IONBF, 0); /* one line, one write: nothing lost on a crash */
}

static void WINAPI
service_main(DWORD argc, LPSTR *argv)
{
	int rc;

	(void)argc;
	(void)argv;
	svc_handle = RegisterServiceCtrlHandlerExA(svc_name, on_control, NULL);
	if (svc_handle == NULL)
		return;
	report(SERVICE_START_PENDING, 0);
	open_log();
	rc = svc_ops->run(svc_ops->arg);
	if (svc_log != NULL)
		fclose(svc_log);
	svc_log = NULL;
	report(SERVICE_STOPPED, rc);
}

DWORD
service_start(const char *name, const struct service_ops *ops)
{
	SERVICE_TABLE_ENTRYA table[] = {
	    {svc_name, service_main},
	    {NULL, NULL},
	};

	snprintf(svc_name, sizeof(svc_name), "%s", name);
	svc_ops = ops;
	InitializeCriticalSection(&svc_lock);
	if (!StartServiceCtrlDispatcherA(table))
		return GetLastError();
	return 0;
}

int
service_stop_and_wait(const char *name, DWORD timeout_ms)
{
	SC_HANDLE scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT), svc = NULL;
	SERVICE_STATUS_PROCESS sp;
	SERVICE_STATUS st;
	HANDLE proc = NULL;
	DWORD need;
	int rc = 0;

	if (scm != NULL)
		svc = OpenServiceA(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS);
	if (svc != NULL &&
	    QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (LPBYTE)&sp, sizeof(sp), &need) &&
	    sp.dwCurrentState != SERVICE_STOPPED && sp.dwProcessId != 0) {
		/* The process first: its handle is signalled when it is gone. */
		proc = OpenProcess(SYNCHRONIZE, FALSE, sp.dwProcessId);
		if (sp.dwCurrentState != SERVICE_STOP_PENDING)
			(void)ControlService(svc, SERVICE_CONTROL_STOP, &st);
		if (proc != NULL) {
			rc = WaitForSingleObject(proc, timeout_ms) == WAIT_OBJECT_0 ? 0 : -1;
			CloseHandle(proc);
		}
	}
	if (svc != NULL)
		CloseServiceHandle(svc);
	if (scm != NULL)
		CloseServiceHandle(scm);
	return rc;
}

int
service_lock_dir(const char *dir, char *err, size_t errlen)
{
	/* P: protected (no inherited entries); OICI: files and folders inside
	 * inherit it; FA: full access; SY: SYSTEM; BA: Administrators. */
	static const char sddl[] = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";
	PSECURITY_DESCRIPTOR sd = NULL;
	BOOL ok;

	if (!CreateDirectoryA(dir, NULL) && GetLastError() != ERROR_ALREADY_EXISTS) {
		snprintf(err, errlen, "cannot create %s: Windows error %lu", dir,
		    (unsigned long)GetLastError());
		return -1;
	}
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
		sddl, SDDL_REVISION_1, &sd, NULL)) {
		snprintf(err, errlen, "security descriptor: Windows error %lu",
		    (unsigned long)GetLastError());
		return -1;
	}
	ok = SetFileSecurityA(
	    dir, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, sd);
	LocalFree(sd);
	if (!ok) {
		snprintf(err, errlen, "cannot restrict access to %s: Windows error %lu", dir,
		    (unsigned long)GetLastError());
		return -1;
	}
	return 0;
}
