/*
 * Host tests of cairndb's FreeRTOS port under the real FreeRTOS scheduler (the POSIX port):
 * the harness shared by main.c (the runner), test_port.c and test_bg.c.
 *
 * POSIX port pitfalls this harness lives with:
 *  - one scheduler per process: every test runs in one process, one after the other, from the
 *    runner task; the scheduler is started once and ended once (vTaskEndScheduler);
 *  - a task function must never return (helpers end with vTaskDelete(NULL), outside any
 *    library call, so no Rust frame is ever unwound by the port's pthread_cancel);
 *  - the tick is SIGALRM without SA_RESTART: a blocking system call in a task may fail with
 *    EINTR (out() retries its writes), and SIGALRM is not free for alarm();
 *  - stdio takes locks a preempted task may hold: tasks never printf; out() formats into a
 *    buffer and write()s it, and only the runner (or a fatal path) prints;
 *  - ticks drift against wall time: timings are asserted in ticks, with loose bounds.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "FreeRTOS.h"
#include "event_groups.h"
#include "semphr.h"
#include "task.h"

#include "cairn_freertos.h"

/* ---- output and failures ------------------------------------------------------------------ */

/** printf to stdout through write(2), retried on EINTR; the runner's (and fatal paths') only. */
void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Records a failure of the current test (any task may call it; the first few reasons are
 *  kept for the runner's FAIL line). */
void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK_RC(expr, want)                                                                 \
    do {                                                                                     \
        int32_t rc_ = (expr);                                                                \
        if (rc_ != (want))                                                                   \
            failf("line %d: %s returned %d (%s), expected %s", __LINE__, #expr, (int)rc_,    \
                  cairn_strerror(rc_), #want);                                               \
    } while (0)
#define CHECK_OK(expr) CHECK_RC(expr, CAIRN_OK)
#define EXPECT(cond, ...)                                                \
    do {                                                                 \
        if (!(cond)) {                                                   \
            char why_[200];                                              \
            snprintf(why_, sizeof why_, __VA_ARGS__);                    \
            failf("line %d: %s: %s", __LINE__, #cond, why_);             \
        }                                                                \
    } while (0)

/** Set by a test that leaves a helper task stuck: the runner skips the remaining tests. */
extern volatile bool g_stop_run;

/** A note printed under the test's ok line (figures worth keeping in the log). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- a log sink that keeps the lines (for cairn_fr_platform_t.log) ------------------------ */

void logcap_reset(void);
void logcap_sink(int32_t level, const char *line);
uint32_t logcap_count(void);
/** Line `i` (and its level), or NULL past the kept ones. */
const char *logcap_line(uint32_t i, int32_t *level);
/** True when a kept line at `level` contains `text`. */
bool logcap_find(int32_t level, const char *text);

/* ---- tasks and synchronisation ------------------------------------------------------------- */

/** Priorities: helpers use 1..5, the runner sits above them, the timer task above it. */
#define RUNNER_PRIORITY (configMAX_PRIORITIES - 2)
#define HELPER_STACK_WORDS 1024u

/** The event group tests signal through (cleared before each test). Task notifications are
 *  left alone: cairn_fr_bg_stop() uses the calling task's. */
extern EventGroupHandle_t g_events;

/** Creates a helper task; NULL (and a failure) when it cannot be created. */
TaskHandle_t spawn(const char *name, TaskFunction_t fn, void *arg, UBaseType_t priority);

/** Waits (at most `ms`) until every bit of `bits` is set, clearing them; true if they were. */
bool wait_bits(EventBits_t bits, uint32_t ms);
void set_bits(EventBits_t bits);

/** Ticks since `t0`. */
static inline TickType_t ticks_since(TickType_t t0) { return xTaskGetTickCount() - t0; }

/* ---- the RAM NOR flash (ramnor.c) ---------------------------------------------------------- */

#define RAMNOR_BLOCK 4096u
#define RAMNOR_READ 16u
#define RAMNOR_PROG 16u

typedef struct ramnor {
    uint8_t *mem;
    uint32_t blocks;
    uint32_t reads, progs, erases;
    uint32_t violations; /**< accesses a real NOR chip would not take */
    char first_violation[160];
} ramnor_t;

/** A chip of `blocks` erase blocks on `mem` (blocks * RAMNOR_BLOCK bytes), all erased. */
void ramnor_init(ramnor_t *n, uint8_t *mem, uint32_t blocks);
/** Points the device fields of `cfg` at the chip. */
void ramnor_config(ramnor_t *n, cairn_config_t *cfg);

/* ---- fixtures ------------------------------------------------------------------------------ */

#define FX_BLOCKS 96u

/** A database on a RAM NOR chip with the port's platform. */
typedef struct fixture {
    ramnor_t nor;
    cairn_fr_platform_t p;
    cairn_config_t cfg;
    cairn_db_t *db;
} fixture_t;

/** The one fixture the tests share (one test runs at a time). */
extern fixture_t fx;
/** The raw key every fixture database is encrypted with, as a device would be. */
extern const cairn_key_t test_key;

/** Zeroes `f` and erases its chip; set platform hooks (f->p.log, ...) and config fields
 *  (f->cfg.lock_timeout_ms, ...) after this, before fx_format(). */
void fx_init(fixture_t *f);
/** cairn_fr_platform_init() then cairn_format() with `key` (NULL: test_key); the result. */
int32_t fx_format(fixture_t *f, const cairn_key_t *key);
/** Closes the database (if open) and fails the test on any flash violation. */
void fx_close(fixture_t *f);

/* ---- the library's heap (heap_shim.c) ------------------------------------------------------ */

typedef struct heap_shim {
    cairn_malloc_fn alloc; /**< the hooks the port installed (NULL: none) */
    cairn_free_fn free;
    void *ctx;
    int32_t real_rc;       /**< what the hosted library's cairn_set_allocator answered */
    uint32_t set_calls;
    int lib_used;          /**< the library has allocated: hooks can no longer change */
    uint64_t hook_allocs, hook_frees, libc_allocs;
} heap_shim_t;

extern heap_shim_t heap_shim;
/** heap_4's memory (configAPPLICATION_ALLOCATED_HEAP). */
extern uint8_t ucHeap[configTOTAL_HEAP_SIZE];
/** What cairn_fr_use_freertos_heap() returned in main(), before anything else ran. */
extern int32_t g_use_heap_rc;

/* ---- helpers ------------------------------------------------------------------------------- */

/** The integer after "\"<field>\":" in a JSON text, or -1. */
long json_int(const char *json, const char *field);

/* ---- the tests ----------------------------------------------------------------------------- */

void test_lock_timeout(void);
void test_lock_recursion(void);
void test_priority_inheritance(void);
void test_concurrency(void);
void test_clock_ticks(void);
void test_clock_rtc(void);
void test_allocator(void);
void test_log_sink(void);
void test_random_hook(void);
/* The background task (test_bg.c). */
void test_bg_lifecycle(void);
void test_bg_compaction(void);
void test_bg_ttl_sweep(void);
void test_bg_backup_ring(void);

#endif
