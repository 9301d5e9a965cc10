/*
 * cairndb shell commands (CONFIG_CAIRNDB_SHELL) on the managed database of cairn_zephyr.c:
 *
 *   cairndb stats                      statistics, maintenance, heap
 *   cairndb ls [coll]                  collections and namespaces, or one collection's indexes
 *   cairndb find <coll> [filter] [opt] matching documents as JSON (20 at most by default)
 *   cairndb get <coll> <id>            one document
 *   cairndb get -kv <ns> <key>         one key-value entry
 *   cairndb put <coll> <json>          insert a document; prints its _id
 *   cairndb put -kv <ns> <key> <value> store a key-value entry (text)
 *   cairndb check                      integrity check
 *   cairndb backup [status]            a backup into the ring now, or what the ring holds
 *
 * JSON arguments go in double quotes with the inner quotes escaped:
 *   cairndb put sensors "{\"t\":21.5}"
 * Shell commands run one at a time in the shell thread, so the output buffer is static.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include <zephyr/shell/shell.h>

#include "cairn_zephyr.h"

static char buf[CONFIG_CAIRNDB_SHELL_BUF_SIZE];

/* The open database, or an error printed. */
static cairn_db_t *db_or_error(const struct shell *sh) {
    cairn_db_t *db = cairn_zephyr_db();
    if (db == NULL) shell_error(sh, "cairndb: the database is not open (cairn_zephyr_open())");
    return db;
}

static int fail(const struct shell *sh, const char *what, int32_t rc) {
    shell_error(sh, "%s: %s (%d)", what, cairn_strerror(rc), (int)rc);
    return -ENOEXEC;
}

static int cmd_stats(const struct shell *sh, size_t argc, char **argv) {
    ARG_UNUSED(argc);
    ARG_UNUSED(argv);
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    cairn_statistics_t s;
    int32_t rc = cairn_statistics(db, &s);
    if (rc != CAIRN_OK) return fail(sh, "cairn_statistics", rc);
    shell_print(sh, "blocks: %u of %u bytes, %u used, %u free",
                (unsigned)s.block_count, (unsigned)s.block_size, (unsigned)s.used_blocks,
                (unsigned)s.free_blocks);
    shell_print(sh, "segments: %u (%llu bytes), memtable %u bytes, garbage %u%%",
                (unsigned)s.segments, (unsigned long long)s.segment_bytes,
                (unsigned)s.memtable_bytes, (unsigned)s.garbage_percent);
    shell_print(sh, "since open: %llu commits, %llu frames, %llu folds, %llu merges, "
                    "%llu failed calls",
                (unsigned long long)s.commits, (unsigned long long)s.frames,
                (unsigned long long)s.folds, (unsigned long long)s.merges,
                (unsigned long long)s.failed);
    shell_print(sh, "expired removed (ever): %llu", (unsigned long long)s.expired_removed);
    if (s.has_last_backup)
        shell_print(sh, "last backup: %s at %llu ms (seq %llu)",
                    s.last_backup_kind == CAIRN_BACKUP_FULL ? "full" : "incremental",
                    (unsigned long long)s.last_backup_time,
                    (unsigned long long)s.last_backup_seq);
    cairn_maint_stats_t ms;
    cairn_zephyr_maint_stats(&ms);
    shell_print(sh, "maintenance: %u passes, %llu swept, %u compactions, %u backups "
                    "(%u full), last error %d",
                (unsigned)ms.passes, (unsigned long long)ms.swept, (unsigned)ms.compactions,
                (unsigned)ms.backups, (unsigned)ms.full_backups, (int)ms.last_error);
    size_t used, free_bytes, max_used;
    if (cairn_zephyr_heap_stats(&used, &free_bytes, &max_used) == CAIRN_OK)
        shell_print(sh, "heap: %u used, %u free, %u at most", (unsigned)used,
                    (unsigned)free_bytes, (unsigned)max_used);
    size_t unused;
    if (cairn_zephyr_bg_stack_unused(&unused) == CAIRN_OK)
        shell_print(sh, "background thread: %u bytes of stack unused", (unsigned)unused);
    return 0;
}

/* Names listed by cairn_coll_list()/cairn_ns_list(), kept in `buf` (a callback must not call
 * back into the database, so counts come after the listing). */
struct names {
    size_t used;
    size_t count;
    bool truncated;
};

static int32_t keep_name(void *ctx, const char *name, size_t len) {
    struct names *n = ctx;
    if (n->used + len + 1 > sizeof buf) {
        n->truncated = true;
        return 1;
    }
    memcpy(buf + n->used, name, len + 1);
    n->used += len + 1;
    n->count++;
    return 0;
}

static int cmd_ls(const struct shell *sh, size_t argc, char **argv) {
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    if (argc == 2) {
        size_t len = 0;
        int32_t rc = cairn_index_list(db, argv[1], buf, sizeof buf, &len);
        if (rc != CAIRN_OK) return fail(sh, "cairn_index_list", rc);
        shell_print(sh, "indexes of %s: %s", argv[1], buf);
        return 0;
    }
    struct names n = {0};
    int32_t rc = cairn_coll_list(db, keep_name, &n);
    if (rc != CAIRN_OK) return fail(sh, "cairn_coll_list", rc);
    shell_print(sh, "collections (%u%s):", (unsigned)n.count, n.truncated ? ", more" : "");
    for (size_t off = 0, i = 0; i < n.count; i++) {
        const char *name = buf + off;
        uint64_t docs = 0;
        rc = cairn_doc_count(db, name, &docs);
        if (rc == CAIRN_OK)
            shell_print(sh, "  %s: %llu documents", name, (unsigned long long)docs);
        else
            shell_print(sh, "  %s: %s", name, cairn_strerror(rc));
        off += strlen(name) + 1;
    }
    n = (struct names){0};
    rc = cairn_ns_list(db, keep_name, &n);
    if (rc != CAIRN_OK) return fail(sh, "cairn_ns_list", rc);
    shell_print(sh, "key-value namespaces (%u%s):", (unsigned)n.count, n.truncated ? ", more" : "");
    for (size_t off = 0, i = 0; i < n.count; i++) {
        shell_print(sh, "  %s", buf + off);
        off += strlen(buf + off) + 1;
    }
    return 0;
}

static int32_t print_doc(void *ctx, const char *json, size_t len) {
    ARG_UNUSED(len);
    shell_print((const struct shell *)ctx, "%s", json);
    return 0;
}

static int cmd_find(const struct shell *sh, size_t argc, char **argv) {
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    const char *filter = argc > 2 ? argv[2] : "{}";
    const char *options = argc > 3 ? argv[3] : "{\"limit\":20}";
    int32_t rc = cairn_find(db, argv[1], filter, options, print_doc, (void *)sh);
    return rc == CAIRN_OK ? 0 : fail(sh, "cairn_find", rc);
}

/* A value as text when it is printable, else as hex. */
static void print_value(const struct shell *sh, const uint8_t *v, size_t len) {
    bool text = true;
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] > 0x7e) text = false;
    if (text) {
        shell_print(sh, "%.*s", (int)len, (const char *)v);
    } else {
        shell_hexdump(sh, v, len);
    }
}

static int cmd_get(const struct shell *sh, size_t argc, char **argv) {
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    size_t len = 0;
    if (strcmp(argv[1], "-kv") == 0) {
        if (argc != 4) {
            shell_error(sh, "usage: cairndb get -kv <ns> <key>");
            return -EINVAL;
        }
        int32_t rc = cairn_kv_get(db, argv[2], argv[3], strlen(argv[3]), buf, sizeof buf, &len);
        if (rc != CAIRN_OK) return fail(sh, "cairn_kv_get", rc);
        print_value(sh, (const uint8_t *)buf, len);
        return 0;
    }
    char *end = NULL;
    unsigned long long id = strtoull(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0') {
        shell_error(sh, "not a document id: %s", argv[2]);
        return -EINVAL;
    }
    int32_t rc = cairn_doc_get(db, argv[1], (uint64_t)id, buf, sizeof buf, &len);
    if (rc != CAIRN_OK) return fail(sh, "cairn_doc_get", rc);
    shell_print(sh, "%s", buf);
    return 0;
}

static int cmd_put(const struct shell *sh, size_t argc, char **argv) {
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    if (strcmp(argv[1], "-kv") == 0) {
        if (argc != 5) {
            shell_error(sh, "usage: cairndb put -kv <ns> <key> <value>");
            return -EINVAL;
        }
        int32_t rc =
            cairn_kv_put(db, argv[2], argv[3], strlen(argv[3]), argv[4], strlen(argv[4]));
        if (rc != CAIRN_OK) return fail(sh, "cairn_kv_put", rc);
        shell_print(sh, "stored %s/%s", argv[2], argv[3]);
        return 0;
    }
    if (argc != 3) {
        shell_error(sh, "usage: cairndb put <coll> <json>");
        return -EINVAL;
    }
    uint64_t id = 0;
    int32_t rc = cairn_doc_insert(db, argv[1], argv[2], &id);
    if (rc != CAIRN_OK) return fail(sh, "cairn_doc_insert", rc);
    shell_print(sh, "inserted %s/%llu", argv[1], (unsigned long long)id);
    return 0;
}

static int cmd_check(const struct shell *sh, size_t argc, char **argv) {
    ARG_UNUSED(argc);
    ARG_UNUSED(argv);
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    cairn_check_report_t r;
    int32_t rc = cairn_check(db, &r);
    if (rc != CAIRN_OK) return fail(sh, "cairn_check", rc);
    shell_print(sh, "%s: %u segments, %u pages, %llu entries (+%u in the log), "
                    "%u collections, %llu documents, %u indexes, %llu index entries",
                r.clean ? "clean" : "PROBLEMS", (unsigned)r.segments, (unsigned)r.pages,
                (unsigned long long)r.entries, (unsigned)r.wal_entries, (unsigned)r.collections,
                (unsigned long long)r.documents, (unsigned)r.indexes,
                (unsigned long long)r.index_entries);
    if (!r.clean)
        shell_print(sh, "bad pages %u, inconsistencies %u, missing files %u, unreadable "
                        "documents %llu, count mismatches %u, missing index entries %llu, "
                        "stray index entries %llu",
                    (unsigned)r.bad_pages, (unsigned)r.inconsistencies,
                    (unsigned)r.missing_files, (unsigned long long)r.unreadable_documents,
                    (unsigned)r.count_mismatches, (unsigned long long)r.missing_index_entries,
                    (unsigned long long)r.stray_index_entries);
    return r.clean ? 0 : -ENOEXEC;
}

static int cmd_backup(const struct shell *sh, size_t argc, char **argv) {
    cairn_db_t *db = db_or_error(sh);
    if (db == NULL) return -ENOEXEC;
    const cairn_ring_t *ring = cairn_zephyr_backup_ring();
    if (ring == NULL) {
        shell_error(sh, "no backup partition (CONFIG_CAIRNDB_BACKUP_PARTITION)");
        return -ENOEXEC;
    }
    if (argc == 2 && strcmp(argv[1], "status") == 0) {
        cairn_ring_status_t st;
        int32_t rc = cairn_ring_status(db, NULL, ring, &st);
        if (rc != CAIRN_OK) return fail(sh, "cairn_ring_status", rc);
        shell_print(sh, "ring: chains of %u and %u backups, newest area %d, %u blocks per slot",
                    (unsigned)st.chain_len[0], (unsigned)st.chain_len[1], (int)st.newest,
                    (unsigned)st.slot_blocks);
        return 0;
    }
    if (argc != 1) {
        shell_error(sh, "usage: cairndb backup [status]");
        return -EINVAL;
    }
    cairn_backup_info_t info;
    uint32_t area = 0, slot = 0;
    int32_t rc = cairn_ring_backup(db, NULL, ring, &info, &area, &slot);
    if (rc != CAIRN_OK) return fail(sh, "cairn_ring_backup", rc);
    shell_print(sh, "%s backup into area %u slot %u: %llu records, %llu bytes",
                info.kind == CAIRN_BACKUP_FULL ? "full" : "incremental", (unsigned)area,
                (unsigned)slot, (unsigned long long)info.records,
                (unsigned long long)info.stream_len);
    return 0;
}

SHELL_STATIC_SUBCMD_SET_CREATE(
    cairndb_cmds,
    SHELL_CMD_ARG(stats, NULL, "Statistics, maintenance and heap", cmd_stats, 1, 0),
    SHELL_CMD_ARG(ls, NULL, "Collections and namespaces, or one collection's indexes: [coll]",
                  cmd_ls, 1, 1),
    SHELL_CMD_ARG(find, NULL, "Matching documents: <coll> [filter] [options]", cmd_find, 2, 2),
    SHELL_CMD_ARG(get, NULL, "A document: <coll> <id>, or an entry: -kv <ns> <key>", cmd_get, 3,
                  1),
    SHELL_CMD_ARG(put, NULL, "Insert: <coll> <json>, or store: -kv <ns> <key> <value>", cmd_put,
                  3, 2),
    SHELL_CMD_ARG(check, NULL, "Integrity check", cmd_check, 1, 0),
    SHELL_CMD_ARG(backup, NULL, "A backup into the ring now, or: status", cmd_backup, 1, 1),
    SHELL_SUBCMD_SET_END);

SHELL_CMD_REGISTER(cairndb, &cairndb_cmds, "cairndb database commands", NULL);
