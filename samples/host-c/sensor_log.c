/*
 * A sensor log on cairndb's C API: readings from three sensors as documents, each committed
 * in one transaction with a key-value record of the last sequence number, an index on
 * (sensor, temp), a query through it, typed reads of the results, then a clean close and a
 * reopen that finds everything again. The flash is a RAM device the library
 * owns; `sensor_log IMAGE` also writes the flash image to a file at the end.
 *
 * Self-checking: exits 1 (with a message) when anything differs from what it expects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairndb.h"

#define READINGS 60

#define TRY(expr)                                                                        \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_ != CAIRN_OK) {                                                           \
            fprintf(stderr, "sensor_log: %s failed: %s (%d)\n", #expr, cairn_strerror(rc_), \
                    rc_);                                                                \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* The platform: a fake millisecond clock and a log sink. */
static uint64_t now_ms(void *ctx) {
    (void)ctx; /* the RAM device's config sets ctx to the device: keep the clock global */
    static uint64_t t = 1700000000000ull;
    return t += 1000;
}

static void log_line(void *ctx, int32_t level, const char *msg) {
    (void)ctx;
    fprintf(stderr, "cairndb[%d]: %s\n", (int)level, msg);
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

int main(int argc, char **argv) {
    static const uint8_t key[32] = {0x42}; /* from a secure element in real firmware */
    const cairn_key_t db_key = {key, NULL, 0, 0};
    cairn_ram_device_t *flash = NULL;
    cairn_config_t cfg;
    cairn_db_t *db = NULL;
    char doc[128];

    printf("cairndb %s (header %s)\n", cairn_version_string(), CAIRN_VERSION);
    if (cairn_version() != CAIRN_VERSION_NUMBER) {
        fprintf(stderr, "sensor_log: header and library versions differ\n");
        return 1;
    }

    memset(&cfg, 0, sizeof cfg);
    TRY(cairn_ram_device_new(&flash, 16, 16, 4096, 64));
    TRY(cairn_ram_device_config(flash, &cfg));
    cfg.now_ms = now_ms;
    cfg.log = log_line;
    TRY(cairn_format(&db, &cfg, &db_key));

    /* The index first: every insert below maintains it in the same commit. */
    const char *fields[] = {"sensor", "temp"};
    TRY(cairn_index_create(db, "readings", "by_sensor_temp", fields, 2, false));

    for (int seq = 1; seq <= READINGS; seq++) {
        int sensor = seq % 3 + 1;
        double temp = 18.0 + (seq * 7 % 50) / 5.0;
        snprintf(doc, sizeof doc, "{\"sensor\":\"s%d\",\"seq\":%d,\"temp\":%.1f,\"hum\":%d}",
                 sensor, seq, temp, 40 + seq % 20);
        /* The reading and the last sequence number commit together, or not at all. */
        char last[16];
        int n = snprintf(last, sizeof last, "%d", seq);
        cairn_txn_t *txn = NULL;
        TRY(cairn_txn_begin(db, &txn));
        TRY(cairn_txn_doc_insert(txn, "readings", doc, NULL));
        TRY(cairn_txn_kv_put(txn, "meta", "last_seq", 8, last, (size_t)n));
        TRY(cairn_txn_commit(txn));
    }

    /* The hottest five readings of sensor s2 above 24 degrees, through the index. */
    const char *filter = "{\"sensor\":\"s2\",\"temp\":{\"$gt\":24}}";
    const char *options = "{\"sort\":{\"temp\":-1},\"limit\":5,\"projection\":{\"seq\":1,\"temp\":1}}";
    int shown = 0;
    uint64_t hot = 0, total = 0;
    printf("hottest s2 readings above 24:\n");
    TRY(cairn_find(db, "readings", filter, options, print_reading, &shown));
    TRY(cairn_find_count(db, "readings", filter, &hot));
    TRY(cairn_doc_count(db, "readings", &total));
    printf("%llu of %llu readings match\n", (unsigned long long)hot, (unsigned long long)total);
    struct humidity h = {0, 0};
    TRY(cairn_find_docs(db, "readings", "{\"sensor\":\"s1\"}", NULL, add_humidity, &h));
    printf("sensor s1: %d readings, mean humidity %.1f%%\n", h.n, h.n ? (double)h.sum / h.n : 0.0);

    cairn_stats_t st;
    TRY(cairn_stats(db, &st));
    printf("commits %llu, segments %u, free blocks %u of %u\n", (unsigned long long)st.commits,
           st.segments, st.free_blocks, st.block_count);
    TRY(cairn_close(db));

    /* Reopen: the same readings, the same answer, the last sequence number. */
    db = NULL;
    TRY(cairn_open(&db, &cfg, &db_key));
    uint64_t total2 = 0, hot2 = 0;
    char last[16] = {0};
    size_t len = 0;
    TRY(cairn_doc_count(db, "readings", &total2));
    TRY(cairn_find_count(db, "readings", filter, &hot2));
    TRY(cairn_kv_get(db, "meta", "last_seq", 8, last, sizeof last - 1, &len));
    printf("after reopen: %llu readings, %llu match, last_seq %s\n", (unsigned long long)total2,
           (unsigned long long)hot2, last);
    TRY(cairn_close(db));

    int ok = total == READINGS && total2 == total && hot2 == hot && hot > 0 &&
             h.n == READINGS / 3 && h.sum > 40 * h.n &&
             shown == (hot < 5 ? (int)hot : 5) && atoi(last) == READINGS;

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
