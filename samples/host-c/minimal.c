#include <stdio.h>

#include "cairndb.h"

int main(void) {
    /* A RAM flash here; on a device, point cfg's read/prog/erase callbacks at the flash driver. */
    cairn_ram_device_t *flash = NULL;
    cairn_config_t cfg = {0}; /* zero means default, field by field */
    cairn_db_t *db = NULL;
    uint64_t id = 0;
    char json[128];
    int rc = cairn_ram_device_new(&flash, 16, 16, 4096, 32);
    if (rc == CAIRN_OK) rc = cairn_ram_device_config(flash, &cfg);
    if (rc == CAIRN_OK) rc = cairn_open_or_format(&db, &cfg, NULL);

    /* Documents are JSON text; _id, _ver and _ts are added. */
    if (rc == CAIRN_OK) rc = cairn_doc_insert(db, "readings", "{\"room\":\"R101\",\"temp\":21.5}", &id);
    if (rc == CAIRN_OK) rc = cairn_doc_get(db, "readings", id, json, sizeof json, NULL);
    if (rc == CAIRN_OK) printf("%s\n", json);

    /* Key-value pairs are raw bytes in namespaces. */
    if (rc == CAIRN_OK) rc = cairn_kv_put(db, "config", "ssid", 4, "lab-net", 7);

    int closed = cairn_close(db); /* cairn_close(NULL) is a no-op */
    if (rc == CAIRN_OK) rc = closed;
    cairn_ram_device_free(flash);
    if (rc != CAIRN_OK) fprintf(stderr, "cairndb: %s\n", cairn_strerror(rc));
    return rc == CAIRN_OK ? 0 : 1;
}
