/*
 * cairndb on FreeRTOS: see cairn_freertos.h.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include "cairn_freertos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The clock, log and random callbacks receive the config's device `ctx`, not the platform, so
 * the platform they serve is the one registered last (one per firmware, like the clock it
 * reads). The lock gets its own mutex through `lock_ctx` and has no such limit. */
static cairn_fr_platform_t *g_platform;

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
    if (t < p->last_tick) p->tick_high += (uint64_t)1 << (8 * sizeof(TickType_t));
    p->last_tick = t;
    ticks = p->tick_high + t;
    taskEXIT_CRITICAL();
    return ticks * (uint64_t)portTICK_PERIOD_MS;
}

static uint64_t fr_now(void *ctx) {
    (void)ctx;
    return cairn_fr_now_ms(g_platform);
}

static void fr_log(void *ctx, int32_t level, const char *msg) {
    (void)ctx;
    if (g_platform != NULL && g_platform->log != NULL) g_platform->log(level, msg);
}

static int32_t fr_random(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    if (g_platform == NULL || g_platform->random == NULL) return -1; /* no source: refuse */
    return g_platform->random(buf, len);
}

int32_t cairn_fr_platform_init(cairn_fr_platform_t *p, cairn_config_t *cfg) {
    if (p == NULL || cfg == NULL) return CAIRN_ERR_NULL;
    p->mutex = xSemaphoreCreateRecursiveMutexStatic(&p->mutex_buf);
    if (p->mutex == NULL) return CAIRN_ERR_NO_MEMORY;
    p->last_tick = 0;
    p->tick_high = 0;
    g_platform = p;
    cfg->lock = fr_lock;
    cfg->unlock = fr_unlock;
    cfg->lock_ctx = p->mutex;
    if (cfg->lock_timeout_ms == 0) cfg->lock_timeout_ms = CAIRN_FR_LOCK_TIMEOUT_MS;
    cfg->now_ms = fr_now;
    cfg->log = p->log != NULL ? fr_log : NULL;
    cfg->random = p->random != NULL ? fr_random : NULL;
    return CAIRN_OK;
}

/* Collects the `_id`s of a find with projection {"_id":1}: each result is {"_id":N}. */
typedef struct {
    uint64_t *ids;
    uint32_t n, cap;
} id_list_t;

static int32_t collect_id(void *ctx, const char *json, size_t len) {
    id_list_t *l = ctx;
    (void)len;
    const char *at = strstr(json, "\"_id\":");
    if (at == NULL) return CAIRN_ERR_CORRUPT;
    if (l->n < l->cap) l->ids[l->n++] = strtoull(at + 6, NULL, 10);
    return l->n < l->cap ? 0 : 1; /* 1: enough, stop */
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

#define SWEEP_MAX 64u

int32_t cairn_fr_ttl_sweep(cairn_db_t *db, cairn_fr_platform_t *p, const char *coll,
                           const char *field, uint32_t budget, uint32_t *removed) {
    uint64_t ids[SWEEP_MAX];
    char filter[96], options[64];
    if (removed != NULL) *removed = 0;
    if (db == NULL || coll == NULL || field == NULL) return CAIRN_ERR_NULL;
    if (budget == 0) return CAIRN_OK;
    if (budget > SWEEP_MAX) budget = SWEEP_MAX;
    char now[21];
    cairn_fr_u64_str(now, cairn_fr_now_ms(p));
    if ((size_t)snprintf(filter, sizeof filter, "{\"%s\":{\"$lte\":%s}}", field, now) >= sizeof filter)
        return CAIRN_ERR_INVALID_NAME;
    snprintf(options, sizeof options, "{\"limit\":%u,\"projection\":{\"_id\":1}}", (unsigned)budget);
    cairn_txn_t *txn = NULL;
    int32_t rc = cairn_txn_begin(db, &txn);
    if (rc != CAIRN_OK) return rc;
    id_list_t l = {ids, 0, budget};
    rc = cairn_txn_find(txn, coll, filter, options, collect_id, &l);
    for (uint32_t i = 0; rc == CAIRN_OK && i < l.n; i++) rc = cairn_txn_doc_delete(txn, coll, ids[i]);
    if (rc != CAIRN_OK) {
        (void)cairn_txn_rollback(txn);
        return rc == CAIRN_ERR_NOT_FOUND && l.n == 0 ? CAIRN_OK : rc;
    }
    rc = cairn_txn_commit(txn);
    if (rc == CAIRN_OK && removed != NULL) *removed = l.n;
    return rc;
}

static void bg_task(void *arg) {
    cairn_fr_bg_t *bg = arg;
    TickType_t last = xTaskGetTickCount();
    while (!bg->stop) {
        bg->wakes++;
        if (bg->cfg.ttl_coll != NULL) {
            uint32_t n = 0;
            int32_t rc = cairn_fr_ttl_sweep(bg->db, bg->p, bg->cfg.ttl_coll, bg->cfg.ttl_field,
                                            bg->cfg.sweep_budget, &n);
            if (rc != CAIRN_OK) bg->last_error = rc;
            bg->swept += n;
            if (n > 0 && bg->p != NULL && bg->p->log != NULL) {
                char line[CAIRN_FR_LOG_LINE];
                snprintf(line, sizeof line, "cairn-bg: swept %u expired document(s) of %s",
                         (unsigned)n, bg->cfg.ttl_coll);
                bg->p->log(CAIRN_LOG_INFO, line);
            }
        }
        cairn_stats_t st;
        if (!bg->stop && cairn_stats(bg->db, &st) == CAIRN_OK &&
            st.segments >= bg->cfg.compact_min_segments) {
            int32_t rc = cairn_compact(bg->db);
            if (rc == CAIRN_OK) {
                bg->compactions++;
                if (bg->p != NULL && bg->p->log != NULL) {
                    char line[CAIRN_FR_LOG_LINE];
                    snprintf(line, sizeof line, "cairn-bg: compacted (%u segments)",
                             (unsigned)st.segments);
                    bg->p->log(CAIRN_LOG_INFO, line);
                }
            }
            else bg->last_error = rc;
        }
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
    if (bg->cfg.compact_min_segments == 0) bg->cfg.compact_min_segments = CAIRN_FR_COMPACT_MIN_SEGMENTS;
    if (bg->cfg.ttl_coll != NULL && bg->cfg.ttl_field == NULL) return CAIRN_ERR_NULL;
    bg->db = db;
    bg->p = p;
    bg->last_error = CAIRN_OK;
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
