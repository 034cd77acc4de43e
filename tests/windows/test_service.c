/*
 * The service wrapper (agent/service_win.c).
 *
 *   test_service            the status logic the SCM sees, without an SCM
 *   test_service --service  run as a service: a stand-in agent that says
 *                           ready, waits for STOP/SHUTDOWN and exits 0; the
 *                           driver script installs, starts, queries and stops
 *                           it through sc.exe (wine's SCM here)
 */
#include <windows.h>

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "service_win.h"

static HANDLE stop_event;

static int
fake_agent_run(void *arg)
{
	(void)arg;
	fprintf(service_log(), "fake agent: started\n");
	service_ready();
	WaitForSingleObject(stop_event, INFINITE);
	fprintf(service_log(), "fake agent: stopped cleanly\n");
	return 0;
}

static void
fake_agent_stop(void *arg)
{
	(void)arg;
	fprintf(service_log(), "fake agent: stop requested\n");
	SetEvent(stop_event);
}

static void
test_status_logic(void)
{
	SERVICE_STATUS st;
	DWORD cp = 0;
	char path[MAX_PATH];

	service_status_for(&st, SERVICE_START_PENDING, 0, &cp);
	CHECK_EQ(st.dwServiceType, SERVICE_WIN32_OWN_PROCESS);
	CHECK_EQ(st.dwCurrentState, SERVICE_START_PENDING);
	CHECK_EQ(st.dwControlsAccepted, 0); /* no STOP while starting */
	CHECK_EQ(st.dwCheckPoint, 1);
	CHECK(st.dwWaitHint > 0);
	service_status_for(&st, SERVICE_START_PENDING, 0, &cp);
	CHECK_EQ(st.dwCheckPoint, 2); /* progress */

	service_status_for(&st, SERVICE_RUNNING, 0, &cp);
	CHECK_EQ(st.dwControlsAccepted, SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN);
	CHECK_EQ(st.dwCheckPoint, 0);
	CHECK_EQ(st.dwWaitHint, 0);

	service_status_for(&st, SERVICE_STOP_PENDING, 0, &cp);
	CHECK_EQ(st.dwControlsAccepted, 0);
	CHECK_EQ(st.dwCheckPoint, 1);
	CHECK_EQ(st.dwWaitHint, SERVICE_STOP_HINT_MS);

	service_status_for(&st, SERVICE_STOPPED, 0, &cp);
	CHECK_EQ(st.dwWin32ExitCode, NO_ERROR);
	service_status_for(&st, SERVICE_STOPPED, 78, &cp);
	CHECK_EQ(st.dwWin32ExitCode, ERROR_SERVICE_SPECIFIC_ERROR);
	CHECK_EQ(st.dwServiceSpecificExitCode, 78);

	service_log_path(path, sizeof(path));
	CHECK(strstr(path, "\\redirect-agent\\agent.log") != NULL);
}

static int
under_wine(void)
{
	HMODULE ntdll = GetModuleHandleA("ntdll.dll");

	return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

/* The data folder's access list: exactly SYSTEM and Administrators, not inherited. */
static void
test_lock_dir(void)
{
	char dir[MAX_PATH], err[256] = "", *text = NULL;
	PSECURITY_DESCRIPTOR sd;
	DWORD need = 0;

	GetTempPathA(sizeof(dir), dir);
	strncat(dir, "ra-lock-test", sizeof(dir) - strlen(dir) - 1);
	RemoveDirectoryA(dir);
	CHECK_EQ(service_lock_dir(dir, err, sizeof(err)), 0);
	CHECK_EQ(GetFileAttributesA(dir) & FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_DIRECTORY);
	GetFileSecurityA(dir, DACL_SECURITY_INFORMATION, NULL, 0, &need);
	sd = need > 0 ? malloc(need) : NULL;
	CHECK(sd != NULL && GetFileSecurityA(dir, DACL_SECURITY_INFORMATION, sd, need, &need));
	CHECK(sd != NULL && ConvertSecurityDescriptorToStringSecurityDescriptorA(
				sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL));
	if (text != NULL) {
		int entries = 0;

		for (const char *p = text; (p = strstr(p, "(A;")) != NULL; p++)
			entries++;
		printf("data folder DACL: %s\n", text);
		CHECK_EQ(entries, 2);                  /* exactly two allow entries */
		CHECK(strstr(text, ";;;SY)") != NULL); /* SYSTEM */
		CHECK(strstr(text, ";;;BU)") == NULL); /* not Users */
		CHECK(strstr(text, ";;;WD)") == NULL); /* not Everyone */
		if (under_wine()) {
			/* wine keeps neither the protected flag nor the group: it
			 * stores Administrators as the current user's SID. */
			printf("wine: protected flag and Administrators not checked\n");
		} else {
			CHECK(strncmp(text, "D:P", 3) == 0);   /* nothing inherited */
			CHECK(strstr(text, ";;;BA)") != NULL); /* Administrators */
		}
		LocalFree(text);
	}
	free(sd);
	/* Again, on the existing folder: still fine. */
	CHECK_EQ(service_lock_dir(dir, err, sizeof(err)), 0);
	RemoveDirectoryA(dir);
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--service") == 0) {
		struct service_ops ops = {fake_agent_run, fake_agent_stop, NULL};
		DWORD e;

		stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
		e = service_start(argc > 2 ? argv[2] : "ra-test", &ops);
		return e == 0 ? 0 : 1;
	}
	test_status_logic();
	test_lock_dir();
	return check_finish("test_service");
}
