/*
 * cairndb maintenance pass: the work an RTOS background task or thread does on each wake,
 * shared by the FreeRTOS port (freertos-port/) and the Zephyr module (zephyr-module/). Plain C
 * over the C API, no RTOS calls: the port supplies the task, the period and the stop flag.
 *
 * One pass, each step bounded and under the handle's lock for that step only:
 *  1. a TTL sweep (cairn_sweep) of at most `sweep_budget` expired items;
 *  2. one compaction step (cairn_compact_step: one merge) when deletions waiting to be
 *     reclaimed reach `compact_garbage_percent` or live segments reach `compact_min_segments`;
 *  3. a backup into `backup_ring` (cairn_ring_backup) when one is due: none recorded yet, or the
 *     last one `backup_interval_ms` of database time old. The schedule lives in the database,
 *     so it survives reboots.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef CAIRN_MAINT_H
#define CAIRN_MAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "cairndb.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Defaults for zero fields of ::cairn_maint_config_t. */
#define CAIRN_MAINT_SWEEP_BUDGET 8u
#define CAIRN_MAINT_COMPACT_GARBAGE_PERCENT 20u
#define CAIRN_MAINT_COMPACT_MIN_SEGMENTS 4u
#define CAIRN_MAINT_BACKUP_INTERVAL_MS (60u * 60u * 1000u)

/** What a pass does; zero fields take the CAIRN_MAINT_* defaults. Only read during a pass. */
typedef struct cairn_maint_config {
    uint32_t sweep_budget;            /**< most expired items removed per pass */
    bool no_sweep;                    /**< true: no TTL sweeps */
    uint32_t compact_garbage_percent; /**< a compaction step from this much garbage on ... */
    uint32_t compact_min_segments;    /**< ... or from this many segments */
    const cairn_ring_t *backup_ring;  /**< scheduled backups go here; NULL: none */
    const cairn_backup_key_t *backup_key; /**< NULL: the database's key */
    uint32_t backup_interval_ms;      /**< database time between backups */
} cairn_maint_config_t;

/** What passes did, accumulated across passes (zero it once). */
typedef struct cairn_maint_stats {
    uint32_t passes;
    uint64_t swept;            /**< expired items removed */
    uint32_t compactions;      /**< compaction steps that succeeded */
    uint32_t backups;          /**< backups written into the ring */
    uint32_t full_backups;     /**< ... of which full backups */
    cairn_backup_info_t last_backup; /**< the last backup written (valid when backups > 0) */
    int32_t last_error;        /**< last failing code, or CAIRN_OK */
} cairn_maint_stats_t;

/** Receives one NUL-terminated line about what a pass did (no trailing newline). */
typedef void (*cairn_maint_log_fn)(void *ctx, int32_t level, const char *line);

/** Runs one pass on `db`. Every step runs even when an earlier one failed; the return value is
 *  the first failing code (also left in `stats->last_error`), or CAIRN_OK. `log` may be NULL.
 *  CAIRN_ERR_NULL when `db`, `cfg` or `stats` is NULL. */
int32_t cairn_maint_pass(cairn_db_t *db, const cairn_maint_config_t *cfg, cairn_maint_stats_t *stats,
                         cairn_maint_log_fn log, void *log_ctx);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_MAINT_H */
