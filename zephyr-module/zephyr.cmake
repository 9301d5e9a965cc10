# The Zephyr build of cairndb, included by the root CMakeLists.txt when Zephyr processes this
# repository as a module (zephyr/module.yml). It builds the Rust static library with cargo for
# the board's Rust target (cmake/cairndb_cargo.cmake, the same command `cargo xtask test` runs
# for every Cortex-M triple), compiles the glue (cairn_zephyr.c, the shell commands and
# port-common's maintenance pass) as a Zephyr library, and links libcairndb into `app` as a
# plain static library: only the members the glue and the application refer to are taken.
# SPDX-License-Identifier: MIT OR Apache-2.0

if(NOT CONFIG_CAIRNDB)
  return()
endif()

set(CAIRNDB_DIR ${CMAKE_CURRENT_LIST_DIR}/..)
get_filename_component(CAIRNDB_DIR ${CAIRNDB_DIR} ABSOLUTE)
include(${CMAKE_CURRENT_LIST_DIR}/cmake/cairndb_cargo.cmake)

# The Rust target: from the CPU Kconfig selected, or CAIRNDB_RUST_TARGET.
set(CAIRNDB_RUST_TARGET "" CACHE STRING "Rust target of libcairndb (empty: from Kconfig)")
if(CAIRNDB_RUST_TARGET)
  set(cairndb_triple ${CAIRNDB_RUST_TARGET})
else()
  cairndb_rust_target(cairndb_triple)
endif()

set(cairndb_target_dir ${CMAKE_BINARY_DIR}/cairndb/cargo)
cairndb_cargo_command(TRIPLE ${cairndb_triple} C_COMPILER ${CMAKE_C_COMPILER}
                      SOURCE_DIR ${CAIRNDB_DIR} TARGET_DIR ${cairndb_target_dir}
                      OUT_COMMAND cairndb_cargo_cmd OUT_LIBRARY cairndb_library)
message(STATUS "cairndb: Rust target ${cairndb_triple}, library ${cairndb_library}")

# cargo decides what to rebuild, so the target always runs it (as zephyr-lang-rust does).
add_custom_target(cairndb_cargo
  COMMAND ${cairndb_cargo_cmd}
  BYPRODUCTS ${cairndb_library}
  WORKING_DIRECTORY ${CAIRNDB_DIR}
  COMMENT "cargo: building libcairndb for ${cairndb_triple}"
  USES_TERMINAL
  VERBATIM)

add_library(cairndb_rust STATIC IMPORTED GLOBAL)
set_target_properties(cairndb_rust PROPERTIES IMPORTED_LOCATION ${cairndb_library})
add_dependencies(cairndb_rust cairndb_cargo)

# The glue: Zephyr-specific C kept small; the maintenance logic is port-common's.
zephyr_library_named(cairndb_zephyr)
zephyr_library_sources(
  ${CMAKE_CURRENT_LIST_DIR}/cairn_zephyr.c
  ${CAIRNDB_DIR}/port-common/cairn_maint.c)
zephyr_library_sources_ifdef(CONFIG_CAIRNDB_SHELL ${CMAKE_CURRENT_LIST_DIR}/cairn_zephyr_shell.c)
zephyr_library_compile_definitions(CAIRN_ZEPHYR_PARTITION=${CONFIG_CAIRNDB_PARTITION})
if(CONFIG_CAIRNDB_BACKUP_PARTITION)
  zephyr_library_compile_definitions(
    CAIRN_ZEPHYR_BACKUP_PARTITION=${CONFIG_CAIRNDB_BACKUP_PARTITION})
endif()
add_dependencies(cairndb_zephyr cairndb_cargo)

# cairndb.h, cairn_maint.h and cairn_zephyr.h for the glue and the application; the
# bare-metal library has no image-file device, so its declarations are hidden.
zephyr_include_directories(
  ${CAIRNDB_DIR}/include
  ${CAIRNDB_DIR}/port-common
  ${CMAKE_CURRENT_LIST_DIR}/include)
zephyr_compile_definitions(CAIRN_BARE_METAL)

# A plain dependency of `app`, not a member of ZEPHYR_LIBS (which are linked with
# --whole-archive): the linker takes only what is referred to.
target_link_libraries(app PUBLIC cairndb_rust)
