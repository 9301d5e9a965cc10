/*
 * cairndb on FreeRTOS: the platform glue a firmware adds next to libcairndb.a.
 *
 *  - a recursive FreeRTOS mutex as the handle's lock (priority inheritance, timeouts in ticks
 *    from the config's milliseconds), so several tasks share one cairn_db_t;
 *  - a clock from xTaskGetTickCount() (64-bit, wrap-safe), or an RTC hook;
 *  - cairndb's heap on pvPortMalloc/vPortFree (heap_4 or any heap_N);
 *  - a log sink and a random hook;
 *  - a background task running the shared maintenance pass (port-common/cairn_maint.h) on
 *    each wake: TTL sweeps with bounded work, a compaction step when worthwhile, scheduled
 *    backups into a backup ring; clean stop; stack high-water mark.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef CAIRN_FREERTOS_H
#define CAIRN_FREERTOS_H

#include <stdbool.h>
#include <stdint.h>

#include "FreeRTOS.h"
#include "semphr.h"
#include "task.h"

#include "cairn_freertos_config.h"
#include "cairn_maint.h"
#include "cairndb.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Wall-clock source in milliseconds (an RTC), or NULL for the tick clock. */
typedef uint64_t (*cairn_fr_rtc_fn)(void *ctx);
/** Receives one NUL-terminated log line (no trailing newline). */
typedef void (*cairn_fr_log_sink_fn)(int32_t level, const char *line);
/** Fills `buf` with `len` random bytes; returns 0 on success. */
typedef int32_t (*cairn_fr_random_fn)(uint8_t *buf, size_t len);

/** The platform state one database handle uses; lives as long as the handle. */
typedef struct cairn_fr_platform {
    SemaphoreHandle_t mutex;     /**< recursive mutex: the handle's lock */
    StaticSemaphore_t mutex_buf; /**< its storage (no heap needed for it) */
    cairn_fr_rtc_fn rtc;         /**< optional RTC; NULL: ticks since boot */
    void *rtc_ctx;
    cairn_fr_log_sink_fn log;    /**< optional log sink; NULL: no log */
    cairn_fr_random_fn random;   /**< optional random source (passphrase salts) */
    TickType_t last_tick;        /**< for the 64-bit tick clock */
    uint64_t tick_high;
} cairn_fr_platform_t;

/** Routes cairndb's heap to pvPortMalloc/vPortFree. Call it before any other cairn_* call
 *  (cairn_set_allocator() refuses once the library has allocated). */
int32_t cairn_fr_use_freertos_heap(void);

/** Initialises `p` (the mutex) and points the platform fields of `cfg` at it: lock/unlock on
 *  the recursive mutex, now_ms, log, random. Device fields and limits are left alone; a zero
 *  `lock_timeout_ms` becomes CAIRN_FR_LOCK_TIMEOUT_MS. `p` must outlive the handle. */
int32_t cairn_fr_platform_init(cairn_fr_platform_t *p, cairn_config_t *cfg);

/** The port's clock: the RTC hook if set, else milliseconds since boot from the tick count
 *  (wrap-safe as long as it is read at least once per tick-counter period). */
uint64_t cairn_fr_now_ms(cairn_fr_platform_t *p);

/** Writes `v` in decimal into `buf` (at least 21 bytes) and returns `buf`: newlib-nano's
 *  printf has no %llu, and times in milliseconds need 64 bits. */
char *cairn_fr_u64_str(char *buf, uint64_t v);

/** The background task's settings; zero fields take the cairn_freertos_config.h defaults. */
typedef struct cairn_fr_bg_config {
    uint32_t stack_words;    /**< CAIRN_FR_BG_STACK_WORDS */
    UBaseType_t priority;    /**< CAIRN_FR_BG_PRIORITY (0 means the default, not idle) */
    uint32_t period_ms;      /**< CAIRN_FR_BG_PERIOD_MS */
    uint32_t sweep_budget;   /**< expired items removed per wake: CAIRN_FR_SWEEP_BUDGET */
    bool no_sweep;           /**< true: no TTL sweeps */
    uint32_t compact_garbage_percent; /**< a compaction step from this much garbage on:
                                           CAIRN_FR_COMPACT_GARBAGE_PERCENT */
    uint32_t compact_min_segments;    /**< ... or from this many segments:
                                           CAIRN_FR_COMPACT_MIN_SEGMENTS */
    /** Scheduled backups: every `backup_interval_ms` of database time (counted from the last
     *  backup the database recorded, so the schedule survives reboots) the task calls
     *  cairn_ring_backup() on `backup_ring`. NULL: no backups. */
    const cairn_ring_t *backup_ring;
    const cairn_backup_key_t *backup_key; /**< NULL: the database's key */
    uint32_t backup_interval_ms;          /**< CAIRN_FR_BACKUP_INTERVAL_MS */
} cairn_fr_bg_config_t;

/** The background task; what it did is in `stats` (read it after cairn_fr_bg_stop(), or racy
 *  before). */
typedef struct cairn_fr_bg {
    cairn_db_t *db;
    cairn_fr_platform_t *p;
    cairn_fr_bg_config_t cfg;  /**< the settings, defaults filled in */
    cairn_maint_config_t maint; /**< what each wake's maintenance pass does (from cfg) */
    cairn_maint_stats_t stats; /**< passes (wakes), swept, compactions, backups, last_error */
    TaskHandle_t task;
    TaskHandle_t stopper;      /**< the task waiting in cairn_fr_bg_stop() */
    volatile int stop;
    UBaseType_t stack_free_words; /**< uxTaskGetStackHighWaterMark() at stop, in words */
} cairn_fr_bg_t;

/** Starts the background task on `db`. Returns CAIRN_OK, or CAIRN_ERR_NO_MEMORY when
 *  xTaskCreate fails. `bg` must stay valid until cairn_fr_bg_stop() returns CAIRN_OK. */
int32_t cairn_fr_bg_start(cairn_fr_bg_t *bg, cairn_db_t *db, cairn_fr_platform_t *p,
                          const cairn_fr_bg_config_t *cfg);

/** Asks the background task to stop, waits (at most `timeout_ms`) until it has finished its
 *  current period and deleted itself, and records its stack high-water mark. Returns CAIRN_OK
 *  or CAIRN_ERR_TIMEOUT. Call from a task, not from the background task. After
 *  CAIRN_ERR_TIMEOUT (the task is still in a pass, say waiting for the database) it still
 *  stops at the end of that pass, using `bg` until then and notifying the caller (its task
 *  notification) when it goes: call again to wait for it. */
int32_t cairn_fr_bg_stop(cairn_fr_bg_t *bg, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_FREERTOS_H */
