/*
 * Footprint probe: takes the address of every C API function so that a firmware link with
 * --gc-sections keeps all of them. `cargo xtask test` (step thumb-c) links it against the
 * Cortex-M libcairndb.a and reports the flash the library adds to an empty firmware.
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
        (void *)cairn_ram_device_config, (void *)cairn_ram_device_data};
    for (unsigned i = 0; i < sizeof fns / sizeof fns[0]; i++) sink = fns[i];
    return 0;
}
#endif
