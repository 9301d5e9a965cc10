/*
 * cairndb hello: open the database on the storage partition, insert three documents, query
 * them and print what was found. The cairndb Zephyr module does the rest (flash, lock, clock,
 * heap, log).
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>

#include "cairn_zephyr.h"

static const char *const readings[] = {
    "{\"room\":\"kitchen\",\"temp\":21.5}",
    "{\"room\":\"hall\",\"temp\":18.0}",
    "{\"room\":\"office\",\"temp\":23.25}",
};

static int32_t print_doc(void *ctx, const char *json, size_t len) {
    ARG_UNUSED(ctx);
    ARG_UNUSED(len);
    printk("found: %s\n", json);
    return 0;
}

static int failed(const char *what, int32_t rc) {
    printk("%s failed: %s (%d)\n", what, cairn_strerror(rc), (int)rc);
    return 0;
}

int main(void) {
    printk("cairndb %s hello on %s\n", cairn_version_string(), CONFIG_BOARD);
    cairn_db_t *db = NULL;
    int32_t rc = cairn_zephyr_open(&db);
    if (rc != CAIRN_OK) return failed("cairn_zephyr_open", rc);
    printk("database open\n");

    /* Start from an empty collection: on native_sim the flash file keeps the last run. */
    uint64_t removed = 0;
    rc = cairn_delete_many(db, "readings", "{}", &removed);
    if (rc != CAIRN_OK && rc != CAIRN_ERR_NOT_FOUND) return failed("cairn_delete_many", rc);

    for (size_t i = 0; i < ARRAY_SIZE(readings); i++) {
        uint64_t id = 0;
        rc = cairn_doc_insert(db, "readings", readings[i], &id);
        if (rc != CAIRN_OK) return failed("cairn_doc_insert", rc);
    }
    printk("inserted %u documents\n", (unsigned)ARRAY_SIZE(readings));

    /* Rooms warmer than 20 degrees, warmest first. */
    rc = cairn_find(db, "readings", "{\"temp\":{\"$gt\":20}}",
                    "{\"sort\":{\"temp\":-1},\"limit\":10}", print_doc, NULL);
    if (rc != CAIRN_OK) return failed("cairn_find", rc);
    uint64_t warm = 0;
    rc = cairn_find_count(db, "readings", "{\"temp\":{\"$gt\":20}}", &warm);
    if (rc != CAIRN_OK) return failed("cairn_find_count", rc);
    printk("%u of %u rooms above 20 degrees\n", (unsigned)warm, (unsigned)ARRAY_SIZE(readings));

    rc = cairn_zephyr_close();
    if (rc != CAIRN_OK) return failed("cairn_zephyr_close", rc);
    printk("cairndb hello: done\n");
    return 0;
}
