# Cross-compiling the Windows parts from Debian with mingw-w64; tests run under wine.
#   PREFIX=$(deploy/windows/build-deps.sh | tail -1)
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=deploy/windows/toolchain-mingw64.cmake \
#         -DRA_WIN_DEPS=$PREFIX
# The posix-thread compilers: the dependency set (gRPC, abseil) was built
# with them, and its static link needs their winpthreads-based runtime.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/wine-run.sh)
