/*
 * Tests of the C API (include/cairndb.h): every function, its results and its error paths.
 * Plain C with a tiny harness; CTest runs this binary under valgrind (tests/c/CMakeLists.txt).
 * The last line is "N passed, M failed"; the exit status is nonzero when a check failed.
 */
#include "cairndb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct test {
    const char *name;
    void (*run)(void);
};

int main(void) {
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
    };
    int passed = 0, failed = 0;
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
