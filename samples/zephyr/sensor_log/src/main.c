/*
 * cairndb sensor_log: readings, half of them with a time to live of one second; the module's
 * background thread sweeps the expired ones and writes backups into the ring on the backup
 * partition; the sample checks both and prints what the ring holds. Then the `cairndb` shell
 * commands are there to look inside (cairndb stats, cairndb find readings, ...).
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdio.h>

#include <zephyr/kernel.h>

#include "cairn_zephyr.h"

#define READINGS 12
#define TTL_MS 1000

static int failed(const char *what, int32_t rc) {
    printk("%s failed: %s (%d)\n", what, cairn_strerror(rc), (int)rc);
    return 0;
}

int main(void) {
    printk("cairndb %s sensor_log on %s\n", cairn_version_string(), CONFIG_BOARD);
    cairn_db_t *db = NULL;
    int32_t rc = cairn_zephyr_open(&db);
    if (rc != CAIRN_OK) return failed("cairn_zephyr_open", rc);
    const cairn_ring_t *ring = cairn_zephyr_backup_ring();
    if (ring == NULL) return failed("cairn_zephyr_backup_ring", CAIRN_ERR_NOT_FOUND);

    /* Start from an empty log: on native_sim the flash file keeps the last run. */
    uint64_t removed = 0;
    rc = cairn_delete_many(db, "readings", "{}", &removed);
    if (rc != CAIRN_OK && rc != CAIRN_ERR_NOT_FOUND) return failed("cairn_delete_many", rc);

    /* Raw samples expire after a second; every other reading is a summary kept for good. */
    unsigned with_ttl = 0;
    for (int i = 0; i < READINGS; i++) {
        char json[96];
        snprintf(json, sizeof json, "{\"sensor\":\"s%d\",\"seq\":%d,\"temp\":%d.%d}", i % 3, i,
                 19 + i % 5, i % 10);
        cairn_write_opts_t opts = {.ttl_ms = i % 2 == 0 ? TTL_MS : 0};
        uint64_t id = 0;
        rc = cairn_doc_insert_with(db, "readings", json, &opts, &id);
        if (rc != CAIRN_OK) return failed("cairn_doc_insert_with", rc);
        with_ttl += opts.ttl_ms != 0;
    }
    printk("logged %d readings, %u with a time to live of %d ms\n", READINGS, with_ttl, TTL_MS);

    /* Let them expire, then have the background thread run a pass now (it also runs one every
     * CONFIG_CAIRNDB_BACKGROUND_PERIOD_MS). */
    k_msleep(TTL_MS + 500);
    rc = cairn_zephyr_maint_now(10000);
    if (rc != CAIRN_OK) return failed("cairn_zephyr_maint_now", rc);
    cairn_maint_stats_t ms;
    cairn_zephyr_maint_stats(&ms);
    printk("maintenance: swept %u expired readings, %u backups (%u full) in %u passes\n",
           (unsigned)ms.swept, (unsigned)ms.backups, (unsigned)ms.full_backups,
           (unsigned)ms.passes);

    uint64_t left = 0;
    rc = cairn_doc_count(db, "readings", &left);
    if (rc != CAIRN_OK) return failed("cairn_doc_count", rc);
    printk("%u readings left\n", (unsigned)left);

    cairn_ring_status_t st;
    rc = cairn_ring_status(db, NULL, ring, &st);
    if (rc != CAIRN_OK) return failed("cairn_ring_status", rc);
    if (st.newest < 0) return failed("the backup ring", CAIRN_ERR_NOT_FOUND);
    printk("backup ring: newest chain holds %u backups\n", (unsigned)st.chain_len[st.newest]);

    printk("sensor_log: done (try `cairndb stats`, `cairndb find readings`)\n");
    return 0;
}
