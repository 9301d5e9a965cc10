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
    CHECK(CAIRN_CONFIG_VERSION == 2);

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
                 "1 cairn_doc_get: not found (-8)\n"
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

    /* An error of the database inside a transaction aborts all of it. */
    const char *by_k[] = {"k"};
    CHECK_RC(cairn_index_create(db, "a", "k_unique", by_k, 1, true), CAIRN_OK);
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":100}", NULL), CAIRN_OK);
    CHECK_RC(cairn_txn_kv_put(txn, "ns", "k2", 2, "v", 1), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":100}", NULL), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":101}", NULL), CAIRN_ERR_TXN_ABORTED);
    CHECK_RC(cairn_txn_doc_get(txn, "a", 1, buf, sizeof buf, &len), CAIRN_ERR_TXN_ABORTED);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_ERR_BUSY); /* still open until ended */
    CHECK(l.depth == 1);
    CHECK_RC(cairn_txn_commit(txn), CAIRN_ERR_TXN_ABORTED);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 2);
    CHECK_RC(cairn_kv_exists(db, "ns", "k2", 2, &exists), CAIRN_OK);
    CHECK(!exists);
    /* ... and rolling an aborted transaction back is fine too. */
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_replace(txn, "a", 2, "{\"k\":10}"), CAIRN_ERR_UNIQUE);
    CHECK_RC(cairn_txn_rollback(txn), CAIRN_OK);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_doc_get(db, "a", 2, buf, sizeof buf, &len), CAIRN_OK);
    CHECK(strstr(buf, "\"k\":7") != NULL);

    /* Closing with a transaction open discards it and releases the lock. */
    CHECK_RC(cairn_txn_begin(db, &txn), CAIRN_OK);
    CHECK_RC(cairn_txn_doc_insert(txn, "a", "{\"k\":55}", NULL), CAIRN_OK);
    info_lines[0] = '\0';
    CHECK_RC(cairn_close(db), CAIRN_OK);
    CHECK(l.depth == 0);
    CHECK_RC(cairn_open(&db, &cfg, NULL), CAIRN_OK);
    CHECK_RC(cairn_doc_count(db, "a", &n), CAIRN_OK);
    CHECK(n == 2);
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
