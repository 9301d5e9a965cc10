# Toolchain file for the cross builds of tests/c/cross: arm-none-eabi-gcc with newlib-nano.
# CAIRNDB_TEST_CPU picks the core: cortex-m3, cortex-m4 (soft float) or cortex-m4f (hard
# float). cairndb's CMakeLists.txt derives its Rust target from CMAKE_SYSTEM_PROCESSOR and the
# float ABI in CMAKE_C_FLAGS, which is what this file exercises.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_TRY_COMPILE_PLATFORM_VARIABLES CAIRNDB_TEST_CPU)
if(NOT CAIRNDB_TEST_CPU)
  set(CAIRNDB_TEST_CPU cortex-m3)
endif()

set(_flags "-mthumb")
if(CAIRNDB_TEST_CPU STREQUAL "cortex-m4f")
  set(CMAKE_SYSTEM_PROCESSOR cortex-m4)
  string(APPEND _flags " -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16")
else()
  set(CMAKE_SYSTEM_PROCESSOR ${CAIRNDB_TEST_CPU})
  string(APPEND _flags " -mcpu=${CAIRNDB_TEST_CPU}")
endif()

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "${_flags}")
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-specs=nano.specs -specs=nosys.specs -Wl,--gc-sections -Wl,--no-warn-rwx-segments -Wl,--no-warn-execstack")
set(CMAKE_EXECUTABLE_SUFFIX_C .elf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
