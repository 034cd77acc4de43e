# The Windows build (included by the top-level CMakeLists.txt when WIN32).
#
# What builds for Windows today: the Windows-only translation units (the WFP
# records backend and the service wrapper), the portable parsers (addresses,
# records, server names) and their tests. The agent
# executable does not yet: its event loops, sessions and main() still use
# POSIX socket options, signals and fork (see README, "Windows").
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes)
if(WERROR)
  add_compile_options(-Werror)
endif()
add_compile_definitions(WIN32_LEAN_AND_MEAN _WIN32_WINNT=0x0602)

add_library(ra_win STATIC agent/redirect_wfp.c agent/service_win.c)
target_include_directories(ra_win PUBLIC ${CMAKE_SOURCE_DIR}/agent)
target_link_libraries(ra_win PUBLIC ws2_32 advapi32)

# The portable parsers the agent shares with Linux, built for Windows too.
add_library(ra_portable STATIC agent/addr.c agent/records.c agent/sniff.c)
target_include_directories(ra_portable PUBLIC ${CMAKE_SOURCE_DIR}/agent)
target_link_libraries(ra_portable PUBLIC ws2_32)

include(CTest)
if(BUILD_TESTING)
  foreach(name wfp service portable)
    add_executable(test_${name} tests/windows/test_${name}.c)
    target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/windows)
    target_link_libraries(test_${name} PRIVATE ra_win ra_portable)
    # Static runtime: the .exe runs under wine or on Windows without mingw's DLLs.
    target_link_options(test_${name} PRIVATE -static)
    add_test(NAME win_${name} COMMAND test_${name})
  endforeach()
endif()
