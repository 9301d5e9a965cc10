/*
 * Tests of the port's platform glue under the scheduler: the handle's lock (timeouts,
 * recursion, priority inheritance), tasks sharing one handle, the clock, the heap, the log
 * sink and the random hook. The background task's tests are in test_bg.c.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum {
    EV_HOLDING = 1u << 0,
    EV_RELEASE = 1u << 1,
    EV_DONE = 1u << 2,
    EV_HIGH_DONE = 1u << 3,
    EV_LOW_COMMITTED = 1u << 4,
    EV_FINISH = 1u << 5,
    EV_MEDIUM_DONE = 1u << 6,
    EV_WORKER0 = 1u << 8, /* ... one bit per worker */
};

/* ---- the lock ------------------------------------------------------------------------------ */

#define LOCK_TIMEOUT_MS 300u

/* Opens a transaction (the handle's lock stays with this task), waits for EV_RELEASE, commits. */
static void holder_task(void *arg) {
    (void)arg;
    cairn_txn_t *txn = NULL;
    int32_t rc = cairn_txn_begin(fx.db, &txn);
    if (rc != CAIRN_OK) failf("holder: cairn_txn_begin: %s", cairn_strerror(rc));
    if (txn != NULL) CHECK_OK(cairn_txn_doc_insert(txn, "held", "{\"by\":\"holder\"}", NULL));
    set_bits(EV_HOLDING);
    if (!wait_bits(EV_RELEASE, 10000)) failf("holder: never told to release");
    if (txn != NULL) CHECK_OK(cairn_txn_commit(txn));
    set_bits(EV_DONE);
    vTaskDelete(NULL);
}

void test_lock_timeout(void) {
    fx_init(&fx);
    fx.cfg.lock_timeout_ms = LOCK_TIMEOUT_MS;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    EXPECT(fx.cfg.lock_timeout_ms == LOCK_TIMEOUT_MS, "a nonzero timeout is kept");
    TaskHandle_t holder = spawn("holder", holder_task, NULL, 2);
    if (holder == NULL || !wait_bits(EV_HOLDING, 5000)) {
        failf("the holder task did not start its transaction");
        g_stop_run = true;
        return;
    }
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == holder, "the transaction holds the mutex");

    /* Another task's calls wait for the lock, then give up with CAIRN_ERR_TIMEOUT. */
    uint64_t n = 0;
    TickType_t t0 = xTaskGetTickCount();
    CHECK_RC(cairn_doc_count(fx.db, "held", &n), CAIRN_ERR_TIMEOUT);
    TickType_t waited = ticks_since(t0);
    EXPECT(waited >= pdMS_TO_TICKS(LOCK_TIMEOUT_MS) * 9 / 10, "gave up after %lu ticks", waited);
    EXPECT(waited < pdMS_TO_TICKS(LOCK_TIMEOUT_MS + 5000), "waited %lu ticks", waited);
    t0 = xTaskGetTickCount();
    CHECK_RC(cairn_kv_put(fx.db, "ns", "k", 1, "v", 1), CAIRN_ERR_TIMEOUT);
    TickType_t waited_put = ticks_since(t0);
    EXPECT(waited_put >= pdMS_TO_TICKS(LOCK_TIMEOUT_MS) * 9 / 10, "gave up after %lu ticks",
           waited_put);
    cairn_txn_t *txn = NULL;
    CHECK_RC(cairn_txn_begin(fx.db, &txn), CAIRN_ERR_TIMEOUT);
    EXPECT(txn == NULL, "no transaction handed out");

    /* Once the holder commits, the same calls go through and see its write. */
    set_bits(EV_RELEASE);
    if (!wait_bits(EV_DONE, 5000)) {
        failf("the holder did not commit");
        g_stop_run = true;
        return;
    }
    CHECK_OK(cairn_doc_count(fx.db, "held", &n));
    EXPECT(n == 1, "%llu documents", (unsigned long long)n);
    CHECK_OK(cairn_kv_put(fx.db, "ns", "k", 1, "v", 1));
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == NULL, "the mutex is free between calls");
    note("behind an open transaction, other tasks' calls gave up after %lu and %lu ticks "
         "(lock_timeout_ms %u) and went through after the commit",
         waited, waited_put, LOCK_TIMEOUT_MS);
    fx_close(&fx);
}

void test_lock_recursion(void) {
    fx_init(&fx);
    fx.cfg.lock_timeout_ms = LOCK_TIMEOUT_MS;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    TaskHandle_t me = xTaskGetCurrentTaskHandle();
    cairn_txn_t *txn = NULL;
    CHECK_OK(cairn_txn_begin(fx.db, &txn));
    if (txn == NULL) {
        fx_close(&fx);
        return;
    }
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == me, "the transaction holds the mutex");
    /* Each call inside takes the recursive mutex once more, at once. */
    TickType_t t0 = xTaskGetTickCount();
    uint64_t id = 0, n = 0;
    char buf[96];
    CHECK_OK(cairn_txn_doc_insert(txn, "r", "{\"x\":1}", &id));
    CHECK_OK(cairn_txn_doc_get(txn, "r", id, buf, sizeof buf, NULL));
    CHECK_OK(cairn_txn_kv_put(txn, "ns", "k", 1, "v", 1));
    CHECK_OK(cairn_txn_doc_count(txn, "r", &n));
    EXPECT(n == 1, "the transaction reads its own write (%llu)", (unsigned long long)n);
    /* A call on the handle itself from the holder: refused at once (the lock let it in). */
    CHECK_RC(cairn_doc_count(fx.db, "r", &n), CAIRN_ERR_BUSY);
    TickType_t took = ticks_since(t0);
    EXPECT(took < pdMS_TO_TICKS(LOCK_TIMEOUT_MS) / 2, "took %lu ticks: a nested call waited", took);
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == me, "still held inside the transaction");
    CHECK_OK(cairn_txn_commit(txn));
    /* Every level taken was given back. */
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == NULL, "the mutex is still held after commit");
    CHECK_OK(cairn_doc_count(fx.db, "r", &n));
    EXPECT(n == 1, "%llu documents after commit", (unsigned long long)n);
    txn = NULL;
    CHECK_OK(cairn_txn_begin(fx.db, &txn));
    if (txn != NULL) {
        CHECK_OK(cairn_txn_doc_insert(txn, "r", "{\"x\":2}", NULL));
        CHECK_OK(cairn_txn_rollback(txn));
    }
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == NULL, "the mutex is still held after rollback");
    CHECK_OK(cairn_doc_count(fx.db, "r", &n));
    EXPECT(n == 1, "%llu documents after rollback", (unsigned long long)n);
    fx_close(&fx);
}

/* ---- priority inheritance -------------------------------------------------------------------- */

#define PRIO_LOW 1
#define PRIO_MEDIUM 3
#define PRIO_HIGH 4

static volatile int32_t high_rc;
static volatile TickType_t high_done_at, medium_end_at;

static void low_task(void *arg) {
    (void)arg;
    cairn_txn_t *txn = NULL;
    int32_t rc = cairn_txn_begin(fx.db, &txn);
    if (rc != CAIRN_OK) failf("low: cairn_txn_begin: %s", cairn_strerror(rc));
    if (txn != NULL) CHECK_OK(cairn_txn_doc_insert(txn, "pi", "{\"by\":\"low\"}", NULL));
    set_bits(EV_HOLDING);
    if (!wait_bits(EV_RELEASE, 10000)) failf("low: never told to commit");
    if (txn != NULL) CHECK_OK(cairn_txn_commit(txn));
    set_bits(EV_LOW_COMMITTED);
    if (!wait_bits(EV_FINISH, 10000)) failf("low: never told to finish");
    set_bits(EV_DONE);
    vTaskDelete(NULL);
}

static void high_task(void *arg) {
    (void)arg;
    uint64_t n = 0;
    high_rc = cairn_doc_count(fx.db, "pi", &n);
    high_done_at = xTaskGetTickCount();
    set_bits(EV_HIGH_DONE);
    vTaskDelete(NULL);
}

/* CPU-bound between the two: without inheritance it would keep the holder off the CPU. */
static void medium_task(void *arg) {
    (void)arg;
    TickType_t end = xTaskGetTickCount() + pdMS_TO_TICKS(300);
    while (xTaskGetTickCount() < end) {
    }
    medium_end_at = xTaskGetTickCount();
    set_bits(EV_MEDIUM_DONE);
    vTaskDelete(NULL);
}

void test_priority_inheritance(void) {
    fx_init(&fx);
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    high_rc = 1;
    TaskHandle_t low = spawn("low", low_task, NULL, PRIO_LOW);
    if (low == NULL || !wait_bits(EV_HOLDING, 5000)) {
        failf("the low-priority task did not start its transaction");
        g_stop_run = true;
        return;
    }
    UBaseType_t before = uxTaskPriorityGet(low);
    EXPECT(before == PRIO_LOW, "priority %lu while nobody waits", before);

    TaskHandle_t high = spawn("high", high_task, NULL, PRIO_HIGH);
    vTaskDelay(pdMS_TO_TICKS(20)); /* the high task runs and blocks on the handle's mutex */
    EXPECT(high != NULL && eTaskGetState(high) == eBlocked, "the high-priority task is not waiting");
    EXPECT(xSemaphoreGetMutexHolder(fx.p.mutex) == low, "the low task holds the mutex");
    UBaseType_t during = uxTaskPriorityGet(low);
    EXPECT(during == PRIO_HIGH, "the holder runs at %lu while a priority-%d task waits", during,
           PRIO_HIGH);

    /* Commit while a CPU-bound medium task is ready: the inherited priority keeps the holder
     * ahead of it, so the high task gets the database before the medium task is through. */
    medium_end_at = 0;
    set_bits(EV_RELEASE);
    TaskHandle_t medium = spawn("medium", medium_task, NULL, PRIO_MEDIUM);
    bool high_done = wait_bits(EV_HIGH_DONE, 5000);
    UBaseType_t after = uxTaskPriorityGet(low);
    if (!high_done) {
        failf("the high-priority task never got the database");
        g_stop_run = true;
        return;
    }
    CHECK_RC(high_rc, CAIRN_OK);
    EXPECT(after == PRIO_LOW, "the holder kept priority %lu after giving the mutex back", after);
    if (medium == NULL || !wait_bits(EV_MEDIUM_DONE | EV_LOW_COMMITTED, 5000)) {
        failf("the medium or low task did not finish");
        g_stop_run = true;
        return;
    }
    EXPECT(high_done_at < medium_end_at,
           "the high task finished at tick %lu, after the medium task's spin (%lu)", high_done_at,
           medium_end_at);
    EXPECT(uxTaskPriorityGet(low) == PRIO_LOW, "priority %lu after the commit", uxTaskPriorityGet(low));
    set_bits(EV_FINISH);
    if (!wait_bits(EV_DONE, 5000)) {
        failf("the low task did not finish");
        g_stop_run = true;
        return;
    }
    note("holder priority %lu -> %lu while a priority-%d task waited -> %lu after the commit; "
         "the waiter got the database %lu ticks before a CPU-bound priority-%d task let go",
         before, during, PRIO_HIGH, after, medium_end_at - high_done_at, PRIO_MEDIUM);
    fx_close(&fx);
}

/* ---- tasks sharing one handle --------------------------------------------------------------- */

#define WORKERS 4
#define INCREMENTS 100
#define MAX_RETRIES 200

static volatile uint32_t worker_retries[WORKERS];
/* Which worker made each value of the key-value counter (unique per commit: it is read and
 * written under the lock), to count how often the commits changed hands. */
static int8_t commit_by[WORKERS * INCREMENTS + 1];

static uint64_t get_le64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void put_le64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* INCREMENTS transactions, each: $inc of the counter document (its total and this worker's
 * field) and a read-modify-write of a key-value counter. */
static void worker_task(void *arg) {
    int w = (int)(intptr_t)arg;
    char patch[64];
    snprintf(patch, sizeof patch, "{\"$inc\":{\"n\":1,\"w%d\":1}}", w);
    for (int done = 0; done < INCREMENTS;) {
        cairn_txn_t *txn = NULL;
        uint8_t v[8] = {0};
        size_t len = 0;
        int32_t rc = cairn_txn_begin(fx.db, &txn);
        if (rc == CAIRN_OK) rc = cairn_txn_doc_patch(txn, "counters", 1, patch);
        if (rc == CAIRN_OK) rc = cairn_txn_kv_get(txn, "kv", "n", 1, v, sizeof v, &len);
        if (rc == CAIRN_OK && len != sizeof v) {
            failf("worker %d: the key-value counter has %zu bytes", w, len);
            rc = CAIRN_ERR_CORRUPT;
        }
        if (rc == CAIRN_OK) {
            uint64_t next = get_le64(v) + 1;
            if (next < sizeof commit_by) commit_by[next] = (int8_t)w;
            put_le64(v, next);
            rc = cairn_txn_kv_put(txn, "kv", "n", 1, v, sizeof v);
        }
        if (txn != NULL) {
            int32_t end = rc == CAIRN_OK ? cairn_txn_commit(txn) : cairn_txn_rollback(txn);
            if (rc == CAIRN_OK) rc = end;
        }
        if (rc == CAIRN_ERR_TIMEOUT && worker_retries[w] < MAX_RETRIES) {
            worker_retries[w]++; /* waited too long for the lock: again */
            continue;
        }
        if (rc != CAIRN_OK) {
            failf("worker %d, increment %d: %s (%d)", w, done, cairn_strerror(rc), (int)rc);
            break;
        }
        done++;
        if (w % 2 == 1) vTaskDelay(1); /* different pacing: the locks interleave */
        else taskYIELD();
    }
    set_bits(EV_WORKER0 << w);
    vTaskDelete(NULL);
}

void test_concurrency(void) {
    fx_init(&fx);
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    uint64_t id = 0;
    CHECK_OK(cairn_doc_insert(fx.db, "counters", "{\"n\":0,\"w0\":0,\"w1\":0,\"w2\":0,\"w3\":0}", &id));
    EXPECT(id == 1, "id %llu", (unsigned long long)id);
    memset(commit_by, -1, sizeof commit_by);
    uint8_t zero[8] = {0};
    CHECK_OK(cairn_kv_put(fx.db, "kv", "n", 1, zero, sizeof zero));
    cairn_stats_t s0, s1;
    CHECK_OK(cairn_stats(fx.db, &s0));
    EventBits_t all = 0;
    TickType_t t0 = xTaskGetTickCount();
    for (int w = 0; w < WORKERS; w++) {
        char name[12];
        snprintf(name, sizeof name, "worker%d", w);
        worker_retries[w] = 0;
        if (spawn(name, worker_task, (void *)(intptr_t)w, (UBaseType_t)(1 + w)) == NULL) {
            g_stop_run = true;
            return;
        }
        all |= (EventBits_t)EV_WORKER0 << w;
    }
    if (!wait_bits(all, 20000)) {
        failf("the workers did not finish in 20 s");
        g_stop_run = true;
        return;
    }
    TickType_t took = ticks_since(t0);
    unsigned handovers = 0;
    for (size_t i = 2; i < sizeof commit_by; i++) handovers += commit_by[i] != commit_by[i - 1];
    char buf[160];
    CHECK_OK(cairn_doc_get(fx.db, "counters", 1, buf, sizeof buf, NULL));
    long n = json_int(buf, "n");
    EXPECT(n == WORKERS * INCREMENTS, "the counter document says %ld: %s", n, buf);
    for (int w = 0; w < WORKERS; w++) {
        char field[4] = {'w', (char)('0' + w), 0, 0};
        EXPECT(json_int(buf, field) == INCREMENTS, "worker %d counted %ld", w, json_int(buf, field));
    }
    uint8_t v[8];
    size_t len = 0;
    CHECK_OK(cairn_kv_get(fx.db, "kv", "n", 1, v, sizeof v, &len));
    EXPECT(len == 8 && get_le64(v) == WORKERS * INCREMENTS, "the key-value counter says %llu",
           (unsigned long long)get_le64(v));
    CHECK_OK(cairn_stats(fx.db, &s1));
    EXPECT(s1.commits - s0.commits == WORKERS * INCREMENTS, "%llu commits",
           (unsigned long long)(s1.commits - s0.commits));
    note("%d tasks (priorities 1-4) x %d transactions: document and key-value counters both at %ld, "
         "in %lu ticks; the counter changed hands %u times (lock-timeout retries %u/%u/%u/%u)",
         WORKERS, INCREMENTS, n, took, handovers, (unsigned)worker_retries[0], (unsigned)worker_retries[1],
         (unsigned)worker_retries[2], (unsigned)worker_retries[3]);
    fx_close(&fx);
}

/* ---- the clock ------------------------------------------------------------------------------ */

void test_clock_ticks(void) {
    cairn_fr_platform_t p;
    cairn_config_t c;
    memset(&p, 0, sizeof p);
    memset(&c, 0, sizeof c);
    CHECK_OK(cairn_fr_platform_init(&p, &c));
    EXPECT(c.now_ms != NULL && c.platform_ctx == &p, "the clock is the port's, on its platform");
    EXPECT(c.lock != NULL && c.unlock != NULL && c.lock_ctx == (void *)p.mutex, "the lock is the mutex");
    EXPECT(c.lock_timeout_ms == CAIRN_FR_LOCK_TIMEOUT_MS, "a zero timeout becomes %u, not %u",
           CAIRN_FR_LOCK_TIMEOUT_MS, (unsigned)c.lock_timeout_ms);
    EXPECT(c.log == NULL && c.random == NULL, "no sink and no source were given");

    /* Milliseconds from the tick count. */
    TickType_t t0 = xTaskGetTickCount();
    uint64_t m0 = cairn_fr_now_ms(&p);
    uint64_t via_cfg = c.now_ms(c.platform_ctx);
    TickType_t t1 = xTaskGetTickCount();
    EXPECT(m0 >= (uint64_t)t0 * portTICK_PERIOD_MS && via_cfg <= (uint64_t)t1 * portTICK_PERIOD_MS &&
               m0 <= via_cfg,
           "ticks %lu..%lu, clock %llu then %llu", t0, t1, (unsigned long long)m0,
           (unsigned long long)via_cfg);
    vTaskDelay(pdMS_TO_TICKS(50));
    uint64_t m1 = cairn_fr_now_ms(&p);
    EXPECT(m1 >= m0 + 50, "50 ms of delay moved the clock by %llu ms", (unsigned long long)(m1 - m0));
    /* TickType_t is 64 bits here: the counter never wraps, so a last reading above the current
     * one (impossible in a run) adds no period. The 32-bit wrap is tick32_clock's test. */
    if (sizeof(TickType_t) > sizeof(uint32_t)) {
        p.last_tick = UINT32_MAX;
        t0 = xTaskGetTickCount();
        uint64_t m2 = cairn_fr_now_ms(&p);
        t1 = xTaskGetTickCount();
        EXPECT(m2 >= (uint64_t)t0 * portTICK_PERIOD_MS && m2 <= (uint64_t)t1 * portTICK_PERIOD_MS &&
                   p.tick_high == 0,
               "a 64-bit tick count grew a wrap: clock %llu at ticks %lu, tick_high %llu",
               (unsigned long long)m2, t0, (unsigned long long)p.tick_high);
    }
    EXPECT(cairn_fr_now_ms(NULL) == 0, "no platform: 0");

    /* Database time and expiry run on it. */
    fx_init(&fx);
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    uint64_t a = 0, b = 0, n = 0;
    CHECK_OK(cairn_now(fx.db, &a));
    cairn_write_opts_t soon = {50, NULL, 0};
    CHECK_OK(cairn_doc_insert_with(fx.db, "ttl", "{\"k\":1}", &soon, NULL));
    CHECK_OK(cairn_doc_count(fx.db, "ttl", &n));
    EXPECT(n == 1, "%llu documents before expiry", (unsigned long long)n);
    vTaskDelay(pdMS_TO_TICKS(100));
    CHECK_OK(cairn_now(fx.db, &b));
    EXPECT(b >= a + 100, "100 ms of delay moved database time by %llu ms", (unsigned long long)(b - a));
    CHECK_OK(cairn_doc_count(fx.db, "ttl", &n));
    EXPECT(n == 0, "a document with a 50 ms TTL is still there after 100 ms");
    fx_close(&fx);
}

static uint64_t rtc_ms;
static uint32_t rtc_calls, rtc_bad_ctx;
static int rtc_token;

static uint64_t fake_rtc(void *ctx) {
    if (ctx == &rtc_token) rtc_calls++;
    else rtc_bad_ctx++;
    return rtc_ms;
}

void test_clock_rtc(void) {
    rtc_calls = rtc_bad_ctx = 0;
    rtc_ms = 1700000000000ull; /* a wall clock, far from the tick count */
    fx_init(&fx);
    fx.p.rtc = fake_rtc;
    fx.p.rtc_ctx = &rtc_token;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    EXPECT(cairn_fr_now_ms(&fx.p) == rtc_ms, "the port's clock is not the RTC");
    uint64_t now = 0, n = 0;
    CHECK_OK(cairn_now(fx.db, &now));
    EXPECT(now == rtc_ms, "database time %llu, RTC %llu", (unsigned long long)now,
           (unsigned long long)rtc_ms);
    /* Ticks pass, the RTC stands still: so does the time. */
    vTaskDelay(pdMS_TO_TICKS(30));
    CHECK_OK(cairn_now(fx.db, &now));
    EXPECT(now == rtc_ms, "database time moved to %llu without the RTC", (unsigned long long)now);
    /* The RTC moves: expiry follows it, not the ticks. */
    cairn_write_opts_t ttl = {1000, NULL, 0};
    CHECK_OK(cairn_doc_insert_with(fx.db, "ttl", "{\"k\":1}", &ttl, NULL));
    rtc_ms += 999;
    CHECK_OK(cairn_doc_count(fx.db, "ttl", &n));
    EXPECT(n == 1, "expired 1 ms early by the RTC");
    rtc_ms += 2;
    CHECK_OK(cairn_doc_count(fx.db, "ttl", &n));
    EXPECT(n == 0, "not expired 1 ms past its TTL by the RTC");
    CHECK_OK(cairn_now(fx.db, &now));
    EXPECT(now == rtc_ms, "database time %llu, RTC %llu", (unsigned long long)now,
           (unsigned long long)rtc_ms);
    EXPECT(rtc_calls > 0 && rtc_bad_ctx == 0, "RTC called %u times with its context, %u without",
           (unsigned)rtc_calls, (unsigned)rtc_bad_ctx);
    fx_close(&fx);
}

/* ---- the heap ------------------------------------------------------------------------------- */

void test_allocator(void) {
    /* main() called cairn_fr_use_freertos_heap() first: the hooks reached cairn_set_allocator. */
    CHECK_OK(g_use_heap_rc);
    EXPECT(heap_shim.set_calls == 1, "cairn_set_allocator called %u times", (unsigned)heap_shim.set_calls);
    EXPECT(heap_shim.real_rc == CAIRN_ERR_UNSUPPORTED,
           "the hosted library answered %d to the hooks", (int)heap_shim.real_rc);
    EXPECT(heap_shim.alloc != NULL && heap_shim.free != NULL, "no hooks installed");
    if (heap_shim.alloc == NULL || heap_shim.free == NULL) return;

    /* The hooks are heap_4's pvPortMalloc/vPortFree. */
    size_t f0 = xPortGetFreeHeapSize();
    uint8_t *blk = heap_shim.alloc(heap_shim.ctx, 1000);
    size_t f1 = xPortGetFreeHeapSize();
    EXPECT(blk != NULL && blk >= ucHeap && blk + 1000 <= ucHeap + configTOTAL_HEAP_SIZE,
           "the block is not from heap_4");
    EXPECT(((uintptr_t)blk % portBYTE_ALIGNMENT) == 0, "misaligned block");
    EXPECT(f1 + 1000 <= f0, "heap_4 free %zu -> %zu for 1000 bytes", f0, f1);
    heap_shim.free(heap_shim.ctx, blk);
    EXPECT(xPortGetFreeHeapSize() == f0, "heap_4 free %zu after the free, %zu before",
           xPortGetFreeHeapSize(), f0);

    /* The library's heap is heap_4: an open database takes from it, a close gives it all back. */
    uint64_t allocs0 = heap_shim.hook_allocs, frees0 = heap_shim.hook_frees;
    size_t start = xPortGetFreeHeapSize();
    fx_init(&fx);
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    size_t opened = xPortGetFreeHeapSize();
    EXPECT(opened < start, "heap_4 free %zu with a database open, %zu before", opened, start);
    for (int i = 0; i < 40; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"room\":\"r%d\",\"t\":%d}", i % 4, 150 + i);
        CHECK_OK(cairn_doc_insert(fx.db, "temps", doc, NULL));
    }
    const char *fields[] = {"room"};
    CHECK_OK(cairn_index_create(fx.db, "temps", "by_room", fields, 1, false));
    uint64_t n = 0;
    CHECK_OK(cairn_find_count(fx.db, "temps", "{\"room\":\"r2\"}", &n));
    EXPECT(n == 10, "%llu found", (unsigned long long)n);
    size_t busy = xPortGetFreeHeapSize();
    /* Hooks are fixed once the library has allocated, as on the device. */
    CHECK_RC(cairn_fr_use_freertos_heap(), CAIRN_ERR_BUSY);
    fx_close(&fx);
    size_t end = xPortGetFreeHeapSize();
    uint64_t allocs = heap_shim.hook_allocs - allocs0, frees = heap_shim.hook_frees - frees0;
    EXPECT(end == start, "heap_4 free %zu before the database, %zu after its close (%ld bytes kept)",
           start, end, (long)start - (long)end);
    EXPECT(allocs == frees, "%llu allocations, %llu frees", (unsigned long long)allocs,
           (unsigned long long)frees);
    EXPECT(heap_shim.libc_allocs == 0, "%llu library allocations bypassed the hooks",
           (unsigned long long)heap_shim.libc_allocs);
    note("an open database held %zu bytes of heap_4 (%zu with 40 documents and an index); "
         "%llu allocations, all freed by the close; lowest free ever %zu of %u",
         start - opened, start - busy, (unsigned long long)allocs, xPortGetMinimumEverFreeHeapSize(),
         (unsigned)configTOTAL_HEAP_SIZE);
}

/* ---- the log sink and the random hook ------------------------------------------------------- */

void test_log_sink(void) {
    logcap_reset();
    fx_init(&fx);
    fx.p.log = logcap_sink;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    EXPECT(fx.cfg.log != NULL, "the port did not route the log");
    EXPECT(logcap_find(CAIRN_LOG_INFO, "cairn_format: formatted"), "no INFO line for the format");
    char buf[64];
    CHECK_RC(cairn_doc_get(fx.db, "nothing", 7, buf, sizeof buf, NULL), CAIRN_ERR_NOT_FOUND);
    EXPECT(logcap_find(CAIRN_LOG_DEBUG, "cairn_doc_get:"), "no DEBUG line for a not-found answer");
    int32_t rc = cairn_doc_insert(fx.db, "c", "{not json", NULL);
    EXPECT(rc != CAIRN_OK, "bad JSON inserted");
    EXPECT(logcap_find(CAIRN_LOG_ERROR, "cairn_doc_insert:"), "no ERROR line for a failed call");
    fx_close(&fx);
    EXPECT(logcap_find(CAIRN_LOG_INFO, "cairn_close: closed"), "no INFO line for the close");
    uint32_t lines = logcap_count();
    int32_t level = 0;
    const char *first = logcap_line(0, &level);
    note("%u lines reached the sink, the first at level %d: \"%s\"", (unsigned)lines, (int)level,
         first != NULL ? first : "");

    /* Without a sink the port leaves the library's log off. */
    fx_init(&fx);
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    EXPECT(fx.cfg.log == NULL, "a log callback without a sink");
    (void)cairn_doc_insert(fx.db, "c", "{not json", NULL);
    fx_close(&fx);
    EXPECT(logcap_count() == lines, "lines reached the sink without one set");
}

static uint32_t rnd_calls;
static size_t rnd_bytes;
static bool rnd_fail;

static int32_t rnd(uint8_t *buf, size_t len) {
    rnd_calls++;
    rnd_bytes += len;
    if (rnd_fail) return -1;
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(0xA5 ^ (i * 29) ^ rnd_calls);
    return 0;
}

void test_random_hook(void) {
    static const char pass[] = "correct horse battery";
    const cairn_key_t pk = {NULL, (const uint8_t *)pass, sizeof pass - 1, 1000};
    const cairn_key_t wrong = {NULL, (const uint8_t *)"wrong", 5, 1000};
    rnd_calls = 0;
    rnd_bytes = 0;
    rnd_fail = false;

    /* A passphrase database needs a salt from the random hook. */
    fx_init(&fx);
    fx.p.random = rnd;
    CHECK_OK(fx_format(&fx, &pk));
    EXPECT(fx.cfg.random != NULL, "the port did not route the random hook");
    EXPECT(rnd_calls > 0 && rnd_bytes >= 16, "the hook gave %zu bytes in %u calls", rnd_bytes,
           (unsigned)rnd_calls);
    uint32_t calls_format = rnd_calls;
    size_t bytes_format = rnd_bytes;
    if (fx.db != NULL) CHECK_OK(cairn_doc_insert(fx.db, "c", "{\"x\":1}", NULL));
    fx_close(&fx);
    CHECK_RC(cairn_open(&fx.db, &fx.cfg, &wrong), CAIRN_ERR_WRONG_KEY);
    CHECK_OK(cairn_open(&fx.db, &fx.cfg, &pk));
    uint64_t n = 0;
    if (fx.db != NULL) CHECK_OK(cairn_doc_count(fx.db, "c", &n));
    EXPECT(n == 1, "%llu documents after reopening with the passphrase", (unsigned long long)n);
    fx_close(&fx);

    /* No hook: the port gives the library no source, and a passphrase format is refused. */
    fx_init(&fx);
    CHECK_RC(fx_format(&fx, &pk), CAIRN_ERR_INVALID_ARGUMENT);
    EXPECT(fx.cfg.random == NULL, "a random callback without a hook");
    fx_close(&fx);

    /* A failing hook: the format fails with CAIRN_ERR_IO. */
    fx_init(&fx);
    fx.p.random = rnd;
    rnd_fail = true;
    uint32_t before = rnd_calls;
    CHECK_RC(fx_format(&fx, &pk), CAIRN_ERR_IO);
    EXPECT(rnd_calls > before, "the failing hook was not called");
    rnd_fail = false;
    fx_close(&fx);
    note("a passphrase format drew %zu random bytes in %u call(s) through the hook; without a "
         "hook it was refused, with a failing one it failed",
         bytes_format, (unsigned)calls_format);
}
