/*
 * The C API on an emulated Cortex-M3 (QEMU mps2-an385): the Cortex-M libcairndb.a, newlib's
 * malloc behind the library's global allocator (through counting cairn_set_allocator() hooks),
 * a RAM device. Formats with a key, writes documents and key-value pairs, queries through an
 * index, runs a transaction, reads a document handle, reopens with a clock, lets a document
 * expire and sweeps it, writes a backup to a buffer through the writer callback and verifies
 * it, reads the statistics, and checks everything; exits 0 on success. Built through the top-level CMakeLists.txt as a cross build (tests/c/cross/) and
 * run by `cargo xtask test` (step thumb-c).
 */
#include <malloc.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cairndb.h"

void qemu_puts(const char *s);

static int failures;
static char line[160];

#define CHECK(expr)                                                          \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ != CAIRN_OK) {                                               \
            snprintf(line, sizeof line, "FAIL %s: %s\n", #expr, cairn_strerror(rc_)); \
            qemu_puts(line);                                                 \
            failures++;                                                      \
        }                                                                    \
    } while (0)

/* Stack high-water mark: paint the stack below the current frame, scan after the run. */
extern uint32_t __stack_top;
#define PAINT 0xA5A5A5A5u
#define STACK_CHECKED (256u * 1024u)
static uint32_t *paint_lo;

static void paint_stack(void) {
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    paint_lo = (uint32_t *)((uintptr_t)&__stack_top - STACK_CHECKED);
    for (volatile uint32_t *p = paint_lo; (uintptr_t)p < sp - 64; p++) *p = PAINT;
}

static unsigned stack_used(void) {
    const uint32_t *p = paint_lo;
    while (*p == PAINT) p++;
    return (unsigned)((uintptr_t)&__stack_top - (uintptr_t)p);
}

static int32_t count_cb(void *ctx, const char *json, size_t len) {
    (void)json;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

/* A clock the program moves by hand. */
static uint64_t qtime;

static uint64_t qclock(void *ctx) {
    (void)ctx;
    return qtime;
}

/* A backup stream in a static buffer. */
static uint8_t stream[16384];
static size_t stream_len, stream_pos;

static int32_t buf_write(void *ctx, const uint8_t *d, size_t n) {
    (void)ctx;
    if (n > sizeof stream - stream_len) return -1;
    memcpy(stream + stream_len, d, n);
    stream_len += n;
    return 0;
}

static int32_t buf_read(void *ctx, uint8_t *b, size_t cap, size_t *len) {
    (void)ctx;
    size_t n = stream_len - stream_pos < cap ? stream_len - stream_pos : cap;
    memcpy(b, stream + stream_pos, n);
    stream_pos += n;
    *len = n;
    return 0;
}

/* The heap hooks: newlib's malloc/free, counted. */
static unsigned allocs, frees;

static void *count_malloc(void *ctx, size_t size) {
    (void)ctx;
    allocs++;
    return malloc(size);
}

static void count_free(void *ctx, void *p) {
    (void)ctx;
    frees++;
    free(p);
}

int main(void) {
    static const uint8_t key[32] = {7};
    const cairn_key_t k = {key, NULL, 0, 0};
    cairn_ram_device_t *flash = NULL;
    cairn_config_t cfg;
    cairn_db_t *db = NULL;
    char doc[96];
    uint64_t n = 0;
    memset(&cfg, 0, sizeof cfg);
    paint_stack();

    CHECK(cairn_set_allocator(count_malloc, count_free, NULL));
    CHECK(cairn_ram_device_new(&flash, 16, 16, 4096, 32));
    if (cairn_set_allocator(NULL, NULL, NULL) != CAIRN_ERR_BUSY) failures++; /* too late now */
    CHECK(cairn_ram_device_config(flash, &cfg));
    CHECK(cairn_format(&db, &cfg, &k));
    const char *fields[] = {"sensor"};
    CHECK(cairn_index_create(db, "r", "by_sensor", fields, 1, false));
    for (int i = 0; i < 30; i++) {
        snprintf(doc, sizeof doc, "{\"sensor\":\"s%d\",\"seq\":%d,\"temp\":%d.5}", i % 3, i, 20 + i % 7);
        CHECK(cairn_doc_insert(db, "r", doc, NULL));
    }
    CHECK(cairn_kv_put(db, "meta", "n", 1, "30", 2));
    /* A transaction: two documents and a key at once; then one that is rolled back. */
    cairn_txn_t *txn = NULL;
    CHECK(cairn_txn_begin(db, &txn));
    CHECK(cairn_txn_doc_insert(txn, "t", "{\"a\":1}", NULL));
    CHECK(cairn_txn_doc_insert(txn, "t", "{\"a\":2}", NULL));
    CHECK(cairn_txn_kv_put(txn, "meta", "t", 1, "2", 1));
    CHECK(cairn_txn_commit(txn));
    CHECK(cairn_txn_begin(db, &txn));
    CHECK(cairn_txn_doc_insert(txn, "t", "{\"a\":3}", NULL));
    CHECK(cairn_txn_rollback(txn));
    uint64_t in_t = 0;
    CHECK(cairn_doc_count(db, "t", &in_t));
    int found = 0;
    CHECK(cairn_find(db, "r", "{\"sensor\":\"s1\"}", "{\"sort\":{\"temp\":-1}}", count_cb, &found));
    CHECK(cairn_close(db));
    db = NULL;
    cfg.now_ms = qclock;
    qtime = 1000;
    CHECK(cairn_open(&db, &cfg, &k));
    CHECK(cairn_doc_count(db, "r", &n));
    char v[4] = {0};
    size_t len = 0;
    CHECK(cairn_kv_get(db, "meta", "n", 1, v, 3, &len));
    CHECK(cairn_doc_get(db, "r", 1, doc, sizeof doc, NULL));
    /* Typed reads, no JSON parsing. */
    cairn_doc_t *h = NULL;
    int64_t seq = -1;
    double temp = 0;
    CHECK(cairn_doc_get_handle(db, "r", 8, &h));
    CHECK(cairn_doc_get_i64(h, "seq", &seq));
    CHECK(cairn_doc_get_f64(h, "temp", &temp));
    if (cairn_doc_get_i64(h, "temp", &seq) != CAIRN_ERR_TYPE) failures++;
    cairn_doc_free(h);
    /* A document that lives 50 ms: gone once the clock passes it, then swept. */
    const cairn_write_opts_t ttl = {50, NULL, 0};
    uint64_t tmp_n = 9, swept = 0;
    bool more = true;
    CHECK(cairn_doc_insert_with(db, "tmp", "{\"x\":1}", &ttl, NULL));
    CHECK(cairn_doc_count(db, "tmp", &tmp_n));
    if (tmp_n != 1) failures++;
    qtime += 50;
    CHECK(cairn_doc_count(db, "tmp", &tmp_n));
    CHECK(cairn_sweep(db, 8, &swept, &more));
    /* A full backup through the writer callback, verified through the reader. */
    cairn_stream_t to, from;
    cairn_backup_info_t info, checked;
    memset(&to, 0, sizeof to);
    memset(&from, 0, sizeof from);
    to.write = buf_write;
    from.read = buf_read;
    CHECK(cairn_backup_full(db, NULL, &to, &info));
    CHECK(cairn_backup_verify(db, NULL, &from, &checked));
    cairn_statistics_t st;
    CHECK(cairn_statistics(db, &st));
    CHECK(cairn_close(db));
    cairn_ram_device_free(flash);

    snprintf(line, sizeof line, "cairndb %s on Cortex-M3: %d found, %u documents, n=%s, doc 1 %s\n",
             cairn_version_string(), found, (unsigned)n, v, doc);
    qemu_puts(line);
    struct mallinfo mi = mallinfo();
    snprintf(line, sizeof line,
             "peak stack %u bytes; heap arena %u bytes (128 KiB of it the RAM device), %u in use "
             "after free\n",
             stack_used(), (unsigned)mi.arena, (unsigned)mi.uordblks);
    qemu_puts(line);
    snprintf(line, sizeof line, "heap hooks: %u allocations, %u frees\n", allocs, frees);
    qemu_puts(line);
    if (found != 10 || n != 30 || strcmp(v, "30") != 0) failures++;
    if (in_t != 2 || seq != 7 || temp != 20.5) failures++;
    if (tmp_n != 0 || swept != 1 || more || st.expired_removed != 1 || st.inserts.count != 1)
        failures++;
    if (info.stream_len != stream_len || checked.records != info.records || info.records < 30)
        failures++;
    snprintf(line, sizeof line, "backup: %u records, %u bytes, verified\n",
             (unsigned)info.records, (unsigned)info.stream_len);
    qemu_puts(line);
    if (allocs == 0 || allocs != frees) failures++; /* every block went back, through the hook */
    qemu_puts(failures == 0 ? "qemu-c: ok\n" : "qemu-c: FAILED\n");
    return failures == 0 ? 0 : 1;
}
