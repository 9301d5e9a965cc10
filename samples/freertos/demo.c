/*
 * cairndb on FreeRTOS: the demo `cargo xtask demo` runs on QEMU mps2-an385 (Cortex-M3).
 *
 * Boot 1 (no flash image on the host yet): formats an encrypted database on a 256 KiB NOR flash
 * emulated in RAM; a sensor task inserts readings with a time to live, a query task counts them
 * per sensor through an index, the port's background task sweeps expired readings, compacts and
 * takes scheduled backups into a backup ring on a second 96 KiB chip, all sharing one handle
 * through the port's recursive FreeRTOS mutex. It then stops the background task, closes the
 * database and saves both flash images to host files (semihosting).
 * Boot 2 (the images exist): loads them, checks that a wrong key is refused, opens with the
 * right key and finds what boot 1 left, then restores the backup ring's newest chain into a
 * scratch database in RAM and finds the same readings there. Exit status 0 when every check
 * passed.
 */
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "cairn_freertos.h"

#define IMAGE "cairn-demo-flash.img"
#define BACKUP_IMAGE "cairn-demo-backup.img"
#define READINGS 30
#define KEEP_EVERY 3           /* every third reading keeps for an hour ... */
#define SHORT_TTL_MS 400u      /* ... the others expire after 400 ms */
#define LONG_TTL_MS 3600000u
#define BACKUP_EVERY_MS 600u   /* scheduled backups (hourly or daily on a real device) */

static nor_t nor, backup_nor;
static cairn_config_t backup_dev;
/* The backup chip: two chain areas of 3 slots of 4 blocks (16 KiB) each. */
static cairn_ring_t ring = {&backup_dev, 0, BACKUP_NOR_BLOCK_COUNT, 3};
static cairn_fr_platform_t platform;
static cairn_config_t cfg;
static cairn_db_t *db;
static cairn_fr_bg_t bg;
static TaskHandle_t app;
static int failures;
static int boot;
static UBaseType_t producer_free, consumer_free;

#define CHECK(expr)                                                                  \
    do {                                                                             \
        int32_t rc_ = (expr);                                                        \
        if (rc_ != CAIRN_OK) {                                                       \
            board_printf("FAIL %s: %s (%d)\n", #expr, cairn_strerror(rc_), (int)rc_); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static void key_bytes(uint8_t key[32], uint8_t salt) {
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 7 + salt);
}

static void log_sink(int32_t level, const char *line) {
    static const char *const names[] = {"", "error", "warn", "info"};
    if (level > CAIRN_LOG_INFO) return; /* debug lines: "not found" answers and the like */
    board_printf("  [cairndb %s] %s\n", level >= 1 && level <= 3 ? names[level] : "?", line);
}

static unsigned ms(void) { return (unsigned)cairn_fr_now_ms(&platform); }

static void producer(void *arg) {
    (void)arg;
    for (int i = 0; i < READINGS; i++) {
        char doc[96];
        int keep = i % KEEP_EVERY == 0;
        snprintf(doc, sizeof doc, "{\"sensor\":\"s%d\",\"seq\":%d,\"temp\":%d}", i % 3, i,
                 180 + (i * 37) % 90);
        cairn_write_opts_t opts = {keep ? LONG_TTL_MS : SHORT_TTL_MS, NULL, 0};
        uint64_t id = 0;
        int32_t rc = cairn_doc_insert_with(db, "readings", doc, &opts, &id);
        if (rc != CAIRN_OK) {
            board_printf("FAIL producer insert %d: %s\n", i, cairn_strerror(rc));
            failures++;
        } else if (i < 6 || i % 6 == 0) {
            board_printf("[%5u ms] producer: reading %2d of s%d, %d.%d C, %s -> _id %u\n", ms(), i,
                         i % 3, (180 + (i * 37) % 90) / 10, (180 + (i * 37) % 90) % 10,
                         keep ? "kept for 1 h" : "expires in 400 ms", (unsigned)id);
        }
        vTaskDelay(pdMS_TO_TICKS(40));
    }
    board_printf("[%5u ms] producer: %d readings inserted\n", ms(), READINGS);
    producer_free = uxTaskGetStackHighWaterMark(NULL);
    xTaskNotifyGive(app);
    vTaskDelete(NULL);
}

static int32_t count_cb(void *ctx, const char *json, size_t len) {
    (void)json;
    (void)len;
    ++*(uint64_t *)ctx;
    return 0;
}

static void consumer(void *arg) {
    (void)arg;
    char plan[160];
    CHECK(cairn_explain(db, "readings", "{\"sensor\":\"s1\"}", NULL, plan, sizeof plan, NULL));
    board_printf("[%5u ms] consumer: plan for {\"sensor\":\"s1\"}: %s\n", ms(), plan);
    for (int round = 0; round < 8; round++) {
        /* One transaction: the counts are a consistent snapshot (it holds the handle's lock,
         * so the sweeper and the producer wait). */
        uint64_t n[3] = {0, 0, 0}, total = 0;
        cairn_txn_t *txn = NULL;
        CHECK(cairn_txn_begin(db, &txn));
        for (int s = 0; s < 3 && txn != NULL; s++) {
            char filter[32];
            snprintf(filter, sizeof filter, "{\"sensor\":\"s%d\"}", s);
            CHECK(cairn_txn_find(txn, "readings", filter, "{\"projection\":{\"_id\":1}}",
                                 count_cb, &n[s]));
        }
        if (txn != NULL) {
            CHECK(cairn_txn_doc_count(txn, "readings", &total));
            CHECK(cairn_txn_commit(txn));
        }
        board_printf("[%5u ms] consumer: live readings s0=%u s1=%u s2=%u (total %u)\n", ms(),
                     (unsigned)n[0], (unsigned)n[1], (unsigned)n[2], (unsigned)total);
        if (n[0] + n[1] + n[2] != total) {
            board_printf("FAIL consumer: per-sensor counts do not add up to the total\n");
            failures++;
        }
        vTaskDelay(pdMS_TO_TICKS(180));
    }
    consumer_free = uxTaskGetStackHighWaterMark(NULL);
    xTaskNotifyGive(app);
    vTaskDelete(NULL);
}

static int32_t print_reading(void *ctx, const char *json, size_t len) {
    (void)len;
    int *n = ctx;
    (*n)++;
    board_printf("    %s\n", json);
    return 0;
}

static void print_ring(void) {
    cairn_ring_status_t st;
    CHECK(cairn_ring_status(db, NULL, &ring, &st));
    board_printf("backup ring: area 0 holds a chain of %u backup(s), area 1 of %u; the newest is "
                 "area %d\n",
                 (unsigned)st.chain_len[0], (unsigned)st.chain_len[1], (int)st.newest);
}

static void boot1(void) {
    uint8_t key[32];
    key_bytes(key, 1);
    cairn_key_t k = {key, NULL, 0, 0};
    board_printf("boot 1: no flash image on the host: formatting an encrypted database "
                 "(AES-256) on %u KiB of NOR flash (%u x %u KiB blocks, emulated in RAM)\n",
                 NOR_SIZE / 1024, NOR_BLOCK_COUNT, NOR_BLOCK_SIZE / 1024);
    CHECK(cairn_format(&db, &cfg, &k));
    if (db == NULL) return;
    const char *by_sensor[] = {"sensor"};
    CHECK(cairn_index_create(db, "readings", "by_sensor", by_sensor, 1, false));
    CHECK(cairn_kv_put(db, "sys", "boots", 5, "1", 1));

    cairn_fr_bg_config_t bc = {0};
    bc.period_ms = 200;
    bc.backup_ring = &ring;
    bc.backup_interval_ms = BACKUP_EVERY_MS;
    CHECK(cairn_fr_bg_start(&bg, db, &platform, &bc));
    board_printf("tasks: producer (priority 3), consumer (2), cairn-bg (%u: every %u ms sweeps at "
                 "most %u expired items, compacts when worthwhile, backs up every %u ms), sharing "
                 "one handle through a recursive mutex\n",
                 (unsigned)bg.cfg.priority, (unsigned)bg.cfg.period_ms,
                 (unsigned)bg.cfg.sweep_budget, (unsigned)bg.cfg.backup_interval_ms);
    xTaskCreate(producer, "producer", 4096, NULL, 3, NULL);
    xTaskCreate(consumer, "consumer", 4096, NULL, 2, NULL);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);

    /* Every short-lived reading expires 400 ms after its insert (reads hide it at once): wait
     * until the background task has swept them all from the flash. */
    uint64_t left = 0;
    for (int i = 0; i < 40 && bg.stats.swept < READINGS - READINGS / KEEP_EVERY; i++)
        vTaskDelay(pdMS_TO_TICKS(100));
    CHECK(cairn_fr_bg_stop(&bg, 5000));
    CHECK(cairn_doc_count(db, "readings", &left));
    board_printf("[%5u ms] cairn-bg stopped: %u wakes, %u expired readings swept, %u compaction "
                 "steps, %u backups (%u full), last error %d\n",
                 ms(), (unsigned)bg.stats.passes, (unsigned)bg.stats.swept, (unsigned)bg.stats.compactions,
                 (unsigned)bg.stats.backups, (unsigned)bg.stats.full_backups, (int)bg.stats.last_error);
    if (left != READINGS / KEEP_EVERY || bg.stats.swept != READINGS - READINGS / KEEP_EVERY ||
        bg.stats.backups < 2 || bg.stats.last_error != CAIRN_OK) {
        board_printf("FAIL: %u readings left, %u swept, %u backups\n", (unsigned)left,
                     (unsigned)bg.stats.swept, (unsigned)bg.stats.backups);
        failures++;
    }
    /* One more backup before power-off, so that the ring holds this exact state. */
    cairn_backup_info_t info;
    uint32_t area = 0, slot = 0;
    CHECK(cairn_ring_backup(db, NULL, &ring, &info, &area, &slot));
    board_printf("backup before power-off: %s into area %u slot %u, %u records, %u bytes\n",
                 info.kind == CAIRN_BACKUP_FULL ? "full" : "incremental", (unsigned)area,
                 (unsigned)slot, (unsigned)info.records, (unsigned)info.stream_len);
    print_ring();
    cairn_stats_t st;
    CHECK(cairn_stats(db, &st));
    board_printf("stats before compaction: %u commits, %u segments (%u bytes), %u of %u blocks free\n",
                 (unsigned)st.commits, (unsigned)st.segments, (unsigned)st.segment_bytes,
                 (unsigned)st.free_blocks, (unsigned)st.block_count);
    CHECK(cairn_compact(db));
    CHECK(cairn_stats(db, &st));
    board_printf("stats after compaction:  %u segments (%u bytes), %u of %u blocks free\n",
                 (unsigned)st.segments, (unsigned)st.segment_bytes, (unsigned)st.free_blocks,
                 (unsigned)st.block_count);
    board_printf("stack high-water marks (bytes never used): cairn-bg %u of %u, producer %u of "
                 "%u, consumer %u of %u, main %u of %u\n",
                 (unsigned)bg.stack_free_words * 4, (unsigned)bg.cfg.stack_words * 4,
                 (unsigned)producer_free * 4, 4096 * 4, (unsigned)consumer_free * 4, 4096 * 4,
                 (unsigned)uxTaskGetStackHighWaterMark(NULL) * 4, 4096 * 4);
    CHECK(cairn_close(db));
    db = NULL;
    int rc = nor_save(&nor, IMAGE);
    int brc = nor_save(&backup_nor, BACKUP_IMAGE);
    board_printf("[%5u ms] flash images saved to the host files %s and %s (%s); %u programs, %u "
                 "erases; power off\n",
                 ms(), IMAGE, BACKUP_IMAGE, rc == 0 && brc == 0 ? "ok" : "FAILED",
                 (unsigned)(nor.progs + backup_nor.progs), (unsigned)(nor.erases + backup_nor.erases));
    if (rc != 0 || brc != 0) failures++;
}

/* Restores the ring's newest chain into a scratch database on a RAM device and counts the
 * readings there. */
static void restore_scratch(const cairn_key_t *k, uint64_t expect) {
    cairn_ram_device_t *ram = NULL;
    cairn_config_t scfg;
    memset(&scfg, 0, sizeof scfg);
    CHECK(cairn_ram_device_new(&ram, 16, 16, NOR_BLOCK_SIZE, NOR_BLOCK_COUNT));
    if (ram == NULL) return;
    CHECK(cairn_ram_device_config(ram, &scfg));
    cairn_db_t *scratch = NULL;
    CHECK(cairn_format(&scratch, &scfg, k));
    if (scratch != NULL) {
        cairn_restore_report_t rep;
        uint64_t n = 0;
        CHECK(cairn_ring_restore(scratch, NULL, &ring, &rep));
        CHECK(cairn_doc_count(scratch, "readings", &n));
        board_printf("restored the ring's newest chain (%u backups, %u records) into a scratch "
                     "database in RAM: %u readings, as on the flash\n",
                     (unsigned)rep.streams, (unsigned)rep.records, (unsigned)n);
        if (n != expect) {
            board_printf("FAIL: %u readings restored, %u expected\n", (unsigned)n, (unsigned)expect);
            failures++;
        }
        CHECK(cairn_close(scratch));
    }
    cairn_ram_device_free(ram);
}

static void boot2(void) {
    uint8_t key[32], wrong[32];
    key_bytes(key, 1);
    key_bytes(wrong, 2);
    cairn_key_t k = {key, NULL, 0, 0}, w = {wrong, NULL, 0, 0};
    board_printf("boot 2: flash images loaded from the host files %s and %s\n", IMAGE, BACKUP_IMAGE);
    int32_t rc = cairn_open(&db, &cfg, &w);
    board_printf("open with a wrong key: %s (%d)\n",
                 rc == CAIRN_ERR_WRONG_KEY ? "refused" : "NOT REFUSED", (int)rc);
    if (rc != CAIRN_ERR_WRONG_KEY) {
        failures++;
        if (db != NULL) cairn_close(db);
        db = NULL;
    }
    CHECK(cairn_open(&db, &cfg, &k));
    if (db == NULL) return;
    char boots[8] = {0};
    size_t len = 0;
    CHECK(cairn_kv_get(db, "sys", "boots", 5, boots, sizeof boots - 1, &len));
    boots[len < sizeof boots ? len : 0] = 0;
    uint64_t total = 0;
    CHECK(cairn_doc_count(db, "readings", &total));
    board_printf("open with the right key: boots=%s, %u readings survived (the ones kept for an hour)\n",
                 boots, (unsigned)total);
    int found = 0;
    board_printf("readings of s0 through the index, newest first:\n");
    CHECK(cairn_find(db, "readings", "{\"sensor\":\"s0\"}",
                     "{\"sort\":{\"seq\":-1},\"limit\":3,\"projection\":{\"_exp\":0}}",
                     print_reading, &found));
    if (total != READINGS / KEEP_EVERY || strcmp(boots, "1") != 0 || found != 3) {
        board_printf("FAIL: expected %d readings, boots=1 and 3 found\n", READINGS / KEEP_EVERY);
        failures++;
    }
    print_ring();
    restore_scratch(&k, total);
    CHECK(cairn_kv_put(db, "sys", "boots", 5, "2", 1));
    CHECK(cairn_close(db));
    db = NULL;
    if (nor_save(&nor, IMAGE) != 0) failures++;
}

static void app_task(void *arg) {
    (void)arg;
    platform.log = log_sink;
    nor_config(&nor, &cfg);
    nor_config(&backup_nor, &backup_dev);
    CHECK(cairn_fr_platform_init(&platform, &cfg));
    board_printf("cairndb %s on FreeRTOS %s, Cortex-M3 (QEMU mps2-an385)\n", cairn_version_string(),
                 tskKERNEL_VERSION_NUMBER);
    if (boot == 1) boot1();
    else boot2();
    board_printf("[%5u ms] boot %d: %s\n", ms(), boot, failures == 0 ? "ok" : "FAILED");
    board_exit(failures == 0 ? 0 : 1);
}

int main(void) {
    board_init();
    if (cairn_fr_use_freertos_heap() != CAIRN_OK) return 10;
    nor_init(&nor);
    nor_init_backup(&backup_nor);
    int rc = nor_load(&nor, IMAGE);
    if (rc == 0 && nor_load(&backup_nor, BACKUP_IMAGE) != 0) rc = -2;
    if (rc == -2) {
        board_puts("demo: the host files " IMAGE " and " BACKUP_IMAGE " are not flash images of "
                   "this board\n");
        return 11;
    }
    boot = rc == 0 ? 2 : 1;
    if (xTaskCreate(app_task, "main", 4096, NULL, 4, &app) != pdPASS) return 12;
    vTaskStartScheduler();
    return 13;
}
