#!/bin/sh
# Run a Windows test program under wine for ctest (CMAKE_CROSSCOMPILING_EMULATOR).
# wine's helper processes (winedevice.exe), started on first winsock use,
# inherit the program's stdout; if that is ctest's pipe, ctest waits for them
# forever. So the program writes to a file, and this script passes it on.
out=$(mktemp) || exit 1
wine "$@" >"$out" 2>&1
rc=$?
cat "$out"
rm -f "$out"
exit $rc
