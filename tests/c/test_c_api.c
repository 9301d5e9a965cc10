/*
 * Tests of the C API (include/cairndb.h): every function, its results and its error paths.
 * Plain C with a tiny harness; CTest runs this binary under valgrind (tests/c/CMakeLists.txt).
 * The last line is "N passed, M failed"; the exit status is nonzero when a check failed.
 * `test_c_api [DIR]`: image files of the file-device test go to DIR (default: the current
 * directory).
 */
#define _POSIX_C_SOURCE 200809L /* pthread_mutex_timedlock, clock_gettime */

#include "cairndb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int checks_failed;
static int test_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            checks_failed++;                                                         \
            test_failed = 1;                                                         \
        }                                                                            \
    } while (0)

#define CHECK_RC(expr, want)                                                                 \
    do {                                                                                     \
        int rc_ = (int)(expr);                                                               \
        if (rc_ != (want)) {                                                                 \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s\n", __FILE__, __LINE__, \
                    #expr, rc_, cairn_strerror(rc_), #want);                                 \
            checks_failed++;                                                                 \
            test_failed = 1;                                                                 \
        }                                                                                    \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Fixtures */

#define BLOCK 4096u
#define BLOCKS 48u

static const uint8_t KEY_A[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t KEY_B[32] = {9};

static int random_calls;
static int32_t test_random(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    random_calls++;
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(i * 37 + 11);
    return 0;
}

static uint64_t test_now(void *ctx) {
    (void)ctx;
    return 1234;
}

static char last_log[128];
static int log_calls;
static void test_log(void *ctx, int32_t level, const char *msg) {
    (void)ctx;
    if (level == CAIRN_LOG_ERROR) {
        log_calls++;
        snprintf(last_log, sizeof last_log, "%s", msg);
    }
}

/* A configuration over a fresh RAM device. */
static cairn_config_t ram_config(cairn_ram_device_t **dev, uint32_t blocks) {
    cairn_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    CHECK_RC(cairn_ram_device_new(dev, 16, 16, BLOCK, blocks), CAIRN_OK);
    CHECK_RC(cairn_ram_device_config(*dev, &cfg), CAIRN_OK);
    cfg.random = test_random;
    cfg.log = test_log;
    return cfg;
}

static cairn_db_t *fresh(cairn_ram_device_t **dev, cairn_config_t *cfg) {
    cairn_db_t *db = NULL;
    *cfg = ram_config(dev, BLOCKS);
    CHECK_RC(cairn_format(&db, cfg, NULL), CAIRN_OK);
    CHECK(db != NULL);
    return db;
}

/* ------------------------------------------------------------------------------------------ */
/* Version, errors, RAM device */

static void test_version_and_strerror(void) {
    CHECK(cairn_version() == CAIRN_VERSION_NUMBER);
    CHECK(strcmp(cairn_version_string(), CAIRN_VERSION) == 0);
    CHECK(CAIRN_VERSION_NUMBER ==
          CAIRN_VERSION_MAJOR * 1000000 + CAIRN_VERSION_MINOR * 1000 + CAIRN_VERSION_PATCH);
    CHECK(strcmp(cairn_strerror(CAIRN_OK), "ok") == 0);
    CHECK(strcmp(cairn_strerror(CAIRN_ERR_BUFFER_TOO_SMALL), "buffer too small") == 0);
    CHECK(strcmp(cairn_strerror(12345), "unknown error") == 0);
    for (int code = -40; code <= 0; code++) CHECK(cairn_strerror(code) != NULL);
}

static void test_ram_device(void) {
    cairn_ram_device_t *dev = (cairn_ram_device_t *)1;
    cairn_config_t cfg;
    size_t len = 99;
    CHECK_RC(cairn_ram_device_new(NULL, 16, 16, BLOCK, 4), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ram_device_new(&dev, 0, 16, BLOCK, 4), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK(dev == NULL);
    CHECK_RC(cairn_ram_device_new(&dev, 16, 16, 0, 4), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_ram_device_new(&dev, 16, 16, BLOCK, 0), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_ram_device_new(&dev, 16, 24, BLOCK, 4), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_ram_device_new(&dev, 16, 16, BLOCK, 4), CAIRN_OK);
    CHECK(dev != NULL);
    uint8_t *data = cairn_ram_device_data(dev, &len);
    CHECK(data != NULL && len == 4 * BLOCK);
    CHECK(data[0] == 0xFF && data[len - 1] == 0xFF);
    CHECK(cairn_ram_device_data(NULL, &len) == NULL && len == 0);
    memset(&cfg, 0, sizeof cfg);
    CHECK_RC(cairn_ram_device_config(NULL, &cfg), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ram_device_config(dev, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ram_device_config(dev, &cfg), CAIRN_OK);
    CHECK(cfg.ctx == (void *)dev && cfg.read && cfg.prog && cfg.erase && cfg.block_count == 4);
    /* The callbacks keep NOR semantics and refuse requests outside the device. */
    uint8_t buf[16];
    memset(buf, 0x0F, sizeof buf);
    CHECK_RC(cfg.prog(cfg.ctx, 1, 16, buf, 16), 0);
    memset(buf, 0xF0, sizeof buf);
    CHECK_RC(cfg.prog(cfg.ctx, 1, 16, buf, 16), 0);
    CHECK_RC(cfg.read(cfg.ctx, 1, 16, buf, 16), 0);
    CHECK(buf[0] == 0x00 && buf[15] == 0x00);
    CHECK_RC(cfg.erase(cfg.ctx, 1), 0);
    CHECK_RC(cfg.read(cfg.ctx, 1, 16, buf, 16), 0);
    CHECK(buf[0] == 0xFF);
    CHECK(cfg.read(cfg.ctx, 4, 0, buf, 16) != 0);
    CHECK(cfg.read(cfg.ctx, 0, BLOCK - 8, buf, 16) != 0);
    CHECK(cfg.erase(cfg.ctx, 4) != 0);
    cairn_ram_device_free(dev);
    cairn_ram_device_free(NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Open, format, close, keys */

static void test_open_format_close(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_db_t *db = (cairn_db_t *)1;

    CHECK_RC(cairn_close(NULL), CAIRN_OK);
    CHECK_RC(cairn_open(NULL, &cfg, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_open(&db, NULL, NULL), CAIRN_ERR_NULL);
    CHECK(db == NULL);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_ERR_NOT_FORMATTED);
    CHECK(db == NULL);
    CHECK(log_calls > 0 && strstr(last_log, "cairn_open") != NULL);

    cairn_config_t bad = cfg;
    bad.read = NULL;
    CHECK_RC(cairn_format(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.block_size = 1000;
    CHECK_RC(cairn_format(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.version = CAIRN_CONFIG_VERSION + 1;
    CHECK_RC(cairn_format(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.block_count = 1;
    CHECK(cairn_format(&db, &bad, NULL) < 0);
    CHECK(db == NULL);

    /* open_or_format creates, then opens what is there. */
    CHECK_RC(cairn_open_or_format(&db, &cfg, NULL), CAIRN_OK);
    uint64_t id = 0;
    CHECK_RC(cairn_doc_insert(db, "c", "{\"a\":1}", &id), CAIRN_OK);
    CHECK(id == 1);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open_or_format(&db, &cfg, NULL), CAIRN_OK);
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 1);
    CHECK_RC(cairn_close(db), CAIRN_OK);

    /* format erases. */
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 0);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static void test_keys(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_db_t *db = NULL;
    cairn_key_t raw_a = {KEY_A, NULL, 0, 0};
    cairn_key_t raw_b = {KEY_B, NULL, 0, 0};
    cairn_key_t both = {KEY_A, (const uint8_t *)"pw", 2, 0};
    cairn_key_t empty_pass = {NULL, (const uint8_t *)"", 0, 0};
    cairn_key_t zeroed = {NULL, NULL, 0, 0};

    CHECK_RC(cairn_format(&db, &cfg, &both), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_format(&db, &cfg, &empty_pass), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_format(&db, &cfg, &raw_a), CAIRN_OK);
    CHECK_RC(cairn_kv_put(db, "ns", "k", 1, "v", 1), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);

    CHECK_RC(cairn_open(&db, &cfg, &raw_b), CAIRN_ERR_WRONG_KEY);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_ERR_KEY_MISMATCH);
    CHECK_RC(cairn_open(&db, &cfg, &zeroed), CAIRN_ERR_KEY_MISMATCH);
    CHECK(db == NULL);
    CHECK_RC(cairn_open(&db, &cfg, &raw_a), CAIRN_OK);

    /* rekey: raw A -> raw B -> passphrase -> none. */
    CHECK_RC(cairn_rekey(NULL, &raw_b), CAIRN_ERR_NULL);
    CHECK_RC(cairn_rekey(db, &both), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_rekey(db, &raw_b), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open(&db, &cfg, &raw_a), CAIRN_ERR_WRONG_KEY);
    CHECK_RC(cairn_open(&db, &cfg, &raw_b), CAIRN_OK);

    cairn_key_t pass = {NULL, (const uint8_t *)"correct horse", 13, 50};
    cairn_key_t wrong_pass = {NULL, (const uint8_t *)"battery staple", 14, 50};
    int before = random_calls;
    CHECK_RC(cairn_rekey(db, &pass), CAIRN_OK);
    CHECK(random_calls == before + 1); /* the salt */
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open(&db, &cfg, &wrong_pass), CAIRN_ERR_WRONG_KEY);
    CHECK_RC(cairn_open(&db, &cfg, &pass), CAIRN_OK);
    bool exists = false;
    CHECK_RC(cairn_kv_exists(db, "ns", "k", 1, &exists), CAIRN_OK);
    CHECK(exists);
    CHECK_RC(cairn_rekey(db, NULL), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);

    /* A passphrase needs the random source to create a database. */
    cairn_config_t no_random = cfg;
    no_random.random = NULL;
    CHECK_RC(cairn_format(&db, &no_random, &pass), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_format(&db, &cfg, &pass), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    /* Opening with a passphrase does not. */
    CHECK_RC(cairn_open(&db, &no_random, &pass), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Documents */

static void test_documents(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db;
    uint64_t id = 0, n = 0;
    char buf[256];
    size_t len = 0;

    *(&cfg) = ram_config(&dev, BLOCKS);
    cfg.now_ms = test_now;
    cfg.max_doc_bytes = 200;
    cfg.max_depth = 4;
    db = NULL;
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);

    /* insert */
    CHECK_RC(cairn_doc_insert(NULL, "c", "{}", &id), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_insert(db, NULL, "{}", &id), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_insert(db, "c", NULL, &id), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_insert(db, "c", "{\"a\":", &id), CAIRN_ERR_JSON);
    CHECK_RC(cairn_doc_insert(db, "c", "[1,2]", &id), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_doc_insert(db, "c\xff", "{}", &id), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_doc_insert(db, "c", "{\"s\":\"\xff\"}", &id), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_doc_insert(db, "", "{}", &id), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_doc_insert(db, "c", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}", &id),
             CAIRN_ERR_TOO_DEEP);
    char big[400];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"p\":\"", 6);
    memcpy(big + sizeof big - 3, "\"}", 3);
    CHECK_RC(cairn_doc_insert(db, "c", big, &id), CAIRN_ERR_TOO_LARGE);
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 0); /* nothing was written by the failed calls */
    CHECK_RC(cairn_doc_insert(db, "c", "{\"room\":\"R1\",\"t\":20}", &id), CAIRN_OK);
    CHECK(id == 1);
    CHECK_RC(cairn_doc_insert(db, "c", "{\"room\":\"R2\",\"t\":25}", NULL), CAIRN_OK);

    /* get */
    const char *want = "{\"_id\":1,\"_ver\":1,\"_ts\":1234,\"room\":\"R1\",\"t\":20}";
    CHECK_RC(cairn_doc_get(db, "c", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, want) == 0 && len == strlen(want));
    CHECK_RC(cairn_doc_get(db, "c", 1, NULL, 0, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen(want));
    strcpy(buf, "untouched");
    CHECK_RC(cairn_doc_get(db, "c", 1, buf, strlen(want), &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(buf[0] == '\0' && len == strlen(want));
    CHECK_RC(cairn_doc_get(db, "c", 1, buf, strlen(want) + 1, NULL), CAIRN_OK);
    CHECK(strcmp(buf, want) == 0);
    CHECK_RC(cairn_doc_get(db, "c", 1, NULL, 10, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get(db, "c", 99, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_get(db, "nope", 1, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_get(NULL, "c", 1, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get(db, NULL, 1, buf, sizeof buf, &len), CAIRN_ERR_NULL);

    /* replace */
    CHECK_RC(cairn_doc_replace(db, "c", 1, "{\"room\":\"R9\"}"), CAIRN_OK);
    CHECK_RC(cairn_doc_replace(db, "c", 99, "{}"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_replace(db, "c", 1, "{oops}"), CAIRN_ERR_JSON);
    CHECK_RC(cairn_doc_replace(db, "c", 1, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_replace(NULL, "c", 1, "{}"), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get(db, "c", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"_id\":1,\"_ver\":2,\"_ts\":1234,\"room\":\"R9\"}") == 0);

    /* patch */
    CHECK_RC(cairn_doc_patch(db, "c", 1, "{\"$frob\":{}}"), CAIRN_ERR_INVALID_PATCH);
    CHECK_RC(cairn_doc_patch(db, "c", 1, "{\"$inc\":{\"t\":\"x\"}}"), CAIRN_ERR_INVALID_PATCH);
    CHECK_RC(cairn_doc_patch(db, "c", 1, "not json"), CAIRN_ERR_JSON);
    CHECK_RC(cairn_doc_patch(db, "c", 1, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_patch(db, "c", 99, "{\"$set\":{\"t\":1}}"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_patch(db, "c", 1, "{\"$set\":{\"t\":30}}"), CAIRN_OK);
    CHECK_RC(cairn_doc_get(db, "c", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"_id\":1,\"_ver\":3,\"_ts\":1234,\"room\":\"R9\",\"t\":30}") == 0);

    /* count and delete */
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_doc_count(db, "c", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_count(NULL, "c", &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_count(db, "missing", &n), CAIRN_OK);
    CHECK(n == 0);
    CHECK_RC(cairn_doc_delete(db, "c", 1), CAIRN_OK);
    CHECK_RC(cairn_doc_delete(db, "c", 1), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_delete(db, NULL, 1), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_delete(NULL, "c", 1), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 1);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Queries */

struct collect {
    int calls;
    int stop_after; /* return 1 after this many calls; 0: never */
    int fail_with;  /* return this (negative) on the first call; 0: never */
    char all[1024];
    cairn_db_t *db; /* set: call back into it */
    int inner_rc;
};

static int32_t collect_cb(void *ctx, const char *json, size_t len) {
    struct collect *c = ctx;
    c->calls++;
    CHECK(strlen(json) == len);
    strncat(c->all, json, sizeof c->all - strlen(c->all) - 2);
    strcat(c->all, "\n");
    if (c->db) {
        uint64_t n;
        c->inner_rc = cairn_doc_count(c->db, "s", &n);
        CHECK_RC(cairn_close(c->db), CAIRN_ERR_BUSY);
    }
    if (c->fail_with) return c->fail_with;
    if (c->stop_after && c->calls >= c->stop_after) return 1;
    return 0;
}

static void test_find(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    uint64_t n = 0;
    static const char *docs[] = {
        "{\"room\":\"R1\",\"t\":20}", "{\"room\":\"R2\",\"t\":25}", "{\"room\":\"R1\",\"t\":22}",
        "{\"room\":\"R3\",\"t\":18}"};
    for (int i = 0; i < 4; i++) CHECK_RC(cairn_doc_insert(db, "s", docs[i], NULL), CAIRN_OK);

    struct collect c;
    memset(&c, 0, sizeof c);
    CHECK_RC(cairn_find(db, "s", "{\"t\":{\"$gte\":20}}",
                        "{\"sort\":{\"t\":-1},\"projection\":{\"t\":1}}", collect_cb, &c),
             CAIRN_OK);
    CHECK(c.calls == 3);
    CHECK(strcmp(c.all, "{\"_id\":2,\"t\":25}\n{\"_id\":3,\"t\":22}\n{\"_id\":1,\"t\":20}\n") == 0);

    memset(&c, 0, sizeof c);
    CHECK_RC(cairn_find(db, "s", NULL, NULL, collect_cb, &c), CAIRN_OK);
    CHECK(c.calls == 4);
    memset(&c, 0, sizeof c);
    CHECK_RC(cairn_find(db, "s", "", "", collect_cb, &c), CAIRN_OK);
    CHECK(c.calls == 4);
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    CHECK_RC(cairn_find(db, "s", "{}", NULL, collect_cb, &c), CAIRN_OK);
    CHECK(c.calls == 2);
    memset(&c, 0, sizeof c);
    c.fail_with = -1000;
    CHECK_RC(cairn_find(db, "s", "{}", NULL, collect_cb, &c), -1000);
    CHECK(c.calls == 1);
    memset(&c, 0, sizeof c);
    CHECK_RC(cairn_find(db, "none", "{}", NULL, collect_cb, &c), CAIRN_OK);
    CHECK(c.calls == 0);

    /* A callback calling back into its database is refused, not undefined. */
    memset(&c, 0, sizeof c);
    c.db = db;
    c.stop_after = 1;
    CHECK_RC(cairn_find(db, "s", "{}", NULL, collect_cb, &c), CAIRN_OK);
    CHECK(c.inner_rc == CAIRN_ERR_BUSY);

    /* errors */
    memset(&c, 0, sizeof c);
    CHECK_RC(cairn_find(db, "s", "{\"t\":", NULL, collect_cb, &c), CAIRN_ERR_JSON);
    CHECK_RC(cairn_find(db, "s", "{\"t\":{\"$frob\":1}}", NULL, collect_cb, &c),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_find(db, "s", "{}", "{\"limit\":\"x\"}", collect_cb, &c), CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_find(db, "s", "{}", "{\"sort\":", collect_cb, &c), CAIRN_ERR_JSON);
    CHECK_RC(cairn_find(db, "s", "{}", NULL, NULL, &c), CAIRN_ERR_NULL);
    CHECK_RC(cairn_find(db, NULL, "{}", NULL, collect_cb, &c), CAIRN_ERR_NULL);
    CHECK_RC(cairn_find(NULL, "s", "{}", NULL, collect_cb, &c), CAIRN_ERR_NULL);
    CHECK(c.calls == 0);

    /* find_count */
    CHECK_RC(cairn_find_count(db, "s", "{\"room\":\"R1\"}", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_find_count(db, "s", NULL, &n), CAIRN_OK);
    CHECK(n == 4);
    CHECK_RC(cairn_find_count(db, "s", "{\"room\":{\"$in\":3}}", &n), CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_find_count(db, "s", "[", &n), CAIRN_ERR_JSON);
    CHECK_RC(cairn_find_count(db, "s", "{}", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_count(NULL, "s", "{}", &n), CAIRN_ERR_NULL);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Key-value */

struct keys {
    int calls;
    int stop_with;
    char all[128];
};

static int32_t key_cb(void *ctx, const uint8_t *key, size_t len) {
    struct keys *k = ctx;
    k->calls++;
    strncat(k->all, (const char *)key, len);
    strcat(k->all, ",");
    return k->stop_with;
}

static void test_kv(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_db_t *db = NULL;
    uint8_t buf[64];
    size_t len = 0;
    bool exists = true;
    cfg.max_value_len = 32;
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);

    const uint8_t key[3] = {0, 1, 2}; /* binary keys are fine */
    const uint8_t val[5] = {0xDE, 0xAD, 0x00, 0xBE, 0xEF};
    CHECK_RC(cairn_kv_put(db, "ns", key, 3, val, 5), CAIRN_OK);
    CHECK_RC(cairn_kv_get(db, "ns", key, 3, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(len == 5 && memcmp(buf, val, 5) == 0);
    CHECK_RC(cairn_kv_get(db, "ns", key, 3, buf, 4, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 5);
    CHECK_RC(cairn_kv_get(db, "ns", key, 3, NULL, 0, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_kv_get(db, "ns", key, 3, buf, 5, NULL), CAIRN_OK);
    CHECK_RC(cairn_kv_get(db, "ns", "zz", 2, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_kv_get(db, "other", key, 3, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);

    /* An empty value, given as NULL with length 0. */
    CHECK_RC(cairn_kv_put(db, "ns", "e", 1, NULL, 0), CAIRN_OK);
    CHECK_RC(cairn_kv_get(db, "ns", "e", 1, NULL, 0, &len), CAIRN_OK);
    CHECK(len == 0);

    CHECK_RC(cairn_kv_exists(db, "ns", key, 3, &exists), CAIRN_OK);
    CHECK(exists);
    CHECK_RC(cairn_kv_exists(db, "ns", "zz", 2, &exists), CAIRN_OK);
    CHECK(!exists);
    CHECK_RC(cairn_kv_exists(db, "ns", key, 3, NULL), CAIRN_ERR_NULL);

    /* errors */
    uint8_t big[33] = {0};
    CHECK_RC(cairn_kv_put(db, "ns", "k", 1, big, sizeof big), CAIRN_ERR_TOO_LARGE);
    CHECK_RC(cairn_kv_put(db, "ns", "", 0, val, 5), CAIRN_ERR_INVALID_NAME);
    uint8_t long_key[200] = {1};
    CHECK_RC(cairn_kv_put(db, "ns", long_key, sizeof long_key, val, 5), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_put(db, "", "k", 1, val, 5), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_put(db, "ns", NULL, 1, val, 5), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_put(db, "ns", "k", 1, NULL, 5), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_put(db, NULL, "k", 1, val, 5), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_put(NULL, "ns", "k", 1, val, 5), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_put(db, "n\xc3", "k", 1, val, 5), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_kv_exists(db, "ns", "k", 1, &exists), CAIRN_OK);
    CHECK(!exists); /* no failed put wrote anything */

    /* keys, by prefix, in byte order */
    struct keys k;
    CHECK_RC(cairn_kv_put(db, "cfg", "wifi/ssid", 9, "x", 1), CAIRN_OK);
    CHECK_RC(cairn_kv_put(db, "cfg", "wifi/pass", 9, "y", 1), CAIRN_OK);
    CHECK_RC(cairn_kv_put(db, "cfg", "name", 4, "z", 1), CAIRN_OK);
    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_kv_keys(db, "cfg", "wifi/", 5, key_cb, &k), CAIRN_OK);
    CHECK(k.calls == 2 && strcmp(k.all, "wifi/pass,wifi/ssid,") == 0);
    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_kv_keys(db, "cfg", NULL, 0, key_cb, &k), CAIRN_OK);
    CHECK(k.calls == 3 && strcmp(k.all, "name,wifi/pass,wifi/ssid,") == 0);
    memset(&k, 0, sizeof k);
    k.stop_with = 1;
    CHECK_RC(cairn_kv_keys(db, "cfg", NULL, 0, key_cb, &k), CAIRN_OK);
    CHECK(k.calls == 1);
    memset(&k, 0, sizeof k);
    k.stop_with = -77;
    CHECK_RC(cairn_kv_keys(db, "cfg", NULL, 0, key_cb, &k), -77);
    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_kv_keys(db, "none", NULL, 0, key_cb, &k), CAIRN_OK);
    CHECK(k.calls == 0);
    CHECK_RC(cairn_kv_keys(db, "cfg", NULL, 3, key_cb, &k), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_keys(db, "cfg", NULL, 0, NULL, &k), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_keys(db, NULL, NULL, 0, key_cb, &k), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_keys(NULL, "cfg", NULL, 0, key_cb, &k), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_keys(db, "", NULL, 0, key_cb, &k), CAIRN_ERR_INVALID_NAME);

    CHECK_RC(cairn_kv_delete(db, "ns", key, 3), CAIRN_OK);
    CHECK_RC(cairn_kv_delete(db, "ns", key, 3), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_kv_delete(db, "ns", NULL, 3), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_delete(NULL, "ns", key, 3), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_get(NULL, "ns", key, 3, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_exists(NULL, "ns", key, 3, &exists), CAIRN_ERR_NULL);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Indexes, maintenance */

static void test_indexes(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    uint64_t n = 0;
    CHECK_RC(cairn_doc_insert(db, "s", "{\"room\":\"R1\",\"t\":20}", NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"room\":\"R1\",\"t\":21}", NULL), CAIRN_OK);

    const char *by_room[] = {"room"};
    const char *two[] = {"room", "t"};
    const char *empty_path[] = {""};
    const char *null_path[] = {NULL};
    CHECK_RC(cairn_index_create(db, "s", "by_room", by_room, 1, false), CAIRN_OK);
    CHECK_RC(cairn_index_create(db, "s", "by_room", by_room, 1, false), CAIRN_ERR_EXISTS);
    CHECK_RC(cairn_index_create(db, "s", "room_t", two, 2, false), CAIRN_OK);
    CHECK_RC(cairn_index_create(db, "s", "u", by_room, 1, true), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_index_create(db, "s", "x", by_room, 0, false), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create(db, "s", "x", by_room, 5, false), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create(db, "s", "x", empty_path, 1, false), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create(db, "s", "x", null_path, 1, false), CAIRN_ERR_NULL);
    CHECK_RC(cairn_index_create(db, "s", "x", NULL, 1, false), CAIRN_ERR_NULL);
    CHECK_RC(cairn_index_create(db, "s", "", by_room, 1, false), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_index_create(db, "s", NULL, by_room, 1, false), CAIRN_ERR_NULL);
    CHECK_RC(cairn_index_create(NULL, "s", "x", by_room, 1, false), CAIRN_ERR_NULL);

    CHECK_RC(cairn_index_create_json(db, "s", "by_t", "{\"fields\":\"t\",\"unique\":true}"),
             CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"room\":\"R2\",\"t\":20}", NULL), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_index_create_json(
                 db, "s", "hot", "{\"fields\":[\"t\"],\"partial\":{\"t\":{\"$gt\":20}}}"),
             CAIRN_OK);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"fields\":[1]}"),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"fields\":[\"a\"],\"frob\":1}"),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"unique\":true}"),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"fields\":\"a\",\"unique\":1}"),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"fields\":\"a\",\"partial\":{\"$x\":1}}"),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"fields\":\"a\",\"partial\":3}"),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_index_create_json(db, "s", "y", "{\"fields\""), CAIRN_ERR_JSON);
    CHECK_RC(cairn_index_create_json(db, "s", "y", NULL), CAIRN_ERR_NULL);

    /* Queries still answer the same through the indexes. */
    CHECK_RC(cairn_find_count(db, "s", "{\"room\":\"R1\"}", &n), CAIRN_OK);
    CHECK(n == 2);

    CHECK_RC(cairn_index_drop(db, "s", "by_t"), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"room\":\"R2\",\"t\":20}", NULL), CAIRN_OK);
    CHECK_RC(cairn_index_drop(db, "s", "by_t"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_index_drop(db, "nope", "by_room"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_index_drop(db, "s", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_index_drop(NULL, "s", "by_room"), CAIRN_ERR_NULL);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static void test_maintenance(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    cairn_stats_t st;
    char doc[64];
    for (int i = 0; i < 40; i++) {
        snprintf(doc, sizeof doc, "{\"i\":%d,\"pad\":\"................\"}", i);
        CHECK_RC(cairn_doc_insert(db, "m", doc, NULL), CAIRN_OK);
    }
    CHECK_RC(cairn_stats(db, &st), CAIRN_OK);
    CHECK(st.commits == 40);
    CHECK(st.block_count == BLOCKS && st.free_blocks > 0 && st.free_blocks < BLOCKS);
    CHECK_RC(cairn_flush(db), CAIRN_OK);
    CHECK_RC(cairn_stats(db, &st), CAIRN_OK);
    CHECK(st.segments >= 1 && st.memtable_bytes == 0 && st.folds >= 1);
    for (uint64_t id = 1; id <= 30; id++) CHECK_RC(cairn_doc_delete(db, "m", id), CAIRN_OK);
    CHECK_RC(cairn_compact(db), CAIRN_OK);
    CHECK_RC(cairn_stats(db, &st), CAIRN_OK);
    CHECK(st.segments == 1);
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "m", &n), CAIRN_OK);
    CHECK(n == 10);

    CHECK_RC(cairn_stats(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_stats(NULL, &st), CAIRN_ERR_NULL);
    CHECK_RC(cairn_flush(NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_compact(NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Full flash, corrupt images, failing device */

static void test_full_flash(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, 24);
    cairn_db_t *db = NULL;
    char doc[300];
    int stored = 0, rc = CAIRN_OK;
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    memset(doc, 'f', sizeof doc);
    memcpy(doc, "{\"p\":\"", 6);
    memcpy(doc + 200, "\"}", 3);
    while (stored < 100000) {
        rc = cairn_doc_insert(db, "a", doc, NULL);
        if (rc != CAIRN_OK) break;
        stored++;
    }
    CHECK_RC(rc, CAIRN_ERR_NO_SPACE);
    CHECK(stored > 20);
    /* Nothing committed is lost: count, close, reopen, count. */
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == (uint64_t)stored);
    CHECK_RC(cairn_kv_put(db, "ns", "k", 1, doc, 200), CAIRN_ERR_NO_SPACE);
    CHECK_RC(cairn_doc_delete(db, "a", 1), CAIRN_OK); /* deletes still work when full */
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == (uint64_t)stored - 1);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static int is_error_code(int rc) { return rc <= CAIRN_ERR_IO && rc >= CAIRN_ERR_INTERNAL; }

static void test_corrupt_image(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, 16);
    cairn_key_t key = {KEY_A, NULL, 0, 0};
    cairn_db_t *db = NULL;
    size_t len = 0, doc_len = 0;
    char buf[128];
    CHECK_RC(cairn_format(&db, &cfg, &key), CAIRN_OK);
    for (int i = 0; i < 20; i++)
        CHECK_RC(cairn_doc_insert(db, "c", "{\"v\":\"some data\"}", NULL), CAIRN_OK);
    CHECK_RC(cairn_flush(db), CAIRN_OK);
    for (int i = 0; i < 5; i++)
        CHECK_RC(cairn_doc_insert(db, "c", "{\"v\":\"in the WAL\"}", NULL), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);

    uint8_t *data = cairn_ram_device_data(dev, &len);
    uint8_t *good = malloc(len);
    CHECK(good != NULL);
    memcpy(good, data, len);
    int corrupt_seen = 0, not_formatted_seen = 0;
    /* Damage each block in turn (a run of bytes in its used part): every call must return OK
     * or an error code, never crash, and valgrind must see no invalid access. */
    for (uint32_t b = 0; b < 16; b++) {
        memcpy(data, good, len);
        for (uint32_t off = 0; off < BLOCK; off += 97) data[b * BLOCK + off] ^= 0x5A;
        int rc = cairn_open(&db, &cfg, &key);
        if (rc == CAIRN_OK) {
            uint64_t n = 0;
            int r1 = cairn_doc_count(db, "c", &n);
            CHECK(r1 == CAIRN_OK || is_error_code(r1));
            for (uint64_t id = 1; id <= 25; id++) {
                int r2 = cairn_doc_get(db, "c", id, buf, sizeof buf, &doc_len);
                CHECK(r2 == CAIRN_OK || is_error_code(r2));
                if (r2 == CAIRN_ERR_CORRUPT) corrupt_seen = 1;
            }
            int r3 = cairn_close(db);
            CHECK(r3 == CAIRN_OK || is_error_code(r3));
        } else {
            CHECK(is_error_code(rc));
            CHECK(db == NULL);
            if (rc == CAIRN_ERR_CORRUPT) corrupt_seen = 1;
            if (rc == CAIRN_ERR_NOT_FORMATTED) not_formatted_seen = 1;
        }
    }
    CHECK(corrupt_seen || not_formatted_seen);
    /* The undamaged image still opens with everything. */
    memcpy(data, good, len);
    CHECK_RC(cairn_open(&db, &cfg, &key), CAIRN_OK);
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 25);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    /* An image of garbage. */
    memset(data, 0x00, len);
    CHECK(is_error_code(cairn_open(&db, &cfg, &key)));
    free(good);
    cairn_ram_device_free(dev);
}

/* A device whose callbacks fail on demand. */
struct failing {
    cairn_config_t inner;
    int fail;
};

static int32_t f_read(void *ctx, uint32_t b, uint32_t o, uint8_t *buf, uint32_t n) {
    struct failing *f = ctx;
    return f->fail ? -5 : f->inner.read(f->inner.ctx, b, o, buf, n);
}
static int32_t f_prog(void *ctx, uint32_t b, uint32_t o, const uint8_t *buf, uint32_t n) {
    struct failing *f = ctx;
    return f->fail ? -5 : f->inner.prog(f->inner.ctx, b, o, buf, n);
}
static int32_t f_erase(void *ctx, uint32_t b) {
    struct failing *f = ctx;
    return f->fail ? -5 : f->inner.erase(f->inner.ctx, b);
}
static int32_t f_sync(void *ctx) {
    struct failing *f = ctx;
    return f->fail ? -5 : 0;
}

static void test_io_errors(void) {
    cairn_ram_device_t *dev;
    struct failing f;
    f.inner = ram_config(&dev, BLOCKS);
    f.fail = 0;
    cairn_config_t cfg = f.inner;
    cfg.ctx = &f;
    cfg.read = f_read;
    cfg.prog = f_prog;
    cfg.erase = f_erase;
    cfg.sync = f_sync;
    cfg.random = NULL;
    cairn_db_t *db = NULL;
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "c", "{\"a\":1}", NULL), CAIRN_OK);
    f.fail = 1;
    CHECK(cairn_doc_insert(db, "c", "{\"a\":2}", NULL) < 0);
    int rc = cairn_close(db);
    CHECK(rc == CAIRN_OK || is_error_code(rc));
    f.fail = 0;
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 1); /* the failed insert left nothing, the first is there */
    f.fail = 1;
    CHECK(is_error_code(cairn_flush(db)) || cairn_flush(db) == CAIRN_OK);
    f.fail = 0;
    CHECK_RC(cairn_close(db), CAIRN_OK);
    f.fail = 1;
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_ERR_IO);
    CHECK(db == NULL);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* The platform lock: a recursive POSIX mutex with a timed wait, counting its levels. */

struct plock {
    pthread_mutex_t m;
    int depth;  /* levels held now (by whichever thread holds the mutex) */
    int locks;  /* levels taken so far */
    int refuse; /* nonzero: fail at once, as a timed-out wait would */
    uint32_t last_timeout;
};

static int32_t p_lock(void *ctx, uint32_t ms) {
    struct plock *l = ctx;
    int rc;
    if (l->refuse) return -1;
    if (ms == CAIRN_WAIT_FOREVER) {
        rc = pthread_mutex_lock(&l->m);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        rc = pthread_mutex_timedlock(&l->m, &ts);
    }
    if (rc != 0) return -1;
    l->depth++;
    l->locks++;
    l->last_timeout = ms;
    return 0;
}

static void p_unlock(void *ctx) {
    struct plock *l = ctx;
    l->depth--;
    pthread_mutex_unlock(&l->m);
}

static void plock_init(struct plock *l) {
    pthread_mutexattr_t a;
    memset(l, 0, sizeof *l);
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&l->m, &a);
    pthread_mutexattr_destroy(&a);
}

static void with_lock(cairn_config_t *cfg, struct plock *l, uint32_t timeout_ms) {
    cfg->lock = p_lock;
    cfg->unlock = p_unlock;
    cfg->lock_ctx = l;
    cfg->lock_timeout_ms = timeout_ms;
}

/* Log lines of every level, collected (the log's ctx is the RAM device: use a global). */
static char info_lines[2048];
static void info_cb(void *ctx, int32_t level, const char *msg) {
    char line[160];
    (void)ctx;
    snprintf(line, sizeof line, "%d %s\n", (int)level, msg);
    strncat(info_lines, line, sizeof info_lines - strlen(info_lines) - 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration versions, the log, the lock */

/* A clock that records the ctx it was called with. */
static uint64_t clock_a;
static void *ctx_clock_seen;
static uint64_t ctx_clock(void *ctx) {
    ctx_clock_seen = ctx;
    return 1000;
}

static void test_config_versions(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_db_t *db = NULL;
    struct plock l;
    plock_init(&l);

    /* lock and unlock go together. */
    cairn_config_t bad = cfg;
    bad.lock = p_lock;
    CHECK_RC(cairn_format(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK(db == NULL);
    bad.lock = NULL;
    bad.unlock = p_unlock;
    CHECK_RC(cairn_format(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    /* A version-1 struct ends before the lock fields: whatever lies there is not read. */
    bad.version = 1;
    CHECK_RC(cairn_format(&db, &bad, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "c", "{}", NULL), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    bad.version = 2;
    CHECK_RC(cairn_open(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.version = 3;
    CHECK_RC(cairn_open(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.version = 4;
    CHECK_RC(cairn_open(&db, &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK(CAIRN_CONFIG_VERSION == 3);

    /* Version 3: the clock gets `platform_ctx` when it is set, the device's `ctx` otherwise;
     * a version-2 struct ends before `platform_ctx`, so whatever lies there is not read. */
    cairn_config_t timed = cfg;
    timed.now_ms = ctx_clock;
    timed.platform_ctx = &clock_a;
    uint64_t t = 0;
    ctx_clock_seen = NULL;
    CHECK_RC(cairn_open(&db, &timed, NULL), CAIRN_OK);
    CHECK_RC(cairn_now(db, &t), CAIRN_OK);
    CHECK(ctx_clock_seen == &clock_a);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    timed.platform_ctx = NULL;
    ctx_clock_seen = NULL;
    CHECK_RC(cairn_open(&db, &timed, NULL), CAIRN_OK);
    CHECK_RC(cairn_now(db, &t), CAIRN_OK);
    CHECK(ctx_clock_seen == cfg.ctx);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    timed.platform_ctx = &clock_a;
    timed.version = 2;
    ctx_clock_seen = NULL;
    CHECK_RC(cairn_open(&db, &timed, NULL), CAIRN_OK);
    CHECK_RC(cairn_now(db, &t), CAIRN_OK);
    CHECK(ctx_clock_seen == cfg.ctx);
    CHECK_RC(cairn_close(db), CAIRN_OK);

    /* The timeout reaches the lock callback: 0 is the default, WAIT_FOREVER passes through. */
    cairn_config_t locked = cfg;
    with_lock(&locked, &l, 0);
    CHECK_RC(cairn_open(&db, &locked, NULL), CAIRN_OK);
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 1 && l.last_timeout == CAIRN_DEFAULT_LOCK_TIMEOUT_MS && l.depth == 0);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    with_lock(&locked, &l, CAIRN_WAIT_FOREVER);
    CHECK_RC(cairn_open(&db, &locked, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(l.last_timeout == CAIRN_WAIT_FOREVER);

    /* A lock that is not given: every call times out, close too (nothing is freed). */
    int before = log_calls;
    l.refuse = 1;
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_ERR_TIMEOUT);
    CHECK_RC(cairn_doc_insert(db, "c", "{}", NULL), CAIRN_ERR_TIMEOUT);
    cairn_txn_t *txn = (cairn_txn_t *)1;
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_ERR_TIMEOUT);
    CHECK(txn == NULL);
    CHECK_RC(cairn_close(db), CAIRN_ERR_TIMEOUT);
    CHECK(log_calls == before + 4 && strstr(last_log, "timed out") != NULL);
    l.refuse = 0;
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 1 && l.depth == 0); /* the timed-out insert wrote nothing */
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(l.depth == 0);
    pthread_mutex_destroy(&l.m);
    cairn_ram_device_free(dev);
}

static void test_info_log(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_key_t raw_a = {KEY_A, NULL, 0, 0};
    cairn_db_t *db = NULL;
    cfg.log = info_cb;
    info_lines[0] = '\0';
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_rekey(db, &raw_a), CAIRN_OK);
    CHECK_RC(cairn_compact(db), CAIRN_OK);
    CHECK_RC(cairn_doc_get(db, "c", 1, NULL, 0, NULL), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open(&db, &cfg, &raw_a), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(strcmp(info_lines,
                 "3 cairn_format: formatted the device, created a database\n"
                 "3 cairn_rekey: re-encrypted the database\n"
                 "3 cairn_compact: compacted\n"
                 "4 cairn_doc_get: not found (-8)\n"
                 "3 cairn_close: closed\n"
                 "3 cairn_open: opened the database\n"
                 "3 cairn_close: closed\n") == 0);
    info_lines[0] = '\0';
    CHECK_RC(cairn_open_or_format(&db, &cfg, &raw_a), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(strstr(info_lines, "cairn_open_or_format: opened the database") != NULL);
    cairn_ram_device_free(dev);
}

/* A second thread holds the lock through a transaction while the first calls in. */
struct holder {
    cairn_db_t *db;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: transaction open; 2: may commit */
    int rc_begin, rc_insert, rc_commit;
};

static void holder_wait(struct holder *h, int stage) {
    pthread_mutex_lock(&h->mu);
    while (h->stage < stage) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void holder_set(struct holder *h, int stage) {
    pthread_mutex_lock(&h->mu);
    h->stage = stage;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void *holder_main(void *arg) {
    struct holder *h = arg;
    cairn_txn_t *txn = NULL;
    h->rc_begin = cairn_txn_begin(h->db, &txn);
    h->rc_insert = cairn_txn_doc_insert(txn, "t", "{\"from\":\"holder\"}", NULL);
    holder_set(h, 1);
    holder_wait(h, 2);
    h->rc_commit = cairn_txn_commit(txn);
    return NULL;
}

static void test_lock_timeout_from_another_thread(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_db_t *db = NULL;
    struct plock l;
    struct holder h;
    pthread_t th;
    uint64_t n = 99;
    plock_init(&l);
    with_lock(&cfg, &l, 50);
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    memset(&h, 0, sizeof h);
    h.db = db;
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    CHECK(pthread_create(&th, NULL, holder_main, &h) == 0);
    holder_wait(&h, 1);

    /* The other thread's transaction holds the lock: every call waits 50 ms and gives up. */
    CHECK_RC(cairn_doc_insert(db, "t", "{\"from\":\"main\"}", NULL), CAIRN_ERR_TIMEOUT);
    CHECK_RC(cairn_doc_count(db, "t", &n), CAIRN_ERR_TIMEOUT);
    CHECK(n == 99);
    cairn_txn_t *txn = (cairn_txn_t *)1;
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_ERR_TIMEOUT);
    CHECK(txn == NULL);
    CHECK_RC(cairn_close(db), CAIRN_ERR_TIMEOUT); /* nothing freed */

    holder_set(&h, 2);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_RC(h.rc_begin, CAIRN_OK);
    CHECK_RC(h.rc_insert, CAIRN_OK);
    CHECK_RC(h.rc_commit, CAIRN_OK);
    /* Now the lock is free again and the other thread's commit is there. */
    CHECK_RC(cairn_doc_count(db, "t", &n), CAIRN_OK);
    CHECK(n == 1);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(l.depth == 0);
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
    pthread_mutex_destroy(&l.m);
    cairn_ram_device_free(dev);
}

/* Several threads share one handle: plain calls and transactions interleave safely. */
#define WORKERS 4
#define ROUNDS 10

struct worker {
    cairn_db_t *db;
    int id;
    int failures;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    char doc[64];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(doc, sizeof doc, "{\"w\":%d,\"i\":%d}", w->id, i);
        if (i % 2 == 0) {
            if (cairn_doc_insert(w->db, "shared", doc, NULL) != CAIRN_OK) w->failures++;
        } else {
            cairn_txn_t *txn = NULL;
            uint64_t before = 0, inside = 0;
            if (cairn_txn_begin(w->db, &txn) != CAIRN_OK) {
                w->failures++;
                continue;
            }
            if (cairn_txn_doc_count(txn, "shared", &before) != CAIRN_OK) w->failures++;
            if (cairn_txn_doc_insert(txn, "shared", doc, NULL) != CAIRN_OK) w->failures++;
            if (cairn_txn_doc_insert(txn, "shared", doc, NULL) != CAIRN_OK) w->failures++;
            /* Nobody else can write in between: the count moves by exactly our two. */
            if (cairn_txn_doc_count(txn, "shared", &inside) != CAIRN_OK) w->failures++;
            if (inside != before + 2) w->failures++;
            if (cairn_txn_commit(txn) != CAIRN_OK) w->failures++;
        }
    }
    return NULL;
}

static void test_shared_handle_threads(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS);
    cairn_db_t *db = NULL;
    struct plock l;
    pthread_t th[WORKERS];
    struct worker w[WORKERS];
    plock_init(&l);
    with_lock(&cfg, &l, CAIRN_WAIT_FOREVER);
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    for (int i = 0; i < WORKERS; i++) {
        w[i].db = db;
        w[i].id = i;
        w[i].failures = 0;
        CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        CHECK(w[i].failures == 0);
    }
    uint64_t n = 0;
    CHECK_RC(cairn_doc_count(db, "shared", &n), CAIRN_OK);
    CHECK(n == WORKERS * (ROUNDS / 2) * 3);
    CHECK(l.depth == 0 && l.locks > WORKERS * ROUNDS);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    pthread_mutex_destroy(&l.m);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Transactions */

struct txn_cb {
    cairn_txn_t *txn;
    cairn_db_t *db;
    int calls;
    int rc_txn, rc_db, rc_commit;
    char all[512];
};

static int32_t txn_find_cb(void *ctx, const char *json, size_t len) {
    struct txn_cb *c = ctx;
    uint64_t n;
    (void)len;
    c->calls++;
    strncat(c->all, json, sizeof c->all - strlen(c->all) - 2);
    strcat(c->all, "\n");
    if (c->txn) {
        c->rc_txn = cairn_txn_doc_insert(c->txn, "a", "{}", NULL);
        c->rc_db = cairn_doc_count(c->db, "a", &n);
        c->rc_commit = cairn_txn_commit(c->txn);
    }
    return 0;
}

static void test_txn(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    struct plock l;
    cairn_db_t *db;
    cairn_txn_t *txn = (cairn_txn_t *)1, *txn2 = (cairn_txn_t *)1;
    char buf[128];
    uint8_t val[8];
    size_t len = 0;
    uint64_t id = 0, n = 0;
    cfg = ram_config(&dev, BLOCKS);
    cfg.max_value_len = 16;
    plock_init(&l);
    with_lock(&cfg, &l, 1000);
    db = NULL;
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "a", "{\"k\":1}", NULL), CAIRN_OK); /* _id 1 */

    CHECK_RC(cairn_txn_begin(NULL, &txn), CAIRN_ERR_NULL);
    CHECK(txn == NULL);
    CHECK_RC(cairn_txn_begin(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_commit(NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_rollback(NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_doc_insert(NULL, "a", "{}", NULL), CAIRN_ERR_NULL);

    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK(txn != NULL && l.depth == 1); /* the lock stays held by the transaction */
    /* One transaction per handle; the handle itself is busy meanwhile. */
    CHECK_RC(cairn_txn_begin(db, &txn2), CAIRN_ERR_BUSY);
    CHECK(txn2 == NULL);
    CHECK_RC(cairn_doc_insert(db, "a", "{}", NULL), CAIRN_ERR_BUSY);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_ERR_BUSY);
    CHECK(l.depth == 1);

    /* Writes and reads that see them. */
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":2}", &id), CAIRN_OK);
    CHECK(id == 2);
    CHECK_RC(cairn_txn_doc_get(txn, "a", 2, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"_id\":2,\"_ver\":1,\"_ts\":0,\"k\":2}") == 0 && len == strlen(buf));
    CHECK_RC(cairn_txn_doc_get(txn, "a", 2, buf, 5, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_txn_doc_replace(txn, "a", 1, "{\"k\":10}"), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_patch(txn, "a", 2, "{\"$inc\":{\"k\":5}}"), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_count(txn, "a", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", "k", 1, "v1", 2), CAIRN_OK);
    CHECK_RC(cairn_txn_kv_get(txn, "ns", "k", 1, val, sizeof val, &len), CAIRN_OK);
    CHECK(len == 2 && memcmp(val, "v1", 2) == 0);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", "gone", 4, "x", 1), CAIRN_OK);
    CHECK_RC(cairn_txn_kv_delete(txn, "ns", "gone", 4), CAIRN_OK);

    /* Mistakes found before the database is asked leave the transaction going. */
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":", NULL), CAIRN_ERR_JSON);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "[1]", NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_txn_doc_insert(txn, NULL, "{}", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_doc_insert(txn, "a\xff", "{}", NULL), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_txn_doc_replace(txn, "a", 99, "{}"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_doc_patch(txn, "a", 99, "{\"$set\":{\"k\":1}}"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_doc_patch(txn, "a", 2, "{\"$frob\":{}}"), CAIRN_ERR_INVALID_PATCH);
    CHECK_RC(cairn_txn_doc_patch(txn, "a", 2, "{\"$inc\":{\"k\":\"x\"}}"),
             CAIRN_ERR_INVALID_PATCH);
    CHECK_RC(cairn_txn_doc_delete(txn, "a", 99), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_doc_get(txn, "a", 99, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", "", 0, "v", 1), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", "k", 1, "0123456789abcdefXX", 18), CAIRN_ERR_TOO_LARGE);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", NULL, 1, "v", 1), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_kv_get(txn, "ns", "zz", 2, val, sizeof val, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_kv_delete(txn, "ns", "zz", 2), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_doc_count(txn, "a", NULL), CAIRN_ERR_NULL);

    /* find sees the transaction's writes; its callback cannot re-enter. */
    struct txn_cb c;
    memset(&c, 0, sizeof c);
    CHECK_RC(cairn_txn_find(txn, "a", "{\"k\":{\"$gte\":7}}", "{\"projection\":{\"k\":1}}",
                            txn_find_cb, &c),
             CAIRN_OK);
    CHECK(c.calls == 2 && strcmp(c.all, "{\"_id\":1,\"k\":10}\n{\"_id\":2,\"k\":7}\n") == 0);
    memset(&c, 0, sizeof c);
    c.txn = txn;
    c.db = db;
    CHECK_RC(cairn_txn_find(txn, "a", NULL, NULL, txn_find_cb, &c), CAIRN_OK);
    CHECK(c.calls == 2 && c.rc_txn == CAIRN_ERR_BUSY && c.rc_db == CAIRN_ERR_BUSY &&
          c.rc_commit == CAIRN_ERR_BUSY);
    CHECK_RC(cairn_txn_find(txn, "a", "{\"k\":{\"$frob\":1}}", NULL, txn_find_cb, &c),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_txn_find(txn, "a", "{", NULL, txn_find_cb, &c), CAIRN_ERR_JSON);
    CHECK_RC(cairn_txn_find(txn, "a", NULL, NULL, NULL, &c), CAIRN_ERR_NULL);
    CHECK(l.depth == 1);

    CHECK_RC(cairn_txn_commit(txn), CAIRN_OK);
    CHECK(l.depth == 0); /* released */
    /* The handle is free again; the transaction handle is spent. */
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{}", NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_txn_rollback(txn), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_doc_get(db, "a", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"_id\":1,\"_ver\":2,\"_ts\":0,\"k\":10}") == 0);
    CHECK_RC(cairn_doc_get(db, "a", 2, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"_id\":2,\"_ver\":2,\"_ts\":0,\"k\":7}") == 0);
    CHECK_RC(cairn_kv_get(db, "ns", "k", 1, val, sizeof val, &len), CAIRN_OK);
    bool exists = true;
    CHECK_RC(cairn_kv_exists(db, "ns", "gone", 4, &exists), CAIRN_OK);
    CHECK(!exists);

    /* rollback: nothing of it stays. */
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":3}", &id), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_delete(txn, "a", 1), CAIRN_OK);
    CHECK_RC(cairn_txn_rollback(txn), CAIRN_OK);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 2);

    /* A failed call inside a transaction changes nothing and the transaction goes on: the
     * core undoes the call's own staged writes (here the unique clash comes after the
     * insert staged its document), so committing keeps exactly the calls that succeeded. */
    const char *by_k[] = {"k"};
    CHECK_RC(cairn_index_create(db, "a", "k_unique", by_k, 1, true), CAIRN_OK);
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":100}", NULL), CAIRN_OK);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", "k2", 2, "v", 1), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":100}", NULL), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_txn_doc_count(txn, "a", &n), CAIRN_OK);
    CHECK(n == 3); /* the failed insert left no document and no count behind */
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":101}", &id), CAIRN_OK);
    CHECK(id == 4); /* nor a used id */
    CHECK_RC(cairn_txn_doc_replace(txn, "a", 2, "{\"k\":10}"), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_txn_doc_get(txn, "a", 2, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"k\":7") != NULL);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_ERR_BUSY); /* still open until ended */
    CHECK(l.depth == 1);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_OK);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 4);
    char found[128];
    CHECK_RC(cairn_find_count(db, "a", "{\"k\":100}", &n), CAIRN_OK);
    CHECK(n == 1); /* one k:100, the first insert's */
    CHECK_RC(cairn_kv_exists(db, "ns", "k2", 2, &exists), CAIRN_OK);
    CHECK(exists);
    CHECK_RC(cairn_doc_get(db, "a", 2, found, sizeof found, &len), CAIRN_OK);
    CHECK(strstr(found, "\"k\":7") != NULL);
    /* Rolling back after a failed call drops everything of the transaction. */
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":200}", NULL), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_replace(txn, "a", 2, "{\"k\":10}"), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_txn_rollback(txn), CAIRN_OK);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 4);

    /* Closing with a transaction open discards it and releases the lock. */
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":55}", NULL), CAIRN_OK);
    info_lines[0] = '\0';
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 4);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    pthread_mutex_destroy(&l.m);
    cairn_ram_device_free(dev);
}

/* Without a lock, the same rules hold within one thread. */
static void test_txn_without_lock(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    cairn_txn_t *txn = NULL, *txn2 = NULL;
    uint64_t n = 0;
    cfg.log = info_cb;
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_begin(db, &txn2), CAIRN_ERR_BUSY);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{}", NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_ERR_BUSY);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 1);
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{}", NULL), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK); /* discards */
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 1);
    info_lines[0] = '\0';
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(strstr(info_lines, "2 cairn_close: discarded an open transaction") != NULL);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Collections, namespaces, bulk writes, distinct, schemas, index lists, plans */

struct names {
    int calls;
    int stop_with;
    char all[256];
};

static int32_t name_cb(void *ctx, const char *name, size_t len) {
    struct names *k = ctx;
    k->calls++;
    CHECK(strlen(name) == len);
    strncat(k->all, name, sizeof k->all - strlen(k->all) - 2);
    strcat(k->all, ",");
    return k->stop_with;
}

static void test_collections(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    struct names k;
    uint64_t n = 0;
    char buf[256];
    size_t len = 0;

    CHECK_RC(cairn_coll_create(db, "c1"), CAIRN_OK);
    CHECK_RC(cairn_coll_create(db, "c1"), CAIRN_ERR_EXISTS);
    CHECK_RC(cairn_coll_create(db, ""), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_coll_create(db, "bad name!"), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_coll_create(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_create(NULL, "x"), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_create(db, "c\xff"), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_doc_count(db, "c1", &n), CAIRN_OK);
    CHECK(n == 0);
    CHECK_RC(cairn_doc_insert(db, "c2", "{\"room\":\"R1\"}", NULL), CAIRN_OK);
    const char *by_room[] = {"room"};
    CHECK_RC(cairn_index_create(db, "c2", "by_room", by_room, 1, false), CAIRN_OK);

    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_coll_list(db, name_cb, &k), CAIRN_OK);
    CHECK(k.calls == 2 && strcmp(k.all, "c1,c2,") == 0);
    memset(&k, 0, sizeof k);
    k.stop_with = 1;
    CHECK_RC(cairn_coll_list(db, name_cb, &k), CAIRN_OK);
    CHECK(k.calls == 1);
    memset(&k, 0, sizeof k);
    k.stop_with = -5;
    CHECK_RC(cairn_coll_list(db, name_cb, &k), -5);
    CHECK(k.calls == 1);
    CHECK_RC(cairn_coll_list(db, NULL, &k), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_list(NULL, name_cb, &k), CAIRN_ERR_NULL);

    CHECK_RC(cairn_coll_drop(db, "c1"), CAIRN_OK);
    CHECK_RC(cairn_coll_drop(db, "c1"), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_coll_drop(db, ""), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_coll_drop(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_drop(NULL, "c2"), CAIRN_ERR_NULL);
    /* Dropping takes the documents and the indexes along. */
    CHECK_RC(cairn_coll_drop(db, "c2"), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "c2", &n), CAIRN_OK);
    CHECK(n == 0);
    CHECK_RC(cairn_index_list(db, "c2", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[]") == 0);
    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_coll_list(db, name_cb, &k), CAIRN_OK);
    CHECK(k.calls == 0);

    /* namespaces */
    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_ns_list(db, name_cb, &k), CAIRN_OK);
    CHECK(k.calls == 0);
    CHECK_RC(cairn_kv_put(db, "b", "k", 1, "v", 1), CAIRN_OK);
    CHECK_RC(cairn_kv_put(db, "a", "k", 1, "v", 1), CAIRN_OK);
    memset(&k, 0, sizeof k);
    CHECK_RC(cairn_ns_list(db, name_cb, &k), CAIRN_OK);
    CHECK(k.calls == 2 && strcmp(k.all, "a,b,") == 0);
    memset(&k, 0, sizeof k);
    k.stop_with = -9;
    CHECK_RC(cairn_ns_list(db, name_cb, &k), -9);
    CHECK_RC(cairn_ns_list(db, NULL, &k), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ns_list(NULL, name_cb, &k), CAIRN_ERR_NULL);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static void test_bulk_and_distinct(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    uint64_t n = 0;
    char buf[256];
    size_t len = 0;
    static const char *docs[] = {
        "{\"room\":\"R2\",\"t\":20}", "{\"room\":\"R1\",\"t\":25}", "{\"room\":\"R1\",\"t\":22}",
        "{\"room\":\"R3\",\"t\":18,\"tags\":[\"a\",\"b\"]}"};
    for (int i = 0; i < 4; i++) CHECK_RC(cairn_doc_insert(db, "s", docs[i], NULL), CAIRN_OK);

    /* update_many */
    CHECK_RC(cairn_update_many(db, "s", "{\"room\":\"R1\"}", "{\"$inc\":{\"t\":1}}", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_find_count(db, "s", "{\"t\":{\"$in\":[26,23]}}", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_update_many(db, "s", "{}", "{\"$set\":{\"seen\":true}}", NULL), CAIRN_OK);
    CHECK_RC(cairn_find_count(db, "s", "{\"seen\":true}", &n), CAIRN_OK);
    CHECK(n == 4);
    n = 77;
    CHECK_RC(cairn_update_many(db, "s", "{}", "{\"$frob\":1}", &n), CAIRN_ERR_INVALID_PATCH);
    CHECK(n == 77);
    CHECK_RC(cairn_update_many(db, "s", "{\"t\":{\"$bad\":1}}", "{\"$set\":{\"x\":1}}", &n),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_update_many(db, "s", "{", "{\"$set\":{\"x\":1}}", &n), CAIRN_ERR_JSON);
    CHECK_RC(cairn_update_many(db, "s", NULL, "{\"$set\":{\"x\":1}}", &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_update_many(db, "s", "{}", NULL, &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_update_many(db, NULL, "{}", "{}", &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_update_many(NULL, "s", "{}", "{}", &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_count(db, "s", "{\"x\":1}", &n), CAIRN_OK);
    CHECK(n == 0); /* no failed call wrote anything */
    CHECK_RC(cairn_update_many(db, "none", "{}", "{\"$set\":{\"x\":1}}", &n), CAIRN_OK);
    CHECK(n == 0);

    /* distinct, in value order; array fields give each element. */
    CHECK_RC(cairn_distinct(db, "s", NULL, "room", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[\"R1\",\"R2\",\"R3\"]") == 0 && len == strlen(buf));
    CHECK_RC(cairn_distinct(db, "s", "{\"room\":\"R1\"}", "t", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[23,26]") == 0);
    CHECK_RC(cairn_distinct(db, "s", "", "tags", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[\"a\",\"b\"]") == 0);
    CHECK_RC(cairn_distinct(db, "s", NULL, "room", buf, 4, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen("[\"R1\",\"R2\",\"R3\"]") && buf[0] == '\0');
    CHECK_RC(cairn_distinct(db, "s", NULL, "", buf, sizeof buf, &len), CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_distinct(db, "s", NULL, "a..b", buf, sizeof buf, &len), CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_distinct(db, "s", NULL, NULL, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_distinct(db, "s", "{\"$x\":1}", "t", buf, sizeof buf, &len),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_distinct(db, "none", NULL, "t", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[]") == 0);

    /* delete_many */
    CHECK_RC(cairn_delete_many(db, "s", "{\"t\":{\"$gt\":22}}", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_delete_many(db, "s", NULL, &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_delete_many(db, "s", "{\"t\":{\"$in\":5}}", &n), CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_delete_many(NULL, "s", "{}", &n), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_count(db, "s", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_delete_many(db, "s", "", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_doc_count(db, "s", &n), CAIRN_OK);
    CHECK(n == 0);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static void test_schemas(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    char buf[256];
    size_t len = 0;
    const char *schema =
        "{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"integer\",\"maximum\":100}},"
        "\"required\":[\"t\"]}";

    CHECK_RC(cairn_schema_violation(db, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_schema_get(db, "s", buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_schema_set(db, "s", schema), CAIRN_OK);
    CHECK_RC(cairn_schema_get(db, "s", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"maximum\":100") != NULL && strstr(buf, "\"required\":[\"t\"]") != NULL);
    CHECK(len == strlen(buf));
    CHECK_RC(cairn_schema_get(db, "s", buf, 3, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"t\":500}", NULL), CAIRN_ERR_SCHEMA_VIOLATION);
    CHECK_RC(cairn_schema_violation(db, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"field\":\"t\",\"rule\":\"maximum\"}") == 0);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"u\":1}", NULL), CAIRN_ERR_SCHEMA_VIOLATION);
    CHECK_RC(cairn_schema_violation(db, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"field\":\"t\",\"rule\":\"required\"}") == 0);
    CHECK_RC(cairn_schema_violation(db, NULL, 0, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"t\":50}", NULL), CAIRN_OK);

    CHECK_RC(cairn_schema_set(db, "s", "{\"typo\":1}"), CAIRN_ERR_BAD_SCHEMA);
    CHECK_RC(cairn_schema_set(db, "s", "{\"type\":"), CAIRN_ERR_JSON);
    CHECK_RC(cairn_schema_set(db, "", schema), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_schema_set(db, NULL, schema), CAIRN_ERR_NULL);
    CHECK_RC(cairn_schema_set(NULL, "s", schema), CAIRN_ERR_NULL);
    CHECK_RC(cairn_schema_get(db, NULL, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_schema_get(db, "s", buf, sizeof buf, &len), CAIRN_OK); /* still the old one */
    CHECK(strstr(buf, "\"maximum\":100") != NULL);
    /* NULL removes it. */
    CHECK_RC(cairn_schema_set(db, "s", NULL), CAIRN_OK);
    CHECK_RC(cairn_schema_get(db, "s", buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"t\":500}", NULL), CAIRN_OK);
    /* A schema creates its collection. */
    CHECK_RC(cairn_schema_set(db, "fresh", "{\"type\":\"object\"}"), CAIRN_OK);
    CHECK_RC(cairn_coll_create(db, "fresh"), CAIRN_ERR_EXISTS);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static void test_index_list_and_explain(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    char buf[512];
    size_t len = 0;
    CHECK_RC(cairn_doc_insert(db, "s", "{\"room\":\"R1\",\"t\":20,\"tags\":[\"x\"]}", NULL),
             CAIRN_OK);
    CHECK_RC(cairn_index_list(db, "s", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[]") == 0 && len == 2);
    const char *by_room[] = {"room"};
    CHECK_RC(cairn_index_create(db, "s", "by_room", by_room, 1, false), CAIRN_OK);
    CHECK_RC(cairn_index_create_json(db, "s", "hot_tags",
                                     "{\"fields\":[\"tags\",\"t\"],\"unique\":true,"
                                     "\"partial\":{\"t\":{\"$gt\":10}}}"),
             CAIRN_OK);
    const char *want =
        "[{\"name\":\"by_room\",\"fields\":[\"room\"],\"unique\":false,\"partial\":null,"
        "\"multikey\":false},{\"name\":\"hot_tags\",\"fields\":[\"tags\",\"t\"],\"unique\":true,"
        "\"partial\":{\"t\":{\"$gt\":10}},\"multikey\":true}]";
    CHECK_RC(cairn_index_list(db, "s", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, want) == 0);
    CHECK_RC(cairn_index_list(db, "s", buf, 10, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen(want));
    CHECK_RC(cairn_index_list(db, "none", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "[]") == 0);
    CHECK_RC(cairn_index_list(db, NULL, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_index_list(db, "", buf, sizeof buf, &len), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_index_list(NULL, "s", buf, sizeof buf, &len), CAIRN_ERR_NULL);

    CHECK_RC(cairn_explain(db, "s", "{\"room\":\"R1\"}", NULL, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "{\"access\":\"index\",\"index\":\"by_room\",\"equality_fields\":1,"
                      "\"range\":false,\"multikey\":false,\"sort\":\"none\"}") == 0);
    CHECK_RC(cairn_explain(db, "s", "{\"t\":20}", "{\"sort\":{\"t\":1},\"limit\":5}", buf,
                           sizeof buf, &len),
             CAIRN_OK);
    CHECK(strcmp(buf, "{\"access\":\"scan\",\"sort\":\"memory\"}") == 0);
    CHECK_RC(cairn_explain(db, "none", NULL, NULL, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"scan\"") != NULL);
    CHECK_RC(cairn_explain(db, "s", "{\"t\":{\"$x\":1}}", NULL, buf, sizeof buf, &len),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_explain(db, "s", "{", NULL, buf, sizeof buf, &len), CAIRN_ERR_JSON);
    CHECK_RC(cairn_explain(db, "s", NULL, "{\"limit\":\"x\"}", buf, sizeof buf, &len),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_explain(db, "s", NULL, NULL, buf, 3, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_explain(db, NULL, NULL, NULL, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Document handles and typed accessors */

struct docs_seen {
    int calls;
    int64_t sum;
    int stop_with;
    cairn_doc_t *kept;
};

static int32_t doc_cb(void *ctx, const cairn_doc_t *doc) {
    struct docs_seen *s = ctx;
    int64_t t = 0;
    s->calls++;
    CHECK_RC(cairn_doc_get_i64(doc, "t", &t), CAIRN_OK);
    s->sum += t;
    if (!s->kept) CHECK_RC(cairn_doc_dup(doc, &s->kept), CAIRN_OK);
    return s->stop_with;
}

static void test_doc_handles(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    cairn_doc_t *doc = (cairn_doc_t *)1, *copy = NULL;
    char buf[128];
    uint8_t bytes[8];
    size_t len = 0;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    int32_t type = -1;
    uint64_t id = 0;
    CHECK_RC(cairn_doc_insert(db, "d",
                              "{\"a\":{\"b\":[1,2.5,\"x\",true,null,{\"$binary\":\"AQID\"}]},"
                              "\"n\":-7,\"s\":\"h\xc3\xa9llo\"}",
                              &id),
             CAIRN_OK);

    CHECK_RC(cairn_doc_get_handle(db, "d", 99, &doc), CAIRN_ERR_NOT_FOUND);
    CHECK(doc == NULL);
    CHECK_RC(cairn_doc_get_handle(db, "none", id, &doc), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_get_handle(db, NULL, id, &doc), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_handle(NULL, "d", id, &doc), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_handle(db, "d", id, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_handle(db, "d", id, &doc), CAIRN_OK);
    CHECK(doc != NULL);

    /* types */
    static const struct {
        const char *path;
        int32_t type;
    } types[] = {{"", CAIRN_TYPE_MAP},        {"a", CAIRN_TYPE_MAP},
                 {"a.b", CAIRN_TYPE_ARRAY},   {"a.b.0", CAIRN_TYPE_INT},
                 {"a.b.1", CAIRN_TYPE_FLOAT}, {"a.b.2", CAIRN_TYPE_STR},
                 {"a.b.3", CAIRN_TYPE_BOOL},  {"a.b.4", CAIRN_TYPE_NULL},
                 {"a.b.5", CAIRN_TYPE_BYTES}, {"_id", CAIRN_TYPE_INT}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        CHECK_RC(cairn_doc_type(doc, types[k].path, &type), CAIRN_OK);
        CHECK(type == types[k].type);
    }
    CHECK_RC(cairn_doc_type(doc, "a.b.6", &type), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_type(doc, "a..b", &type), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_type(doc, "n.x", &type), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_type(doc, NULL, &type), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_type(doc, "n", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_type(NULL, "n", &type), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_type(doc, "\xff", &type), CAIRN_ERR_UTF8);

    /* sizes */
    CHECK_RC(cairn_doc_len(doc, "a.b", &len), CAIRN_OK);
    CHECK(len == 6);
    CHECK_RC(cairn_doc_len(doc, "", &len), CAIRN_OK);
    CHECK(len == 6); /* _id _ver _ts a n s */
    CHECK_RC(cairn_doc_len(doc, "s", &len), CAIRN_OK);
    CHECK(len == 6); /* UTF-8 bytes */
    CHECK_RC(cairn_doc_len(doc, "a.b.5", &len), CAIRN_OK);
    CHECK(len == 3);
    CHECK_RC(cairn_doc_len(doc, "n", &len), CAIRN_ERR_TYPE);
    CHECK_RC(cairn_doc_len(doc, "zz", &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_len(doc, "s", NULL), CAIRN_ERR_NULL);

    /* numbers and booleans */
    CHECK_RC(cairn_doc_get_i64(doc, "n", &i), CAIRN_OK);
    CHECK(i == -7);
    CHECK_RC(cairn_doc_get_i64(doc, "_id", &i), CAIRN_OK);
    CHECK(i == (int64_t)id);
    i = 42;
    CHECK_RC(cairn_doc_get_i64(doc, "a.b.1", &i), CAIRN_ERR_TYPE); /* no float conversion */
    CHECK_RC(cairn_doc_get_i64(doc, "a.b.4", &i), CAIRN_ERR_TYPE); /* null */
    CHECK_RC(cairn_doc_get_i64(doc, "missing", &i), CAIRN_ERR_NOT_FOUND);
    CHECK(i == 42);
    CHECK_RC(cairn_doc_get_i64(doc, "n", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_i64(NULL, "n", &i), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_i64(doc, NULL, &i), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_f64(doc, "a.b.1", &f), CAIRN_OK);
    CHECK(f == 2.5);
    CHECK_RC(cairn_doc_get_f64(doc, "n", &f), CAIRN_OK); /* ints convert */
    CHECK(f == -7.0);
    CHECK_RC(cairn_doc_get_f64(doc, "s", &f), CAIRN_ERR_TYPE);
    CHECK_RC(cairn_doc_get_f64(doc, "nope", &f), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_get_bool(doc, "a.b.3", &b), CAIRN_OK);
    CHECK(b);
    CHECK_RC(cairn_doc_get_bool(doc, "a.b.0", &b), CAIRN_ERR_TYPE);
    CHECK_RC(cairn_doc_get_bool(doc, "a.b.9", &b), CAIRN_ERR_NOT_FOUND);

    /* strings and bytes */
    CHECK_RC(cairn_doc_get_str(doc, "s", buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strcmp(buf, "h\xc3\xa9llo") == 0 && len == 6);
    CHECK_RC(cairn_doc_get_str(doc, "a.b.2", buf, 2, &len), CAIRN_OK);
    CHECK(strcmp(buf, "x") == 0);
    strcpy(buf, "untouched");
    CHECK_RC(cairn_doc_get_str(doc, "s", buf, 6, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 6 && buf[0] == '\0');
    CHECK_RC(cairn_doc_get_str(doc, "s", NULL, 0, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_doc_get_str(doc, "s", NULL, 4, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_get_str(doc, "n", buf, sizeof buf, &len), CAIRN_ERR_TYPE);
    CHECK_RC(cairn_doc_get_str(doc, "a.b.5", buf, sizeof buf, &len), CAIRN_ERR_TYPE);
    CHECK_RC(cairn_doc_get_str(doc, "q", buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_get_bytes(doc, "a.b.5", bytes, sizeof bytes, &len), CAIRN_OK);
    CHECK(len == 3 && bytes[0] == 1 && bytes[1] == 2 && bytes[2] == 3);
    CHECK_RC(cairn_doc_get_bytes(doc, "a.b.5", bytes, 2, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 3);
    CHECK_RC(cairn_doc_get_bytes(doc, "s", bytes, sizeof bytes, &len), CAIRN_ERR_TYPE);
    CHECK_RC(cairn_doc_get_bytes(doc, "zz", bytes, sizeof bytes, &len), CAIRN_ERR_NOT_FOUND);

    /* JSON and copies */
    const char *prefix = "{\"_id\":1,\"_ver\":1,\"_ts\":0,\"a\":{\"b\":[1,2.5,\"x\",true,null,";
    CHECK_RC(cairn_doc_to_json(doc, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strncmp(buf, prefix, strlen(prefix)) == 0 && len == strlen(buf));
    CHECK_RC(cairn_doc_to_json(doc, buf, 10, &len), CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(cairn_doc_to_json(NULL, buf, sizeof buf, &len), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_dup(doc, &copy), CAIRN_OK);
    cairn_doc_free(doc);
    CHECK_RC(cairn_doc_get_i64(copy, "n", &i), CAIRN_OK); /* independent of the original */
    CHECK(i == -7);
    cairn_doc_t *other = (cairn_doc_t *)1;
    CHECK_RC(cairn_doc_dup(NULL, &other), CAIRN_ERR_NULL);
    CHECK(other == NULL);
    CHECK_RC(cairn_doc_dup(copy, NULL), CAIRN_ERR_NULL);
    cairn_doc_free(NULL);

    /* A document outlives its database. */
    CHECK_RC(cairn_doc_get_handle(db, "d", id, &doc), CAIRN_OK);

    /* find_docs */
    CHECK_RC(cairn_doc_insert(db, "r", "{\"t\":20}", NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "r", "{\"t\":25}", NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "r", "{\"t\":30}", NULL), CAIRN_OK);
    struct docs_seen s;
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_find_docs(db, "r", "{\"t\":{\"$gte\":25}}", "{\"sort\":{\"t\":-1}}", doc_cb,
                             &s),
             CAIRN_OK);
    CHECK(s.calls == 2 && s.sum == 55);
    CHECK_RC(cairn_doc_get_i64(s.kept, "t", &i), CAIRN_OK); /* the kept copy is ours */
    CHECK(i == 30);
    cairn_doc_free(s.kept);
    memset(&s, 0, sizeof s);
    s.stop_with = 1;
    CHECK_RC(cairn_find_docs(db, "r", NULL, NULL, doc_cb, &s), CAIRN_OK);
    CHECK(s.calls == 1);
    cairn_doc_free(s.kept);
    memset(&s, 0, sizeof s);
    s.stop_with = -3;
    CHECK_RC(cairn_find_docs(db, "r", NULL, NULL, doc_cb, &s), -3);
    cairn_doc_free(s.kept);
    CHECK_RC(cairn_find_docs(db, "r", NULL, NULL, NULL, &s), CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_docs(db, "r", "{\"t\":{\"$x\":0}}", NULL, doc_cb, &s),
             CAIRN_ERR_BAD_FILTER);
    CHECK_RC(cairn_find_docs(NULL, "r", NULL, NULL, doc_cb, &s), CAIRN_ERR_NULL);

    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_doc_get_i64(doc, "n", &i), CAIRN_OK);
    CHECK(i == -7);
    cairn_doc_free(doc);
    cairn_doc_free(copy);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Time, expiry (TTL), write options */

/* A clock the test moves by hand. */
static uint64_t clock_ms;
static uint64_t test_clock(void *ctx) {
    (void)ctx;
    return clock_ms;
}

static cairn_db_t *fresh_clocked(cairn_ram_device_t **dev, cairn_config_t *cfg) {
    cairn_db_t *db = NULL;
    *cfg = ram_config(dev, BLOCKS);
    cfg->now_ms = test_clock;
    clock_ms = 1000000;
    CHECK_RC(cairn_format(&db, cfg, NULL), CAIRN_OK);
    return db;
}

static int64_t doc_i64(cairn_db_t *db, const char *coll, uint64_t id, const char *path) {
    cairn_doc_t *doc = NULL;
    int64_t v = -1;
    CHECK_RC(cairn_doc_get_handle(db, coll, id, &doc), CAIRN_OK);
    if (doc) CHECK_RC(cairn_doc_get_i64(doc, path, &v), CAIRN_OK);
    cairn_doc_free(doc);
    return v;
}

static void test_ttl_and_time(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh_clocked(&dev, &cfg);
    const char *two[] = {"hot", "room:1"};
    const char *terminated[] = {"cold", NULL};
    cairn_write_opts_t opts = {60000, two, 2};
    cairn_kv_meta_t meta;
    char buf[256];
    uint8_t val[16];
    size_t len = 0;
    uint64_t id = 0, n = 0, now = 0, removed = 99;
    bool more = true;

    /* Time starts at the clock's first reading, moves forward to wall time learned later,
     * follows the clock from there and never goes back. */
    CHECK_RC(cairn_now(db, &now), CAIRN_OK);
    CHECK(now == 1000000);
    CHECK_RC(cairn_set_time(db, 2000000), CAIRN_OK);
    CHECK_RC(cairn_now(db, &now), CAIRN_OK);
    CHECK(now == 2000000);
    clock_ms += 100;
    CHECK_RC(cairn_now(db, &now), CAIRN_OK);
    CHECK(now == 2000100);
    CHECK_RC(cairn_set_time(db, 5), CAIRN_OK); /* behind: ignored */
    CHECK_RC(cairn_now(db, &now), CAIRN_OK);
    CHECK(now == 2000100);
    CHECK_RC(cairn_now(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_now(NULL, &now), CAIRN_ERR_NULL);
    CHECK_RC(cairn_set_time(NULL, 1), CAIRN_ERR_NULL);

    /* Insert with a time to live and tags: _exp and _tags show them. */
    CHECK_RC(cairn_doc_insert_with(db, "r", "{\"t\":1}", &opts, &id), CAIRN_OK);
    CHECK(id == 1);
    CHECK(doc_i64(db, "r", 1, "_exp") == 2000100 + 60000);
    CHECK(doc_i64(db, "r", 1, "_ts") == 2000100);
    CHECK_RC(cairn_doc_get(db, "r", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"_tags\":[\"hot\",\"room:1\"]") != NULL);
    opts.ttl_ms = 1000;
    opts.tags = terminated;
    opts.n_tags = 0; /* NULL-terminated */
    CHECK_RC(cairn_doc_insert_with(db, "r", "{\"t\":2}", &opts, &id), CAIRN_OK);
    CHECK_RC(cairn_doc_get(db, "r", id, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"_tags\":[\"cold\"]") != NULL);
    CHECK_RC(cairn_doc_insert_with(db, "r", "{\"t\":3}", NULL, &id), CAIRN_OK); /* plain */
    CHECK_RC(cairn_doc_get(db, "r", id, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "_exp") == NULL && strstr(buf, "_tags") == NULL);
    CHECK_RC(cairn_doc_count(db, "r", &n), CAIRN_OK);
    CHECK(n == 3);

    /* Option errors write nothing. */
    const char *bad_char[] = {"a b"};
    const char *repeated[] = {"x", "x"};
    const char *nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", NULL};
    const char *with_null[] = {"a", NULL};
    const char *bad_utf8[] = {"\xff"};
    cairn_write_opts_t bad = {0, bad_char, 1};
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.tags = repeated;
    bad.n_tags = 2;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.tags = nine;
    bad.n_tags = 0;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.n_tags = 9;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.tags = with_null;
    bad.n_tags = 2;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_NULL);
    bad.tags = NULL;
    bad.n_tags = 1;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_NULL);
    bad.tags = bad_utf8;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{}", &bad, NULL), CAIRN_ERR_UTF8);
    bad.tags = two;
    bad.n_tags = 2;
    CHECK_RC(cairn_doc_insert_with(db, "r", "{\"_tags\":[\"x\"]}", &bad, NULL),
             CAIRN_ERR_INVALID_ARGUMENT); /* tags given both ways */
    CHECK_RC(cairn_doc_insert_with(db, "r", "{\"t\":", &opts, NULL), CAIRN_ERR_JSON);
    CHECK_RC(cairn_doc_insert_with(db, "r", "[1]", &opts, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_doc_insert_with(db, "bad name", "{}", &opts, NULL), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_doc_insert_with(db, NULL, "{}", &opts, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_insert_with(db, "r", NULL, &opts, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_insert_with(NULL, "r", "{}", &opts, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_count(db, "r", &n), CAIRN_OK);
    CHECK(n == 3);

    /* Expiry: the 1 s document disappears from every read when its time comes. */
    clock_ms += 999;
    CHECK_RC(cairn_doc_get(db, "r", 2, buf, sizeof buf, &len), CAIRN_OK);
    clock_ms += 1;
    CHECK_RC(cairn_doc_get(db, "r", 2, buf, sizeof buf, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_count(db, "r", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_find_count(db, "r", "{\"t\":2}", &n), CAIRN_OK);
    CHECK(n == 0);
    CHECK_RC(cairn_doc_set_expiry(db, "r", 2, 5000), CAIRN_ERR_NOT_FOUND); /* too late */

    /* Set and clear an expiry. */
    CHECK_RC(cairn_doc_set_expiry(db, "r", 3, 10), CAIRN_OK);
    CHECK(doc_i64(db, "r", 3, "_exp") == 2001100 + 10);
    CHECK(doc_i64(db, "r", 3, "_ver") == 1); /* _ver and _ts stay */
    CHECK_RC(cairn_doc_set_expiry(db, "r", 1, 0), CAIRN_OK); /* 0 clears */
    CHECK_RC(cairn_doc_get(db, "r", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "_exp") == NULL);
    CHECK_RC(cairn_doc_set_expiry(db, "r", 99, 10), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_set_expiry(db, "nope", 1, 10), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_set_expiry(db, "bad name", 1, 10), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_doc_set_expiry(db, NULL, 1, 10), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_set_expiry(db, "r", 1, UINT64_MAX), CAIRN_ERR_INVALID_ARGUMENT);
    clock_ms += 10;
    CHECK_RC(cairn_doc_count(db, "r", &n), CAIRN_OK);
    CHECK(n == 1);

    /* Key-value entries with expiry and tags. */
    cairn_write_opts_t kv_opts = {3000, two, 2};
    CHECK_RC(cairn_kv_put_with(db, "cfg", "a", 1, "alpha", 5, &kv_opts), CAIRN_OK);
    CHECK_RC(cairn_kv_put_with(db, "cfg", "b", 1, "beta", 4, NULL), CAIRN_OK);
    memset(&meta, 0x55, sizeof meta);
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "a", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(len == 5 && memcmp(val, "alpha", 5) == 0);
    CHECK(meta.expires == 2001110 + 3000 && meta.n_tags == 2);
    CHECK(strcmp(meta.tags[0], "hot") == 0 && strcmp(meta.tags[1], "room:1") == 0);
    CHECK(meta.tags[2][0] == '\0' && meta.tags[CAIRN_MAX_TAGS - 1][0] == '\0');
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "b", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(meta.expires == 0 && meta.n_tags == 0 && meta.tags[0][0] == '\0');
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "b", 1, val, sizeof val, &len, NULL), CAIRN_OK);
    meta.n_tags = 77;
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "a", 1, val, 2, &len, &meta),
             CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 5 && meta.n_tags == 77); /* meta only on success */
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "zz", 2, val, sizeof val, &len, &meta),
             CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_kv_get_entry(db, "cfg", NULL, 1, val, sizeof val, &len, &meta),
             CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_get_entry(db, "bad ns", "a", 1, val, sizeof val, &len, &meta),
             CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_put_with(db, "cfg", "c", 1, "x", 1, &bad), CAIRN_OK); /* tags ok */
    bad.tags = repeated;
    CHECK_RC(cairn_kv_put_with(db, "cfg", "d", 1, "x", 1, &bad), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_kv_put_with(db, "cfg", "", 0, "x", 1, NULL), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_put_with(NULL, "cfg", "d", 1, "x", 1, NULL), CAIRN_ERR_NULL);
    bool exists = true;
    CHECK_RC(cairn_kv_exists(db, "cfg", "d", 1, &exists), CAIRN_OK);
    CHECK(!exists);
    CHECK_RC(cairn_kv_set_expiry(db, "cfg", "b", 1, 50), CAIRN_OK);
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "b", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(meta.expires == 2001110 + 50);
    CHECK_RC(cairn_kv_set_expiry(db, "cfg", "a", 1, 0), CAIRN_OK); /* clears, tags stay */
    CHECK_RC(cairn_kv_get_entry(db, "cfg", "a", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(meta.expires == 0 && meta.n_tags == 2);
    CHECK_RC(cairn_kv_set_expiry(db, "cfg", "zz", 2, 50), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_kv_set_expiry(db, "none", "a", 1, 50), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_kv_set_expiry(db, "cfg", NULL, 1, 50), CAIRN_ERR_NULL);
    clock_ms += 50;
    CHECK_RC(cairn_kv_get(db, "cfg", "b", 1, val, sizeof val, &len), CAIRN_ERR_NOT_FOUND);

    /* The sweep removes what expired (2 documents, 1 entry), bounded by its budget. */
    struct {
        uint64_t removed;
    } before;
    cairn_statistics_t st;
    CHECK_RC(cairn_statistics(db, &st), CAIRN_OK);
    before.removed = st.expired_removed;
    CHECK(before.removed == 0);
    CHECK_RC(cairn_sweep(db, 2, &removed, &more), CAIRN_OK);
    CHECK(removed == 2 && more);
    CHECK_RC(cairn_sweep(db, 100, &removed, &more), CAIRN_OK);
    CHECK(removed == 1 && !more);
    CHECK_RC(cairn_sweep(db, 100, NULL, NULL), CAIRN_OK);
    CHECK_RC(cairn_statistics(db, &st), CAIRN_OK);
    CHECK(st.expired_removed == 3);
    cairn_coll_stats_t cs;
    CHECK_RC(cairn_coll_stats(db, "r", &cs), CAIRN_OK);
    CHECK(cs.docs == 1); /* the stored count now matches what is visible */
    CHECK_RC(cairn_sweep(NULL, 1, &removed, &more), CAIRN_ERR_NULL);

    /* Time survives a reopen: it starts past every time issued before, whatever the clock. */
    CHECK_RC(cairn_now(db, &now), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    uint64_t before_close = now;
    clock_ms = 10; /* an uptime counter restarted by a reboot */
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_now(db, &now), CAIRN_OK);
    CHECK(now > before_close);
    CHECK_RC(cairn_doc_get(db, "r", 1, buf, sizeof buf, &len), CAIRN_OK); /* expiry cleared */
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

static void test_txn_ttl(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh_clocked(&dev, &cfg);
    cairn_txn_t *txn = NULL;
    const char *tags[] = {"t1", NULL};
    cairn_write_opts_t opts = {100, tags, 0};
    cairn_kv_meta_t meta;
    uint8_t val[8];
    size_t len = 0;
    uint64_t id = 0, t1 = 0, t2 = 0, n = 0;
    char buf[128];

    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_now(txn, &t1), CAIRN_OK);
    clock_ms += 777;
    CHECK_RC(cairn_txn_now(txn, &t2), CAIRN_OK);
    CHECK(t1 == 1000000 && t2 == t1); /* one time for the whole transaction */
    CHECK_RC(cairn_txn_doc_insert_with(txn, "c", "{\"a\":1}", &opts, &id), CAIRN_OK);
    CHECK(id == 1);
    CHECK_RC(cairn_txn_doc_get(txn, "c", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"_exp\":1000100") != NULL && strstr(buf, "\"_tags\":[\"t1\"]") != NULL);
    CHECK_RC(cairn_txn_doc_set_expiry(txn, "c", 1, 50000), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_get(txn, "c", 1, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"_exp\":1050000") != NULL);
    CHECK_RC(cairn_txn_kv_put_with(txn, "ns", "k", 1, "v", 1, &opts), CAIRN_OK);
    CHECK_RC(cairn_txn_kv_get_entry(txn, "ns", "k", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(len == 1 && meta.expires == 1000100 && meta.n_tags == 1 &&
          strcmp(meta.tags[0], "t1") == 0);
    CHECK_RC(cairn_txn_kv_set_expiry(txn, "ns", "k", 1, 0), CAIRN_OK);
    CHECK_RC(cairn_txn_kv_get_entry(txn, "ns", "k", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(meta.expires == 0);
    /* Failed calls change nothing and the transaction goes on. */
    cairn_write_opts_t bad = {0, tags, 9};
    CHECK_RC(cairn_txn_doc_insert_with(txn, "c", "{}", &bad, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_txn_kv_put_with(txn, "ns", "k", 1, "w", 1, &bad), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_txn_doc_set_expiry(txn, "c", 9, 5), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_kv_set_expiry(txn, "ns", "zz", 2, 5), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_kv_get_entry(txn, "ns", "zz", 2, val, sizeof val, &len, &meta),
             CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_txn_doc_insert_with(txn, "c", "{", NULL, NULL), CAIRN_ERR_JSON);
    CHECK_RC(cairn_txn_now(txn, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_now(NULL, &t1), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_doc_count(txn, "c", &n), CAIRN_OK);
    CHECK(n == 1);
    CHECK_RC(cairn_txn_log_event(txn, CAIRN_LOG_INFO, 1001, "batch stored"), CAIRN_OK);
    CHECK_RC(cairn_txn_log_event(txn, 42, 1001, "x"), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_txn_log_event(txn, CAIRN_LOG_INFO, 1001, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_OK);
    CHECK_RC(cairn_txn_now(txn, &t1), CAIRN_ERR_INVALID_ARGUMENT); /* ended */
    CHECK_RC(cairn_txn_kv_get_entry(txn, "ns", "k", 1, val, sizeof val, &len, &meta),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK(doc_i64(db, "c", 1, "_exp") == 1050000);
    CHECK_RC(cairn_kv_get_entry(db, "ns", "k", 1, val, sizeof val, &len, &meta), CAIRN_OK);
    CHECK(meta.expires == 0 && meta.n_tags == 1);

    /* A transaction grown to its bound: a put that does not fit fails alone and the
     * transaction still commits what it holds. cairn_txn_log_event() is the one call that is
     * not all or nothing in the core: its failure aborts the transaction. */
    static char big[1000];
    memset(big, 'b', sizeof big);
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    int stored = 0, rc = CAIRN_OK;
    size_t sizes[] = {1000, 100, 10, 1};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (;;) {
            char key[16];
            int kl = snprintf(key, sizeof key, "k%d", stored);
            rc = cairn_txn_kv_put(txn, "fill", key, (size_t)kl, big, sizes[s]);
            if (rc != CAIRN_OK) break;
            stored++;
        }
        CHECK_RC(rc, CAIRN_ERR_TXN_TOO_LARGE);
    }
    CHECK(stored > 2);
    CHECK_RC(cairn_txn_kv_get(txn, "fill", "k0", 2, val, sizeof val, &len),
             CAIRN_ERR_BUFFER_TOO_SMALL); /* still going */
    CHECK_RC(cairn_txn_log_event(txn, CAIRN_LOG_WARN, 1002, "no room for this event, surely"),
             CAIRN_ERR_TXN_TOO_LARGE);
    CHECK_RC(cairn_txn_kv_get(txn, "fill", "k0", 2, val, sizeof val, &len),
             CAIRN_ERR_TXN_ABORTED);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_ERR_TXN_ABORTED);
    bool gone = true;
    CHECK_RC(cairn_kv_exists(db, "fill", "k0", 2, &gone), CAIRN_OK);
    CHECK(!gone);
    /* The same fill committed without the event keeps every put that fitted. */
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    int again = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (;;) {
            char key[16];
            int kl = snprintf(key, sizeof key, "k%d", again);
            if (cairn_txn_kv_put(txn, "fill", key, (size_t)kl, big, sizes[s]) != CAIRN_OK) break;
            again++;
        }
    }
    CHECK(again == stored);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_OK);
    CHECK_RC(cairn_kv_exists(db, "fill", "k0", 2, &gone), CAIRN_OK);
    CHECK(gone);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Tags */

struct tag_seen {
    int calls;
    int stop_with;
    char all[512];
};

static int32_t tagged_json_cb(void *ctx, const char *json, size_t len) {
    struct tag_seen *t = ctx;
    CHECK(strlen(json) == len);
    t->calls++;
    strncat(t->all, json, sizeof t->all - strlen(t->all) - 2);
    strcat(t->all, "\n");
    return t->stop_with;
}

static int32_t tagged_doc_cb(void *ctx, const cairn_doc_t *doc) {
    struct tag_seen *t = ctx;
    int64_t v = 0;
    char one[16];
    CHECK_RC(cairn_doc_get_i64(doc, "v", &v), CAIRN_OK);
    snprintf(one, sizeof one, "%d,", (int)v);
    strcat(t->all, one);
    t->calls++;
    return t->stop_with;
}

static int32_t tagged_key_cb(void *ctx, const uint8_t *key, size_t len) {
    struct tag_seen *t = ctx;
    strncat(t->all, (const char *)key, len);
    strcat(t->all, ",");
    t->calls++;
    return t->stop_with;
}

static int32_t tag_count_cb(void *ctx, const char *tag, size_t len, uint64_t count) {
    struct tag_seen *t = ctx;
    char one[64];
    CHECK(strlen(tag) == len);
    snprintf(one, sizeof one, "%s=%llu,", tag, (unsigned long long)count);
    strcat(t->all, one);
    t->calls++;
    return t->stop_with;
}

static void test_tags(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh_clocked(&dev, &cfg);
    const char *a[] = {"a"}, *ab[] = {"a", "b"}, *b[] = {"b"}, *bc[] = {"b", "c"};
    cairn_write_opts_t o;
    struct tag_seen t;
    char doc[32];
    /* v1: a; v2: a b; v3: b; v4: b c (expires); v5: no tags */
    const char **sets[] = {a, ab, b, bc};
    size_t counts[] = {1, 2, 1, 2};
    for (int i = 0; i < 5; i++) {
        o.ttl_ms = i == 3 ? 100 : 0;
        o.tags = i < 4 ? sets[i] : NULL;
        o.n_tags = i < 4 ? counts[i] : 0;
        snprintf(doc, sizeof doc, "{\"v\":%d}", i + 1);
        CHECK_RC(cairn_doc_insert_with(db, "d", doc, &o, NULL), CAIRN_OK);
        char key[4] = {(char)('p' + i), 0};
        CHECK_RC(cairn_kv_put_with(db, "kv", key, 1, "x", 1, &o), CAIRN_OK);
    }

    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_find_tagged_docs(db, "d", CAIRN_TAGS_ANY, ab, 2, tagged_doc_cb, &t), CAIRN_OK);
    CHECK(t.calls == 4 && strcmp(t.all, "1,2,3,4,") == 0); /* each once */
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_find_tagged_docs(db, "d", CAIRN_TAGS_ALL, bc, 2, tagged_doc_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "4,") == 0);
    memset(&t, 0, sizeof t);
    const char *b_term[] = {"b", NULL};
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ALL, b_term, 0, tagged_json_cb, &t),
             CAIRN_OK);
    CHECK(t.calls == 3 && strstr(t.all, "\"v\":2") && strstr(t.all, "\"v\":3") &&
          strstr(t.all, "\"v\":4") && strstr(t.all, "\"_tags\":[\"b\",\"c\"]"));
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_kv_keys_tagged(db, "kv", CAIRN_TAGS_ANY, bc, 2, tagged_key_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "q,r,s,") == 0);
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_tag_counts(db, "d", tag_count_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "a=2,b=3,c=1,") == 0);
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_kv_tag_counts(db, "kv", tag_count_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "a=2,b=3,c=1,") == 0);

    /* Expired items are left out of every tag query at once. */
    clock_ms += 100;
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_find_tagged_docs(db, "d", CAIRN_TAGS_ANY, bc, 2, tagged_doc_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "2,3,") == 0);
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_kv_keys_tagged(db, "kv", CAIRN_TAGS_ALL, b, 1, tagged_key_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "q,r,") == 0);
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_tag_counts(db, "d", tag_count_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "a=2,b=2,") == 0);
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_kv_tag_counts(db, "kv", tag_count_cb, &t), CAIRN_OK);
    CHECK(strcmp(t.all, "a=2,b=2,") == 0);
    /* A patch of _tags moves the document in the tag index. */
    CHECK_RC(cairn_doc_patch(db, "d", 5, "{\"$set\":{\"_tags\":[\"c\"]}}"), CAIRN_OK);
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_find_tagged_docs(db, "d", CAIRN_TAGS_ALL, bc + 1, 1, tagged_doc_cb, &t),
             CAIRN_OK);
    CHECK(strcmp(t.all, "5,") == 0);

    /* Callbacks stop the stream: positive is OK, negative comes back. */
    memset(&t, 0, sizeof t);
    t.stop_with = 1;
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ANY, ab, 2, tagged_json_cb, &t), CAIRN_OK);
    CHECK(t.calls == 1);
    t.calls = 0;
    t.stop_with = -9;
    CHECK_RC(cairn_find_tagged_docs(db, "d", CAIRN_TAGS_ANY, ab, 2, tagged_doc_cb, &t), -9);
    CHECK(t.calls == 1);
    t.calls = 0;
    CHECK_RC(cairn_kv_keys_tagged(db, "kv", CAIRN_TAGS_ANY, ab, 2, tagged_key_cb, &t), -9);
    CHECK(t.calls == 1);
    t.calls = 0;
    CHECK_RC(cairn_tag_counts(db, "d", tag_count_cb, &t), -9);
    CHECK(t.calls == 1);
    t.calls = 0;
    t.stop_with = 2;
    CHECK_RC(cairn_kv_tag_counts(db, "kv", tag_count_cb, &t), CAIRN_OK);
    CHECK(t.calls == 1);

    /* Missing collections and namespaces have nothing; bad arguments are refused. */
    memset(&t, 0, sizeof t);
    CHECK_RC(cairn_find_tagged(db, "none", CAIRN_TAGS_ALL, a, 1, tagged_json_cb, &t), CAIRN_OK);
    CHECK_RC(cairn_kv_keys_tagged(db, "none", CAIRN_TAGS_ALL, a, 1, tagged_key_cb, &t),
             CAIRN_OK);
    CHECK_RC(cairn_tag_counts(db, "none", tag_count_cb, &t), CAIRN_OK);
    CHECK(t.calls == 0);
    const char *nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    const char *invalid[] = {"no spaces"};
    const char *empty_list[] = {NULL};
    CHECK_RC(cairn_find_tagged(db, "d", 7, a, 1, tagged_json_cb, &t), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ALL, nine, 9, tagged_json_cb, &t),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ALL, invalid, 1, tagged_json_cb, &t),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ALL, empty_list, 0, tagged_json_cb, &t),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ALL, NULL, 0, tagged_json_cb, &t),
             CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_tagged(db, "d", CAIRN_TAGS_ALL, a, 1, NULL, &t), CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_tagged(db, "bad name", CAIRN_TAGS_ALL, a, 1, tagged_json_cb, &t),
             CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_find_tagged(NULL, "d", CAIRN_TAGS_ALL, a, 1, tagged_json_cb, &t),
             CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_tagged_docs(db, "d", -1, a, 1, tagged_doc_cb, &t),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_find_tagged_docs(db, "d", CAIRN_TAGS_ANY, NULL, 1, tagged_doc_cb, &t),
             CAIRN_ERR_NULL);
    CHECK_RC(cairn_find_tagged_docs(db, NULL, CAIRN_TAGS_ANY, a, 1, tagged_doc_cb, &t),
             CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_keys_tagged(db, "kv", CAIRN_TAGS_ANY, a, 1, NULL, &t), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_keys_tagged(db, "kv", CAIRN_TAGS_ANY, invalid, 1, tagged_key_cb, &t),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_tag_counts(db, "d", NULL, &t), CAIRN_ERR_NULL);
    CHECK_RC(cairn_tag_counts(db, NULL, tag_count_cb, &t), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_tag_counts(db, "bad ns", tag_count_cb, &t), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_tag_counts(NULL, "kv", tag_count_cb, &t), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Capped collections and the event log */

struct events_seen {
    int calls;
    int stop_with;
    uint64_t last_id;
    int32_t levels[80];
    uint32_t codes[80];
    char msgs[80][130];
};

static int32_t event_cb(void *ctx, const cairn_event_t *e) {
    struct events_seen *s = ctx;
    CHECK(strlen(e->msg) == e->msg_len);
    if (s->calls < 80) {
        s->levels[s->calls] = e->level;
        s->codes[s->calls] = e->code;
        snprintf(s->msgs[s->calls], sizeof s->msgs[0], "%s", e->msg);
    }
    if (s->calls > 0) CHECK(e->id < s->last_id); /* newest first */
    s->last_id = e->id;
    s->calls++;
    return s->stop_with;
}

static void test_capped_and_events(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh_clocked(&dev, &cfg);
    cairn_coll_stats_t cs;
    char doc[300];
    uint64_t n = 0, id = 0;
    size_t len = 0;

    CHECK_RC(cairn_coll_create_capped(db, "last3", 3, 0), CAIRN_OK);
    for (int i = 1; i <= 5; i++) {
        snprintf(doc, sizeof doc, "{\"i\":%d}", i);
        CHECK_RC(cairn_doc_insert(db, "last3", doc, &id), CAIRN_OK);
    }
    CHECK_RC(cairn_doc_count(db, "last3", &n), CAIRN_OK);
    CHECK(n == 3);
    CHECK_RC(cairn_doc_get(db, "last3", 2, doc, sizeof doc, &len), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_get(db, "last3", 3, doc, sizeof doc, &len), CAIRN_OK);
    memset(&cs, 0xEE, sizeof cs);
    CHECK_RC(cairn_coll_stats(db, "last3", &cs), CAIRN_OK);
    CHECK(cs.docs == 3 && cs.max_docs == 3 && cs.max_bytes == 0 && cs.evicted == 2 &&
          cs.bytes > 0);

    /* A byte cap: growth evicts the oldest; one document past the cap is refused. */
    CHECK_RC(cairn_coll_create_capped(db, "small", 0, 200), CAIRN_OK);
    for (int i = 0; i < 10; i++)
        CHECK_RC(cairn_doc_insert(db, "small", "{\"pad\":\"0123456789012345678901234567\"}", NULL),
                 CAIRN_OK);
    CHECK_RC(cairn_coll_stats(db, "small", &cs), CAIRN_OK);
    CHECK(cs.bytes <= 200 && cs.evicted > 0 && cs.docs + cs.evicted == 10 && cs.max_bytes == 200);
    memset(doc, 0, sizeof doc);
    strcpy(doc, "{\"pad\":\"");
    memset(doc + 8, 'x', 250);
    strcpy(doc + 258, "\"}");
    CHECK_RC(cairn_doc_insert(db, "small", doc, NULL), CAIRN_ERR_TOO_LARGE);
    CHECK_RC(cairn_coll_create_capped(db, "plain", 0, 0), CAIRN_OK); /* no cap at all */
    CHECK_RC(cairn_coll_stats(db, "plain", &cs), CAIRN_OK);
    CHECK(cs.docs == 0 && cs.max_docs == 0 && cs.max_bytes == 0);
    CHECK_RC(cairn_coll_create_capped(db, "last3", 3, 0), CAIRN_ERR_EXISTS);
    CHECK_RC(cairn_coll_create_capped(db, "bad name", 3, 0), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_coll_create_capped(db, NULL, 3, 0), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_create_capped(NULL, "x", 3, 0), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_stats(db, "missing", &cs), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_coll_stats(db, "last3", NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_coll_stats(db, "\xff", &cs), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_coll_stats(NULL, "last3", &cs), CAIRN_ERR_NULL);

    /* The event log: the application's events and the library's own. */
    struct events_seen s;
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 10, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 0);
    CHECK_RC(cairn_log_event(db, CAIRN_LOG_ERROR, 1000, "sensor 3 offline"), CAIRN_OK);
    CHECK_RC(cairn_log_event(db, CAIRN_LOG_DEBUG, 1001, "tick"), CAIRN_OK);
    CHECK_RC(cairn_log_event(db, CAIRN_LOG_WARN, 1002, "battery low"), CAIRN_OK);
    static const uint8_t new_key[32] = {5};
    cairn_key_t k = {new_key, NULL, 0, 0};
    CHECK_RC(cairn_rekey(db, &k), CAIRN_OK);
    char long_msg[200];
    memset(long_msg, 'm', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    CHECK_RC(cairn_log_event(db, CAIRN_LOG_INFO, 1003, long_msg), CAIRN_OK);
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 10, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 5);
    CHECK(s.codes[0] == 1003 && strlen(s.msgs[0]) == CAIRN_MAX_EVENT_MSG);
    CHECK(s.codes[1] == CAIRN_EVENT_REKEY && s.levels[1] == CAIRN_LOG_INFO);
    CHECK(s.codes[2] == 1002 && s.levels[2] == CAIRN_LOG_WARN &&
          strcmp(s.msgs[2], "battery low") == 0);
    CHECK(s.codes[3] == 1001 && s.levels[3] == CAIRN_LOG_DEBUG);
    CHECK(s.codes[4] == 1000 && s.levels[4] == CAIRN_LOG_ERROR);
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_events(db, CAIRN_LOG_WARN, 10, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 2 && s.codes[0] == 1002 && s.codes[1] == 1000);
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 2, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 2 && s.codes[0] == 1003);
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 0, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 0);
    s.stop_with = 1;
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 10, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 1);
    memset(&s, 0, sizeof s);
    s.stop_with = -4;
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 10, event_cb, &s), -4);
    CHECK(s.calls == 1);
    /* The log is capped (64 events): the oldest go. */
    for (int i = 0; i < 70; i++) CHECK_RC(cairn_log_event(db, CAIRN_LOG_INFO, 2000, "e"), CAIRN_OK);
    memset(&s, 0, sizeof s);
    CHECK_RC(cairn_events(db, CAIRN_LOG_DEBUG, 1000, event_cb, &s), CAIRN_OK);
    CHECK(s.calls == 64);
    CHECK_RC(cairn_log_event(db, 0, 1, "x"), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_log_event(db, 5, 1, "x"), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_log_event(db, CAIRN_LOG_INFO, 1, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_log_event(db, CAIRN_LOG_INFO, 1, "\xff"), CAIRN_ERR_UTF8);
    CHECK_RC(cairn_log_event(NULL, CAIRN_LOG_INFO, 1, "x"), CAIRN_ERR_NULL);
    CHECK_RC(cairn_events(db, 9, 10, event_cb, &s), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_events(db, CAIRN_LOG_INFO, 10, NULL, &s), CAIRN_ERR_NULL);
    CHECK_RC(cairn_events(NULL, CAIRN_LOG_INFO, 10, event_cb, &s), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Batches */

static void test_batches(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg;
    cairn_db_t *db = fresh(&dev, &cfg);
    uint64_t ids[4] = {0}, n = 0, deleted = 0;
    size_t count = 0, len = 0;
    char buf[128];

    CHECK_RC(cairn_insert_many(db, "b", "[{\"x\":1},{\"x\":2},{\"x\":3}]", ids, 4, &count),
             CAIRN_OK);
    CHECK(count == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3 && ids[3] == 0);
    CHECK_RC(cairn_doc_get(db, "b", 2, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"x\":2") != NULL);
    CHECK_RC(cairn_insert_many(db, "b", "[{\"x\":4}]", NULL, 0, NULL), CAIRN_OK); /* no ids */
    CHECK_RC(cairn_insert_many(db, "b", "[]", ids, 0, &count), CAIRN_OK);
    CHECK(count == 0);
    /* Too little room for the ids: nothing is inserted, the count needed comes back. */
    count = 0;
    CHECK_RC(cairn_insert_many(db, "b", "[{\"x\":5},{\"x\":6}]", ids, 1, &count),
             CAIRN_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 2);
    CHECK_RC(cairn_doc_count(db, "b", &n), CAIRN_OK);
    CHECK(n == 4);
    /* Any bad item writes nothing. */
    const char *by_x[] = {"x"};
    CHECK_RC(cairn_index_create(db, "b", "ux", by_x, 1, true), CAIRN_OK);
    CHECK_RC(cairn_insert_many(db, "b", "[{\"x\":7},{\"x\":1}]", ids, 4, &count),
             CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_insert_many(db, "b", "[{\"x\":7},[1]]", ids, 4, &count),
             CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_find_count(db, "b", "{\"x\":7}", &n), CAIRN_OK);
    CHECK(n == 0);
    CHECK_RC(cairn_insert_many(db, "b", "{\"x\":1}", ids, 4, &count), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_insert_many(db, "b", "[{\"x\":", ids, 4, &count), CAIRN_ERR_JSON);
    CHECK_RC(cairn_insert_many(db, "bad name", "[{}]", ids, 4, &count), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_insert_many(db, "b", NULL, ids, 4, &count), CAIRN_ERR_NULL);
    CHECK_RC(cairn_insert_many(db, NULL, "[]", ids, 4, &count), CAIRN_ERR_NULL);
    CHECK_RC(cairn_insert_many(NULL, "b", "[]", ids, 4, &count), CAIRN_ERR_NULL);
    CHECK_RC(cairn_doc_count(db, "b", &n), CAIRN_OK);
    CHECK(n == 4);

    const uint64_t gone[] = {1, 3, 99};
    CHECK_RC(cairn_delete_ids(db, "b", gone, 3, &deleted), CAIRN_OK);
    CHECK(deleted == 2);
    CHECK_RC(cairn_doc_count(db, "b", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_delete_ids(db, "b", NULL, 0, &deleted), CAIRN_OK);
    CHECK(deleted == 0);
    CHECK_RC(cairn_delete_ids(db, "b", NULL, 2, &deleted), CAIRN_ERR_NULL);
    CHECK_RC(cairn_delete_ids(db, "bad name", gone, 3, &deleted), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_delete_ids(NULL, "b", gone, 3, &deleted), CAIRN_ERR_NULL);

    cairn_kv_pair_t pairs[] = {{"a", 1, "1", 1}, {"b", 1, "2", 1}, {"a", 1, "3", 1},
                               {"e", 1, NULL, 0}};
    CHECK_RC(cairn_kv_put_many(db, "m", pairs, 4), CAIRN_OK);
    uint8_t val[4];
    CHECK_RC(cairn_kv_get(db, "m", "a", 1, val, sizeof val, &len), CAIRN_OK);
    CHECK(len == 1 && val[0] == '3'); /* the last value of a repeated key */
    CHECK_RC(cairn_kv_get(db, "m", "e", 1, val, sizeof val, &len), CAIRN_OK);
    CHECK(len == 0);
    cairn_kv_pair_t bad_pairs[] = {{"c", 1, "x", 1}, {"", 0, "y", 1}};
    CHECK_RC(cairn_kv_put_many(db, "m", bad_pairs, 2), CAIRN_ERR_INVALID_NAME);
    bool exists = true;
    CHECK_RC(cairn_kv_exists(db, "m", "c", 1, &exists), CAIRN_OK);
    CHECK(!exists); /* all or nothing */
    bad_pairs[1].key = NULL;
    bad_pairs[1].key_len = 1;
    CHECK_RC(cairn_kv_put_many(db, "m", bad_pairs, 2), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_put_many(db, "m", NULL, 1), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_put_many(db, "m", NULL, 0), CAIRN_OK);
    CHECK_RC(cairn_kv_put_many(db, "bad ns", pairs, 1), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_put_many(NULL, "m", pairs, 1), CAIRN_ERR_NULL);

    cairn_kv_key_t keys[] = {{"a", 1}, {"zz", 2}, {"b", 1}};
    CHECK_RC(cairn_kv_delete_many(db, "m", keys, 3, &deleted), CAIRN_OK);
    CHECK(deleted == 2);
    CHECK_RC(cairn_kv_exists(db, "m", "b", 1, &exists), CAIRN_OK);
    CHECK(!exists);
    cairn_kv_key_t bad_keys[] = {{"e", 1}, {"", 0}};
    CHECK_RC(cairn_kv_delete_many(db, "m", bad_keys, 2, &deleted), CAIRN_ERR_INVALID_NAME);
    CHECK_RC(cairn_kv_exists(db, "m", "e", 1, &exists), CAIRN_OK);
    CHECK(exists);
    CHECK_RC(cairn_kv_delete_many(db, "m", NULL, 1, &deleted), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_delete_many(db, NULL, keys, 1, &deleted), CAIRN_ERR_NULL);
    CHECK_RC(cairn_kv_delete_many(NULL, "m", keys, 1, &deleted), CAIRN_ERR_NULL);

    /* A batch too large for one commit writes nothing. */
    static char big[1000];
    memset(big, 'z', sizeof big);
    cairn_kv_pair_t many[64];
    char names[64][4];
    for (int i = 0; i < 64; i++) {
        snprintf(names[i], sizeof names[i], "%d", i);
        many[i].key = names[i];
        many[i].key_len = strlen(names[i]);
        many[i].value = big;
        many[i].value_len = sizeof big;
    }
    CHECK_RC(cairn_kv_put_many(db, "big", many, 64), CAIRN_ERR_TXN_TOO_LARGE);
    CHECK_RC(cairn_kv_exists(db, "big", "0", 1, &exists), CAIRN_OK);
    CHECK(!exists);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Backups */

/* A stream in memory: the writer appends, the reader reads from `pos`; either fails with
 * `fail_rc` once `fail_at` bytes have passed (0: never). */
struct mem_stream {
    uint8_t *data;
    size_t len, cap, pos;
    size_t fail_at;
    int32_t fail_rc;
    int calls;
    cairn_db_t *reenter; /* a handle the writer calls into (it must get CAIRN_ERR_BUSY) */
    int reenter_rc;
};

static int32_t mem_write(void *ctx, const uint8_t *d, size_t n) {
    struct mem_stream *m = ctx;
    m->calls++;
    if (m->reenter) {
        uint64_t count = 0;
        m->reenter_rc = cairn_doc_count(m->reenter, "s", &count);
    }
    if (m->fail_rc && m->len + n > m->fail_at) return m->fail_rc;
    if (m->len + n > m->cap) {
        size_t cap = (m->len + n) * 2;
        uint8_t *p = realloc(m->data, cap);
        if (!p) return -100;
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, d, n);
    m->len += n;
    return 0;
}

static int32_t mem_read(void *ctx, uint8_t *buf, size_t cap, size_t *len) {
    struct mem_stream *m = ctx;
    m->calls++;
    if (m->fail_rc && m->pos >= m->fail_at) return m->fail_rc;
    size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    *len = n;
    return 0;
}

/* A reader that claims more bytes than it was given room for. */
static int32_t liar_read(void *ctx, uint8_t *buf, size_t cap, size_t *len) {
    (void)ctx;
    (void)buf;
    *len = cap + 1;
    return 0;
}

static cairn_stream_t writer(struct mem_stream *m) {
    cairn_stream_t s;
    memset(&s, 0, sizeof s);
    s.write = mem_write;
    s.ctx = m;
    return s;
}

static cairn_stream_t reader(struct mem_stream *m) {
    cairn_stream_t s;
    memset(&s, 0, sizeof s);
    m->pos = 0;
    s.read = mem_read;
    s.ctx = m;
    return s;
}

static cairn_stream_t partition(const cairn_config_t *dev, uint32_t first, uint32_t count) {
    cairn_stream_t s;
    memset(&s, 0, sizeof s);
    s.device = dev;
    s.first_block = first;
    s.block_count = count;
    return s;
}

/* Every document of collection "s" and every key of namespace "k", as text, for comparing
 * two databases. */
static int32_t dump_doc(void *ctx, const char *json, size_t len) {
    char *out = ctx;
    strncat(out, json, len);
    strcat(out, "\n");
    return 0;
}

static int32_t dump_key(void *ctx, const uint8_t *key, size_t len) {
    char *out = ctx;
    strncat(out, (const char *)key, len);
    strcat(out, ",");
    return 0;
}

static void dump(cairn_db_t *db, char *out) {
    out[0] = '\0';
    CHECK_RC(cairn_find(db, "s", NULL, NULL, dump_doc, out), CAIRN_OK);
    CHECK_RC(cairn_kv_keys(db, "k", NULL, 0, dump_key, out), CAIRN_OK);
}

static void fill_source(cairn_db_t *db, int from, int to) {
    char doc[96], key[16];
    for (int i = from; i < to; i++) {
        snprintf(doc, sizeof doc, "{\"i\":%d,\"pad\":\"%040d\"}", i, i);
        CHECK_RC(cairn_doc_insert(db, "s", doc, NULL), CAIRN_OK);
        int kl = snprintf(key, sizeof key, "key%03d", i);
        CHECK_RC(cairn_kv_put(db, "k", key, (size_t)kl, doc, strlen(doc)), CAIRN_OK);
    }
}

/* The backup ring on a RAM device: full, incrementals, the switch to the other area, a restore
 * of the newest chain into a fresh database, and bad arguments. */
static void test_backup_ring(void) {
    cairn_ram_device_t *dev, *dev2, *pdev;
    cairn_config_t cfg = ram_config(&dev, BLOCKS), cfg2 = ram_config(&dev2, BLOCKS);
    cairn_config_t pcfg = ram_config(&pdev, 24);
    cairn_key_t key = {KEY_A, NULL, 0, 0};
    cairn_db_t *db = NULL, *db2 = NULL;
    cairn_ring_t ring = {&pcfg, 0, 24, 3};
    cairn_ring_status_t st;
    cairn_backup_info_t info;
    cairn_restore_report_t rep;
    static char want[16384], got[16384];
    uint32_t area = 9, slot = 9;
    CHECK_RC(cairn_format(&db, &cfg, &key), CAIRN_OK);
    CHECK_RC(cairn_ring_status(db, NULL, &ring, &st), CAIRN_OK);
    CHECK(st.chain_len[0] == 0 && st.chain_len[1] == 0 && st.newest == -1 && st.slot_blocks == 4);
    CHECK_RC(cairn_format(&db2, &cfg2, &key), CAIRN_OK);
    CHECK_RC(cairn_ring_restore(db2, NULL, &ring, &rep), CAIRN_ERR_NOT_FOUND);
    /* full, incr, incr in area 0; then a full in area 1. */
    const uint32_t want_area[4] = {0, 0, 0, 1}, want_slot[4] = {0, 1, 2, 0};
    for (int i = 0; i < 4; i++) {
        fill_source(db, i * 5, i * 5 + 5);
        CHECK_RC(cairn_ring_backup(db, NULL, &ring, &info, &area, &slot), CAIRN_OK);
        CHECK(area == want_area[i] && slot == want_slot[i]);
        CHECK(info.kind == (slot == 0 ? CAIRN_BACKUP_FULL : CAIRN_BACKUP_INCREMENTAL));
    }
    CHECK_RC(cairn_ring_status(db, NULL, &ring, &st), CAIRN_OK);
    CHECK(st.chain_len[0] == 3 && st.chain_len[1] == 1 && st.newest == 1);
    dump(db, want);
    CHECK_RC(cairn_ring_restore(db2, NULL, &ring, &rep), CAIRN_OK);
    CHECK(rep.streams == 1);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);
    /* The restored database continues the ring's chain. */
    fill_source(db2, 20, 22);
    CHECK_RC(cairn_ring_backup(db2, NULL, &ring, NULL, &area, &slot), CAIRN_OK);
    CHECK(area == 1 && slot == 1);
    /* Bad arguments. */
    uint8_t other[32];
    memset(other, 0x11, sizeof other);
    cairn_backup_key_t wrong = {other, NULL, 0, NULL, 0};
    CHECK_RC(cairn_ring_restore(db, &wrong, &ring, &rep), CAIRN_ERR_WRONG_KEY);
    cairn_ring_t bad = ring;
    bad.slots = 1;
    CHECK_RC(cairn_ring_backup(db, NULL, &bad, NULL, NULL, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad = ring;
    bad.first_block = 20;
    CHECK_RC(cairn_ring_backup(db, NULL, &bad, NULL, NULL, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    bad.device = NULL;
    CHECK_RC(cairn_ring_backup(db, NULL, &bad, NULL, NULL, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ring_backup(db, NULL, NULL, NULL, NULL, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ring_backup(NULL, NULL, &ring, NULL, NULL, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_ring_status(db, NULL, &ring, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_close(db2), CAIRN_OK);
    cairn_ram_device_free(dev);
    cairn_ram_device_free(dev2);
    cairn_ram_device_free(pdev);
}

static void test_backup_restore(void) {
    cairn_ram_device_t *dev, *dev2;
    cairn_config_t cfg, cfg2;
    cairn_key_t key = {KEY_A, NULL, 0, 0};
    cairn_db_t *db = NULL, *db2 = NULL;
    struct mem_stream full, incr, incr2;
    cairn_backup_info_t info;
    cairn_last_backup_t last;
    cairn_restore_report_t rep;
    static char want[16384], got[16384];
    memset(&full, 0, sizeof full);
    memset(&incr, 0, sizeof incr);
    memset(&incr2, 0, sizeof incr2);

    cfg = ram_config(&dev, BLOCKS);
    cfg.now_ms = test_clock;
    clock_ms = 5000;
    CHECK_RC(cairn_format(&db, &cfg, &key), CAIRN_OK);
    CHECK_RC(cairn_last_backup(db, &last), CAIRN_ERR_NOT_FOUND);
    fill_source(db, 0, 40);

    /* No incremental before a full backup. */
    cairn_stream_t to = writer(&incr);
    CHECK_RC(cairn_backup_incremental(db, NULL, &to, &info), CAIRN_ERR_BACKUP_CHAIN);
    CHECK(incr.len == 0);

    /* Full backup under the database key, through the writer; the writer calling into the
     * database gets CAIRN_ERR_BUSY and the backup goes on. */
    to = writer(&full);
    full.reenter = db;
    memset(&info, 0, sizeof info);
    CHECK_RC(cairn_backup_full(db, NULL, &to, &info), CAIRN_OK);
    CHECK(full.reenter_rc == CAIRN_ERR_BUSY);
    full.reenter = NULL;
    CHECK(info.kind == CAIRN_BACKUP_FULL && info.key_mode == CAIRN_BACKUP_KEYED);
    CHECK(info.stream_len == full.len && full.len > 4096 && info.records > 80);
    CHECK(info.base_seq == 0 && info.end_seq > 0 && info.created == 5000);
    uint8_t zero[CAIRN_BACKUP_ID_LEN] = {0};
    CHECK(memcmp(info.parent_id, zero, sizeof zero) == 0 &&
          memcmp(info.backup_id, zero, sizeof zero) != 0);
    CHECK_RC(cairn_last_backup(db, &last), CAIRN_OK);
    CHECK(last.kind == CAIRN_BACKUP_FULL && last.end_seq == info.end_seq &&
          memcmp(last.backup_id, info.backup_id, CAIRN_BACKUP_ID_LEN) == 0);
    cairn_backup_info_t full_info = info;

    /* Changes, then an incremental carrying them (deletions included). */
    fill_source(db, 40, 50);
    CHECK_RC(cairn_doc_delete(db, "s", 1), CAIRN_OK);
    CHECK_RC(cairn_kv_delete(db, "k", "key002", 6), CAIRN_OK);
    to = writer(&incr);
    CHECK_RC(cairn_backup_incremental(db, NULL, &to, &info), CAIRN_OK);
    CHECK(info.kind == CAIRN_BACKUP_INCREMENTAL && info.base_seq == full_info.end_seq &&
          memcmp(info.parent_id, full_info.backup_id, CAIRN_BACKUP_ID_LEN) == 0 &&
          memcmp(info.db_id, full_info.db_id, CAIRN_BACKUP_ID_LEN) == 0);
    CHECK(incr.len < full.len);
    fill_source(db, 50, 52);
    to = writer(&incr2);
    CHECK_RC(cairn_backup_incremental(db, NULL, &to, NULL), CAIRN_OK);
    dump(db, want);

    /* Verify each stream from a reader callback. */
    cairn_stream_t from = reader(&full);
    memset(&info, 0, sizeof info);
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), CAIRN_OK);
    CHECK(info.kind == CAIRN_BACKUP_FULL && info.records == full_info.records &&
          memcmp(info.backup_id, full_info.backup_id, CAIRN_BACKUP_ID_LEN) == 0);
    from = reader(&incr);
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), CAIRN_OK);

    /* Restore the chain into a second RAM device (same database key): the same contents. */
    cfg2 = ram_config(&dev2, BLOCKS);
    cfg2.log = info_cb;
    CHECK_RC(cairn_format(&db2, &cfg2, &key), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db2, "s", "{\"other\":true}", NULL), CAIRN_OK);
    cairn_stream_t chain[3] = {reader(&full), reader(&incr), reader(&incr2)};
    memset(&rep, 0, sizeof rep);
    info_lines[0] = '\0';
    CHECK_RC(cairn_restore(db2, NULL, chain, 3, &rep), CAIRN_OK);
    CHECK(strcmp(info_lines, "3 cairn_restore: restored a backup chain\n") == 0);
    CHECK(rep.streams == 3 && rep.records > 0);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);
    CHECK(strstr(got, "{\"_id\":1,") == NULL && strstr(got, "key002") == NULL &&
          strstr(got, "\"i\":51") != NULL && strstr(got, "other") == NULL);
    CHECK_RC(cairn_last_backup(db2, &last), CAIRN_OK);
    CHECK(last.kind == CAIRN_BACKUP_INCREMENTAL && last.end_seq == rep.end_seq);
    /* ... and it survives a reopen. */
    CHECK_RC(cairn_close(db2), CAIRN_OK);
    CHECK_RC(cairn_open(&db2, &cfg2, &key), CAIRN_OK);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);

    /* A reordered or broken chain is refused and changes nothing. */
    cairn_stream_t reordered[2] = {reader(&incr), reader(&full)};
    info_lines[0] = '\0';
    CHECK_RC(cairn_restore(db2, NULL, reordered, 2, &rep), CAIRN_ERR_BACKUP_CHAIN);
    CHECK(strcmp(info_lines, "1 cairn_restore: broken backup chain (-25)\n") == 0);
    cairn_stream_t skipping[2] = {reader(&full), reader(&incr2)};
    CHECK_RC(cairn_restore(db2, NULL, skipping, 2, &rep), CAIRN_ERR_BACKUP_CHAIN);
    struct mem_stream full_again = full; /* the same bytes, a position of its own */
    cairn_stream_t twice[2] = {reader(&full), reader(&full_again)};
    CHECK_RC(cairn_restore(db2, NULL, twice, 2, &rep), CAIRN_ERR_BACKUP_CHAIN);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);

    /* A tampered stream: verify and restore refuse it; the database stays as it was. */
    full.data[full.len / 2] ^= 0x01;
    from = reader(&full);
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), CAIRN_ERR_BAD_BACKUP);
    cairn_stream_t tampered[1] = {reader(&full)};
    CHECK_RC(cairn_restore(db2, NULL, tampered, 1, &rep), CAIRN_ERR_BAD_BACKUP);
    full.data[full.len / 2] ^= 0x01;
    size_t whole = full.len;
    full.len = whole - 10; /* truncated */
    from = reader(&full);
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), CAIRN_ERR_BAD_BACKUP);
    full.len = whole;
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);
    /* A database under another key cannot read streams sealed with this one. */
    CHECK_RC(cairn_close(db2), CAIRN_OK);
    cairn_key_t key_b = {KEY_B, NULL, 0, 0};
    CHECK_RC(cairn_format(&db2, &cfg2, &key_b), CAIRN_OK);
    cairn_stream_t one[1] = {reader(&full)};
    CHECK_RC(cairn_restore(db2, NULL, one, 1, &rep), CAIRN_ERR_WRONG_KEY);
    CHECK_RC(cairn_close(db2), CAIRN_OK);

    /* A separate raw backup key: the right one restores into a plain database, another key
     * is CAIRN_ERR_WRONG_KEY. */
    struct mem_stream raw;
    memset(&raw, 0, sizeof raw);
    cairn_backup_key_t bk;
    memset(&bk, 0, sizeof bk);
    bk.raw = KEY_B;
    to = writer(&raw);
    CHECK_RC(cairn_backup_full(db, &bk, &to, &info), CAIRN_OK);
    CHECK(info.key_mode == CAIRN_BACKUP_KEYED);
    cairn_backup_key_t wrong;
    memset(&wrong, 0, sizeof wrong);
    wrong.raw = KEY_A;
    from = reader(&raw);
    CHECK_RC(cairn_backup_verify(db, &wrong, &from, &info), CAIRN_ERR_WRONG_KEY);
    from = reader(&raw);
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), CAIRN_ERR_WRONG_KEY);
    CHECK_RC(cairn_format(&db2, &cfg2, NULL), CAIRN_OK);
    one[0] = reader(&raw);
    CHECK_RC(cairn_restore(db2, &wrong, one, 1, &rep), CAIRN_ERR_WRONG_KEY);
    one[0] = reader(&raw);
    CHECK_RC(cairn_restore(db2, &bk, one, 1, &rep), CAIRN_OK);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);
    free(raw.data);

    /* A passphrase stream: salt and iterations given; the reader's iteration ceiling. */
    memset(&raw, 0, sizeof raw);
    static const uint8_t salt[16] = {1, 2, 3};
    memset(&bk, 0, sizeof bk);
    bk.passphrase = (const uint8_t *)"correct horse";
    bk.passphrase_len = 13;
    bk.salt = salt;
    bk.iterations = 1000;
    to = writer(&raw);
    CHECK_RC(cairn_backup_full(db, &bk, &to, &info), CAIRN_OK);
    CHECK(info.key_mode == CAIRN_BACKUP_PASSPHRASE);
    cairn_backup_key_t pk;
    memset(&pk, 0, sizeof pk);
    pk.passphrase = (const uint8_t *)"correct horse";
    pk.passphrase_len = 13;
    from = reader(&raw);
    CHECK_RC(cairn_backup_verify(db, &pk, &from, &info), CAIRN_OK); /* default ceiling */
    pk.iterations = 500;
    from = reader(&raw);
    CHECK_RC(cairn_backup_verify(db, &pk, &from, &info), CAIRN_ERR_BAD_BACKUP);
    pk.iterations = 1000;
    pk.passphrase = (const uint8_t *)"wrong horse!!";
    from = reader(&raw);
    CHECK_RC(cairn_backup_verify(db, &pk, &from, &info), CAIRN_ERR_WRONG_KEY);
    free(raw.data);
    memset(&raw, 0, sizeof raw);
    bk.salt = NULL; /* from the config's random source */
    to = writer(&raw);
    CHECK_RC(cairn_backup_full(db, &bk, &to, &info), CAIRN_OK);
    free(raw.data);
    memset(&raw, 0, sizeof raw);

    /* Key errors. */
    memset(&bk, 0, sizeof bk);
    bk.raw = KEY_A;
    bk.passphrase = (const uint8_t *)"x";
    bk.passphrase_len = 1;
    to = writer(&raw);
    CHECK_RC(cairn_backup_full(db, &bk, &to, &info), CAIRN_ERR_INVALID_ARGUMENT);
    bk.raw = NULL;
    bk.passphrase_len = 0;
    CHECK_RC(cairn_backup_full(db, &bk, &to, &info), CAIRN_ERR_INVALID_ARGUMENT);

    /* A writer failing mid-backup: its negative code comes back, a positive one is I/O; the
     * last backup stays what it was. */
    CHECK_RC(cairn_last_backup(db, &last), CAIRN_OK);
    uint64_t last_seq = last.end_seq;
    memset(&raw, 0, sizeof raw);
    raw.fail_at = 3000;
    raw.fail_rc = -77;
    to = writer(&raw);
    CHECK_RC(cairn_backup_full(db, NULL, &to, &info), -77);
    CHECK(raw.len > 0 && raw.len <= 3000);
    free(raw.data);
    memset(&raw, 0, sizeof raw);
    raw.fail_at = 100;
    raw.fail_rc = 5;
    to = writer(&raw);
    CHECK_RC(cairn_backup_incremental(db, NULL, &to, &info), CAIRN_ERR_IO);
    free(raw.data);
    CHECK_RC(cairn_last_backup(db, &last), CAIRN_OK);
    CHECK(last.end_seq == last_seq);
    /* A reader failing, or claiming more than it was given. */
    full.fail_at = 1000;
    full.fail_rc = -78;
    from = reader(&full);
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), -78);
    one[0] = reader(&full);
    dump(db, want);
    CHECK_RC(cairn_restore(db, NULL, one, 1, &rep), -78); /* restore is atomic: */
    dump(db, got);
    CHECK(strcmp(want, got) == 0); /* nothing changed */
    full.fail_rc = 0;
    from.read = liar_read;
    CHECK_RC(cairn_backup_verify(db, NULL, &from, &info), CAIRN_ERR_IO);

    /* Stream argument errors. */
    CHECK_RC(cairn_backup_full(db, NULL, NULL, &info), CAIRN_ERR_NULL);
    cairn_stream_t empty;
    memset(&empty, 0, sizeof empty);
    CHECK_RC(cairn_backup_full(db, NULL, &empty, &info), CAIRN_ERR_NULL);
    CHECK_RC(cairn_backup_verify(db, NULL, &empty, &info), CAIRN_ERR_NULL);
    cairn_stream_t both = partition(&cfg2, 0, 4);
    both.write = mem_write;
    CHECK_RC(cairn_backup_full(db, NULL, &both, &info), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_backup_full(NULL, NULL, &to, &info), CAIRN_ERR_NULL);
    CHECK_RC(cairn_backup_verify(NULL, NULL, &from, &info), CAIRN_ERR_NULL);
    CHECK_RC(cairn_restore(db2, NULL, NULL, 1, &rep), CAIRN_ERR_NULL);
    CHECK_RC(cairn_restore(db2, NULL, chain, 0, &rep), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_restore(db2, NULL, chain, 17, &rep), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_restore(NULL, NULL, chain, 1, &rep), CAIRN_ERR_NULL);
    CHECK_RC(cairn_last_backup(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_last_backup(NULL, &last), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db2), CAIRN_OK);

    /* Backups to raw partitions of a second device, restored from them. */
    cairn_ram_device_t *pdev;
    cairn_config_t pcfg;
    memset(&pcfg, 0, sizeof pcfg);
    CHECK_RC(cairn_ram_device_new(&pdev, 16, 16, BLOCK, 12), CAIRN_OK);
    CHECK_RC(cairn_ram_device_config(pdev, &pcfg), CAIRN_OK);
    cairn_stream_t small = partition(&pcfg, 0, 1);
    CHECK_RC(cairn_backup_full(db, NULL, &small, &info), CAIRN_ERR_NO_SPACE);
    cairn_stream_t off_device = partition(&pcfg, 10, 4);
    CHECK_RC(cairn_backup_full(db, NULL, &off_device, &info), CAIRN_ERR_INVALID_ARGUMENT);
    cairn_config_t bad_dev = pcfg;
    bad_dev.erase = NULL;
    cairn_stream_t no_erase = partition(&bad_dev, 0, 4);
    CHECK_RC(cairn_backup_full(db, NULL, &no_erase, &info), CAIRN_ERR_INVALID_ARGUMENT);
    cairn_stream_t p_full = partition(&pcfg, 0, 8);
    cairn_stream_t p_incr = partition(&pcfg, 8, 4);
    CHECK_RC(cairn_backup_full(db, NULL, &p_full, &info), CAIRN_OK);
    CHECK(info.stream_len > BLOCK);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"late\":1}", NULL), CAIRN_OK);
    CHECK_RC(cairn_backup_incremental(db, NULL, &p_incr, &info), CAIRN_OK);
    CHECK_RC(cairn_backup_verify(db, NULL, &p_full, &info), CAIRN_OK);
    CHECK(info.kind == CAIRN_BACKUP_FULL);
    CHECK_RC(cairn_backup_verify(db, NULL, &p_incr, &info), CAIRN_OK);
    CHECK(info.kind == CAIRN_BACKUP_INCREMENTAL);
    dump(db, want);
    CHECK_RC(cairn_format(&db2, &cfg2, &key), CAIRN_OK);
    cairn_stream_t pchain[2] = {p_full, p_incr};
    CHECK_RC(cairn_restore(db2, NULL, pchain, 2, &rep), CAIRN_OK);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0 && strstr(got, "late") != NULL);
    /* A mixed chain: a partition and a callback. */
    struct mem_stream m_incr;
    memset(&m_incr, 0, sizeof m_incr);
    CHECK_RC(cairn_doc_insert(db, "s", "{\"later\":1}", NULL), CAIRN_OK);
    to = writer(&m_incr);
    CHECK_RC(cairn_backup_incremental(db, NULL, &to, &info), CAIRN_OK);
    dump(db, want);
    cairn_stream_t mixed[3] = {p_full, p_incr, reader(&m_incr)};
    CHECK_RC(cairn_restore(db2, NULL, mixed, 3, &rep), CAIRN_OK);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);
    /* A damaged partition. */
    size_t plen = 0;
    uint8_t *pdata = cairn_ram_device_data(pdev, &plen);
    pdata[BLOCK + 100] ^= 0x10;
    CHECK_RC(cairn_backup_verify(db, NULL, &p_full, &info), CAIRN_ERR_BAD_BACKUP);
    CHECK_RC(cairn_restore(db2, NULL, pchain, 2, &rep), CAIRN_ERR_BAD_BACKUP);
    dump(db2, got);
    CHECK(strcmp(want, got) == 0);
    free(m_incr.data);

    /* Statistics see the last backup. */
    cairn_statistics_t st;
    CHECK_RC(cairn_statistics(db, &st), CAIRN_OK);
    CHECK(st.has_last_backup && st.last_backup_kind == CAIRN_BACKUP_INCREMENTAL &&
          st.last_backup_time == 5000 && st.last_backup_seq > full_info.end_seq);

    CHECK_RC(cairn_close(db2), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    free(full.data);
    free(incr.data);
    free(incr2.data);
    cairn_ram_device_free(pdev);
    cairn_ram_device_free(dev2);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Integrity check, repair, compaction steps, statistics */

static void test_check_repair_stats(void) {
    cairn_ram_device_t *dev;
    cairn_config_t cfg = ram_config(&dev, 32);
    cairn_key_t key = {KEY_A, NULL, 0, 0};
    cairn_db_t *db = NULL;
    cairn_check_report_t cr;
    cairn_repair_report_t rr;
    cairn_statistics_t st;
    char doc[160];
    uint32_t pct = 999;
    bool more = true;
    uint64_t n = 0;

    cfg.now_ms = test_clock;
    clock_ms = 100;
    CHECK_RC(cairn_format(&db, &cfg, &key), CAIRN_OK);
    const char *by_i[] = {"i"};
    CHECK_RC(cairn_index_create(db, "c", "by_i", by_i, 1, false), CAIRN_OK);
    for (int i = 0; i < 60; i++) {
        snprintf(doc, sizeof doc, "{\"i\":%d,\"pad\":\"%080d\"}", i, i);
        CHECK_RC(cairn_doc_insert(db, "c", doc, NULL), CAIRN_OK);
        clock_ms += 2; /* each call takes 2 ms of database time */
    }
    CHECK_RC(cairn_doc_get(db, "c", 999, doc, sizeof doc, NULL), CAIRN_ERR_NOT_FOUND);
    CHECK_RC(cairn_doc_insert(db, "c", "{\"i\":", NULL), CAIRN_ERR_JSON); /* not counted */
    CHECK_RC(cairn_doc_replace(db, "c", 999, "{}"), CAIRN_ERR_NOT_FOUND);

    /* Statistics: a plain struct, and the older cairn_stats() agrees with it. */
    memset(&st, 0xAB, sizeof st);
    CHECK_RC(cairn_statistics(db, &st), CAIRN_OK);
    CHECK(st.inserts.count == 60 && st.reads.count == 1 && st.updates.count == 1);
    CHECK(st.failed == 1); /* the replace of a missing document */
    CHECK(st.commit_ops.count >= 60);
    CHECK(st.block_size == BLOCK && st.block_count == 32 &&
          st.used_blocks + st.free_blocks == 32 && st.used_blocks > 0);
    CHECK(!st.has_wear && st.wear_max == 0 && st.wear_total == 0);
    CHECK(!st.has_last_backup && st.last_backup_seq == 0);
    CHECK(st.expired_removed == 0 && st.corruption_events == 0 && st.garbage_percent <= 100);
    cairn_stats_t old;
    CHECK_RC(cairn_stats(db, &old), CAIRN_OK);
    CHECK(old.commits == st.commits && old.segments == st.segments &&
          old.free_blocks == st.free_blocks && old.block_count == st.block_count);
    CHECK_RC(cairn_statistics(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_statistics(NULL, &st), CAIRN_ERR_NULL);

    /* Compaction one step at a time, and the garbage estimate. */
    CHECK_RC(cairn_flush(db), CAIRN_OK);
    for (uint64_t id = 1; id <= 10; id++) CHECK_RC(cairn_doc_delete(db, "c", id), CAIRN_OK);
    CHECK_RC(cairn_flush(db), CAIRN_OK);
    CHECK_RC(cairn_garbage_percent(db, &pct), CAIRN_OK);
    CHECK(pct > 0 && pct <= 100);
    int steps = 0;
    do {
        CHECK_RC(cairn_compact_step(db, &more), CAIRN_OK);
        steps++;
    } while (more && steps < 50);
    CHECK(!more && steps >= 1);
    CHECK_RC(cairn_garbage_percent(db, &pct), CAIRN_OK);
    CHECK(pct == 0);
    CHECK_RC(cairn_compact_step(db, NULL), CAIRN_OK);
    CHECK_RC(cairn_garbage_percent(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_garbage_percent(NULL, &pct), CAIRN_ERR_NULL);
    CHECK_RC(cairn_compact_step(NULL, &more), CAIRN_ERR_NULL);

    /* A clean database checks clean; repair of it changes nothing. */
    memset(&cr, 0xCD, sizeof cr);
    CHECK_RC(cairn_check(db, &cr), CAIRN_OK);
    CHECK(cr.clean && cr.bad_pages == 0 && cr.inconsistencies == 0 && cr.missing_files == 0);
    CHECK(cr.collections == 1 && cr.documents == 50 && cr.indexes == 1 &&
          cr.index_entries == 50 && cr.segments >= 1 && cr.pages > 0);
    CHECK(cr.unreadable_documents == 0 && cr.count_mismatches == 0 &&
          cr.missing_index_entries == 0 && cr.stray_index_entries == 0);
    memset(&rr, 0xCD, sizeof rr);
    CHECK_RC(cairn_repair(db, &rr), CAIRN_OK);
    CHECK(rr.pages_quarantined == 0 && rr.frames_dropped == 0 && rr.documents_removed == 0 &&
          rr.counts_fixed == 0 && rr.indexes_rebuilt == 1 && rr.indexes_dropped == 0);
    CHECK_RC(cairn_repair(db, NULL), CAIRN_OK);
    CHECK_RC(cairn_check(db, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_check(NULL, &cr), CAIRN_ERR_NULL);
    CHECK_RC(cairn_repair(NULL, &rr), CAIRN_ERR_NULL);
    CHECK_RC(cairn_close(db), CAIRN_OK);

    /* open_for_repair opens a sound database like cairn_open(). */
    CHECK_RC(cairn_open_for_repair(&db, &cfg, &key), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "c", &n), CAIRN_OK);
    CHECK(n == 50);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_open_for_repair(NULL, &cfg, &key), CAIRN_ERR_NULL);
    db = (cairn_db_t *)1;
    CHECK_RC(cairn_open_for_repair(&db, &cfg, NULL), CAIRN_ERR_KEY_MISMATCH);
    CHECK(db == NULL);

    /* Damage 16 bytes in one block at a time (inside a segment page when the block holds
     * one): where the database still opens, a check that finds the damage reports it (and
     * logs a corruption event), and a repair leaves a database that checks clean. */
    size_t len = 0;
    uint8_t *data = cairn_ram_device_data(dev, &len);
    uint8_t *good = malloc(len);
    CHECK(good != NULL);
    memcpy(good, data, len);
    int found = 0, repaired = 0;

    for (uint32_t b = 0; b < 32; b++) {
        memcpy(data, good, len);
        int damaged = 0;
        for (uint32_t off = 300; off < 316; off++) {
            if (data[b * BLOCK + off] != 0xFF) damaged = 1;
            data[b * BLOCK + off] ^= 0x5A;
        }
        if (!damaged) continue; /* an erased block: nothing to damage */
        int rc = cairn_open_for_repair(&db, &cfg, &key);
        if (rc != CAIRN_OK) {
            CHECK(is_error_code(rc));
            continue;
        }
        rc = cairn_check(db, &cr);
        CHECK(rc == CAIRN_OK || is_error_code(rc));
        if (rc == CAIRN_OK && !cr.clean) {
            found++;
            CHECK_RC(cairn_statistics(db, &st), CAIRN_OK);
            CHECK(st.corruption_events == 1);
            struct events_seen s;
            memset(&s, 0, sizeof s);
            CHECK_RC(cairn_events(db, CAIRN_LOG_WARN, 1, event_cb, &s), CAIRN_OK);
            CHECK(s.calls == 1 && s.codes[0] == CAIRN_EVENT_CORRUPTION);
            rc = cairn_repair(db, &rr);
            CHECK(rc == CAIRN_OK || is_error_code(rc));
            if (rc == CAIRN_OK) {
                CHECK(rr.pages_quarantined + rr.documents_removed + rr.counts_fixed > 0);
                CHECK_RC(cairn_check(db, &cr), CAIRN_OK);
                CHECK(cr.clean);
                if (cr.clean) repaired++;
            }
        }
        rc = cairn_close(db);
        CHECK(rc == CAIRN_OK || is_error_code(rc));
    }
    CHECK(found > 0 && repaired > 0);
    memcpy(data, good, len);
    free(good);
    cairn_ram_device_free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Image-file device, allocator hooks */

static const char *image_dir = ".";

static void *never_alloc(void *ctx, size_t size) {
    (void)ctx;
    (void)size;
    return NULL;
}

static void never_free(void *ctx, void *p) {
    (void)ctx;
    (void)p;
}

static void test_file_device(void) {
    char path[512];
    cairn_geometry_t g = {16, 16, 4096, 32};
    cairn_file_device_t *dev = (cairn_file_device_t *)1;
    cairn_config_t cfg;
    cairn_db_t *db = NULL;
    uint64_t id = 0, n = 0;
    char buf[128];
    snprintf(path, sizeof path, "%s/test_file_device.img", image_dir);
    remove(path);

    CHECK_RC(cairn_file_device_open(NULL, &g, &dev), CAIRN_ERR_NULL);
    CHECK(dev == NULL);
    CHECK_RC(cairn_file_device_open(path, NULL, &dev), CAIRN_ERR_NULL);
    CHECK_RC(cairn_file_device_open(path, &g, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_file_device_open("bad\xff", &g, &dev), CAIRN_ERR_UTF8);
    cairn_geometry_t bad = {16, 24, 4096, 32};
    CHECK_RC(cairn_file_device_open(path, &bad, &dev), CAIRN_ERR_INVALID_ARGUMENT);
    bad.prog_size = 16;
    bad.block_count = 0;
    CHECK_RC(cairn_file_device_open(path, &bad, &dev), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_file_device_open("/nonexistent-dir/x.img", &g, &dev), CAIRN_ERR_IO);
    CHECK(dev == NULL);

    /* Created erased, formatted, filled, closed. */
    CHECK_RC(cairn_file_device_open(path, &g, &dev), CAIRN_OK);
    memset(&cfg, 0, sizeof cfg);
    CHECK_RC(cairn_file_device_config(NULL, &cfg), CAIRN_ERR_NULL);
    CHECK_RC(cairn_file_device_config(dev, NULL), CAIRN_ERR_NULL);
    CHECK_RC(cairn_file_device_config(dev, &cfg), CAIRN_OK);
    CHECK(cfg.block_count == 32 && cfg.block_size == 4096 && cfg.sync != NULL);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_ERR_NOT_FORMATTED);
    CHECK_RC(cairn_format(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_insert(db, "f", "{\"on\":\"disk\"}", &id), CAIRN_OK);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_file_device_close(dev), CAIRN_OK);
    CHECK_RC(cairn_file_device_close(NULL), CAIRN_OK);

    /* The image has the geometry's size; reopened, it holds the database. */
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL);
    if (fp) {
        fseek(fp, 0, SEEK_END);
        CHECK(ftell(fp) == 32L * 4096L);
        fclose(fp);
    }
    CHECK_RC(cairn_file_device_open(path, &g, &dev), CAIRN_OK);
    CHECK_RC(cairn_file_device_config(dev, &cfg), CAIRN_OK);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_get(db, "f", id, buf, sizeof buf, NULL), CAIRN_OK);
    CHECK(strstr(buf, "\"on\":\"disk\"") != NULL);
    CHECK_RC(cairn_doc_count(db, "f", &n), CAIRN_OK);
    CHECK(n == 1);
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK_RC(cairn_file_device_close(dev), CAIRN_OK);

    /* An existing file of another size is refused. */
    cairn_geometry_t other = {16, 16, 4096, 64};
    CHECK_RC(cairn_file_device_open(path, &other, &dev), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK(dev == NULL);
    remove(path);
}

static void test_set_allocator(void) {
    /* Hosted builds allocate with the system allocator; the hook is for bare metal. */
    CHECK_RC(cairn_set_allocator(never_alloc, never_free, NULL), CAIRN_ERR_UNSUPPORTED);
    CHECK_RC(cairn_set_allocator(never_alloc, NULL, NULL), CAIRN_ERR_INVALID_ARGUMENT);
    CHECK_RC(cairn_set_allocator(NULL, never_free, NULL), CAIRN_ERR_INVALID_ARGUMENT);
}

/* ------------------------------------------------------------------------------------------ */

struct test {
    const char *name;
    void (*run)(void);
};

int main(int argc, char **argv) {
    static const struct test tests[] = {
        {"version_and_strerror", test_version_and_strerror},
        {"ram_device", test_ram_device},
        {"open_format_close", test_open_format_close},
        {"keys", test_keys},
        {"documents", test_documents},
        {"find", test_find},
        {"kv", test_kv},
        {"indexes", test_indexes},
        {"maintenance", test_maintenance},
        {"full_flash", test_full_flash},
        {"corrupt_image", test_corrupt_image},
        {"io_errors", test_io_errors},
        {"config_versions", test_config_versions},
        {"info_log", test_info_log},
        {"lock_timeout_from_another_thread", test_lock_timeout_from_another_thread},
        {"shared_handle_threads", test_shared_handle_threads},
        {"txn", test_txn},
        {"txn_without_lock", test_txn_without_lock},
        {"collections", test_collections},
        {"bulk_and_distinct", test_bulk_and_distinct},
        {"schemas", test_schemas},
        {"index_list_and_explain", test_index_list_and_explain},
        {"doc_handles", test_doc_handles},
        {"ttl_and_time", test_ttl_and_time},
        {"txn_ttl", test_txn_ttl},
        {"tags", test_tags},
        {"capped_and_events", test_capped_and_events},
        {"batches", test_batches},
        {"backup_restore", test_backup_restore},
        {"backup_ring", test_backup_ring},
        {"check_repair_stats", test_check_repair_stats},
        {"file_device", test_file_device},
        {"set_allocator", test_set_allocator},
    };
    int passed = 0, failed = 0;
    if (argc > 1) image_dir = argv[1];
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        test_failed = 0;
        tests[i].run();
        printf("%s %s\n", test_failed ? "FAIL" : "ok  ", tests[i].name);
        if (test_failed)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
