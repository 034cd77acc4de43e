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

#include <stdio.h>
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
	return check_finish("test_service");
}
