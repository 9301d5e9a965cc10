/*
 * cairndb on FreeRTOS: build-time defaults of the port (freertos-port/cairn_freertos.c).
 * Override any of them with -D on the compiler line or by defining them in FreeRTOSConfig.h,
 * which this file includes first.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef CAIRN_FREERTOS_CONFIG_H
#define CAIRN_FREERTOS_CONFIG_H

#include "FreeRTOS.h"

/** Longest wait for the database mutex, in milliseconds, when the cairn_config_t leaves
 *  `lock_timeout_ms` at 0 (cairn_fr_platform_init() copies it there). A task that waits longer gets
 *  CAIRN_ERR_TIMEOUT instead of blocking forever behind a stuck task. */
#ifndef CAIRN_FR_LOCK_TIMEOUT_MS
#define CAIRN_FR_LOCK_TIMEOUT_MS 5000u
#endif

/** Stack of the background task, in words (StackType_t). The database's deepest call paths
 *  (a commit that folds the WAL into a segment, with AES and HMAC) need about 12 KiB on a
 *  Cortex-M3 at -Os; the task prints its high-water mark when it stops, to tune this. */
#ifndef CAIRN_FR_BG_STACK_WORDS
#define CAIRN_FR_BG_STACK_WORDS 4096u
#endif

/** Priority of the background task: below the application's tasks, so that sweeps and
 *  compaction only use idle time (they still take the database mutex, whose priority
 *  inheritance lifts the task while it holds it). */
#ifndef CAIRN_FR_BG_PRIORITY
#define CAIRN_FR_BG_PRIORITY (tskIDLE_PRIORITY + 1)
#endif

/** Period of the background task, in milliseconds. */
#ifndef CAIRN_FR_BG_PERIOD_MS
#define CAIRN_FR_BG_PERIOD_MS 250u
#endif

/** Most expired items (documents, key-value entries) one sweep removes (one commit per wake):
 *  bounds the time the background task holds the database mutex and the size of the commit. */
#ifndef CAIRN_FR_SWEEP_BUDGET
#define CAIRN_FR_SWEEP_BUDGET 8u
#endif

/** A compaction step (cairn_compact_step: one merge, the mutex held for that step only) is
 *  worthwhile from this share of deleted entries waiting to be reclaimed (cairn_garbage_percent)
 *  ... */
#ifndef CAIRN_FR_COMPACT_GARBAGE_PERCENT
#define CAIRN_FR_COMPACT_GARBAGE_PERCENT 20u
#endif

/** ... or from this many live segment files (cairn_stats): fewer files, faster reads. */
#ifndef CAIRN_FR_COMPACT_MIN_SEGMENTS
#define CAIRN_FR_COMPACT_MIN_SEGMENTS 4u
#endif

/** Interval of scheduled backups in milliseconds of database time, when the background task
 *  has a backup ring. */
#ifndef CAIRN_FR_BACKUP_INTERVAL_MS
#define CAIRN_FR_BACKUP_INTERVAL_MS (60u * 60u * 1000u)
#endif

/** Longest log line the port formats for the log sink, in bytes. */
#ifndef CAIRN_FR_LOG_LINE
#define CAIRN_FR_LOG_LINE 160u
#endif

#endif /* CAIRN_FREERTOS_CONFIG_H */
