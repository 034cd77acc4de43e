/*
 * service_win.h: running the agent as a Windows service (Windows only).
 *
 * `redirect-agent --service` hands the process to the Service Control
 * Manager: service_start() blocks in StartServiceCtrlDispatcher, whose
 * ServiceMain reports START_PENDING, opens the log file (service_log()) and
 * calls ops->run. The agent calls service_ready() once it accepts connections
 * (SERVICE_RUNNING). STOP and SHUTDOWN report STOP_PENDING and call
 * ops->stop, which must make run() return; its return value becomes the
 * service's exit code (a service-specific error when not 0).
 *
 * Logs: a file, %ProgramData%\redirect-agent\agent.log, the same one-line
 * format as on Linux. Chosen over the Event Log because an event source
 * needs a registered message DLL for its text to display, and a plain file
 * is what log shippers and support staff can read on any fleet machine.
 */
#ifndef RA_SERVICE_WIN_H
#define RA_SERVICE_WIN_H

#include <windows.h>

#include <stddef.h>
#include <stdio.h>

#define SERVICE_NAME          "redirect-agent"
#define SERVICE_START_HINT_MS 30000
#define SERVICE_STOP_HINT_MS  15000 /* drain_timeout_ms and the database's last commit */

struct service_ops {
	int (*run)(void *arg);   /* the agent; returns its exit status when stopped */
	void (*stop)(void *arg); /* called from the SCM's thread: make run() return */
	void *arg;
};

/*
 * Connect to the SCM and run the service until it stops. Returns 0, or the
 * Windows error (ERROR_FAILED_SERVICE_CONTROLLER_CONNECT when the program
 * was started from a console rather than by the SCM).
 */
DWORD service_start(const char *name, const struct service_ops *ops);

/*
 * Stop the installed service and wait, up to timeout_ms, for its process to
 * exit: not only for its SERVICE_STOPPED, after which the process still
 * holds its executable for a moment (the installer runs this before it
 * removes the files: `redirect-agent --stop-service`). 0 when it is stopped
 * (or not installed, or not running); -1 when it did not exit in time.
 */
int service_stop_and_wait(const char *name, DWORD timeout_ms);

/* Report SERVICE_RUNNING: the agent is ready. Call once, from run(). */
void service_ready(void);

/* Where run() logs: the log file (stderr when it could not be opened). */
FILE *service_log(void);

/*
 * The status to report when entering state (SERVICE_START_PENDING,
 * SERVICE_RUNNING, SERVICE_STOP_PENDING or SERVICE_STOPPED) with the
 * given exit code; *checkpoint is the pending-state progress counter.
 * Pure: the logic the SCM sees, testable without one.
 */
void service_status_for(SERVICE_STATUS *st, DWORD state, int exit_code, DWORD *checkpoint);

/* The log file's path: %ProgramData%\redirect-agent\agent.log. Returns buf. */
const char *service_log_path(char *buf, size_t len);

/*
 * Create dir if needed and give it an access list of its own, not inherited
 * from ProgramData: full control for SYSTEM and Administrators, nothing for
 * anyone else. The agent's database, log and admin socket live there, and
 * the socket's only gate is this list (wixl cannot set folder permissions,
 * so the agent does, at every start). Returns 0, or -1 with err set.
 */
int service_lock_dir(const char *dir, char *err, size_t errlen);

#endif
