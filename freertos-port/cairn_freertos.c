/*
 * cairndb on FreeRTOS: see cairn_freertos.h.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include "cairn_freertos.h"

#include <stdio.h>
#include <string.h>

static void *fr_malloc(void *ctx, size_t size) {
    (void)ctx;
    return pvPortMalloc(size); /* portBYTE_ALIGNMENT is 8 on Cortex-M: what cairndb asks */
}

static void fr_free(void *ctx, void *ptr) {
    (void)ctx;
    vPortFree(ptr);
}

int32_t cairn_fr_use_freertos_heap(void) { return cairn_set_allocator(fr_malloc, fr_free, NULL); }

/* The lock: a recursive mutex, so a transaction (which holds it from begin to end) can make
 * calls that take it again. FreeRTOS mutexes inherit the priority of the highest waiter. */
static int32_t fr_lock(void *ctx, uint32_t timeout_ms) {
    TickType_t ticks = timeout_ms == CAIRN_WAIT_FOREVER ? portMAX_DELAY : pdMS_TO_TICKS(timeout_ms);
    if (timeout_ms != CAIRN_WAIT_FOREVER && ticks == 0 && timeout_ms != 0) ticks = 1;
    return xSemaphoreTakeRecursive((SemaphoreHandle_t)ctx, ticks) == pdTRUE ? 0 : 1;
}

static void fr_unlock(void *ctx) { (void)xSemaphoreGiveRecursive((SemaphoreHandle_t)ctx); }

uint64_t cairn_fr_now_ms(cairn_fr_platform_t *p) {
    if (p == NULL) return 0;
    if (p->rtc != NULL) return p->rtc(p->rtc_ctx);
    uint64_t ticks;
    taskENTER_CRITICAL();
    TickType_t t = xTaskGetTickCount();
    /* A wrap adds one period of the counter: 2^32 ticks for a 32-bit TickType_t. Written as
     * max + 1 rather than 1 << width: for a 64-bit TickType_t (the POSIX port, or
     * configTICK_TYPE_WIDTH_IN_BITS 64) that shift would be undefined, while max + 1 is 0,
     * right for a counter that never wraps. */
    if (t < p->last_tick) p->tick_high += (uint64_t)(TickType_t)~(TickType_t)0 + 1u;
    p->last_tick = t;
    ticks = p->tick_high + t;
    taskEXIT_CRITICAL();
    return ticks * (uint64_t)portTICK_PERIOD_MS;
}

/* The clock, log and random callbacks get the platform through the config's `platform_ctx`,
 * so each handle has its own (the flash driver keeps `ctx`). */
static uint64_t fr_now(void *ctx) { return cairn_fr_now_ms(ctx); }

static void fr_log(void *ctx, int32_t level, const char *msg) {
    cairn_fr_platform_t *p = ctx;
    if (p != NULL && p->log != NULL) p->log(level, msg);
}

static int32_t fr_random(void *ctx, uint8_t *buf, size_t len) {
    cairn_fr_platform_t *p = ctx;
    if (p == NULL || p->random == NULL) return -1; /* no source: refuse */
    return p->random(buf, len);
}

int32_t cairn_fr_platform_init(cairn_fr_platform_t *p, cairn_config_t *cfg) {
    if (p == NULL || cfg == NULL) return CAIRN_ERR_NULL;
    p->mutex = xSemaphoreCreateRecursiveMutexStatic(&p->mutex_buf);
    if (p->mutex == NULL) return CAIRN_ERR_NO_MEMORY;
    p->last_tick = 0;
    p->tick_high = 0;
    cfg->platform_ctx = p;
    cfg->lock = fr_lock;
    cfg->unlock = fr_unlock;
    cfg->lock_ctx = p->mutex;
    if (cfg->lock_timeout_ms == 0) cfg->lock_timeout_ms = CAIRN_FR_LOCK_TIMEOUT_MS;
    cfg->now_ms = fr_now;
    cfg->log = p->log != NULL ? fr_log : NULL;
    cfg->random = p->random != NULL ? fr_random : NULL;
    return CAIRN_OK;
}

char *cairn_fr_u64_str(char *buf, uint64_t v) {
    char tmp[21];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
    return buf;
}

/* Lines of the maintenance pass go to the platform's log sink. */
static void bg_log(void *ctx, int32_t level, const char *line) {
    cairn_fr_platform_t *p = ctx;
    if (p != NULL && p->log != NULL) p->log(level, line);
}

static void bg_task(void *arg) {
    cairn_fr_bg_t *bg = arg;
    TickType_t last = xTaskGetTickCount();
    while (!bg->stop) {
        (void)cairn_maint_pass(bg->db, &bg->maint, &bg->stats, bg_log, bg->p);
        /* Sleep a period, or until cairn_fr_bg_stop() notifies. */
        if (!bg->stop) {
            TickType_t period = pdMS_TO_TICKS(bg->cfg.period_ms);
            TickType_t now = xTaskGetTickCount();
            TickType_t wait = (TickType_t)(now - last) >= period ? 0 : period - (now - last);
            (void)ulTaskNotifyTake(pdTRUE, wait);
            last = xTaskGetTickCount();
        }
    }
    bg->stack_free_words = uxTaskGetStackHighWaterMark(NULL);
    TaskHandle_t stopper = bg->stopper;
    bg->task = NULL;
    if (stopper != NULL) xTaskNotifyGive(stopper);
    vTaskDelete(NULL);
}

int32_t cairn_fr_bg_start(cairn_fr_bg_t *bg, cairn_db_t *db, cairn_fr_platform_t *p,
                          const cairn_fr_bg_config_t *cfg) {
    if (bg == NULL || db == NULL) return CAIRN_ERR_NULL;
    memset(bg, 0, sizeof *bg);
    if (cfg != NULL) bg->cfg = *cfg;
    if (bg->cfg.stack_words == 0) bg->cfg.stack_words = CAIRN_FR_BG_STACK_WORDS;
    if (bg->cfg.priority == 0) bg->cfg.priority = CAIRN_FR_BG_PRIORITY;
    if (bg->cfg.period_ms == 0) bg->cfg.period_ms = CAIRN_FR_BG_PERIOD_MS;
    if (bg->cfg.sweep_budget == 0) bg->cfg.sweep_budget = CAIRN_FR_SWEEP_BUDGET;
    if (bg->cfg.compact_garbage_percent == 0)
        bg->cfg.compact_garbage_percent = CAIRN_FR_COMPACT_GARBAGE_PERCENT;
    if (bg->cfg.compact_min_segments == 0) bg->cfg.compact_min_segments = CAIRN_FR_COMPACT_MIN_SEGMENTS;
    if (bg->cfg.backup_interval_ms == 0) bg->cfg.backup_interval_ms = CAIRN_FR_BACKUP_INTERVAL_MS;
    bg->db = db;
    bg->p = p;
    bg->maint.sweep_budget = bg->cfg.sweep_budget;
    bg->maint.no_sweep = bg->cfg.no_sweep;
    bg->maint.compact_garbage_percent = bg->cfg.compact_garbage_percent;
    bg->maint.compact_min_segments = bg->cfg.compact_min_segments;
    bg->maint.backup_ring = bg->cfg.backup_ring;
    bg->maint.backup_key = bg->cfg.backup_key;
    bg->maint.backup_interval_ms = bg->cfg.backup_interval_ms;
    if (xTaskCreate(bg_task, "cairn-bg", (configSTACK_DEPTH_TYPE)bg->cfg.stack_words, bg,
                    bg->cfg.priority, &bg->task) != pdPASS)
        return CAIRN_ERR_NO_MEMORY;
    return CAIRN_OK;
}

int32_t cairn_fr_bg_stop(cairn_fr_bg_t *bg, uint32_t timeout_ms) {
    if (bg == NULL) return CAIRN_ERR_NULL;
    taskENTER_CRITICAL();
    TaskHandle_t task = bg->task;
    bg->stopper = xTaskGetCurrentTaskHandle();
    bg->stop = 1;
    taskEXIT_CRITICAL();
    if (task == NULL) return CAIRN_OK;
    (void)ulTaskNotifyTake(pdTRUE, 0); /* drop a stale notification */
    xTaskNotifyGive(task);
    TickType_t wait = timeout_ms == CAIRN_WAIT_FOREVER ? portMAX_DELAY : pdMS_TO_TICKS(timeout_ms);
    while (bg->task != NULL) {
        if (ulTaskNotifyTake(pdTRUE, wait) == 0 && bg->task != NULL) return CAIRN_ERR_TIMEOUT;
    }
    return CAIRN_OK;
}
