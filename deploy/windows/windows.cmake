# The Windows build (included by the top-level CMakeLists.txt when WIN32).
#
# What builds for Windows today:
# - the Windows-only translation units (the WFP records backend, the service
#   wrapper, the local admin endpoint), the portable parsers (addresses,
#   records, server names) and their tests;
# - ra_win_core: the whole agent but its entry point (event loops, sessions,
#   the WFP redirect backend, owners, config, policy, the SQLite store, the
#   gRPC API, the generated protobuf code), compiled
#   against the third-party headers: MSYS2's when pkg-config finds them,
#   else a folder of headers given as RA_WIN_DEPS_INCLUDE (the test stages
#   Debian's, whose libuv, SQLite, gRPC, protobuf-c and jansson headers
#   carry their Windows branches).
# With MSYS2's libraries the executables (main_win.c, and redirectctl) link
# too; with headers only, they are compiled and not linked.
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes)
if(WERROR)
  add_compile_options(-Werror)
endif()
# __USE_MINGW_ANSI_STDIO: C99 printf formats (%zu, %lld) as on Linux.
add_compile_definitions(WIN32_LEAN_AND_MEAN _WIN32_WINNT=0x0A00 __USE_MINGW_ANSI_STDIO=1
                        _POSIX_THREAD_SAFE_FUNCTIONS AGENT_VERSION="${PROJECT_VERSION}")
set(CMAKE_C_STANDARD 11)

add_library(ra_win STATIC agent/redirect_wfp.c agent/service_win.c)
target_include_directories(ra_win PUBLIC ${CMAKE_SOURCE_DIR}/agent)
target_link_libraries(ra_win PUBLIC ws2_32 advapi32)

# The portable parsers the agent shares with Linux, built for Windows too.
add_library(ra_portable STATIC agent/addr.c agent/records.c agent/sniff.c agent/log.c)
target_include_directories(ra_portable PUBLIC ${CMAKE_SOURCE_DIR}/agent)
target_link_libraries(ra_portable PUBLIC ws2_32 pthread) # pthread: clock_gettime

include(CTest)
if(BUILD_TESTING)
  foreach(name wfp service portable)
    add_executable(test_${name} tests/windows/test_${name}.c)
    target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/windows ${CMAKE_SOURCE_DIR}/tests)
    target_link_libraries(test_${name} PRIVATE ra_win ra_portable)
    # Static runtime: the .exe runs under wine or on Windows without mingw's DLLs.
    target_link_options(test_${name} PRIVATE -static)
    add_test(NAME win_${name} COMMAND test_${name})
  endforeach()
endif()

# The agent's portable core, compiled for Windows (see the top of this file).
set(RA_WIN_DEPS_INCLUDE "" CACHE PATH
    "folder with the libuv, SQLite, gRPC, protobuf-c, jansson, inih and OpenSSL headers")
set(ra_win_deps_found OFF)
if(RA_WIN_DEPS_INCLUDE)
  set(ra_win_deps_found ON)
else()
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(WINDEPS IMPORTED_TARGET libuv sqlite3 grpc gpr protobuf-c jansson inih libcrypto)
    set(ra_win_deps_found ${WINDEPS_FOUND})
  endif()
endif()
if(ra_win_deps_found)
  add_subdirectory(proto)
  add_library(ra_win_core STATIC
    agent/agent.c agent/config.c agent/policy.c agent/bufpool.c
    agent/worker.c agent/session.c agent/evio_uv.c agent/redirect.c agent/redirect_win.c agent/owner_win.c
    db/schema.c db/store.c db/query.c db/retention.c db/policies.c
    agent/rpc/server.c agent/rpc/local_win.c agent/rpc/handlers.c agent/rpc/policy_rpc.c
    agent/rpc/auth.c agent/rpc/watch.c)
  target_include_directories(ra_win_core PUBLIC
    ${CMAKE_SOURCE_DIR}/agent ${CMAKE_SOURCE_DIR}/agent/rpc ${CMAKE_SOURCE_DIR}/db)
  target_link_libraries(ra_win_core PUBLIC ra_win ra_portable ra_proto iphlpapi)
  if(RA_WIN_DEPS_INCLUDE)
    # Headers only: everything compiles, nothing links (no Windows libraries).
    target_include_directories(ra_win_core SYSTEM PUBLIC ${RA_WIN_DEPS_INCLUDE})
    target_include_directories(ra_proto SYSTEM PUBLIC ${RA_WIN_DEPS_INCLUDE})
    add_library(ra_win_main OBJECT agent/main_win.c)
    target_link_libraries(ra_win_main PRIVATE ra_win_core)
    add_library(ra_win_cli OBJECT cli/redirectctl.c cli/client.c)
    target_link_libraries(ra_win_cli PRIVATE ra_win_core)
  else()
    target_link_libraries(ra_win_core PUBLIC PkgConfig::WINDEPS)
    add_executable(redirect-agent agent/main_win.c)
    target_link_libraries(redirect-agent PRIVATE ra_win_core)
    add_executable(redirectctl cli/redirectctl.c cli/client.c)
    target_link_libraries(redirectctl PRIVATE ra_win_core)
    install(TARGETS redirect-agent redirectctl RUNTIME DESTINATION bin)
  endif()
else()
  message(STATUS "Windows: no third-party headers (RA_WIN_DEPS_INCLUDE or MSYS2 pkg-config): "
                 "the agent's core is not built")
endif()
