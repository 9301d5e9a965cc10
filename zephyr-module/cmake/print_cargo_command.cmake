# cmake -P mode: prints the cargo command line the Zephyr build would run for a Kconfig
# .config, one argument per line, so that `cargo xtask test` (step zephyr) runs exactly what
# zephyr.cmake runs (both take it from cairndb_cargo.cmake).
#
#   cmake -DDOTCONFIG=<.config> -DC_COMPILER=<cc> -DSOURCE_DIR=<repo> -DTARGET_DIR=<dir>
#         [-DCAIRNDB_CARGO=... -DCAIRNDB_RUSTC=... -DCAIRNDB_BUILD_STD=OFF]
#         -P zephyr-module/cmake/print_cargo_command.cmake
#
# Output: `TRIPLE=<triple>`, `LIBRARY=<path>`, then `ARG=<argument>` lines in order.
# SPDX-License-Identifier: MIT OR Apache-2.0
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/cairndb_cargo.cmake)

foreach(var DOTCONFIG C_COMPILER SOURCE_DIR TARGET_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "print_cargo_command.cmake: -D${var}=... is required")
  endif()
endforeach()

cairndb_import_dotconfig(${DOTCONFIG})
if(NOT CONFIG_CAIRNDB)
  message(FATAL_ERROR "${DOTCONFIG}: CONFIG_CAIRNDB is not enabled")
endif()
cairndb_rust_target(triple)
cairndb_cargo_command(TRIPLE ${triple} C_COMPILER ${C_COMPILER} SOURCE_DIR ${SOURCE_DIR}
                      TARGET_DIR ${TARGET_DIR} OUT_COMMAND cmd OUT_LIBRARY lib)
# message() goes to stderr; the lines are for a program, so write them to stdout.
execute_process(COMMAND ${CMAKE_COMMAND} -E echo "TRIPLE=${triple}")
execute_process(COMMAND ${CMAKE_COMMAND} -E echo "LIBRARY=${lib}")
foreach(arg IN LISTS cmd)
  execute_process(COMMAND ${CMAKE_COMMAND} -E echo "ARG=${arg}")
endforeach()
