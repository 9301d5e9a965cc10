/*
 * A sensor log on cairndb's C API: three hours of readings, one a minute, each committed in
 * one transaction with a key-value record of the last sequence number and kept for two hours
 * (a time to live); indexes on the time and on (sensor, temp); a query of the last hour
 * through the time index; a sweep of what expired; a full backup half way and an incremental
 * one at the end, both to files through the writer callback; a restore of that chain into a
 * second device, checked against the original; then a clean close and a reopen that finds
 * everything again. The flash is a RAM device the library owns; `sensor_log IMAGE` writes
 * the backups to IMAGE.full and IMAGE.incr and the flash image to IMAGE.
 *
 * Self-checking: exits 1 (with a message) when anything differs from what it expects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairndb.h"

#define READINGS 180              /* one a minute: three hours */
#define MINUTE 60000ull           /* database time is in milliseconds */
#define KEEP (120 * MINUTE)       /* time to live of a reading */
#define HOUR (60 * MINUTE)

#define TRY(expr)                                                                        \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_ != CAIRN_OK) {                                                           \
            fprintf(stderr, "sensor_log: %s failed: %s (%d)\n", #expr, cairn_strerror(rc_), \
                    rc_);                                                                \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* The platform: a millisecond clock (simulated: the sample moves it a minute per reading) and
 * a log sink. The RAM device's config sets ctx to the device: keep the clock global. */
#define T0 1700000000000ull
static uint64_t clock_ms = T0;

static uint64_t now_ms(void *ctx) {
    (void)ctx;
    return clock_ms;
}

static void log_line(void *ctx, int32_t level, const char *msg) {
    (void)ctx;
    fprintf(stderr, "cairndb[%d]: %s\n", (int)level, msg);
}

/* Backup streams to and from files: the writer and reader callbacks. */
static int32_t file_write(void *ctx, const uint8_t *data, size_t len) {
    return fwrite(data, 1, len, ctx) == len ? 0 : -1000; /* negative: returned as is */
}

static int32_t file_read(void *ctx, uint8_t *buf, size_t cap, size_t *len) {
    *len = fread(buf, 1, cap, ctx);
    return ferror((FILE *)ctx) ? -1001 : 0;
}

static void backup_to(cairn_db_t *db, const char *path, int incremental) {
    cairn_backup_info_t info;
    cairn_stream_t to;
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "sensor_log: cannot create %s\n", path);
        exit(1);
    }
    memset(&to, 0, sizeof to);
    to.write = file_write;
    to.ctx = f;
    if (incremental)
        TRY(cairn_backup_incremental(db, NULL, &to, &info)); /* NULL: the database's key */
    else
        TRY(cairn_backup_full(db, NULL, &to, &info));
    if (fclose(f) != 0) exit(1);
    printf("%s backup to %s: %llu records, %llu bytes\n", incremental ? "incremental" : "full",
           path, (unsigned long long)info.records, (unsigned long long)info.stream_len);
}

/* cairn_find() callback: print each result and count it. */
static int32_t print_reading(void *ctx, const char *json, size_t len) {
    int *n = ctx;
    (*n)++;
    printf("  %.*s\n", (int)len, json);
    return 0;
}

/* cairn_find_docs() callback: typed reads, no JSON parsing. */
struct humidity {
    int64_t sum;
    int n;
};

static int32_t add_humidity(void *ctx, const cairn_doc_t *doc) {
    struct humidity *h = ctx;
    int64_t hum = 0;
    int rc = cairn_doc_get_i64(doc, "hum", &hum);
    if (rc != CAIRN_OK) return rc; /* stops the query; cairn_find_docs() returns it */
    h->sum += hum;
    h->n++;
    return 0;
}

/* What the checks compare: database time, readings stored, readings of the last hour, the
 * last sequence number. */
struct summary {
    uint64_t now, total, last_hour;
    int last_seq;
};

/* Readings (stamped T0 + seq minutes) that are still alive at `now`, and of those the ones
 * newer than `now` - `age`. */
static uint64_t expected(uint64_t now, uint64_t age) {
    uint64_t n = 0;
    for (uint64_t seq = 1; seq <= READINGS; seq++) {
        uint64_t ts = T0 + seq * MINUTE;
        n += ts + KEEP > now && ts + age > now;
    }
    return n;
}

static struct summary summarize(cairn_db_t *db) {
    struct summary s;
    char filter[64], last[16] = {0};
    size_t len = 0;
    TRY(cairn_now(db, &s.now));
    snprintf(filter, sizeof filter, "{\"_ts\":{\"$gt\":%llu}}", (unsigned long long)(s.now - HOUR));
    TRY(cairn_doc_count(db, "readings", &s.total));
    TRY(cairn_find_count(db, "readings", filter, &s.last_hour));
    TRY(cairn_kv_get(db, "meta", "last_seq", 8, last, sizeof last - 1, &len));
    s.last_seq = atoi(last);
    return s;
}

int main(int argc, char **argv) {
    static const uint8_t key[32] = {0x42}; /* from a secure element in real firmware */
    const cairn_key_t db_key = {key, NULL, 0, 0};
    const char *base = argc > 1 ? argv[1] : "sensor_log";
    char full_path[512], incr_path[512];
    cairn_ram_device_t *flash = NULL, *flash2 = NULL;
    cairn_config_t cfg, cfg2;
    cairn_db_t *db = NULL, *copy = NULL;
    char doc[128];

    printf("cairndb %s (header %s)\n", cairn_version_string(), CAIRN_VERSION);
    if (cairn_version() != CAIRN_VERSION_NUMBER) {
        fprintf(stderr, "sensor_log: header and library versions differ\n");
        return 1;
    }
    snprintf(full_path, sizeof full_path, "%s.full", base);
    snprintf(incr_path, sizeof incr_path, "%s.incr", base);

    memset(&cfg, 0, sizeof cfg);
    TRY(cairn_ram_device_new(&flash, 16, 16, 4096, 96));
    TRY(cairn_ram_device_config(flash, &cfg));
    cfg.now_ms = now_ms;
    cfg.log = log_line;
    TRY(cairn_format(&db, &cfg, &db_key));

    /* The indexes first: every insert below maintains them in the same commit. */
    const char *by_time[] = {"_ts"};
    const char *by_sensor[] = {"sensor", "temp"};
    TRY(cairn_index_create(db, "readings", "by_time", by_time, 1, false));
    TRY(cairn_index_create(db, "readings", "by_sensor_temp", by_sensor, 2, false));

    const cairn_write_opts_t keep = {KEEP, NULL, 0};
    for (int seq = 1; seq <= READINGS; seq++) {
        clock_ms += MINUTE;
        int sensor = seq % 3 + 1;
        double temp = 18.0 + (seq * 7 % 50) / 5.0;
        snprintf(doc, sizeof doc, "{\"sensor\":\"s%d\",\"seq\":%d,\"temp\":%.1f,\"hum\":%d}",
                 sensor, seq, temp, 40 + seq % 20);
        /* The reading and the last sequence number commit together, or not at all. */
        char last[16];
        int n = snprintf(last, sizeof last, "%d", seq);
        cairn_txn_t *txn = NULL;
        TRY(cairn_txn_begin(db, &txn));
        TRY(cairn_txn_doc_insert_with(txn, "readings", doc, &keep, NULL));
        TRY(cairn_txn_kv_put(txn, "meta", "last_seq", 8, last, (size_t)n));
        TRY(cairn_txn_commit(txn));
        if (seq == READINGS / 2) backup_to(db, full_path, 0);
    }

    /* Readings older than two hours have expired: invisible already, the sweep reclaims them. */
    uint64_t removed = 0, swept = 0;
    bool more = true;
    while (more) {
        TRY(cairn_sweep(db, 32, &removed, &more));
        swept += removed;
    }
    printf("swept %llu expired readings\n", (unsigned long long)swept);

    /* The last hour, through the time index. */
    uint64_t now = 0;
    char filter[64], plan[256];
    TRY(cairn_now(db, &now));
    snprintf(filter, sizeof filter, "{\"_ts\":{\"$gt\":%llu}}", (unsigned long long)(now - HOUR));
    TRY(cairn_explain(db, "readings", filter, NULL, plan, sizeof plan, NULL));
    printf("last hour: %s\n", plan);

    /* The hottest five readings of sensor s2 above 24 degrees, through the other index. */
    const char *hot_filter = "{\"sensor\":\"s2\",\"temp\":{\"$gt\":24}}";
    const char *options = "{\"sort\":{\"temp\":-1},\"limit\":5,\"projection\":{\"seq\":1,\"temp\":1}}";
    int shown = 0;
    uint64_t hot = 0;
    printf("hottest s2 readings above 24:\n");
    TRY(cairn_find(db, "readings", hot_filter, options, print_reading, &shown));
    TRY(cairn_find_count(db, "readings", hot_filter, &hot));
    struct humidity h = {0, 0};
    TRY(cairn_find_docs(db, "readings", "{\"sensor\":\"s1\"}", NULL, add_humidity, &h));
    printf("sensor s1: %d readings, mean humidity %.1f%%\n", h.n, h.n ? (double)h.sum / h.n : 0.0);

    /* The incremental backup carries the second half and the sweep's deletions. */
    backup_to(db, incr_path, 1);
    struct summary before = summarize(db);
    printf("%llu readings kept, %llu in the last hour, last_seq %d\n",
           (unsigned long long)before.total, (unsigned long long)before.last_hour,
           before.last_seq);

    cairn_statistics_t st;
    TRY(cairn_statistics(db, &st));
    printf("inserts %llu (longest %llu ms), commits %llu, expired removed %llu, %u of %u blocks "
           "used\n",
           (unsigned long long)st.inserts.count, (unsigned long long)st.inserts.max_time,
           (unsigned long long)st.commit_ops.count, (unsigned long long)st.expired_removed,
           st.used_blocks, st.block_count);
    TRY(cairn_close(db));

    /* Restore check: the chain from the files into a second device gives the same database. */
    FILE *full = fopen(full_path, "rb"), *incr = fopen(incr_path, "rb");
    if (!full || !incr) {
        fprintf(stderr, "sensor_log: cannot read the backups back\n");
        return 1;
    }
    cairn_stream_t chain[2];
    memset(chain, 0, sizeof chain);
    chain[0].read = file_read;
    chain[0].ctx = full;
    chain[1].read = file_read;
    chain[1].ctx = incr;
    memset(&cfg2, 0, sizeof cfg2);
    TRY(cairn_ram_device_new(&flash2, 16, 16, 4096, 96));
    TRY(cairn_ram_device_config(flash2, &cfg2));
    cfg2.now_ms = now_ms;
    cfg2.log = log_line;
    TRY(cairn_format(&copy, &cfg2, &db_key));
    cairn_restore_report_t rep;
    TRY(cairn_restore(copy, NULL, chain, 2, &rep));
    fclose(full);
    fclose(incr);
    struct summary restored = summarize(copy);
    printf("restored %u backups (%llu records): %llu readings, %llu in the last hour, "
           "last_seq %d\n",
           rep.streams, (unsigned long long)rep.records, (unsigned long long)restored.total,
           (unsigned long long)restored.last_hour, restored.last_seq);
    TRY(cairn_close(copy));
    cairn_ram_device_free(flash2);

    /* Reopen: the same readings. Database time resumes past every time issued before the
     * close (by up to a minute, the step of its persisted mark), so a reading may expire
     * meanwhile: the expected counts follow the time. */
    db = NULL;
    TRY(cairn_open(&db, &cfg, &db_key));
    struct summary after = summarize(db);
    uint64_t hot2 = 0;
    TRY(cairn_find_count(db, "readings", hot_filter, &hot2));
    printf("after reopen (+%llu ms): %llu readings, %llu in the last hour, last_seq %d\n",
           (unsigned long long)(after.now - before.now), (unsigned long long)after.total,
           (unsigned long long)after.last_hour, after.last_seq);
    TRY(cairn_close(db));

    /* At the end, readings 61..180 are within two hours and 121..180 within the last hour. */
    int ok = before.now == T0 + READINGS * MINUTE && swept == READINGS - KEEP / MINUTE &&
             before.total == KEEP / MINUTE && before.last_hour == HOUR / MINUTE &&
             before.last_seq == READINGS && strstr(plan, "\"access\":\"index\"") != NULL &&
             restored.now == before.now && restored.total == before.total &&
             restored.last_hour == before.last_hour && restored.last_seq == before.last_seq &&
             after.now >= before.now && after.total == expected(after.now, KEEP) &&
             after.last_hour == expected(after.now, HOUR) && after.last_seq == READINGS &&
             hot2 <= hot && hot > 0 && h.n == (int)before.total / 3 && h.sum > 40 * h.n &&
             shown == (hot < 5 ? (int)hot : 5) && st.expired_removed == swept;

    if (argc > 1) {
        size_t size = 0;
        const uint8_t *image = cairn_ram_device_data(flash, &size);
        FILE *f = fopen(argv[1], "wb");
        if (!f || fwrite(image, 1, size, f) != size || fclose(f) != 0) {
            fprintf(stderr, "sensor_log: cannot write %s\n", argv[1]);
            ok = 0;
        }
    }
    cairn_ram_device_free(flash);
    printf("%s\n", ok ? "sensor_log: ok" : "sensor_log: MISMATCH");
    return ok ? 0 : 1;
}
