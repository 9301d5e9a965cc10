# The cargo invocation that builds libcairndb for a Zephyr board, in one place: the Zephyr
# branch of the root CMakeLists.txt (zephyr-module/zephyr.cmake) runs it at build time, and
# print_cargo_command.cmake prints it (cmake -P) so that `cargo xtask test` (step zephyr) runs
# the very same command line for every Cortex-M triple. Needs only CONFIG_* variables, so it
# works in script mode without Zephyr.
# SPDX-License-Identifier: MIT OR Apache-2.0

include_guard(GLOBAL)

# The Rust target for the CPU Kconfig selected, mapped as zephyr-lang-rust's CMakeLists.txt
# (_rust_map_target) does. Sets `out` to the triple, or fails with a message naming what is
# missing.
function(cairndb_rust_target out)
  if(CONFIG_CPU_CORTEX_M)
    if(CONFIG_CPU_CORTEX_M0 OR CONFIG_CPU_CORTEX_M0PLUS OR CONFIG_CPU_CORTEX_M1)
      set(triple thumbv6m-none-eabi)
    elseif(CONFIG_CPU_CORTEX_M3)
      set(triple thumbv7m-none-eabi)
    elseif(CONFIG_CPU_CORTEX_M4 OR CONFIG_CPU_CORTEX_M7)
      if(CONFIG_FP_HARDABI)
        set(triple thumbv7em-none-eabihf)
      else()
        set(triple thumbv7em-none-eabi)
      endif()
    elseif(CONFIG_CPU_CORTEX_M23)
      set(triple thumbv8m.base-none-eabi)
    elseif(CONFIG_CPU_CORTEX_M33 OR CONFIG_CPU_CORTEX_M55)
      if(CONFIG_FP_HARDABI)
        set(triple thumbv8m.main-none-eabihf)
      else()
        set(triple thumbv8m.main-none-eabi)
      endif()
    else()
      message(FATAL_ERROR "cairndb: no Rust target for this Cortex-M core")
    endif()
  elseif(CONFIG_RISCV)
    if(CONFIG_RISCV_ISA_RV64I)
      set(triple riscv64imac-unknown-none-elf)
    elseif(CONFIG_RISCV_ISA_RV32I)
      set(triple riscv32i-unknown-none-elf)
    else()
      message(FATAL_ERROR "cairndb: no Rust target for this RISC-V ISA")
    endif()
  elseif(CONFIG_ARCH_POSIX AND CONFIG_64BIT)
    # native_sim/native/64: the bare-metal x86_64 target, as zephyr-lang-rust maps it. The
    # 32-bit native_sim has no bare-metal Rust target.
    cmake_host_system_information(RESULT host_cpu QUERY OS_PLATFORM)
    if(host_cpu MATCHES "x86_64|AMD64")
      set(triple x86_64-unknown-none)
    elseif(host_cpu MATCHES "aarch64|arm64")
      set(triple aarch64-unknown-none)
    else()
      message(FATAL_ERROR "cairndb: no Rust target for native_sim on ${host_cpu}")
    endif()
  else()
    message(FATAL_ERROR "cairndb: no Rust target for this board's CPU (supported: Cortex-M, "
      "RISC-V, native_sim/native/64); set CAIRNDB_RUST_TARGET")
  endif()
  set(${out} ${triple} PARENT_SCOPE)
endfunction()

# cairndb_cargo_command(TRIPLE <triple> C_COMPILER <cc> SOURCE_DIR <repo> TARGET_DIR <dir>
#                       OUT_COMMAND <var> OUT_LIBRARY <var>)
#
# The command (a list: `cmake -E env VAR=... cargo rustc ...`) that builds the staticlib
# libcairndb_c.a for <triple> into <dir>, and the path of that library. Kconfig reaches cargo
# here: CONFIG_CAIRNDB_CARGO_PROFILE picks the profile, CONFIG_CAIRNDB_REGEX and
# CONFIG_CAIRNDB_COMPRESS the features of the core crate.
#
# core and alloc are compiled from source (-Zbuild-std, unlocked on a stable compiler by
# RUSTC_BOOTSTRAP), so no prebuilt target needs installing: with Debian's rustc-web +
# cargo-web + rust-web-src (/usr/bin/rustc and /usr/bin/cargo), or any toolchain that has
# the rust-src component. CAIRNDB_CARGO / CAIRNDB_RUSTC override the programs;
# CAIRNDB_BUILD_STD=OFF uses a prebuilt target instead (`rustup target add <triple>`).
# littlefs (C, inside the crate littlefs2-sys) is compiled by <cc>, and bindgen reads the C
# library's and the compiler's headers that <cc> reports.
function(cairndb_cargo_command)
  cmake_parse_arguments(A "" "TRIPLE;C_COMPILER;SOURCE_DIR;TARGET_DIR;OUT_COMMAND;OUT_LIBRARY" ""
                        ${ARGN})
  foreach(arg TRIPLE C_COMPILER SOURCE_DIR TARGET_DIR OUT_COMMAND OUT_LIBRARY)
    if(NOT A_${arg})
      message(FATAL_ERROR "cairndb_cargo_command: ${arg} is required")
    endif()
  endforeach()

  # The compiler pair: Debian's when its std source is installed, else what PATH has.
  if(NOT DEFINED CAIRNDB_CARGO)
    if(EXISTS /usr/bin/cargo AND EXISTS /usr/lib/rustlib/src/rust/library)
      set(CAIRNDB_CARGO /usr/bin/cargo)
    else()
      set(CAIRNDB_CARGO cargo)
    endif()
  endif()
  if(NOT DEFINED CAIRNDB_RUSTC)
    if(EXISTS /usr/bin/rustc AND EXISTS /usr/lib/rustlib/src/rust/library)
      set(CAIRNDB_RUSTC /usr/bin/rustc)
    else()
      set(CAIRNDB_RUSTC rustc)
    endif()
  endif()
  if(NOT DEFINED CAIRNDB_BUILD_STD)
    set(CAIRNDB_BUILD_STD ON)
  endif()

  if(CONFIG_CAIRNDB_CARGO_PROFILE)
    set(profile ${CONFIG_CAIRNDB_CARGO_PROFILE})
  else()
    set(profile release)
  endif()
  if(profile STREQUAL "dev")
    set(profile_dir debug)
  else()
    set(profile_dir ${profile})
  endif()

  set(features)
  if(CONFIG_CAIRNDB_REGEX)
    list(APPEND features cairndb/regex)
  endif()
  if(CONFIG_CAIRNDB_COMPRESS)
    list(APPEND features cairndb/compress)
  endif()

  # The C library's headers (newlib's or picolibc's include/ beside libc.a) and the
  # compiler's own (stddef.h, stdint.h), for bindgen parsing littlefs for the target.
  execute_process(COMMAND ${A_C_COMPILER} -print-file-name=include
                  OUTPUT_VARIABLE gcc_include OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cairndb: cannot run the C compiler ${A_C_COMPILER}")
  endif()
  execute_process(COMMAND ${A_C_COMPILER} -print-file-name=libc.a
                  OUTPUT_VARIABLE libc OUTPUT_STRIP_TRAILING_WHITESPACE)
  get_filename_component(libc_dir "${libc}" DIRECTORY)
  get_filename_component(libc_include "${libc_dir}/../include" ABSOLUTE)
  if(IS_DIRECTORY "${libc_include}")
    set(clang_args "-I${libc_include} -I${gcc_include}")
  else()
    # A host compiler (native_sim): its libc headers are spread over several directories
    # (multiarch), so take its whole include search list.
    set(empty /dev/null)
    if(NOT EXISTS ${empty})
      set(empty ${CMAKE_BINARY_DIR}/cairndb-empty.c)
      file(WRITE ${empty} "")
    endif()
    execute_process(COMMAND ${A_C_COMPILER} -E -Wp,-v -x c ${empty}
                    OUTPUT_QUIET ERROR_VARIABLE search)
    string(REGEX MATCH "search starts here:\n(.*)End of search list" search "${search}")
    string(REGEX REPLACE "[ \t]*\n[ \t]*" ";" search_dirs "${CMAKE_MATCH_1}")
    set(clang_args "")
    foreach(dir IN LISTS search_dirs)
      if(IS_DIRECTORY "${dir}")
        string(APPEND clang_args " -I${dir}")
      endif()
    endforeach()
    string(STRIP "${clang_args}" clang_args)
  endif()

  # cc reads CC_<triple> with `-` and `.` turned into `_`; bindgen reads
  # BINDGEN_EXTRA_CLANG_ARGS_<triple> as is or with only `-` turned into `_`, so a triple with
  # a dot (thumbv8m.main-none-eabi) needs the name as is. The `_` form alone for the others
  # keeps the environment equal to the plain CMake path's (no rebuild between the two).
  string(REPLACE "-" "_" suffix ${A_TRIPLE})
  string(REPLACE "." "_" suffix ${suffix})
  if(A_TRIPLE MATCHES "\\.")
    set(bindgen_var BINDGEN_EXTRA_CLANG_ARGS_${A_TRIPLE})
  else()
    set(bindgen_var BINDGEN_EXTRA_CLANG_ARGS_${suffix})
  endif()

  set(cmd ${CMAKE_COMMAND} -E env
      RUSTC=${CAIRNDB_RUSTC}
      CC_${suffix}=${A_C_COMPILER}
      "${bindgen_var}=${clang_args}")
  if(CAIRNDB_BUILD_STD)
    list(APPEND cmd RUSTC_BOOTSTRAP=1)
  endif()
  # `cargo rustc --crate-type staticlib`: the manifest also lists rlib, and only a
  # staticlib-only build gets the whole-program LTO that leaves nothing but the API symbols.
  list(APPEND cmd ${CAIRNDB_CARGO} rustc
       --manifest-path ${A_SOURCE_DIR}/Cargo.toml
       -p cairndb-c --profile ${profile} --target ${A_TRIPLE})
  if(CAIRNDB_BUILD_STD)
    list(APPEND cmd -Zbuild-std=core,alloc)
  endif()
  if(features)
    list(JOIN features "," features_arg)
    list(APPEND cmd --features ${features_arg})
  endif()
  list(APPEND cmd --target-dir ${A_TARGET_DIR} --crate-type staticlib)

  set(${A_OUT_COMMAND} "${cmd}" PARENT_SCOPE)
  set(${A_OUT_LIBRARY} ${A_TARGET_DIR}/${A_TRIPLE}/${profile_dir}/libcairndb_c.a PARENT_SCOPE)
endfunction()

# Reads a Kconfig .config file into CONFIG_* variables of the caller, as Zephyr's
# import_kconfig (cmake/modules/extensions.cmake) does: quotes around strings dropped,
# "# CONFIG_X is not set" as n.
function(cairndb_import_dotconfig path)
  file(STRINGS ${path} lines ENCODING UTF-8)
  foreach(line IN LISTS lines)
    if(line MATCHES "^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
      set(name ${CMAKE_MATCH_1})
      set(value "${CMAKE_MATCH_2}")
      if(value MATCHES "^\"(.*)\"$")
        set(value "${CMAKE_MATCH_1}")
      endif()
      set(${name} "${value}" PARENT_SCOPE)
    elseif(line MATCHES "^# (CONFIG_[A-Za-z0-9_]+) is not set")
      set(${CMAKE_MATCH_1} n PARENT_SCOPE)
    endif()
  endforeach()
endfunction()
