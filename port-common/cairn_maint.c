/*
 * cairndb maintenance pass: see cairn_maint.h.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include "cairn_maint.h"

#include <stdarg.h>
#include <stdio.h>

#ifndef CAIRN_MAINT_LOG_LINE
#define CAIRN_MAINT_LOG_LINE 160
#endif

typedef struct {
    cairn_db_t *db;
    const cairn_maint_config_t *cfg;
    cairn_maint_stats_t *st;
    cairn_maint_log_fn log;
    void *log_ctx;
    int32_t first_error;
} pass_t;

static void note(pass_t *p, int32_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(pass_t *p, int32_t level, const char *fmt, ...) {
    if (p->log == NULL) return;
    char line[CAIRN_MAINT_LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_ctx, level, line);
}

static void failed(pass_t *p, int32_t rc) {
    p->st->last_error = rc;
    if (p->first_error == CAIRN_OK) p->first_error = rc;
}

static uint32_t or_default(uint32_t v, uint32_t d) { return v != 0 ? v : d; }

static void sweep(pass_t *p) {
    uint64_t n = 0;
    bool more = false;
    int32_t rc = cairn_sweep(p->db, or_default(p->cfg->sweep_budget, CAIRN_MAINT_SWEEP_BUDGET), &n,
                             &more);
    if (rc != CAIRN_OK) {
        failed(p, rc);
        return;
    }
    p->st->swept += n;
    if (n > 0)
        note(p, CAIRN_LOG_INFO, "cairn-bg: swept %u expired item(s)%s", (unsigned)n,
             more ? ", more left" : "");
}

/* One step, not a full compaction: the handle's lock is held for one merge, so the
 * application's calls run between passes. */
static void compact(pass_t *p) {
    uint32_t garbage = 0;
    cairn_stats_t s;
    int32_t rc = cairn_garbage_percent(p->db, &garbage);
    if (rc == CAIRN_OK) rc = cairn_stats(p->db, &s);
    if (rc != CAIRN_OK) {
        failed(p, rc);
        return;
    }
    if (garbage < or_default(p->cfg->compact_garbage_percent, CAIRN_MAINT_COMPACT_GARBAGE_PERCENT) &&
        s.segments < or_default(p->cfg->compact_min_segments, CAIRN_MAINT_COMPACT_MIN_SEGMENTS))
        return;
    bool more = false;
    rc = cairn_compact_step(p->db, &more);
    if (rc != CAIRN_OK) {
        failed(p, rc);
        return;
    }
    p->st->compactions++;
    note(p, CAIRN_LOG_INFO, "cairn-bg: compaction step (%u%% garbage, %u segments)",
         (unsigned)garbage, (unsigned)s.segments);
}

/* Due when no backup is recorded yet, or the last one is an interval of database time old. */
static void backup(pass_t *p) {
    cairn_last_backup_t last;
    int32_t rc = cairn_last_backup(p->db, &last);
    if (rc == CAIRN_OK) {
        uint64_t now = 0;
        rc = cairn_now(p->db, &now);
        if (rc != CAIRN_OK) {
            failed(p, rc);
            return;
        }
        if (now - last.created <
            or_default(p->cfg->backup_interval_ms, CAIRN_MAINT_BACKUP_INTERVAL_MS))
            return;
    } else if (rc != CAIRN_ERR_NOT_FOUND) {
        failed(p, rc);
        return;
    }
    cairn_backup_info_t info;
    uint32_t area = 0, slot = 0;
    rc = cairn_ring_backup(p->db, p->cfg->backup_key, p->cfg->backup_ring, &info, &area, &slot);
    if (rc != CAIRN_OK) {
        failed(p, rc);
        note(p, CAIRN_LOG_ERROR, "cairn-bg: backup failed: %s (%d)", cairn_strerror(rc), (int)rc);
        return;
    }
    p->st->backups++;
    if (info.kind == CAIRN_BACKUP_FULL) p->st->full_backups++;
    p->st->last_backup = info;
    note(p, CAIRN_LOG_INFO, "cairn-bg: %s backup into ring area %u slot %u: %u records, %u bytes",
         info.kind == CAIRN_BACKUP_FULL ? "full" : "incremental", (unsigned)area, (unsigned)slot,
         (unsigned)info.records, (unsigned)info.stream_len);
}

int32_t cairn_maint_pass(cairn_db_t *db, const cairn_maint_config_t *cfg, cairn_maint_stats_t *stats,
                         cairn_maint_log_fn log, void *log_ctx) {
    if (db == NULL || cfg == NULL || stats == NULL) return CAIRN_ERR_NULL;
    pass_t p = {db, cfg, stats, log, log_ctx, CAIRN_OK};
    stats->passes++;
    if (!cfg->no_sweep) sweep(&p);
    compact(&p);
    if (cfg->backup_ring != NULL) backup(&p);
    return p.first_error;
}
