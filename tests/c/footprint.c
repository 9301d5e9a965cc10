/*
 * Footprint probe: takes the address of every C API function of the bare-metal library (the
 * hosted-only image-file device aside) so that a firmware link with --gc-sections keeps all of
 * them. `cargo xtask test` (step thumb-c) builds it through CMake as a cross build
 * (tests/c/cross/) and reports the flash the library adds to an empty firmware.
 */
#include <stdlib.h>

#include "cairndb.h"

#ifdef FOOTPRINT_BASELINE
void *volatile sink;
int main(void) {
    sink = malloc(4);
    free(sink);
    return 0;
}
#else
void *volatile sink;
int main(void) {
    void *fns[] = {
        (void *)cairn_version, (void *)cairn_version_string, (void *)cairn_strerror,
        (void *)cairn_open, (void *)cairn_format, (void *)cairn_open_or_format, (void *)cairn_close,
        (void *)cairn_doc_insert, (void *)cairn_doc_get, (void *)cairn_doc_replace,
        (void *)cairn_doc_patch, (void *)cairn_doc_delete, (void *)cairn_doc_count,
        (void *)cairn_find, (void *)cairn_find_count, (void *)cairn_kv_put, (void *)cairn_kv_get,
        (void *)cairn_kv_delete, (void *)cairn_kv_exists, (void *)cairn_kv_keys, (void *)cairn_index_create,
        (void *)cairn_index_create_json, (void *)cairn_index_drop, (void *)cairn_flush,
        (void *)cairn_compact, (void *)cairn_rekey, (void *)cairn_stats,
        (void *)cairn_ram_device_new, (void *)cairn_ram_device_free,
        (void *)cairn_ram_device_config, (void *)cairn_ram_device_data,
        (void *)cairn_set_allocator, (void *)cairn_txn_begin, (void *)cairn_txn_commit,
        (void *)cairn_txn_rollback, (void *)cairn_txn_doc_insert, (void *)cairn_txn_doc_get,
        (void *)cairn_txn_doc_replace, (void *)cairn_txn_doc_patch, (void *)cairn_txn_doc_delete,
        (void *)cairn_txn_doc_count, (void *)cairn_txn_find, (void *)cairn_txn_kv_put,
        (void *)cairn_txn_kv_get, (void *)cairn_txn_kv_delete, (void *)cairn_doc_get_handle,
        (void *)cairn_doc_free, (void *)cairn_doc_dup, (void *)cairn_doc_to_json,
        (void *)cairn_doc_type, (void *)cairn_doc_len, (void *)cairn_doc_get_i64,
        (void *)cairn_doc_get_f64, (void *)cairn_doc_get_bool, (void *)cairn_doc_get_str,
        (void *)cairn_doc_get_bytes, (void *)cairn_find_docs, (void *)cairn_coll_create,
        (void *)cairn_coll_drop, (void *)cairn_coll_list, (void *)cairn_ns_list,
        (void *)cairn_update_many, (void *)cairn_delete_many, (void *)cairn_distinct,
        (void *)cairn_schema_set, (void *)cairn_schema_get, (void *)cairn_schema_violation,
        (void *)cairn_index_list, (void *)cairn_explain, (void *)cairn_doc_insert_with,
        (void *)cairn_kv_put_with, (void *)cairn_doc_set_expiry, (void *)cairn_kv_set_expiry,
        (void *)cairn_kv_get_entry, (void *)cairn_sweep, (void *)cairn_set_time,
        (void *)cairn_now, (void *)cairn_txn_doc_insert_with, (void *)cairn_txn_kv_put_with,
        (void *)cairn_txn_doc_set_expiry, (void *)cairn_txn_kv_set_expiry,
        (void *)cairn_txn_kv_get_entry, (void *)cairn_txn_now, (void *)cairn_find_tagged,
        (void *)cairn_find_tagged_docs, (void *)cairn_kv_keys_tagged, (void *)cairn_tag_counts,
        (void *)cairn_kv_tag_counts, (void *)cairn_insert_many, (void *)cairn_delete_ids,
        (void *)cairn_kv_put_many, (void *)cairn_kv_delete_many,
        (void *)cairn_coll_create_capped, (void *)cairn_coll_stats, (void *)cairn_log_event,
        (void *)cairn_txn_log_event, (void *)cairn_events, (void *)cairn_backup_full,
        (void *)cairn_backup_incremental, (void *)cairn_backup_verify, (void *)cairn_restore,
        (void *)cairn_last_backup, (void *)cairn_open_for_repair, (void *)cairn_check,
        (void *)cairn_repair, (void *)cairn_compact_step, (void *)cairn_garbage_percent,
        (void *)cairn_statistics};
    for (unsigned i = 0; i < sizeof fns / sizeof fns[0]; i++) sink = fns[i];
    return 0;
}
#endif
