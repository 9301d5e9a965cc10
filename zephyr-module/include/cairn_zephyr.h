/*
 * cairndb on Zephyr: the module's glue (zephyr-module/cairn_zephyr.c), configured by Kconfig
 * (CONFIG_CAIRNDB_*). It gives the C API of include/cairndb.h:
 *
 *  - a block device over a devicetree flash partition (flash_area_* API): one erase page (or a
 *    Kconfig multiple of it) per database block;
 *  - a k_mutex as the handle's lock (recursive, priority inheritance), a clock from
 *    k_uptime_get() or the RTC, random bytes from sys_csrand_get(), and a LOG_* sink;
 *  - the library's heap on a dedicated k_heap (or the system heap), installed before main();
 *  - one managed database, opened on CONFIG_CAIRNDB_PARTITION with the Kconfig key by
 *    cairn_zephyr_open(), that the background thread (port-common/cairn_maint.c each period:
 *    TTL sweep, compaction step, scheduled backup) and the `cairndb` shell commands work on.
 *
 * Applications may also build their own handles on other partitions with
 * cairn_zephyr_flash_config() and cairn_zephyr_platform_init().
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef CAIRN_ZEPHYR_H
#define CAIRN_ZEPHYR_H

#include <stdbool.h>
#include <stdint.h>

#include <zephyr/kernel.h>
#include <zephyr/storage/flash_map.h>

#include "cairn_maint.h"
#include "cairndb.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Smallest read and program unit the device reports to the library: the flash write block
 *  size, doubled until at least this (littlefs keeps less metadata with larger units). */
#define CAIRN_ZEPHYR_MIN_IO_SIZE 16u

/** A flash partition as a cairndb block device; lives as long as the handle using it. */
typedef struct cairn_zephyr_flash {
    const struct flash_area *fa; /**< the open partition */
    uint32_t block_size;         /**< bytes per database block (erase pages) */
    uint32_t block_count;        /**< blocks of the partition */
} cairn_zephyr_flash_t;

/** Opens partition `fa_id` (a FIXED_PARTITION_ID()), checks that its erase pages are uniform,
 *  and fills the device fields of `cfg` (ctx, read, prog, erase, geometry). `block_size` 0
 *  takes the erase page size; otherwise it must be a multiple of it.
 *  CAIRN_ERR_IO when the partition cannot be opened or its device is not ready;
 *  CAIRN_ERR_INVALID_ARGUMENT when its pages differ in size or `block_size` does not fit. */
int32_t cairn_zephyr_flash_config(uint8_t fa_id, uint32_t block_size, cairn_zephyr_flash_t *dev,
                                  cairn_config_t *cfg);

/** The platform state of one handle: its lock. Lives as long as the handle. */
typedef struct cairn_zephyr_platform {
    struct k_mutex mutex; /**< the handle's lock (Zephyr mutexes are recursive) */
} cairn_zephyr_platform_t;

/** Initialises `p` and points the platform fields of `cfg` at it: lock/unlock on the k_mutex
 *  (CONFIG_CAIRNDB_LOCK_TIMEOUT_MS when `lock_timeout_ms` is 0), the clock, the random source
 *  (when a CSPRNG is configured) and the log sink. */
int32_t cairn_zephyr_platform_init(cairn_zephyr_platform_t *p, cairn_config_t *cfg);

/** Database time: milliseconds from the RTC (CONFIG_CAIRNDB_CLOCK_RTC) or since boot. */
uint64_t cairn_zephyr_now_ms(void);

/** Opens the managed database (formatting a blank partition with CONFIG_CAIRNDB_FORMAT_IF_EMPTY)
 *  with the key CONFIG_CAIRNDB_KEY_* names, sets up the backup ring on
 *  CONFIG_CAIRNDB_BACKUP_PARTITION, and hands the handle to the background thread and the
 *  shell. Returns the handle in `*db` (already open: the same handle and CAIRN_OK). Errors of
 *  cairn_zephyr_flash_config() and cairn_open_or_format(). */
int32_t cairn_zephyr_open(cairn_db_t **db);

/** The managed handle, or NULL while it is not open. */
cairn_db_t *cairn_zephyr_db(void);

/** Closes the managed database after the background thread's current pass. CAIRN_OK when it
 *  was not open. */
int32_t cairn_zephyr_close(void);

/** The backup ring on CONFIG_CAIRNDB_BACKUP_PARTITION while the database is open, or NULL. */
const cairn_ring_t *cairn_zephyr_backup_ring(void);

/** Runs a maintenance pass now: wakes the background thread and waits (at most `timeout_ms`)
 *  until a pass that started after this call has finished; without the thread, runs the pass
 *  in the caller. Returns the pass's result (see cairn_maint_pass()), CAIRN_ERR_TIMEOUT, or
 *  CAIRN_ERR_NOT_FOUND when the database is not open. */
int32_t cairn_zephyr_maint_now(uint32_t timeout_ms);

/** A copy of what the maintenance passes did since boot. */
void cairn_zephyr_maint_stats(cairn_maint_stats_t *out);

/** Bytes used, free and at most used of the library's dedicated heap; CAIRN_ERR_UNSUPPORTED
 *  with the system heap or without CONFIG_SYS_HEAP_RUNTIME_STATS. */
int32_t cairn_zephyr_heap_stats(size_t *used, size_t *free_bytes, size_t *max_used);

/** Unused stack of the background thread in bytes; CAIRN_ERR_UNSUPPORTED without the thread,
 *  CONFIG_INIT_STACKS or CONFIG_THREAD_STACK_INFO. */
int32_t cairn_zephyr_bg_stack_unused(size_t *unused);

#if defined(CONFIG_CAIRNDB_KEY_APP)
/** Defined by the application (CONFIG_CAIRNDB_KEY_APP): fills `key` (a raw key or a
 *  passphrase whose memory stays valid until cairn_zephyr_open() returns). Returns 0, or a
 *  negative value to refuse (cairn_zephyr_open() then fails with CAIRN_ERR_INVALID_ARGUMENT). */
int32_t cairn_zephyr_get_key(cairn_key_t *key);
#endif

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_ZEPHYR_H */
