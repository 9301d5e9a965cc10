/*
 * The port's tick clock (cairn_fr_now_ms in freertos-port/cairn_freertos.c, compiled
 * unchanged) with a 32-bit TickType_t, as on a Cortex-M: the POSIX port's 64-bit tick count
 * never wraps, so the wrap logic is tested here, on a tick count the test sets, across
 * several wraps of the counter. No scheduler: portmacro.h beside this file is a stand-in, and
 * the kernel functions the port's other parts call are stubs that fail if reached.
 * Prints `ok tick32_clock` or `FAIL tick32_clock: ...`; exits 0 when every check passed.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_freertos.h"

_Static_assert(sizeof(TickType_t) == 4, "this test is about a 32-bit tick count");

static TickType_t ticks;
static int nesting, max_nesting, failures;

TickType_t xTaskGetTickCount(void) { return ticks; }
void vPortEnterCritical(void) {
    if (++nesting > max_nesting) max_nesting = nesting;
}
void vPortExitCritical(void) { nesting--; }

/* The rest of the port is not under test here. */
#define STUB(ret, name, ...)                                      \
    ret name(__VA_ARGS__) {                                       \
        fprintf(stderr, "FAIL tick32_clock: %s called\n", #name); \
        exit(1);                                                  \
    }
STUB(void *, pvPortMalloc, size_t n)
STUB(void, vPortFree, void *p)
STUB(int32_t, cairn_set_allocator, cairn_malloc_fn a, cairn_free_fn f, void *c)
STUB(int32_t, cairn_maint_pass, cairn_db_t *db, const cairn_maint_config_t *cfg,
     cairn_maint_stats_t *st, cairn_maint_log_fn log, void *ctx)
STUB(QueueHandle_t, xQueueCreateMutexStatic, const uint8_t t, StaticQueue_t *b)
STUB(BaseType_t, xQueueTakeMutexRecursive, QueueHandle_t m, TickType_t t)
STUB(BaseType_t, xQueueGiveMutexRecursive, QueueHandle_t m)
STUB(BaseType_t, xTaskCreate, TaskFunction_t f, const char *const n, const configSTACK_DEPTH_TYPE s,
     void *const p, UBaseType_t pr, TaskHandle_t *const h)
STUB(void, vTaskDelete, TaskHandle_t t)
STUB(uint32_t, ulTaskGenericNotifyTake, UBaseType_t i, BaseType_t c, TickType_t t)
STUB(BaseType_t, xTaskGenericNotify, TaskHandle_t t, UBaseType_t i, uint32_t v, eNotifyAction a,
     uint32_t *p)
STUB(TaskHandle_t, xTaskGetCurrentTaskHandle, void)
STUB(UBaseType_t, uxTaskGetStackHighWaterMark, TaskHandle_t t)

#define EXPECT_MS(got, want)                                                                 \
    do {                                                                                     \
        uint64_t g_ = (got), w_ = (want);                                                    \
        if (g_ != w_) {                                                                      \
            fprintf(stderr, "FAIL tick32_clock: line %d: ticks %lu: %llu ms, expected %llu\n", \
                    __LINE__, (unsigned long)ticks, (unsigned long long)g_,                  \
                    (unsigned long long)w_);                                                 \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

static uint64_t rtc_value(void *ctx) { return *(uint64_t *)ctx; }

int main(void) {
    const uint64_t period = (uint64_t)1 << 32; /* ticks per wrap */
    const uint64_t ms = portTICK_PERIOD_MS;    /* 10 at 100 Hz */
    cairn_fr_platform_t p;
    memset(&p, 0, sizeof p);

    ticks = 5;
    EXPECT_MS(cairn_fr_now_ms(&p), 5 * ms);
    /* The last tick before the wrap, then past it: one period more. */
    ticks = UINT32_MAX - 2;
    EXPECT_MS(cairn_fr_now_ms(&p), (period - 3) * ms);
    ticks = 4;
    EXPECT_MS(cairn_fr_now_ms(&p), (period + 4) * ms);
    EXPECT_MS(cairn_fr_now_ms(&p), (period + 4) * ms); /* a second read adds nothing */
    ticks = UINT32_MAX;
    EXPECT_MS(cairn_fr_now_ms(&p), (2 * period - 1) * ms);
    ticks = 0;
    EXPECT_MS(cairn_fr_now_ms(&p), 2 * period * ms);
    /* Reads a quarter period apart across three more wraps: exact and increasing. */
    uint64_t ideal = 2 * period, last = 0;
    for (int i = 0; i < 12; i++) {
        ideal += period / 4 + 7;
        ticks = (TickType_t)ideal;
        uint64_t now = cairn_fr_now_ms(&p);
        EXPECT_MS(now, ideal * ms);
        if (now <= last) {
            fprintf(stderr, "FAIL tick32_clock: the clock went from %llu to %llu ms\n",
                    (unsigned long long)last, (unsigned long long)now);
            failures++;
        }
        last = now;
    }
    if (nesting != 0 || max_nesting != 1) {
        fprintf(stderr, "FAIL tick32_clock: critical sections: nesting %d, deepest %d\n", nesting,
                max_nesting);
        failures++;
    }
    /* With an RTC hook the hook is the clock, and the tick state is left alone. */
    uint64_t rtc = 1700000000000ull;
    TickType_t last_tick = p.last_tick;
    p.rtc = rtc_value;
    p.rtc_ctx = &rtc;
    ticks = 1;
    EXPECT_MS(cairn_fr_now_ms(&p), rtc);
    if (p.last_tick != last_tick) {
        fprintf(stderr, "FAIL tick32_clock: the RTC read moved the tick state\n");
        failures++;
    }
    EXPECT_MS(cairn_fr_now_ms(NULL), 0);

    if (failures == 0)
        printf("ok tick32_clock (32-bit ticks at %u Hz: exact across 5 wraps of the counter)\n",
               (unsigned)configTICK_RATE_HZ);
    else
        printf("FAIL tick32_clock: %d check(s) failed\n", failures);
    return failures == 0 ? 0 : 1;
}
