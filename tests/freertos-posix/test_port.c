/*
 * cairndb's FreeRTOS port under the real FreeRTOS scheduler on Linux (POSIX port): the lock
 * (timeouts, recursion, priority inheritance), tasks of four priorities sharing one handle,
 * the clock, the heap, the log and random hooks, and the background task (sweeps, compaction
 * steps, scheduled backups into a ring that then restores). One scheduler per process: a runner
 * task runs the tests in turn, prints `ok <name>` / `FAIL <name>: ...` and ends the process
 * with status 0 only when all passed. A watchdog thread ends it with status 4 if it hangs.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn_freertos.h"

/* ---- a strict RAM NOR flash ---------------------------------------------------------------- */

#define BLOCK 4096u
typedef struct {
    uint8_t *mem;
    uint32_t blocks;
    unsigned violations;
} ram_nor_t;

static int32_t nor_read(void *ctx, uint32_t b, uint32_t off, uint8_t *buf, uint32_t len) {
    ram_nor_t *n = ctx;
    if (b >= n->blocks || off + len > BLOCK) return -1;
    memcpy(buf, n->mem + (size_t)b * BLOCK + off, len);
    return 0;
}

static int32_t nor_prog(void *ctx, uint32_t b, uint32_t off, const uint8_t *buf, uint32_t len) {
    ram_nor_t *n = ctx;
    if (b >= n->blocks || off + len > BLOCK) return -1;
    uint8_t *p = n->mem + (size_t)b * BLOCK + off;
    for (uint32_t i = 0; i < len; i++) {
        if ((p[i] & buf[i]) != buf[i]) {
            n->violations++; /* a program that would set a bit: not erased */
            return -1;
        }
    }
    for (uint32_t i = 0; i < len; i++) p[i] &= buf[i];
    return 0;
}

static int32_t nor_erase(void *ctx, uint32_t b) {
    ram_nor_t *n = ctx;
    if (b >= n->blocks) return -1;
    memset(n->mem + (size_t)b * BLOCK, 0xFF, BLOCK);
    return 0;
}

static void nor_new(ram_nor_t *n, uint32_t blocks) {
    n->mem = malloc((size_t)blocks * BLOCK);
    n->blocks = blocks;
    n->violations = 0;
    if (n->mem == NULL) exit(2);
    memset(n->mem, 0xFF, (size_t)blocks * BLOCK);
}

static void nor_config(ram_nor_t *n, cairn_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->ctx = n;
    cfg->read = nor_read;
    cfg->prog = nor_prog;
    cfg->erase = nor_erase;
    cfg->read_size = 16;
    cfg->prog_size = 16;
    cfg->block_size = BLOCK;
    cfg->block_count = n->blocks;
}

/* ---- test plumbing ------------------------------------------------------------------------- */

static int failed, failures;
static TaskHandle_t runner;

#define CHECK(expr)                                                                       \
    do {                                                                                  \
        int32_t rc_ = (expr);                                                             \
        if (rc_ != CAIRN_OK) {                                                            \
            printf("  line %d: %s: %s (%d)\n", __LINE__, #expr, cairn_strerror(rc_), (int)rc_); \
            failed = 1;                                                                   \
        }                                                                                 \
    } while (0)
#define EXPECT(cond)                                               \
    do {                                                           \
        if (!(cond)) {                                             \
            printf("  line %d: expected %s\n", __LINE__, #cond);   \
            failed = 1;                                            \
        }                                                          \
    } while (0)

static const uint8_t key_bytes[32] = {7, 1, 4, 9};
static const cairn_key_t key = {key_bytes, NULL, 0, 0};

/* A database on a fresh RAM NOR with its own platform (mutex, tick clock). */
typedef struct {
    ram_nor_t nor;
    cairn_config_t cfg;
    cairn_fr_platform_t p;
    cairn_db_t *db;
} fixture_t;

static void fixture_open(fixture_t *f, uint32_t lock_timeout_ms) {
    memset(f, 0, sizeof *f);
    nor_new(&f->nor, 64);
    nor_config(&f->nor, &f->cfg);
    f->cfg.lock_timeout_ms = lock_timeout_ms;
    CHECK(cairn_fr_platform_init(&f->p, &f->cfg));
    CHECK(cairn_format(&f->db, &f->cfg, &key));
}

static void fixture_close(fixture_t *f) {
    if (f->db != NULL) CHECK(cairn_close(f->db));
    f->db = NULL;
    EXPECT(f->nor.violations == 0);
    free(f->nor.mem);
    vSemaphoreDelete(f->p.mutex);
}

static long json_int(const char *json, const char *field) {
    char pat[24];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *at = strstr(json, pat);
    return at == NULL ? -1 : strtol(at + strlen(pat), NULL, 10);
}

static void notify_runner_and_die(void) {
    xTaskNotifyGive(runner);
    vTaskDelete(NULL);
}

/* ---- 1. the lock: timeout, recursion -------------------------------------------------------- */

static fixture_t fx;
static volatile int holder_phase;

static void holder_task(void *arg) {
    (void)arg;
    cairn_txn_t *txn = NULL;
    CHECK(cairn_txn_begin(fx.db, &txn));
    /* Recursion: calls inside the transaction take the recursive mutex again. */
    CHECK(cairn_txn_doc_insert(txn, "t", "{\"a\":1}", NULL));
    uint64_t n = 0;
    CHECK(cairn_txn_doc_count(txn, "t", &n));
    EXPECT(n == 1);
    holder_phase = 1;
    xTaskNotifyGive(runner);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY); /* hold the handle until told */
    CHECK(cairn_txn_commit(txn));
    holder_phase = 2;
    notify_runner_and_die();
}

static void test_lock_timeout(void) {
    fixture_open(&fx, 100);
    TaskHandle_t h;
    holder_phase = 0;
    xTaskCreate(holder_task, "holder", 8192, NULL, 2, &h);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    EXPECT(holder_phase == 1);
    uint64_t n = 0;
    TickType_t t0 = xTaskGetTickCount();
    EXPECT(cairn_doc_count(fx.db, "t", &n) == CAIRN_ERR_TIMEOUT);
    TickType_t waited = xTaskGetTickCount() - t0;
    EXPECT(waited >= pdMS_TO_TICKS(90)); /* about the timeout; ticks drift, so no upper bound */
    xTaskNotifyGive(h);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    EXPECT(holder_phase == 2);
    CHECK(cairn_doc_count(fx.db, "t", &n));
    EXPECT(n == 1);
    printf("  a call waited %lu ticks for a held handle, then CAIRN_ERR_TIMEOUT\n",
           (unsigned long)waited);
    fixture_close(&fx);
}

/* ---- 2. priority inheritance --------------------------------------------------------------- */

static volatile UBaseType_t low_prio_after;

static void low_task(void *arg) {
    (void)arg;
    cairn_txn_t *txn = NULL;
    CHECK(cairn_txn_begin(fx.db, &txn));
    xTaskNotifyGive(runner);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    CHECK(cairn_txn_doc_insert(txn, "t", "{\"by\":\"low\"}", NULL));
    CHECK(cairn_txn_commit(txn));
    low_prio_after = uxTaskPriorityGet(NULL);
    notify_runner_and_die();
}

static void high_task(void *arg) {
    (void)arg;
    CHECK(cairn_doc_insert(fx.db, "t", "{\"by\":\"high\"}", NULL));
    notify_runner_and_die();
}

static void test_priority_inheritance(void) {
    fixture_open(&fx, 5000);
    TaskHandle_t low, high;
    xTaskCreate(low_task, "low", 8192, NULL, 1, &low);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    EXPECT(uxTaskPriorityGet(low) == 1);
    xTaskCreate(high_task, "high", 8192, NULL, 4, &high);
    vTaskDelay(pdMS_TO_TICKS(30)); /* the high task now waits on the handle's mutex */
    UBaseType_t lifted = uxTaskPriorityGet(low);
    EXPECT(lifted == 4);
    xTaskNotifyGive(low);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    EXPECT(low_prio_after == 1);
    uint64_t n = 0;
    CHECK(cairn_doc_count(fx.db, "t", &n));
    EXPECT(n == 2);
    printf("  the holder ran at priority %lu while a priority-4 task waited, 1 after\n",
           (unsigned long)lifted);
    fixture_close(&fx);
}

/* ---- 3. tasks of four priorities, no lost update ------------------------------------------- */

#define WORKERS 4
#define INCREMENTS 40
static volatile int retries;

static void worker(void *arg) {
    int w = (int)(intptr_t)arg;
    for (int i = 0; i < INCREMENTS; i++) {
        cairn_txn_t *txn = NULL;
        char buf[96], doc[48], v[24] = {0};
        size_t len = 0;
        int32_t rc = cairn_txn_begin(fx.db, &txn);
        if (rc == CAIRN_OK) rc = cairn_txn_doc_get(txn, "c", 1, buf, sizeof buf, NULL);
        if (rc == CAIRN_OK) rc = cairn_txn_kv_get(txn, "k", "n", 1, v, sizeof v - 1, &len);
        if (rc == CAIRN_OK) {
            snprintf(doc, sizeof doc, "{\"n\":%ld}", json_int(buf, "n") + 1);
            rc = cairn_txn_doc_replace(txn, "c", 1, doc);
        }
        if (rc == CAIRN_OK) {
            v[len] = 0;
            int m = snprintf(v, sizeof v, "%ld", strtol(v, NULL, 10) + 1);
            rc = cairn_txn_kv_put(txn, "k", "n", 1, v, (size_t)m);
        }
        if (txn != NULL) {
            int32_t end = rc == CAIRN_OK ? cairn_txn_commit(txn) : cairn_txn_rollback(txn);
            if (rc == CAIRN_OK) rc = end;
        }
        if (rc == CAIRN_ERR_TIMEOUT) {
            retries++;
            i--;
        } else if (rc != CAIRN_OK) {
            printf("  worker %d: %s\n", w, cairn_strerror(rc));
            failed = 1;
        }
        vTaskDelay((TickType_t)(w % 2));
    }
    notify_runner_and_die();
}

static void test_concurrency(void) {
    fixture_open(&fx, 2000);
    CHECK(cairn_doc_insert(fx.db, "c", "{\"n\":0}", NULL));
    CHECK(cairn_kv_put(fx.db, "k", "n", 1, "0", 1));
    for (int w = 0; w < WORKERS; w++)
        xTaskCreate(worker, "worker", 8192, (void *)(intptr_t)w, (UBaseType_t)(1 + w), NULL);
    for (int w = 0; w < WORKERS; w++) ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    char buf[96], v[24] = {0};
    size_t len = 0;
    CHECK(cairn_doc_get(fx.db, "c", 1, buf, sizeof buf, NULL));
    CHECK(cairn_kv_get(fx.db, "k", "n", 1, v, sizeof v - 1, &len));
    EXPECT(json_int(buf, "n") == WORKERS * INCREMENTS);
    EXPECT(strtol(v, NULL, 10) == WORKERS * INCREMENTS);
    printf("  %d tasks x %d increments = %ld (document) and %s (key), %d timeout retries\n",
           WORKERS, INCREMENTS, json_int(buf, "n"), v, retries);
    fixture_close(&fx);
}

/* ---- 4. the clock, and a platform per handle -------------------------------------------------- */

static uint64_t rtc_value;
static uint64_t rtc(void *ctx) { return *(uint64_t *)ctx; }

static char log_a[256], log_b[256];
static void sink_a(int32_t level, const char *line) {
    (void)level;
    strncat(log_a, line, sizeof log_a - strlen(log_a) - 1);
}
static void sink_b(int32_t level, const char *line) {
    (void)level;
    strncat(log_b, line, sizeof log_b - strlen(log_b) - 1);
}

static void test_clock_and_platforms(void) {
    cairn_fr_platform_t p;
    cairn_config_t cfg;
    ram_nor_t nor;
    nor_new(&nor, 16);
    nor_config(&nor, &cfg);
    memset(&p, 0, sizeof p);
    CHECK(cairn_fr_platform_init(&p, &cfg));
    uint64_t a = cairn_fr_now_ms(&p);
    vTaskDelay(pdMS_TO_TICKS(20));
    uint64_t b = cairn_fr_now_ms(&p);
    EXPECT(b >= a + 15);
    /* A tick count below the last one read is a wrap: on this port's 64-bit ticks the period is
     * 2^64 and nothing is added, so the clock neither jumps nor goes back. */
    p.last_tick = xTaskGetTickCount() + 1000;
    uint64_t c = cairn_fr_now_ms(&p);
    EXPECT(c >= b && c < b + 1000);
    rtc_value = 1700000000000ull;
    p.rtc = rtc;
    p.rtc_ctx = &rtc_value;
    EXPECT(cairn_fr_now_ms(&p) == 1700000000000ull);
    vSemaphoreDelete(p.mutex);
    free(nor.mem);

    /* Two handles, each with its own platform: each one's log lines reach its own sink. */
    fixture_t f1, f2;
    memset(&f1, 0, sizeof f1);
    memset(&f2, 0, sizeof f2);
    nor_new(&f1.nor, 32);
    nor_new(&f2.nor, 32);
    nor_config(&f1.nor, &f1.cfg);
    nor_config(&f2.nor, &f2.cfg);
    f1.p.log = sink_a;
    f2.p.log = sink_b;
    CHECK(cairn_fr_platform_init(&f1.p, &f1.cfg));
    CHECK(cairn_fr_platform_init(&f2.p, &f2.cfg));
    EXPECT(f1.cfg.platform_ctx == &f1.p && f2.cfg.platform_ctx == &f2.p);
    CHECK(cairn_format(&f1.db, &f1.cfg, NULL));
    CHECK(cairn_format(&f2.db, &f2.cfg, NULL));
    log_a[0] = log_b[0] = 0;
    EXPECT(cairn_doc_insert(f1.db, "bad name!", "{}", NULL) != CAIRN_OK);
    EXPECT(strstr(log_a, "cairn_doc_insert") != NULL && log_b[0] == 0);
    EXPECT(cairn_doc_insert(f2.db, "c", "not json", NULL) != CAIRN_OK);
    EXPECT(strstr(log_b, "cairn_doc_insert") != NULL);
    fixture_close(&f1);
    fixture_close(&f2);
}

/* ---- 5. the heap hook on a hosted build, and the random hook -------------------------------------------------------- */

static int random_calls;
static int32_t random_fn(uint8_t *buf, size_t len) {
    random_calls++;
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rand();
    return 0;
}

static int32_t heap_rc;

static void test_heap_and_random(void) {
    /* The host build of the library allocates from the system allocator and says so; the
     * firmware build takes pvPortMalloc (tested on QEMU by qemu_test.c). */
    EXPECT(heap_rc == CAIRN_ERR_UNSUPPORTED);
    fixture_t f;
    memset(&f, 0, sizeof f);
    nor_new(&f.nor, 64);
    nor_config(&f.nor, &f.cfg);
    f.p.random = random_fn;
    CHECK(cairn_fr_platform_init(&f.p, &f.cfg));
    /* A passphrase database needs a random salt: the platform's hook gives it. */
    const cairn_key_t pass = {NULL, (const uint8_t *)"correct horse", 13, 1000};
    random_calls = 0;
    CHECK(cairn_format(&f.db, &f.cfg, &pass));
    EXPECT(random_calls > 0);
    CHECK(cairn_doc_insert(f.db, "c", "{\"x\":1}", NULL));
    fixture_close(&f);
    printf("  the random hook gave the passphrase salt (%d calls)\n", random_calls);
}

/* ---- 6. the background task ------------------------------------------------------------------ */

static void test_background(void) {
    fixture_open(&fx, 5000);
    ram_nor_t bnor;
    cairn_config_t bdev;
    nor_new(&bnor, 24);
    nor_config(&bnor, &bdev);
    cairn_ring_t ring = {&bdev, 0, 24, 3};
    cairn_write_opts_t soon = {1, NULL, 0};
    for (int i = 0; i < 30; i++) {
        char doc[32];
        snprintf(doc, sizeof doc, "{\"i\":%d}", i);
        CHECK(cairn_doc_insert_with(fx.db, "r", doc, i % 3 == 0 ? NULL : &soon, NULL));
    }
    CHECK(cairn_flush(fx.db)); /* a segment on flash: a compaction step has work */
    vTaskDelay(pdMS_TO_TICKS(5));
    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc;
    memset(&bc, 0, sizeof bc);
    bc.period_ms = 10;
    bc.sweep_budget = 5;
    bc.compact_min_segments = 1;
    bc.backup_ring = &ring;
    bc.backup_interval_ms = 25;
    CHECK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    for (int i = 0; i < 300 && (bg.stats.swept < 20 || bg.stats.backups < 4); i++)
        vTaskDelay(pdMS_TO_TICKS(10));
    CHECK(cairn_fr_bg_stop(&bg, 2000));
    EXPECT(bg.task == NULL);
    EXPECT(bg.stats.swept == 20 && bg.stats.compactions > 0 && bg.stats.backups >= 4 &&
           bg.stats.full_backups >= 1 && bg.stats.last_error == CAIRN_OK);
    EXPECT(bg.stack_free_words > 0 && bg.stack_free_words < bg.cfg.stack_words);
    /* The ring restores into a fresh database: the same documents. */
    uint32_t area = 0, slot = 0;
    CHECK(cairn_ring_backup(fx.db, NULL, &ring, NULL, &area, &slot));
    fixture_t other;
    fixture_open(&other, 5000);
    cairn_restore_report_t rep;
    uint64_t want = 0, got = 0;
    CHECK(cairn_ring_restore(other.db, NULL, &ring, &rep));
    CHECK(cairn_doc_count(fx.db, "r", &want));
    CHECK(cairn_doc_count(other.db, "r", &got));
    EXPECT(want == 10 && got == want);
    printf("  %lu passes: %lu swept, %lu compaction steps, %lu backups (%lu full); the ring "
           "restored %lu documents; stack high-water mark %lu words free of %lu\n",
           (unsigned long)bg.stats.passes, (unsigned long)bg.stats.swept,
           (unsigned long)bg.stats.compactions, (unsigned long)bg.stats.backups,
           (unsigned long)bg.stats.full_backups, (unsigned long)got,
           (unsigned long)bg.stack_free_words, (unsigned long)bg.cfg.stack_words);
    fixture_close(&other);
    fixture_close(&fx);
    EXPECT(bnor.violations == 0);
    free(bnor.mem);
}

/* ---- runner -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"lock_timeout", test_lock_timeout},
    {"priority_inheritance", test_priority_inheritance},
    {"concurrency", test_concurrency},
    {"clock_and_platforms", test_clock_and_platforms},
    {"heap_and_random", test_heap_and_random},
    {"background", test_background},
};

static void runner_task(void *arg) {
    (void)arg;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        failed = 0;
        tests[i].fn();
        printf("%s %s\n", failed ? "FAIL" : "ok  ", tests[i].name);
        failures += failed;
    }
    printf("freertos-posix: %d of %zu tests failed\n", failures, sizeof tests / sizeof tests[0]);
    fflush(stdout);
    _exit(failures == 0 ? 0 : 1);
}

/* Ends a hung run: a plain thread (all signals blocked, so the port's tick signal never lands
 * on it) that exits the process after the time limit. */
static void *watchdog(void *arg) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    unsigned limit = (unsigned)(uintptr_t)arg;
    struct timespec ts = {(time_t)limit, 0};
    while (nanosleep(&ts, &ts) != 0) {
    }
    printf("freertos-posix: no result after %u s: hung\n", limit);
    fflush(stdout);
    _exit(4);
}

void vApplicationMallocFailedHook(void) {
    printf("freertos-posix: pvPortMalloc failed\n");
    fflush(stdout);
    _exit(5);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, (void *)(uintptr_t)120) != 0) return 2;
    heap_rc = cairn_fr_use_freertos_heap();
    if (xTaskCreate(runner_task, "runner", 16384, NULL, 6, &runner) != pdPASS) return 2;
    vTaskStartScheduler();
    return 3;
}
