/*
 * cairndb's on-device tests on FreeRTOS (QEMU mps2-an385), run by `cargo xtask qemu`. The
 * semihosting argument picks the mode:
 *
 *  suite          CRUD, queries, a transaction (commit and rollback), a concurrency test
 *                 (tasks of four priorities increment one counter document in transactions;
 *                 the total must be exact), TTL, the background task's sweeps and scheduled
 *                 backups into a backup ring, and a restore of the ring into a fresh
 *                 database. Exit 0 when every check passed.
 *  powercut-init  formats pc-flash.img (a host file) with a counter document at 0.
 *  powercut       loads pc-flash.img, opens it (recovery after the cut), checks that the counter
 *                 document and its twin key agree, prints "BOOT <n>", then commits n+1, n+2, ...
 *                 forever, printing "ACK <n>" after each commit returns. Every flash program and
 *                 erase is written through to pc-flash.img before it returns (board.c), so the
 *                 host may kill QEMU at any moment: that is the power cut. The host checks that
 *                 each BOOT value is >= the last ACK it saw (and at most one more: a commit whose
 *                 ACK was not printed yet may or may not have landed) and never goes backwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "cairn_freertos.h"

#define PC_IMAGE "pc-flash.img"

static nor_t nor;
static cairn_fr_platform_t platform;
static cairn_config_t cfg;
static cairn_db_t *db;
static int failures;
static char mode[32];
static TaskHandle_t main_task;

static const uint8_t key_bytes[32] = {0x51, 0x7e, 0x02, 0x99, 0xc4, 0x10, 0x3d, 0x8a,
                                      0x6f, 0x21, 0xb0, 0x47, 0x5c, 0xe8, 0x13, 0x7a};
static const cairn_key_t key = {key_bytes, NULL, 0, 0};

#define CHECK(expr)                                                                       \
    do {                                                                                  \
        int32_t rc_ = (expr);                                                             \
        if (rc_ != CAIRN_OK) {                                                            \
            board_printf("FAIL line %d %s: %s (%d)\n", __LINE__, #expr, cairn_strerror(rc_), \
                         (int)rc_);                                                       \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)
#define EXPECT(cond)                                                 \
    do {                                                             \
        if (!(cond)) {                                               \
            board_printf("FAIL line %d: %s\n", __LINE__, #cond);     \
            failures++;                                              \
        }                                                            \
    } while (0)

/* The integer after "\"<field>\":" in a JSON text, or -1. */
static long json_int(const char *json, const char *field) {
    char pat[24];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *at = strstr(json, pat);
    return at == NULL ? -1 : strtol(at + strlen(pat), NULL, 10);
}

static int32_t count_cb(void *ctx, const char *json, size_t len) {
    (void)json;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

static int32_t seq_cb(void *ctx, const char *json, size_t len) {
    (void)len;
    long *seqs = ctx;
    seqs[++seqs[0]] = json_int(json, "seq");
    return seqs[0] >= 8 ? 1 : 0;
}

/* ---- suite ------------------------------------------------------------------------------ */

static void test_crud(void) {
    uint64_t id = 0, n = 0;
    char buf[160];
    CHECK(cairn_doc_insert(db, "things", "{\"name\":\"valve\",\"qty\":3}", &id));
    EXPECT(id == 1);
    CHECK(cairn_doc_get(db, "things", id, buf, sizeof buf, NULL));
    EXPECT(strstr(buf, "\"name\":\"valve\"") != NULL && json_int(buf, "qty") == 3);
    CHECK(cairn_doc_patch(db, "things", id, "{\"$inc\":{\"qty\":2}}"));
    CHECK(cairn_doc_get(db, "things", id, buf, sizeof buf, NULL));
    EXPECT(json_int(buf, "qty") == 5);
    CHECK(cairn_doc_replace(db, "things", id, "{\"name\":\"pump\",\"qty\":1}"));
    CHECK(cairn_doc_get(db, "things", id, buf, sizeof buf, NULL));
    EXPECT(strstr(buf, "pump") != NULL && json_int(buf, "qty") == 1);
    CHECK(cairn_doc_delete(db, "things", id));
    EXPECT(cairn_doc_get(db, "things", id, buf, sizeof buf, NULL) == CAIRN_ERR_NOT_FOUND);
    CHECK(cairn_doc_count(db, "things", &n));
    EXPECT(n == 0);
    CHECK(cairn_kv_put(db, "cfg", "mode", 4, "eco", 3));
    size_t len = 0;
    CHECK(cairn_kv_get(db, "cfg", "mode", 4, buf, sizeof buf, &len));
    EXPECT(len == 3 && memcmp(buf, "eco", 3) == 0);
    CHECK(cairn_kv_delete(db, "cfg", "mode", 4));
    bool exists = true;
    CHECK(cairn_kv_exists(db, "cfg", "mode", 4, &exists));
    EXPECT(!exists);
    board_printf("suite: CRUD ok\n");
}

static void test_queries(void) {
    const char *fields[] = {"room"};
    CHECK(cairn_index_create(db, "temps", "by_room", fields, 1, false));
    for (int i = 0; i < 40; i++) {
        char doc[80];
        snprintf(doc, sizeof doc, "{\"room\":\"r%d\",\"seq\":%d,\"t\":%d}", i % 4, i, 150 + i);
        CHECK(cairn_doc_insert(db, "temps", doc, NULL));
    }
    uint64_t n = 0;
    CHECK(cairn_find_count(db, "temps", "{\"room\":\"r2\"}", &n));
    EXPECT(n == 10);
    CHECK(cairn_find_count(db, "temps", "{\"room\":\"r2\",\"t\":{\"$gte\":170}}", &n));
    EXPECT(n == 5); /* seq 22, 26, 30, 34, 38 */
    char plan[160];
    CHECK(cairn_explain(db, "temps", "{\"room\":\"r1\"}", NULL, plan, sizeof plan, NULL));
    EXPECT(strstr(plan, "\"access\":\"index\"") != NULL);
    long seqs[9] = {0};
    CHECK(cairn_find(db, "temps", "{\"room\":\"r1\"}", "{\"sort\":{\"seq\":-1},\"limit\":3}", seq_cb, seqs));
    EXPECT(seqs[0] == 3 && seqs[1] == 37 && seqs[2] == 33 && seqs[3] == 29);
    int found = 0;
    CHECK(cairn_find(db, "temps", "{\"room\":\"r0\",\"seq\":{\"$lt\":20}}", NULL, count_cb, &found));
    EXPECT(found == 5);
    uint64_t deleted = 0;
    CHECK(cairn_delete_many(db, "temps", "{\"room\":\"r3\"}", &deleted));
    EXPECT(deleted == 10);
    CHECK(cairn_doc_count(db, "temps", &n));
    EXPECT(n == 30);
    board_printf("suite: queries ok (plan %s)\n", plan);
}

static void test_transaction(void) {
    cairn_txn_t *txn = NULL;
    uint64_t n = 0;
    CHECK(cairn_txn_begin(db, &txn));
    CHECK(cairn_txn_doc_insert(txn, "orders", "{\"item\":\"a\"}", NULL));
    CHECK(cairn_txn_doc_insert(txn, "orders", "{\"item\":\"b\"}", NULL));
    CHECK(cairn_txn_kv_put(txn, "meta", "orders", 6, "2", 1));
    CHECK(cairn_txn_doc_count(txn, "orders", &n));
    EXPECT(n == 2); /* the transaction reads its own writes */
    CHECK(cairn_txn_commit(txn));
    CHECK(cairn_txn_begin(db, &txn));
    CHECK(cairn_txn_doc_insert(txn, "orders", "{\"item\":\"c\"}", NULL));
    CHECK(cairn_txn_kv_put(txn, "meta", "orders", 6, "3", 1));
    CHECK(cairn_txn_rollback(txn));
    CHECK(cairn_doc_count(db, "orders", &n));
    char v[4] = {0};
    size_t len = 0;
    CHECK(cairn_kv_get(db, "meta", "orders", 6, v, 3, &len));
    EXPECT(n == 2 && len == 1 && v[0] == '2');
    board_printf("suite: transaction ok (commit of 3 writes, rollback of 2)\n");
}

#define WORKERS 4
#define INCREMENTS 25
static volatile int workers_done;
static UBaseType_t worker_free[WORKERS];
static uint32_t worker_retries;

static void worker(void *arg) {
    int w = (int)(intptr_t)arg;
    for (int i = 0; i < INCREMENTS; i++) {
        cairn_txn_t *txn = NULL;
        char buf[96];
        int32_t rc = cairn_txn_begin(db, &txn);
        if (rc == CAIRN_OK) rc = cairn_txn_doc_get(txn, "counters", 1, buf, sizeof buf, NULL);
        if (rc == CAIRN_OK) {
            char doc[48];
            snprintf(doc, sizeof doc, "{\"n\":%ld}", json_int(buf, "n") + 1);
            rc = cairn_txn_doc_replace(txn, "counters", 1, doc);
        }
        if (txn != NULL) {
            int32_t end = rc == CAIRN_OK ? cairn_txn_commit(txn) : cairn_txn_rollback(txn);
            if (rc == CAIRN_OK) rc = end;
        }
        if (rc == CAIRN_ERR_TIMEOUT) { /* waited too long for the lock: try again */
            worker_retries++;
            i--;
        } else if (rc != CAIRN_OK) {
            board_printf("FAIL worker %d: %s\n", w, cairn_strerror(rc));
            failures++;
        }
        vTaskDelay((TickType_t)(w + 1)); /* different pacing per task: the locks interleave */
    }
    worker_free[w] = uxTaskGetStackHighWaterMark(NULL);
    taskENTER_CRITICAL();
    workers_done++;
    taskEXIT_CRITICAL();
    xTaskNotifyGive(main_task);
    vTaskDelete(NULL);
}

static void test_concurrency(void) {
    uint64_t id = 0;
    CHECK(cairn_doc_insert(db, "counters", "{\"n\":0}", &id));
    EXPECT(id == 1);
    TickType_t t0 = xTaskGetTickCount();
    for (int w = 0; w < WORKERS; w++) {
        char name[12];
        snprintf(name, sizeof name, "worker%d", w);
        if (xTaskCreate(worker, name, 3072, (void *)(intptr_t)w, (UBaseType_t)(1 + w), NULL) != pdPASS) {
            board_printf("FAIL: xTaskCreate\n");
            failures++;
            return;
        }
    }
    while (workers_done < WORKERS) ulTaskNotifyTake(pdTRUE, pdMS_TO_TICKS(100));
    char buf[96];
    CHECK(cairn_doc_get(db, "counters", 1, buf, sizeof buf, NULL));
    long n = json_int(buf, "n");
    EXPECT(n == WORKERS * INCREMENTS);
    board_printf("suite: concurrency ok: %d tasks (priorities 1-4) x %d transactional increments "
                 "= %ld in %u ms (%u lock-timeout retries); worker stack high-water marks "
                 "%u/%u/%u/%u bytes free of 12288\n",
                 WORKERS, INCREMENTS, n, (unsigned)((xTaskGetTickCount() - t0) * portTICK_PERIOD_MS),
                 (unsigned)worker_retries, (unsigned)worker_free[0] * 4, (unsigned)worker_free[1] * 4,
                 (unsigned)worker_free[2] * 4, (unsigned)worker_free[3] * 4);
}

static void test_ttl(void) {
    /* Expiry through the C API: hidden from reads at once, removed by cairn_sweep. */
    cairn_write_opts_t soon = {50, NULL, 0}, later = {3600000, NULL, 0};
    const char *tags[] = {"hot", NULL};
    cairn_write_opts_t tagged = {50, tags, 0};
    uint64_t n = 0, removed = 0, now0 = 0, now1 = 0;
    bool more = true;
    CHECK(cairn_now(db, &now0));
    CHECK(cairn_doc_insert_with(db, "ttl", "{\"k\":1}", &soon, NULL));
    CHECK(cairn_doc_insert_with(db, "ttl", "{\"k\":2}", &later, NULL));
    CHECK(cairn_kv_put_with(db, "sess", "a", 1, "x", 1, &tagged));
    CHECK(cairn_doc_count(db, "ttl", &n));
    EXPECT(n == 2);
    vTaskDelay(pdMS_TO_TICKS(80));
    CHECK(cairn_now(db, &now1));
    EXPECT(now1 >= now0 + 50);
    CHECK(cairn_doc_count(db, "ttl", &n));
    EXPECT(n == 1); /* expired: hidden before any sweep */
    bool exists = true;
    CHECK(cairn_kv_exists(db, "sess", "a", 1, &exists));
    EXPECT(!exists);
    CHECK(cairn_sweep(db, 16, &removed, &more));
    EXPECT(removed == 2 && !more);
    board_printf("suite: TTL ok: 2 items expired after 50 ms of database time, hidden at once, "
                 "swept in one call\n");
}

static void test_background(void) {
    /* Expiring documents, swept by the port's background task through cairn_sweep. */
    cairn_write_opts_t soon = {1, NULL, 0};
    for (int i = 0; i < 20; i++) {
        char doc[32];
        snprintf(doc, sizeof doc, "{\"k\":%d}", i);
        CHECK(cairn_doc_insert_with(db, "cache", doc, i < 15 ? &soon : NULL, NULL));
    }
    vTaskDelay(pdMS_TO_TICKS(5));
    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc = {0};
    bc.period_ms = 20;
    bc.sweep_budget = 4;
    CHECK(cairn_fr_bg_start(&bg, db, &platform, &bc));
    for (int i = 0; i < 50 && bg.stats.swept < 15; i++) vTaskDelay(pdMS_TO_TICKS(20));
    CHECK(cairn_fr_bg_stop(&bg, 2000));
    uint64_t n = 0;
    CHECK(cairn_doc_count(db, "cache", &n));
    EXPECT(n == 5 && bg.stats.swept == 15 && bg.stats.passes >= 4 && bg.stats.last_error == CAIRN_OK);
    board_printf("suite: background task ok: %u wakes swept %u expired documents (at most 4 "
                 "per wake); stack high-water mark %u bytes free of %u\n",
                 (unsigned)bg.stats.passes, (unsigned)bg.stats.swept, (unsigned)bg.stack_free_words * 4,
                 (unsigned)bg.cfg.stack_words * 4);
}

/* Scheduled backups by the background task into a ring on the backup chip, then a restore of
 * the ring into a fresh database on a RAM device: the same documents. */
static nor_t backup_nor;
static cairn_config_t backup_dev;

static void test_backup_ring(void) {
    nor_init_backup(&backup_nor);
    nor_config(&backup_nor, &backup_dev);
    cairn_ring_t ring = {&backup_dev, 0, BACKUP_NOR_BLOCK_COUNT, 3};
    cairn_fr_bg_t bg;
    cairn_fr_bg_config_t bc = {0};
    bc.period_ms = 10;
    bc.no_sweep = true;
    bc.backup_ring = &ring;
    bc.backup_interval_ms = 30;
    CHECK(cairn_fr_bg_start(&bg, db, &platform, &bc));
    for (int i = 0; i < 12; i++) {
        char doc[48];
        snprintf(doc, sizeof doc, "{\"batch\":%d}", i);
        CHECK(cairn_doc_insert(db, "logged", doc, NULL));
        vTaskDelay(pdMS_TO_TICKS(15));
    }
    for (int i = 0; i < 100 && bg.stats.backups < 4; i++) vTaskDelay(pdMS_TO_TICKS(10));
    CHECK(cairn_fr_bg_stop(&bg, 2000));
    EXPECT(bg.stats.backups >= 4 && bg.stats.full_backups >= 2 && bg.stats.last_error == CAIRN_OK);
    /* The ring holds everything up to the last backup; take one now so it is this state. */
    uint32_t area = 0, slot = 0;
    CHECK(cairn_ring_backup(db, NULL, &ring, NULL, &area, &slot));
    uint64_t want = 0, got = 0;
    CHECK(cairn_doc_count(db, "logged", &want));
    /* The scratch device and database come from the FreeRTOS heap (cairn_fr_use_freertos_heap)
     * and all of it goes back. */
    size_t heap0 = xPortGetFreeHeapSize(), heap1 = 0;
    cairn_ram_device_t *ram = NULL;
    cairn_config_t rcfg;
    memset(&rcfg, 0, sizeof rcfg);
    CHECK(cairn_ram_device_new(&ram, 16, 16, NOR_BLOCK_SIZE, NOR_BLOCK_COUNT));
    if (ram == NULL) return;
    CHECK(cairn_ram_device_config(ram, &rcfg));
    cairn_db_t *other = NULL;
    CHECK(cairn_format(&other, &rcfg, &key));
    cairn_restore_report_t rep;
    memset(&rep, 0, sizeof rep);
    if (other != NULL) {
        CHECK(cairn_ring_restore(other, NULL, &ring, &rep));
        CHECK(cairn_doc_count(other, "logged", &got));
        heap1 = xPortGetFreeHeapSize();
        CHECK(cairn_close(other));
    }
    cairn_ram_device_free(ram);
    EXPECT(want == 12 && got == want);
    EXPECT(heap1 + NOR_SIZE <= heap0 && xPortGetFreeHeapSize() == heap0);
    board_printf("suite: backup ring ok: the background task took %u backups (%u full) every "
                 "30 ms; the last one, area %u slot %u, restored into a fresh database: %u of "
                 "%u documents (%u backups applied); the scratch database took %u bytes of the "
                 "FreeRTOS heap, all returned\n",
                 (unsigned)bg.stats.backups, (unsigned)bg.stats.full_backups, (unsigned)area, (unsigned)slot,
                 (unsigned)got, (unsigned)want, (unsigned)rep.streams, (unsigned)(heap0 - heap1));
}

static void suite(void) {
    CHECK(cairn_format(&db, &cfg, &key));
    if (db == NULL) return;
    test_crud();
    test_queries();
    test_transaction();
    test_concurrency();
    test_ttl();
    test_background();
    test_backup_ring();
    CHECK(cairn_close(db));
    /* Reopen: everything committed is there, and a wrong key is refused. */
    static const uint8_t wrong_bytes[32] = {1};
    const cairn_key_t wrong = {wrong_bytes, NULL, 0, 0};
    db = NULL;
    EXPECT(cairn_open(&db, &cfg, &wrong) == CAIRN_ERR_WRONG_KEY);
    CHECK(cairn_open(&db, &cfg, &key));
    if (db == NULL) return;
    char buf[96];
    uint64_t n = 0;
    CHECK(cairn_doc_get(db, "counters", 1, buf, sizeof buf, NULL));
    EXPECT(json_int(buf, "n") == WORKERS * INCREMENTS);
    CHECK(cairn_doc_count(db, "temps", &n));
    EXPECT(n == 30);
    CHECK(cairn_close(db));
    board_printf("suite: reopen ok; main task stack high-water mark %u bytes free of 16384\n",
                 (unsigned)uxTaskGetStackHighWaterMark(NULL) * 4);
}

/* ---- power cuts ------------------------------------------------------------------------- */

static void powercut_init(void) {
    CHECK(cairn_format(&db, &cfg, &key));
    if (db == NULL) return;
    CHECK(cairn_doc_insert(db, "counters", "{\"n\":0}", NULL));
    CHECK(cairn_kv_put(db, "twin", "n", 1, "0", 1));
    CHECK(cairn_close(db));
    if (nor_save(&nor, PC_IMAGE) != 0) failures++;
    board_printf("powercut-init: %s formatted, counter 0\n", PC_IMAGE);
}

/* The counter document and its twin key, read in one transaction; -1 on any error. */
static long read_counter(void) {
    cairn_txn_t *txn = NULL;
    char buf[96], twin[24] = {0};
    size_t len = 0;
    long n = -1;
    if (cairn_txn_begin(db, &txn) != CAIRN_OK) return -1;
    if (cairn_txn_doc_get(txn, "counters", 1, buf, sizeof buf, NULL) == CAIRN_OK &&
        cairn_txn_kv_get(txn, "twin", "n", 1, twin, sizeof twin - 1, &len) == CAIRN_OK) {
        n = json_int(buf, "n");
        if (strtol(twin, NULL, 10) != n) {
            board_printf("FAIL: counter document %ld but twin key %s: a torn commit\n", n, twin);
            n = -2;
        }
    }
    (void)cairn_txn_rollback(txn);
    return n;
}

static void powercut(void) {
    int rc = nor_load(&nor, PC_IMAGE);
    if (rc != 0) {
        board_printf("FAIL: cannot load %s (%d)\n", PC_IMAGE, rc);
        failures++;
        return;
    }
    /* r+b: no truncation, the file is already the flash. */
    nor.fh = board_file_open(PC_IMAGE, SH_MODE_RPB);
    if (nor.fh < 0) {
        board_printf("FAIL: cannot open %s for writing\n", PC_IMAGE);
        failures++;
        return;
    }
    CHECK(cairn_open(&db, &cfg, &key));
    if (db == NULL) return;
    long n = read_counter();
    if (n < 0) {
        board_printf("FAIL: counter unreadable after the cut (%ld)\n", n);
        failures++;
        return;
    }
    board_printf("BOOT %ld\n", n);
    for (;;) {
        char doc[32], twin[24];
        cairn_txn_t *txn = NULL;
        snprintf(doc, sizeof doc, "{\"n\":%ld}", n + 1);
        snprintf(twin, sizeof twin, "%ld", n + 1);
        CHECK(cairn_txn_begin(db, &txn));
        CHECK(cairn_txn_doc_replace(txn, "counters", 1, doc));
        CHECK(cairn_txn_kv_put(txn, "twin", "n", 1, twin, strlen(twin)));
        CHECK(cairn_txn_commit(txn));
        if (failures) return;
        n++;
        board_printf("ACK %ld\n", n);
        if (n % 16 == 0) CHECK(cairn_compact(db)); /* more kinds of flash traffic to cut */
    }
}

static void image_check(void); /* at the end of the file */

static void main_fn(void *arg) {
    (void)arg;
    nor_config(&nor, &cfg);
    CHECK(cairn_fr_platform_init(&platform, &cfg));
    if (strcmp(mode, "suite") == 0) suite();
    else if (strcmp(mode, "powercut-init") == 0) powercut_init();
    else if (strcmp(mode, "powercut") == 0) powercut();
    else if (strcmp(mode, "image-check") == 0) image_check();
    else {
        board_printf("qemu_test: unknown mode '%s'\n", mode);
        failures++;
    }
    board_printf("qemu_test %s: %s\n", mode, failures == 0 ? "ok" : "FAILED");
    board_exit(failures == 0 ? 0 : 1);
}

int main(void) {
    board_init();
    if (cairn_fr_use_freertos_heap() != CAIRN_OK) return 10;
    nor_init(&nor);
    if (board_cmdline(mode, sizeof mode) != 0) return 11;
    /* QEMU passes the kernel name first when there is one: keep the last word. */
    char *sp = strrchr(mode, ' ');
    if (sp != NULL) memmove(mode, sp + 1, strlen(sp + 1) + 1);
    if (xTaskCreate(main_fn, "main", 4096, NULL, 5, &main_task) != pdPASS) return 12;
    vTaskStartScheduler();
    return 13;
}

/* ---- image-check: an image made on the host by `cairn` ----------------------------------- */
/* Mode image-check: loads cli-flash.img, an image the host tool `cairn` (tools/cli) made,
 * checks the documents, keys and index the host put there, writes a document and a key back
 * and saves the image for `cairn` to read (cargo xtask test, step cli). */

#define CLI_IMAGE "cli-flash.img"

static int32_t serial_cb(void *ctx, const char *json, size_t len) {
    (void)len;
    if (strstr(json, "\"serial\":\"SN-0043\"") != NULL) ++*(int *)ctx;
    return 0;
}

/* The content is fixed by the host side (xtask, `cli_firmware_round_trip`): two documents in
 * "provisioned" (serial SN-0042 then SN-0043, a unique index "by_serial" on serial), and in
 * namespace "config" the key "wifi/ssid" = "lab-net" and the key "threshold" = 00 10 ff. */
static void image_check(void) {
    int rc = nor_load(&nor, CLI_IMAGE);
    if (rc != 0) {
        board_printf("FAIL: cannot load %s (%d)\n", CLI_IMAGE, rc);
        failures++;
        return;
    }
    CHECK(cairn_open(&db, &cfg, &key));
    if (db == NULL) return;
    uint64_t n = 0;
    char buf[200];
    size_t len = 0;
    CHECK(cairn_doc_count(db, "provisioned", &n));
    EXPECT(n == 2);
    CHECK(cairn_doc_get(db, "provisioned", 1, buf, sizeof buf, NULL));
    EXPECT(strstr(buf, "\"serial\":\"SN-0042\"") != NULL);
    EXPECT(strstr(buf, "\"calib\":[1.5,-0.25]") != NULL);
    CHECK(cairn_explain(db, "provisioned", "{\"serial\":\"SN-0043\"}", NULL, buf, sizeof buf, NULL));
    EXPECT(strstr(buf, "\"index\":\"by_serial\"") != NULL);
    int found = 0;
    CHECK(cairn_find(db, "provisioned", "{\"serial\":\"SN-0043\"}", NULL, serial_cb, &found));
    EXPECT(found == 1);
    /* The unique index the host made is enforced here. */
    EXPECT(cairn_doc_insert(db, "provisioned", "{\"serial\":\"SN-0042\"}", NULL) == CAIRN_ERR_UNIQUE);
    CHECK(cairn_kv_get(db, "config", "wifi/ssid", 9, buf, sizeof buf, &len));
    EXPECT(len == 7 && memcmp(buf, "lab-net", 7) == 0);
    CHECK(cairn_kv_get(db, "config", "threshold", 9, buf, sizeof buf, &len));
    EXPECT(len == 3 && (uint8_t)buf[0] == 0x00 && (uint8_t)buf[1] == 0x10 && (uint8_t)buf[2] == 0xff);
    /* The firmware's own writes, for the host to read back. */
    uint64_t id = 0;
    CHECK(cairn_doc_insert(db, "device_log", "{\"event\":\"image-check\",\"provisioned\":2}", &id));
    EXPECT(id == 1);
    CHECK(cairn_kv_put(db, "config", "fw_seen", 7, "image-check", 11));
    CHECK(cairn_close(db));
    db = NULL;
    if (nor_save(&nor, CLI_IMAGE) != 0) {
        board_printf("FAIL: cannot save %s\n", CLI_IMAGE);
        failures++;
        return;
    }
    board_printf("image-check: %s checked (%u documents, 2 keys, index by_serial) and written back\n",
                 CLI_IMAGE, (unsigned)n);
}
