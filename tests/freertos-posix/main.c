/*
 * Host tests of cairndb's FreeRTOS port (freertos-port/) under the real FreeRTOS scheduler:
 * FreeRTOS-Kernel V11.2 with its POSIX port on Linux, heap_4, the host libcairndb.a (its heap
 * routed to heap_4 through the port, see heap_shim.c), and a strict RAM NOR flash. Run by
 * `cargo xtask freertos-host` (a step of `cargo xtask test`).
 *
 * One process, the scheduler started once: a runner task runs each test in turn and prints
 * `ok <name>` or `FAIL <name>: <reasons>`, then a summary, then ends the scheduler; main()
 * returns 0 when every test passed, 1 otherwise. A failed configASSERT or an exhausted heap
 * ends the process with status 2; a watchdog thread (outside FreeRTOS) ends it with status 3
 * when a test runs longer than WATCHDOG_TEST_S, so a hang fails instead of stalling CI.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/** Longest run of one test before the watchdog ends the process. */
#define WATCHDOG_TEST_S 30

typedef struct {
    const char *name;
    void (*fn)(void);
} test_t;

static const test_t tests[] = {
    {"allocator", test_allocator},
    {"lock_timeout", test_lock_timeout},
    {"lock_recursion", test_lock_recursion},
    {"priority_inheritance", test_priority_inheritance},
    {"concurrency", test_concurrency},
    {"clock_ticks", test_clock_ticks},
    {"clock_rtc", test_clock_rtc},
    {"log_sink", test_log_sink},
    {"random_hook", test_random_hook},
    {"bg_lifecycle", test_bg_lifecycle},
    {"bg_compaction", test_bg_compaction},
    {"bg_ttl_sweep", test_bg_ttl_sweep},
    {"bg_backup_ring", test_bg_backup_ring},
};
#define N_TESTS (sizeof tests / sizeof tests[0])

/* ---- output ------------------------------------------------------------------------------- */

static void write_all(const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w < 0) {
            if (errno == EINTR) continue; /* the tick signal (no SA_RESTART) */
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

void out(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    write_all(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* The current test's failures and notes, filled from any task. */
static char reasons[1024];
static size_t reasons_len;
static volatile unsigned fail_count;
static char notes[1024];
static size_t notes_len;
static volatile const char *current_test = "(start-up)";
volatile bool g_stop_run;

static void append(char *buf, size_t cap, size_t *len, const char *sep, const char *s) {
    int n = snprintf(buf + *len, cap - *len, "%s%s", *len > 0 ? sep : "", s);
    if (n > 0) *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

void failf(const char *fmt, ...) {
    char line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    taskENTER_CRITICAL();
    if (fail_count < 6) append(reasons, sizeof reasons, &reasons_len, "; ", line);
    fail_count++;
    taskEXIT_CRITICAL();
}

void note(const char *fmt, ...) {
    char line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    taskENTER_CRITICAL();
    append(notes, sizeof notes, &notes_len, "\n", line);
    taskEXIT_CRITICAL();
}

/* ---- the log capture ---------------------------------------------------------------------- */

#define LOGCAP_LINES 64
static struct {
    int32_t level;
    char line[CAIRN_FR_LOG_LINE];
} logcap[LOGCAP_LINES];
static volatile uint32_t logcap_n;

void logcap_reset(void) {
    taskENTER_CRITICAL();
    logcap_n = 0;
    taskEXIT_CRITICAL();
}

void logcap_sink(int32_t level, const char *line) {
    taskENTER_CRITICAL();
    if (logcap_n < LOGCAP_LINES) {
        logcap[logcap_n].level = level;
        snprintf(logcap[logcap_n].line, sizeof logcap[0].line, "%s", line);
    }
    logcap_n++;
    taskEXIT_CRITICAL();
}

uint32_t logcap_count(void) { return logcap_n; }

const char *logcap_line(uint32_t i, int32_t *level) {
    if (i >= logcap_n || i >= LOGCAP_LINES) return NULL;
    if (level != NULL) *level = logcap[i].level;
    return logcap[i].line;
}

bool logcap_find(int32_t level, const char *text) {
    for (uint32_t i = 0; i < logcap_n && i < LOGCAP_LINES; i++)
        if (logcap[i].level == level && strstr(logcap[i].line, text) != NULL) return true;
    return false;
}

/* ---- tasks and events --------------------------------------------------------------------- */

EventGroupHandle_t g_events;
static StaticEventGroup_t events_buf;

TaskHandle_t spawn(const char *name, TaskFunction_t fn, void *arg, UBaseType_t priority) {
    TaskHandle_t h = NULL;
    if (xTaskCreate(fn, name, HELPER_STACK_WORDS, arg, priority, &h) != pdPASS) {
        failf("xTaskCreate(%s) failed", name);
        return NULL;
    }
    return h;
}

bool wait_bits(EventBits_t bits, uint32_t ms) {
    EventBits_t got = xEventGroupWaitBits(g_events, bits, pdTRUE, pdTRUE, pdMS_TO_TICKS(ms));
    return (got & bits) == bits;
}

void set_bits(EventBits_t bits) { (void)xEventGroupSetBits(g_events, bits); }

/* ---- fixtures ----------------------------------------------------------------------------- */

fixture_t fx;
static uint8_t fx_mem[FX_BLOCKS * RAMNOR_BLOCK];
static const uint8_t key_bytes[CAIRN_KEY_LEN] = {0x51, 0x7e, 0x02, 0x99, 0xc4, 0x10, 0x3d, 0x8a,
                                                 0x6f, 0x21, 0xb0, 0x47, 0x5c, 0xe8, 0x13, 0x7a};
const cairn_key_t test_key = {key_bytes, NULL, 0, 0};

void fx_init(fixture_t *f) {
    memset(f, 0, sizeof *f);
    ramnor_init(&f->nor, fx_mem, FX_BLOCKS);
}

int32_t fx_format(fixture_t *f, const cairn_key_t *key) {
    ramnor_config(&f->nor, &f->cfg);
    int32_t rc = cairn_fr_platform_init(&f->p, &f->cfg);
    if (rc != CAIRN_OK) return rc;
    return cairn_format(&f->db, &f->cfg, key != NULL ? key : &test_key);
}

void fx_close(fixture_t *f) {
    if (f->db != NULL) CHECK_OK(cairn_close(f->db));
    f->db = NULL;
    if (f->nor.violations > 0)
        failf("the flash saw %u access(es) a NOR chip refuses; first: %s", (unsigned)f->nor.violations,
              f->nor.first_violation);
}

long json_int(const char *json, const char *field) {
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *at = strstr(json, pat);
    return at == NULL ? -1 : strtol(at + strlen(pat), NULL, 10);
}

/* ---- the watchdog ------------------------------------------------------------------------- */

static int64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Deadline of the running test in CLOCK_MONOTONIC nanoseconds; 0: none. */
static volatile int64_t watchdog_deadline;

/* A plain pthread, not a task: it runs whatever the scheduler does (a task stuck in a
 * critical section blocks every FreeRTOS timer), with every signal blocked so that no tick
 * lands here. */
static void *watchdog(void *arg) {
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        int64_t d = __atomic_load_n(&watchdog_deadline, __ATOMIC_ACQUIRE);
        if (d != 0 && mono_ns() > d) {
            out("FAIL %s: watchdog: still running after %d s (a hang); %u failure(s) so far: %s\n",
                (const char *)current_test, WATCHDOG_TEST_S, (unsigned)fail_count, reasons);
            _exit(3);
        }
    }
    return NULL;
}

static void arm_watchdog(int seconds) {
    __atomic_store_n(&watchdog_deadline, seconds == 0 ? 0 : mono_ns() + (int64_t)seconds * 1000000000,
                     __ATOMIC_RELEASE);
}

/* ---- FreeRTOS hooks ----------------------------------------------------------------------- */

void test_assert_failed(const char *file, int line) {
    out("FAIL %s: configASSERT failed at %s:%d\n", (const char *)current_test, file, line);
    _exit(2);
}

void vApplicationMallocFailedHook(void) {
    out("FAIL %s: pvPortMalloc failed: heap_4 exhausted (%u bytes)\n", (const char *)current_test,
        (unsigned)configTOTAL_HEAP_SIZE);
    _exit(2);
}

/* The idle task sleeps instead of spinning a core; the next tick (SIGALRM) cuts the sleep
 * short (EINTR) when there is work. */
void vApplicationIdleHook(void) {
    struct timespec ts = {0, 1000 * 1000};
    (void)nanosleep(&ts, NULL);
}

void vApplicationGetIdleTaskMemory(StaticTask_t **tcb, StackType_t **stack,
                                   configSTACK_DEPTH_TYPE *words) {
    static StaticTask_t idle_tcb;
    static StackType_t idle_stack[configMINIMAL_STACK_SIZE];
    *tcb = &idle_tcb;
    *stack = idle_stack;
    *words = configMINIMAL_STACK_SIZE;
}

void vApplicationGetTimerTaskMemory(StaticTask_t **tcb, StackType_t **stack,
                                    configSTACK_DEPTH_TYPE *words) {
    static StaticTask_t timer_tcb;
    static StackType_t timer_stack[configTIMER_TASK_STACK_DEPTH];
    *tcb = &timer_tcb;
    *stack = timer_stack;
    *words = configTIMER_TASK_STACK_DEPTH;
}

/* ---- the runner --------------------------------------------------------------------------- */

int32_t g_use_heap_rc = 1;
static int exit_code = 1;

static void runner(void *arg) {
    (void)arg;
    g_events = xEventGroupCreateStatic(&events_buf);
    out("freertos-posix: %u tests of freertos-port/ on FreeRTOS %s (POSIX port, %u Hz tick, "
        "heap_4 of %u KiB)\n",
        (unsigned)N_TESTS, tskKERNEL_VERSION_NUMBER, (unsigned)configTICK_RATE_HZ,
        (unsigned)(configTOTAL_HEAP_SIZE / 1024));
    int64_t run_start = mono_ns();
    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < N_TESTS; i++) {
        const test_t *t = &tests[i];
        if (g_stop_run) {
            out("FAIL %s: not run: an earlier test left a task stuck\n", t->name);
            failed++;
            continue;
        }
        taskENTER_CRITICAL();
        reasons_len = notes_len = 0;
        reasons[0] = notes[0] = 0;
        fail_count = 0;
        current_test = t->name;
        taskEXIT_CRITICAL();
        (void)xEventGroupClearBits(g_events, (EventBits_t)0x00FFFFFF);
        arm_watchdog(WATCHDOG_TEST_S);
        int64_t t0 = mono_ns();
        t->fn();
        double secs = (double)(mono_ns() - t0) / 1e9;
        /* Let the idle task reclaim the helpers that deleted themselves. */
        vTaskDelay(pdMS_TO_TICKS(5));
        if (fail_count == 0) {
            out("ok %s (%.2f s)\n", t->name, secs);
            passed++;
        } else {
            out("FAIL %s: %s%s\n", t->name, reasons, fail_count > 6 ? "; ..." : "");
            failed++;
        }
        if (notes_len > 0) out("   %s\n", notes);
    }
    current_test = "(shutdown)";
    out("freertos-posix: %u passed, %u failed in %.1f s\n", passed, failed,
        (double)(mono_ns() - run_start) / 1e9);
    exit_code = failed == 0 ? 0 : 1;
    arm_watchdog(10);
    /* Ends the scheduler: main() returns from vTaskStartScheduler() with exit_code. The POSIX
     * port parks this task for good. */
    vTaskEndScheduler();
    _exit(exit_code); /* not reached */
}

int main(void) {
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0) {
        out("FAIL: cannot start the watchdog thread\n");
        return 1;
    }
    /* First of all, as a firmware does: the library's heap is heap_4 from here on. */
    g_use_heap_rc = cairn_fr_use_freertos_heap();
    if (xTaskCreate(runner, "runner", 4096, NULL, RUNNER_PRIORITY, NULL) != pdPASS) {
        out("FAIL: cannot create the runner task\n");
        return 1;
    }
    vTaskStartScheduler();
    return exit_code;
}
