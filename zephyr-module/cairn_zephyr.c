/*
 * cairndb on Zephyr: see include/cairn_zephyr.h. Only Zephyr-specific plumbing lives here;
 * the maintenance logic is port-common/cairn_maint.c, shared with the FreeRTOS port.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include "cairn_zephyr.h"

#include <stdlib.h>
#include <string.h>

#include <zephyr/drivers/flash.h>
#include <zephyr/init.h>
#include <zephyr/logging/log.h>
#include <zephyr/random/random.h>
#if defined(CONFIG_CAIRNDB_CLOCK_RTC)
#include <zephyr/drivers/rtc.h>
#include <zephyr/sys/timeutil.h>
#endif

LOG_MODULE_REGISTER(cairndb, CONFIG_CAIRNDB_LOG_LEVEL);

/* The partitions, as devicetree node labels (CMake passes CONFIG_CAIRNDB_PARTITION and
 * CONFIG_CAIRNDB_BACKUP_PARTITION as these tokens). */
#if !defined(CAIRN_ZEPHYR_PARTITION)
#error "CAIRN_ZEPHYR_PARTITION is not defined: build through the cairndb Zephyr module"
#endif
#if !FIXED_PARTITION_EXISTS(CAIRN_ZEPHYR_PARTITION)
#error "CONFIG_CAIRNDB_PARTITION names no enabled fixed partition in the devicetree"
#endif
#define DB_PARTITION_ID FIXED_PARTITION_ID(CAIRN_ZEPHYR_PARTITION)
#define STR_(x) #x
#define STR(x) STR_(x)

#if defined(CAIRN_ZEPHYR_BACKUP_PARTITION)
#if !FIXED_PARTITION_EXISTS(CAIRN_ZEPHYR_BACKUP_PARTITION)
#error "CONFIG_CAIRNDB_BACKUP_PARTITION names no enabled fixed partition in the devicetree"
#endif
#define BACKUP_PARTITION_ID FIXED_PARTITION_ID(CAIRN_ZEPHYR_BACKUP_PARTITION)
BUILD_ASSERT(BACKUP_PARTITION_ID != DB_PARTITION_ID,
             "the backup partition must not be the database partition");
#endif

#if defined(CONFIG_CSPRNG_ENABLED) || defined(CONFIG_HARDWARE_DEVICE_CS_GENERATOR) ||            \
    defined(CONFIG_CTR_DRBG_CSPRNG_GENERATOR) || defined(CONFIG_TEST_CSPRNG_GENERATOR)
#define CAIRN_ZEPHYR_HAS_CSPRNG 1
#endif

/* ------------------------------------------------------------------------------------------
 * Heap. The library asks for 8-byte alignment (cairn_set_allocator()); k_malloc() only gives
 * pointer alignment (4 on 32-bit cores), so both variants ask for 8 explicitly. */

#if defined(CONFIG_CAIRNDB_HEAP_DEDICATED)
K_HEAP_DEFINE(cairn_zephyr_heap, CONFIG_CAIRNDB_HEAP_SIZE);

static void *z_alloc(void *ctx, size_t size) {
    ARG_UNUSED(ctx);
    return k_heap_aligned_alloc(&cairn_zephyr_heap, 8, size, K_NO_WAIT);
}

static void z_free(void *ctx, void *ptr) {
    ARG_UNUSED(ctx);
    k_heap_free(&cairn_zephyr_heap, ptr);
}
#else
static void *z_alloc(void *ctx, size_t size) {
    ARG_UNUSED(ctx);
    return k_aligned_alloc(8, size);
}

static void z_free(void *ctx, void *ptr) {
    ARG_UNUSED(ctx);
    k_free(ptr);
}
#endif

/* Before main(): the hooks must be in place before the library's first allocation. */
static int cairn_zephyr_heap_init(void) {
    int32_t rc = cairn_set_allocator(z_alloc, z_free, NULL);
    if (rc != CAIRN_OK) LOG_ERR("cairn_set_allocator: %s (%d)", cairn_strerror(rc), (int)rc);
    return 0;
}

SYS_INIT(cairn_zephyr_heap_init, APPLICATION, 0);

/* libcairndb.a refers to the C library's malloc, free and abort (its default heap and its
 * panic handler). It is linked after the whole-archive libraries and may come after the C
 * library too: referring to them here, in an object linked whole, makes the linker take them
 * from the C library before it reaches libcairndb.a. */
void *(*const cairn_zephyr_keep_malloc)(size_t) __used = malloc;
void (*const cairn_zephyr_keep_free)(void *) __used = free;
void (*const cairn_zephyr_keep_abort)(void) __used = abort;

#if defined(CONFIG_CAIRNDB_HEAP_DEDICATED) && defined(CONFIG_SYS_HEAP_RUNTIME_STATS)
#include <zephyr/sys/sys_heap.h>
#endif

int32_t cairn_zephyr_heap_stats(size_t *used, size_t *free_bytes, size_t *max_used) {
#if defined(CONFIG_CAIRNDB_HEAP_DEDICATED) && defined(CONFIG_SYS_HEAP_RUNTIME_STATS)
    struct sys_memory_stats s;
    if (sys_heap_runtime_stats_get(&cairn_zephyr_heap.heap, &s) != 0) return CAIRN_ERR_IO;
    if (used != NULL) *used = s.allocated_bytes;
    if (free_bytes != NULL) *free_bytes = s.free_bytes;
    if (max_used != NULL) *max_used = s.max_allocated_bytes;
    return CAIRN_OK;
#else
    ARG_UNUSED(used);
    ARG_UNUSED(free_bytes);
    ARG_UNUSED(max_used);
    return CAIRN_ERR_UNSUPPORTED;
#endif
}

/* ------------------------------------------------------------------------------------------
 * Block device over a flash area. A failing flash call is an I/O error for the library (-1,
 * never CAIRN_FLASH_ERR_CORRUPT, whose value a negative errno could take). */

static off_t fl_offset(const cairn_zephyr_flash_t *d, uint32_t block, uint32_t off) {
    return (off_t)((size_t)block * d->block_size + off);
}

static int32_t fl_read(void *ctx, uint32_t block, uint32_t off, uint8_t *buf, uint32_t len) {
    const cairn_zephyr_flash_t *d = ctx;
    int rc = flash_area_read(d->fa, fl_offset(d, block, off), buf, len);
    if (rc != 0) LOG_DBG("flash_area_read block %u: %d", (unsigned)block, rc);
    return rc == 0 ? 0 : -1;
}

static int32_t fl_prog(void *ctx, uint32_t block, uint32_t off, const uint8_t *buf,
                       uint32_t len) {
    const cairn_zephyr_flash_t *d = ctx;
    int rc = flash_area_write(d->fa, fl_offset(d, block, off), buf, len);
    if (rc != 0) LOG_DBG("flash_area_write block %u: %d", (unsigned)block, rc);
    return rc == 0 ? 0 : -1;
}

static int32_t fl_erase(void *ctx, uint32_t block) {
    const cairn_zephyr_flash_t *d = ctx;
    int rc = flash_area_erase(d->fa, fl_offset(d, block, 0), d->block_size);
    if (rc != 0) LOG_DBG("flash_area_erase block %u: %d", (unsigned)block, rc);
    return rc == 0 ? 0 : -1;
}

/* The erase pages the partition covers: their size, whether they all have it, and whether
 * the partition starts and ends on page boundaries. flash_page_foreach() streams the layout,
 * where flash_area_get_sectors() would need an array as long as the partition's pages. */
struct layout {
    off_t start, end;
    size_t page;
    bool mixed;
    bool straddles;
};

static bool layout_page(const struct flash_pages_info *info, void *data) {
    struct layout *l = data;
    off_t ps = info->start_offset;
    off_t pe = ps + (off_t)info->size;
    if (pe <= l->start) return true;
    if (ps >= l->end) return false;
    if (ps < l->start || pe > l->end) l->straddles = true;
    if (l->page == 0) {
        l->page = info->size;
    } else if (l->page != info->size) {
        l->mixed = true;
    }
    return true;
}

int32_t cairn_zephyr_flash_config(uint8_t fa_id, uint32_t block_size, cairn_zephyr_flash_t *dev,
                                  cairn_config_t *cfg) {
    if (dev == NULL || cfg == NULL) return CAIRN_ERR_NULL;
    const struct flash_area *fa = NULL;
    int rc = flash_area_open(fa_id, &fa);
    if (rc != 0 || fa == NULL) {
        LOG_ERR("flash_area_open(%u): %d", (unsigned)fa_id, rc);
        return CAIRN_ERR_IO;
    }
    const struct device *fdev = flash_area_get_device(fa);
    if (fdev == NULL || !device_is_ready(fdev)) {
        LOG_ERR("flash device of partition %u is not ready", (unsigned)fa_id);
        flash_area_close(fa);
        return CAIRN_ERR_IO;
    }
    struct layout l = {.start = fa->fa_off, .end = fa->fa_off + (off_t)fa->fa_size};
    flash_page_foreach(fdev, layout_page, &l);
    if (l.page == 0 || l.mixed || l.straddles) {
        LOG_ERR("partition %u: erase pages are not uniform or not aligned to it", (unsigned)fa_id);
        flash_area_close(fa);
        return CAIRN_ERR_INVALID_ARGUMENT;
    }
    uint32_t bs = block_size != 0 ? block_size : (uint32_t)l.page;
    if (bs % l.page != 0 || fa->fa_size / bs < 2) {
        LOG_ERR("partition %u: block size %u does not fit pages of %u bytes in %u bytes",
                (unsigned)fa_id, (unsigned)bs, (unsigned)l.page, (unsigned)fa->fa_size);
        flash_area_close(fa);
        return CAIRN_ERR_INVALID_ARGUMENT;
    }
    uint32_t io = flash_area_align(fa);
    if (io == 0) io = 1;
    while (io < CAIRN_ZEPHYR_MIN_IO_SIZE) io *= 2;

    dev->fa = fa;
    dev->block_size = bs;
    dev->block_count = (uint32_t)(fa->fa_size / bs);
    cfg->version = CAIRN_CONFIG_VERSION;
    cfg->ctx = dev;
    cfg->read = fl_read;
    cfg->prog = fl_prog;
    cfg->erase = fl_erase;
    cfg->sync = NULL; /* a flash write is durable when flash_area_write() returns */
    cfg->read_size = io;
    cfg->prog_size = io;
    cfg->block_size = bs;
    cfg->block_count = dev->block_count;
    return CAIRN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Platform: lock, clock, random, log. */

/* Zephyr mutexes are recursive (a transaction holds the lock and each call inside takes it
 * again) and inherit the priority of the highest waiter. */
static int32_t z_lock(void *ctx, uint32_t timeout_ms) {
    k_timeout_t t = timeout_ms == CAIRN_WAIT_FOREVER ? K_FOREVER : K_MSEC(timeout_ms);
    return k_mutex_lock(ctx, t) == 0 ? 0 : 1;
}

static void z_unlock(void *ctx) { (void)k_mutex_unlock(ctx); }

uint64_t cairn_zephyr_now_ms(void) {
#if defined(CONFIG_CAIRNDB_CLOCK_RTC)
    const struct device *rtc = DEVICE_DT_GET(DT_ALIAS(rtc));
    struct rtc_time t;
    if (device_is_ready(rtc) && rtc_get_time(rtc, &t) == 0) {
        int64_t s = timeutil_timegm64(rtc_time_to_tm(&t));
        if (s >= 0) return (uint64_t)s * 1000u + (uint64_t)t.tm_nsec / 1000000u;
    }
    /* No time from the RTC: uptime; database time never goes back. */
#endif
    int64_t up = k_uptime_get();
    return up < 0 ? 0 : (uint64_t)up;
}

static uint64_t z_now(void *ctx) {
    ARG_UNUSED(ctx);
    return cairn_zephyr_now_ms();
}

#if defined(CAIRN_ZEPHYR_HAS_CSPRNG)
static int32_t z_random(void *ctx, uint8_t *buf, size_t len) {
    ARG_UNUSED(ctx);
    return sys_csrand_get(buf, len) == 0 ? 0 : -1;
}
#endif

static void z_log(void *ctx, int32_t level, const char *msg) {
    ARG_UNUSED(ctx);
    switch (level) {
    case CAIRN_LOG_ERROR:
        LOG_ERR("%s", msg);
        break;
    case CAIRN_LOG_WARN:
        LOG_WRN("%s", msg);
        break;
    case CAIRN_LOG_INFO:
        LOG_INF("%s", msg);
        break;
    default:
        LOG_DBG("%s", msg);
        break;
    }
}

int32_t cairn_zephyr_platform_init(cairn_zephyr_platform_t *p, cairn_config_t *cfg) {
    if (p == NULL || cfg == NULL) return CAIRN_ERR_NULL;
    (void)k_mutex_init(&p->mutex);
    cfg->version = CAIRN_CONFIG_VERSION;
    cfg->platform_ctx = p;
    cfg->lock = z_lock;
    cfg->unlock = z_unlock;
    cfg->lock_ctx = &p->mutex;
    if (cfg->lock_timeout_ms == 0) cfg->lock_timeout_ms = CONFIG_CAIRNDB_LOCK_TIMEOUT_MS;
    cfg->now_ms = z_now;
    cfg->log = z_log;
#if defined(CAIRN_ZEPHYR_HAS_CSPRNG)
    cfg->random = z_random;
#else
    cfg->random = NULL; /* passphrase formats and rekeys then need the application's source */
#endif
    return CAIRN_OK;
}

/* ------------------------------------------------------------------------------------------
 * The managed database, its backup ring and its maintenance. `state` serialises open, close
 * and passes (a pass holds it from start to end, so close waits for the current pass). */

K_MUTEX_DEFINE(cairn_zephyr_state);
K_CONDVAR_DEFINE(cairn_zephyr_pass_done);
K_SEM_DEFINE(cairn_zephyr_wake, 0, 1);

static struct {
    cairn_db_t *db;
    cairn_zephyr_platform_t platform;
    cairn_zephyr_flash_t flash;
    cairn_config_t cfg;
    cairn_zephyr_flash_t backup_flash;
    cairn_config_t backup_cfg;
    cairn_ring_t ring;
    bool has_ring;
    cairn_maint_config_t maint;
    cairn_maint_stats_t stats;
    int32_t last_pass_rc;
} m;

static void close_partitions(void) {
    if (m.flash.fa != NULL) flash_area_close(m.flash.fa);
    if (m.backup_flash.fa != NULL) flash_area_close(m.backup_flash.fa);
    m.flash.fa = NULL;
    m.backup_flash.fa = NULL;
    m.has_ring = false;
    m.maint.backup_ring = NULL;
}

/* The ring on the backup partition, when one is configured. */
static int32_t setup_ring(void) {
#if defined(CAIRN_ZEPHYR_BACKUP_PARTITION)
    memset(&m.backup_cfg, 0, sizeof m.backup_cfg);
    int32_t rc = cairn_zephyr_flash_config(BACKUP_PARTITION_ID, 0, &m.backup_flash, &m.backup_cfg);
    if (rc != CAIRN_OK) return rc;
    m.ring.device = &m.backup_cfg;
    m.ring.first_block = 0;
    m.ring.block_count = m.backup_flash.block_count;
    m.ring.slots = CONFIG_CAIRNDB_BACKUP_SLOTS;
    if (m.ring.block_count < 2u * m.ring.slots) {
        LOG_ERR("backup partition %s: %u blocks, a ring of %u slots needs %u",
                STR(CAIRN_ZEPHYR_BACKUP_PARTITION), (unsigned)m.ring.block_count,
                (unsigned)m.ring.slots, 2u * (unsigned)m.ring.slots);
        return CAIRN_ERR_INVALID_ARGUMENT;
    }
    m.has_ring = true;
    m.maint.backup_ring = &m.ring;
#endif
    return CAIRN_OK;
}

/* The key CONFIG_CAIRNDB_KEY_* names; NULL for a plain database. */
static int32_t get_key(cairn_key_t *key, const cairn_key_t **out) {
    memset(key, 0, sizeof *key);
    *out = NULL;
#if defined(CONFIG_CAIRNDB_KEY_PASSPHRASE)
    static const char pass[] = CONFIG_CAIRNDB_PASSPHRASE;
    key->passphrase = (const uint8_t *)pass;
    key->passphrase_len = sizeof pass - 1;
    key->kdf_iterations = CONFIG_CAIRNDB_KDF_ITERATIONS;
    *out = key;
#elif defined(CONFIG_CAIRNDB_KEY_APP)
    if (cairn_zephyr_get_key(key) < 0) {
        LOG_ERR("cairn_zephyr_get_key refused");
        return CAIRN_ERR_INVALID_ARGUMENT;
    }
    if (key->kdf_iterations == 0) key->kdf_iterations = CONFIG_CAIRNDB_KDF_ITERATIONS;
    *out = key;
#endif
    return CAIRN_OK;
}

int32_t cairn_zephyr_open(cairn_db_t **out) {
    if (out == NULL) return CAIRN_ERR_NULL;
    *out = NULL;
    (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
    if (m.db != NULL) {
        *out = m.db;
        (void)k_mutex_unlock(&cairn_zephyr_state);
        return CAIRN_OK;
    }
    memset(&m.cfg, 0, sizeof m.cfg);
    memset(&m.maint, 0, sizeof m.maint);
    int32_t rc = cairn_zephyr_flash_config(DB_PARTITION_ID, CONFIG_CAIRNDB_BLOCK_SIZE, &m.flash,
                                           &m.cfg);
    if (rc == CAIRN_OK) rc = setup_ring();
    cairn_key_t key;
    const cairn_key_t *keyp = NULL;
    if (rc == CAIRN_OK) rc = get_key(&key, &keyp);
    if (rc == CAIRN_OK) {
        m.cfg.cache_size = CONFIG_CAIRNDB_CACHE_SIZE;
        m.cfg.lookahead_size = CONFIG_CAIRNDB_LOOKAHEAD_SIZE;
        rc = cairn_zephyr_platform_init(&m.platform, &m.cfg);
    }
    cairn_db_t *db = NULL;
    if (rc == CAIRN_OK) {
        rc = IS_ENABLED(CONFIG_CAIRNDB_FORMAT_IF_EMPTY) ? cairn_open_or_format(&db, &m.cfg, keyp)
                                                       : cairn_open(&db, &m.cfg, keyp);
    }
    memset(&key, 0, sizeof key);
    if (rc != CAIRN_OK) {
        LOG_ERR("cannot open the database on %s: %s (%d)", STR(CAIRN_ZEPHYR_PARTITION),
                cairn_strerror(rc), (int)rc);
        close_partitions();
        (void)k_mutex_unlock(&cairn_zephyr_state);
        return rc;
    }
    m.maint.sweep_budget = CONFIG_CAIRNDB_SWEEP_BUDGET;
    m.maint.no_sweep = CONFIG_CAIRNDB_SWEEP_BUDGET == 0;
    m.maint.compact_garbage_percent = CONFIG_CAIRNDB_COMPACT_GARBAGE_PERCENT;
    m.maint.backup_interval_ms = (uint32_t)CONFIG_CAIRNDB_BACKUP_INTERVAL_SEC * 1000u;
    m.db = db;
    *out = db;
    LOG_INF("database on %s: %u blocks of %u bytes%s", STR(CAIRN_ZEPHYR_PARTITION),
            (unsigned)m.flash.block_count, (unsigned)m.flash.block_size,
            m.has_ring ? ", backup ring on " STR(CAIRN_ZEPHYR_BACKUP_PARTITION) : "");
    (void)k_mutex_unlock(&cairn_zephyr_state);
    k_sem_give(&cairn_zephyr_wake);
    return CAIRN_OK;
}

cairn_db_t *cairn_zephyr_db(void) {
    (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
    cairn_db_t *db = m.db;
    (void)k_mutex_unlock(&cairn_zephyr_state);
    return db;
}

const cairn_ring_t *cairn_zephyr_backup_ring(void) {
    (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
    const cairn_ring_t *ring = m.db != NULL && m.has_ring ? &m.ring : NULL;
    (void)k_mutex_unlock(&cairn_zephyr_state);
    return ring;
}

int32_t cairn_zephyr_close(void) {
    (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
    if (m.db == NULL) {
        (void)k_mutex_unlock(&cairn_zephyr_state);
        return CAIRN_OK;
    }
    int32_t rc = cairn_close(m.db);
    if (rc != CAIRN_ERR_BUSY && rc != CAIRN_ERR_TIMEOUT) {
        m.db = NULL;
        close_partitions();
    }
    (void)k_mutex_unlock(&cairn_zephyr_state);
    return rc;
}

/* Lines of the maintenance pass go to the log. */
static void maint_log(void *ctx, int32_t level, const char *line) { z_log(ctx, level, line); }

/* One pass on the open database, `state` held. */
static int32_t pass_locked(void) {
    if (m.db == NULL) return CAIRN_ERR_NOT_FOUND;
    int32_t rc = cairn_maint_pass(m.db, &m.maint, &m.stats, maint_log, NULL);
    m.last_pass_rc = rc;
    return rc;
}

void cairn_zephyr_maint_stats(cairn_maint_stats_t *out) {
    if (out == NULL) return;
    (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
    *out = m.stats;
    (void)k_mutex_unlock(&cairn_zephyr_state);
}

#if defined(CONFIG_CAIRNDB_BACKGROUND)
static void bg_entry(void *p1, void *p2, void *p3) {
    ARG_UNUSED(p1);
    ARG_UNUSED(p2);
    ARG_UNUSED(p3);
    for (;;) {
        /* A period, or until cairn_zephyr_open() or cairn_zephyr_maint_now() wakes it. */
        (void)k_sem_take(&cairn_zephyr_wake, K_MSEC(CONFIG_CAIRNDB_BACKGROUND_PERIOD_MS));
        (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
        (void)pass_locked();
        (void)k_condvar_broadcast(&cairn_zephyr_pass_done);
        (void)k_mutex_unlock(&cairn_zephyr_state);
    }
}

K_THREAD_DEFINE(cairn_zephyr_bg, CONFIG_CAIRNDB_BACKGROUND_STACK_SIZE, bg_entry, NULL, NULL, NULL,
                CONFIG_CAIRNDB_BACKGROUND_PRIORITY, 0, 0);
#endif

int32_t cairn_zephyr_maint_now(uint32_t timeout_ms) {
    (void)k_mutex_lock(&cairn_zephyr_state, K_FOREVER);
    if (m.db == NULL) {
        (void)k_mutex_unlock(&cairn_zephyr_state);
        return CAIRN_ERR_NOT_FOUND;
    }
#if defined(CONFIG_CAIRNDB_BACKGROUND)
    /* No pass runs while `state` is held: the next one to finish starts after this point. */
    uint32_t want = m.stats.passes + 1;
    int64_t deadline = k_uptime_get() + timeout_ms;
    k_sem_give(&cairn_zephyr_wake);
    int32_t rc = CAIRN_OK;
    while ((int32_t)(m.stats.passes - want) < 0) {
        int64_t left = deadline - k_uptime_get();
        if (timeout_ms != CAIRN_WAIT_FOREVER && left <= 0) {
            rc = CAIRN_ERR_TIMEOUT;
            break;
        }
        k_timeout_t t = timeout_ms == CAIRN_WAIT_FOREVER ? K_FOREVER : K_MSEC(left);
        (void)k_condvar_wait(&cairn_zephyr_pass_done, &cairn_zephyr_state, t);
        if (m.db == NULL) {
            rc = CAIRN_ERR_NOT_FOUND;
            break;
        }
    }
    if (rc == CAIRN_OK) rc = m.last_pass_rc;
#else
    ARG_UNUSED(timeout_ms);
    int32_t rc = pass_locked();
#endif
    (void)k_mutex_unlock(&cairn_zephyr_state);
    return rc;
}

int32_t cairn_zephyr_bg_stack_unused(size_t *unused) {
#if defined(CONFIG_CAIRNDB_BACKGROUND) && defined(CONFIG_INIT_STACKS) &&                          \
    defined(CONFIG_THREAD_STACK_INFO)
    if (unused == NULL) return CAIRN_ERR_NULL;
    return k_thread_stack_space_get(cairn_zephyr_bg, unused) == 0 ? CAIRN_OK : CAIRN_ERR_IO;
#else
    ARG_UNUSED(unused);
    return CAIRN_ERR_UNSUPPORTED;
#endif
}
