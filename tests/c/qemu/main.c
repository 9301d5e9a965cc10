/*
 * The C API on an emulated Cortex-M3 (QEMU mps2-an385): the Cortex-M libcairndb.a, newlib's
 * malloc behind the library's global allocator, a RAM device. Formats with a key, writes
 * documents and key-value pairs, queries through an index, reopens, and checks everything;
 * exits 0 on success. Run by `cargo xtask test` (step thumb-c).
 */
#include <malloc.h>
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

    CHECK(cairn_ram_device_new(&flash, 16, 16, 4096, 32));
    CHECK(cairn_ram_device_config(flash, &cfg));
    CHECK(cairn_format(&db, &cfg, &k));
    const char *fields[] = {"sensor"};
    CHECK(cairn_index_create(db, "r", "by_sensor", fields, 1, false));
    for (int i = 0; i < 30; i++) {
        snprintf(doc, sizeof doc, "{\"sensor\":\"s%d\",\"seq\":%d,\"temp\":%d.5}", i % 3, i, 20 + i % 7);
        CHECK(cairn_doc_insert(db, "r", doc, NULL));
    }
    CHECK(cairn_kv_put(db, "meta", "n", 1, "30", 2));
    int found = 0;
    CHECK(cairn_find(db, "r", "{\"sensor\":\"s1\"}", "{\"sort\":{\"temp\":-1}}", count_cb, &found));
    CHECK(cairn_close(db));
    db = NULL;
    CHECK(cairn_open(&db, &cfg, &k));
    CHECK(cairn_doc_count(db, "r", &n));
    char v[4] = {0};
    size_t len = 0;
    CHECK(cairn_kv_get(db, "meta", "n", 1, v, 3, &len));
    CHECK(cairn_doc_get(db, "r", 1, doc, sizeof doc, NULL));
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
    if (found != 10 || n != 30 || strcmp(v, "30") != 0) failures++;
    qemu_puts(failures == 0 ? "qemu-c: ok\n" : "qemu-c: FAILED\n");
    return failures == 0 ? 0 : 1;
}
