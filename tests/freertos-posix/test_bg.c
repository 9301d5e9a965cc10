/*
 * Tests of the port's background task (cairn_fr_bg_start/stop and the maintenance pass of
 * port-common/ it runs each wake): its lifecycle, compaction steps, TTL sweeps through
 * cairn_sweep, and scheduled backups into a backup ring. One function per behaviour, so that
 * a change of the task's duties changes one of them.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Polls `cond` every 10 ms for at most `ms` (the task's counters are read racily, as the
 * header allows before cairn_fr_bg_stop()). */
#define WAIT_FOR(cond, ms)                                                  \
    do {                                                                    \
        for (uint32_t w_ = 0; w_ < (ms) / 10 && !(cond); w_++) vTaskDelay(pdMS_TO_TICKS(10)); \
    } while (0)

void test_bg_lifecycle(void) {
    logcap_reset();
    fx_init(&fx);
    fx.p.log = logcap_sink;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc;
    memset(&bc, 0, sizeof bc);
    bc.period_ms = 20;

    /* Defaults for zero fields, a task at CAIRN_FR_BG_PRIORITY. */
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    if (bg.task == NULL) {
        failf("no task");
        fx_close(&fx);
        return;
    }
    EXPECT(uxTaskPriorityGet(bg.task) == CAIRN_FR_BG_PRIORITY, "priority %lu",
           uxTaskPriorityGet(bg.task));
    EXPECT(bg.cfg.stack_words == CAIRN_FR_BG_STACK_WORDS && bg.cfg.sweep_budget == CAIRN_FR_SWEEP_BUDGET &&
               bg.cfg.compact_min_segments == CAIRN_FR_COMPACT_MIN_SEGMENTS &&
               bg.cfg.compact_garbage_percent == CAIRN_FR_COMPACT_GARBAGE_PERCENT &&
               bg.cfg.backup_interval_ms == CAIRN_FR_BACKUP_INTERVAL_MS && bg.cfg.period_ms == 20,
           "defaults not filled in");
    vTaskDelay(pdMS_TO_TICKS(150));
    TickType_t t0 = xTaskGetTickCount();
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    TickType_t stop_ticks = ticks_since(t0);
    EXPECT(stop_ticks < pdMS_TO_TICKS(2000), "the stop took %lu ticks", stop_ticks);
    EXPECT(bg.task == NULL, "the task is still there after the stop");
    EXPECT(bg.stats.passes >= 3, "%u passes in 150 ms at a 20 ms period", (unsigned)bg.stats.passes);
    CHECK_OK(bg.stats.last_error);
    EXPECT(bg.stack_free_words > 0 && bg.stack_free_words <= bg.cfg.stack_words,
           "stack high-water mark %lu of %u words", bg.stack_free_words, (unsigned)bg.cfg.stack_words);
    uint32_t passes = bg.stats.passes;
    UBaseType_t free_words = bg.stack_free_words;
    /* A second stop finds nothing to stop. */
    CHECK_OK(cairn_fr_bg_stop(&bg, 0));

    /* Settings of its own. */
    bc.priority = 3;
    bc.stack_words = 2048;
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    EXPECT(bg.task != NULL && uxTaskPriorityGet(bg.task) == 3, "priority %lu",
           bg.task != NULL ? uxTaskPriorityGet(bg.task) : 0);
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    EXPECT(bg.task == NULL && bg.stack_free_words > 0 && bg.stack_free_words <= 2048,
           "stack high-water mark %lu of 2048 words", bg.stack_free_words);

    /* A stop while the task waits for the database (this task holds it in a transaction)
     * times out; once the transaction ends the task finishes its pass and goes. */
    memset(&bc, 0, sizeof bc);
    bc.period_ms = 10;
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    cairn_txn_t *txn = NULL;
    CHECK_OK(cairn_txn_begin(fx.db, &txn));
    vTaskDelay(pdMS_TO_TICKS(50)); /* the task wakes and blocks on the mutex */
    t0 = xTaskGetTickCount();
    CHECK_RC(cairn_fr_bg_stop(&bg, 100), CAIRN_ERR_TIMEOUT);
    TickType_t timed_out = ticks_since(t0);
    EXPECT(timed_out >= pdMS_TO_TICKS(90), "gave up after %lu ticks", timed_out);
    EXPECT(bg.task != NULL, "the task ended while blocked on the database");
    if (txn != NULL) CHECK_OK(cairn_txn_commit(txn));
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    EXPECT(bg.task == NULL, "the task is still there after the transaction ended");
    CHECK_OK(bg.stats.last_error);
    note("%u passes in 150 ms, stopped in %lu ticks; stack high-water mark %lu of %u words (the "
         "POSIX port runs tasks on pthread stacks: this only shows it is recorded); a stop behind "
         "a transaction timed out after %lu ticks",
         (unsigned)passes, stop_ticks, free_words, (unsigned)CAIRN_FR_BG_STACK_WORDS, timed_out);
    fx_close(&fx);
}

void test_bg_compaction(void) {
    logcap_reset();
    fx_init(&fx);
    fx.p.log = logcap_sink;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    /* Segments: each flush folds what was committed since into one more (the engine merges
     * every 4 of a tier by itself, so 4 live segments take a few tiers). */
    cairn_stats_t st0, st1, st2;
    memset(&st0, 0, sizeof st0);
    int flushes = 0;
    while (flushes < 16 && st0.segments < 4) {
        for (int i = 0; i < 10; i++) {
            char doc[48];
            snprintf(doc, sizeof doc, "{\"s\":%d,\"i\":%d}", flushes, i);
            CHECK_OK(cairn_doc_insert(fx.db, "seg", doc, NULL));
        }
        CHECK_OK(cairn_flush(fx.db));
        flushes++;
        CHECK_OK(cairn_stats(fx.db, &st0));
    }
    if (st0.segments < 4) {
        failf("only %u segments after %d flushes: cannot test the threshold",
              (unsigned)st0.segments, flushes);
        fx_close(&fx);
        return;
    }
    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc;
    memset(&bc, 0, sizeof bc);
    bc.period_ms = 10;
    bc.no_sweep = true;
    bc.compact_garbage_percent = 101; /* never by garbage: only the segment count decides */

    /* Below the threshold: passes, no compaction. */
    bc.compact_min_segments = st0.segments + 1;
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    vTaskDelay(pdMS_TO_TICKS(80));
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    EXPECT(bg.stats.passes >= 2 && bg.stats.compactions == 0,
           "%u passes, %u compactions with %u segments below a threshold of %u",
           (unsigned)bg.stats.passes, (unsigned)bg.stats.compactions, (unsigned)st0.segments,
           (unsigned)bc.compact_min_segments);
    CHECK_OK(cairn_stats(fx.db, &st1));
    EXPECT(st1.merges == st0.merges, "a merge happened below the threshold");

    /* At the threshold: compaction steps until the count falls below it. */
    bc.compact_min_segments = 4;
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    WAIT_FOR(bg.stats.compactions >= 1, 3000);
    vTaskDelay(pdMS_TO_TICKS(50));
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    CHECK_OK(bg.stats.last_error);
    CHECK_OK(cairn_stats(fx.db, &st2));
    EXPECT(bg.stats.compactions >= 1 && st2.merges > st1.merges,
           "%u compaction steps, %llu merges with %u segments at a threshold of 4",
           (unsigned)bg.stats.compactions, (unsigned long long)(st2.merges - st1.merges),
           (unsigned)st1.segments);
    EXPECT(st2.segments < st1.segments, "segments %u -> %u", (unsigned)st1.segments,
           (unsigned)st2.segments);
    EXPECT(logcap_find(CAIRN_LOG_INFO, "cairn-bg: compaction step"), "no log line for the step");
    uint64_t n = 0;
    CHECK_OK(cairn_doc_count(fx.db, "seg", &n));
    EXPECT(n == (uint64_t)flushes * 10, "%llu documents after compaction", (unsigned long long)n);
    note("%u segments after %d flushes: no step below a threshold of %u; at 4, %u step(s) left "
         "%u segments",
         (unsigned)st0.segments, flushes, (unsigned)(st0.segments + 1),
         (unsigned)bg.stats.compactions, (unsigned)st2.segments);
    fx_close(&fx);
}

void test_bg_ttl_sweep(void) {
    logcap_reset();
    fx_init(&fx);
    fx.p.log = logcap_sink;
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    /* 15 of 20 documents expire after 1 ms; reads hide them at once, the task removes them. */
    cairn_write_opts_t soon = {1, NULL, 0};
    for (int i = 0; i < 20; i++) {
        char doc[32];
        snprintf(doc, sizeof doc, "{\"k\":%d}", i);
        CHECK_OK(cairn_doc_insert_with(fx.db, "cache", doc, i < 15 ? &soon : NULL, NULL));
    }
    vTaskDelay(pdMS_TO_TICKS(5));
    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc;
    memset(&bc, 0, sizeof bc);
    bc.period_ms = 20;
    bc.sweep_budget = 4;
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    WAIT_FOR(bg.stats.swept >= 15, 3000);
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    CHECK_OK(bg.stats.last_error);
    uint64_t n = 0, removed = 0;
    bool more = true;
    CHECK_OK(cairn_doc_count(fx.db, "cache", &n));
    EXPECT(n == 5, "%llu documents left", (unsigned long long)n);
    EXPECT(bg.stats.swept == 15, "swept %llu", (unsigned long long)bg.stats.swept);
    EXPECT(bg.stats.passes >= 4, "15 items at 4 per pass in %u passes", (unsigned)bg.stats.passes);
    CHECK_OK(cairn_sweep(fx.db, 16, &removed, &more));
    EXPECT(removed == 0 && !more, "%llu expired items left behind", (unsigned long long)removed);
    /* The task's log lines: each sweep within the budget, 15 in all. */
    unsigned sum = 0, lines = 0, over = 0;
    for (uint32_t i = 0; i < logcap_count(); i++) {
        const char *line = logcap_line(i, NULL);
        const char *at = line != NULL ? strstr(line, "cairn-bg: swept ") : NULL;
        if (at == NULL) continue;
        unsigned k = (unsigned)strtoul(at + strlen("cairn-bg: swept "), NULL, 10);
        lines++;
        sum += k;
        if (k > 4) over++;
    }
    EXPECT(sum == 15 && over == 0, "the log reports %u swept in %u lines, %u over the budget", sum,
           lines, over);
    note("15 expired documents swept in %u passes (%u log lines, at most 4 each)",
         (unsigned)bg.stats.passes, lines);
    fx_close(&fx);
}

/* Scheduled backups into a ring on a second chip, then a restore of the ring into a fresh
 * database on a third: the same documents. */
#define BACKUP_BLOCKS 24u
static uint8_t backup_mem[BACKUP_BLOCKS * RAMNOR_BLOCK];
static uint8_t restore_mem[FX_BLOCKS * RAMNOR_BLOCK];

void test_bg_backup_ring(void) {
    fx_init(&fx);
    CHECK_OK(fx_format(&fx, NULL));
    if (fx.db == NULL) return;
    static ramnor_t bnor, rnor;
    static cairn_config_t bdev, rcfg;
    ramnor_init(&bnor, backup_mem, BACKUP_BLOCKS);
    memset(&bdev, 0, sizeof bdev);
    ramnor_config(&bnor, &bdev);
    cairn_ring_t ring = {&bdev, 0, BACKUP_BLOCKS, 3};

    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc;
    memset(&bc, 0, sizeof bc);
    bc.period_ms = 10;
    bc.no_sweep = true;
    bc.backup_ring = &ring;
    bc.backup_interval_ms = 30;
    CHECK_OK(cairn_fr_bg_start(&bg, fx.db, &fx.p, &bc));
    for (int i = 0; i < 12; i++) {
        char doc[48];
        snprintf(doc, sizeof doc, "{\"batch\":%d}", i);
        CHECK_OK(cairn_doc_insert(fx.db, "logged", doc, NULL));
        vTaskDelay(pdMS_TO_TICKS(15));
    }
    WAIT_FOR(bg.stats.backups >= 4, 2000);
    CHECK_OK(cairn_fr_bg_stop(&bg, 2000));
    CHECK_OK(bg.stats.last_error);
    EXPECT(bg.stats.backups >= 4 && bg.stats.full_backups >= 2, "%u backups, %u full",
           (unsigned)bg.stats.backups, (unsigned)bg.stats.full_backups);
    /* One more now, so the ring holds this state. */
    uint32_t area = 0, slot = 0;
    CHECK_OK(cairn_ring_backup(fx.db, NULL, &ring, NULL, &area, &slot));
    uint64_t want = 0, got = 0;
    CHECK_OK(cairn_doc_count(fx.db, "logged", &want));

    ramnor_init(&rnor, restore_mem, FX_BLOCKS);
    memset(&rcfg, 0, sizeof rcfg);
    ramnor_config(&rnor, &rcfg);
    cairn_db_t *other = NULL;
    CHECK_OK(cairn_format(&other, &rcfg, &test_key));
    cairn_restore_report_t rep;
    memset(&rep, 0, sizeof rep);
    if (other != NULL) {
        CHECK_OK(cairn_ring_restore(other, NULL, &ring, &rep));
        CHECK_OK(cairn_doc_count(other, "logged", &got));
        CHECK_OK(cairn_close(other));
    }
    EXPECT(want == 12 && got == want, "%llu documents restored of %llu", (unsigned long long)got,
           (unsigned long long)want);
    EXPECT(bnor.violations == 0, "the backup chip saw %u bad accesses; first: %s",
           (unsigned)bnor.violations, bnor.first_violation);
    EXPECT(rnor.violations == 0, "the restore chip saw %u bad accesses; first: %s",
           (unsigned)rnor.violations, rnor.first_violation);
    note("%u scheduled backups (%u full) every 30 ms of database time; the ring restored %llu of "
         "%llu documents from %u backups",
         (unsigned)bg.stats.backups, (unsigned)bg.stats.full_backups, (unsigned long long)got,
         (unsigned long long)want, (unsigned)rep.streams);
    fx_close(&fx);
}
