/*
 * The library's heap on the host, as the bare-metal build has it.
 *
 * On a microcontroller libcairndb.a takes its heap from the C library's malloc/free until
 * cairn_set_allocator() installs hooks (c-api/src/device.rs); the port's
 * cairn_fr_use_freertos_heap() installs pvPortMalloc/vPortFree. The hosted library instead
 * uses the system allocator and answers CAIRN_ERR_UNSUPPORTED, so these tests rebuild the
 * bare-metal arrangement around it:
 *
 *  - CMakeLists.txt copies libcairndb.a with its references to malloc, calloc, realloc, free
 *    and posix_memalign (made by Rust's std allocator, nowhere else in the archive) renamed to
 *    the cairn_host_* functions below;
 *  - the link wraps cairn_set_allocator (-Wl,--wrap): the wrapper records the hooks the port
 *    passes, checks that the real function refuses them as a hosted build must, and then
 *    behaves as device.rs does (both hooks or none, refused once the library has allocated);
 *  - from then on every allocation of the library goes through the port's hooks, so heap_4
 *    serves the whole library, from every task, as on the device.
 *
 * Rust's std on x86_64 expects 16-byte alignment from malloc while heap_4 gives
 * portBYTE_ALIGNMENT (8), so hook blocks carry a 16-byte header (the raw block and the size,
 * for realloc) and are aligned up: the device build asks for at most 8.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* heap_4's memory (configAPPLICATION_ALLOCATED_HEAP): its bounds tell hook blocks from
 * the C library's in free(). */
uint8_t ucHeap[configTOTAL_HEAP_SIZE] __attribute__((aligned(16)));

heap_shim_t heap_shim;

int32_t __real_cairn_set_allocator(cairn_malloc_fn alloc_fn, cairn_free_fn free_fn, void *ctx);

int32_t __wrap_cairn_set_allocator(cairn_malloc_fn alloc_fn, cairn_free_fn free_fn, void *ctx) {
    heap_shim.set_calls++;
    heap_shim.real_rc = __real_cairn_set_allocator(alloc_fn, free_fn, ctx);
    if ((alloc_fn == NULL) != (free_fn == NULL)) return CAIRN_ERR_INVALID_ARGUMENT;
    if (__atomic_load_n(&heap_shim.lib_used, __ATOMIC_ACQUIRE)) return CAIRN_ERR_BUSY;
    heap_shim.alloc = alloc_fn;
    heap_shim.free = free_fn;
    heap_shim.ctx = ctx;
    return CAIRN_OK;
}

typedef struct {
    void *raw;
    size_t size;
} blk_hdr_t;

_Static_assert(sizeof(blk_hdr_t) == 16, "the header keeps 16-byte alignment");

static int from_hook(const void *p) {
    return (const uint8_t *)p >= ucHeap && (const uint8_t *)p < ucHeap + sizeof ucHeap;
}

/* `size` bytes aligned to `align` (a power of two, at least 16) from the hooks, or from the
 * C library while none is installed. */
static void *blk_alloc(size_t size, size_t align) {
    __atomic_store_n(&heap_shim.lib_used, 1, __ATOMIC_RELEASE);
    if (heap_shim.alloc == NULL) {
        __atomic_fetch_add(&heap_shim.libc_allocs, 1, __ATOMIC_RELAXED);
        void *p = NULL;
        return posix_memalign(&p, align, size == 0 ? 1 : size) == 0 ? p : NULL;
    }
    if (size > SIZE_MAX - align - sizeof(blk_hdr_t)) return NULL;
    uint8_t *raw = heap_shim.alloc(heap_shim.ctx, size + align + sizeof(blk_hdr_t));
    if (raw == NULL) return NULL;
    __atomic_fetch_add(&heap_shim.hook_allocs, 1, __ATOMIC_RELAXED);
    uintptr_t at = ((uintptr_t)raw + sizeof(blk_hdr_t) + align - 1) & ~(uintptr_t)(align - 1);
    blk_hdr_t *h = (blk_hdr_t *)at - 1;
    h->raw = raw;
    h->size = size;
    return (void *)at;
}

void cairn_host_free(void *p) {
    if (p == NULL) return;
    if (!from_hook(p)) {
        free(p);
        return;
    }
    __atomic_fetch_add(&heap_shim.hook_frees, 1, __ATOMIC_RELAXED);
    heap_shim.free(heap_shim.ctx, ((blk_hdr_t *)p - 1)->raw);
}

void *cairn_host_malloc(size_t size) { return blk_alloc(size, 16); }

void *cairn_host_calloc(size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) return NULL;
    void *p = blk_alloc(n * size, 16);
    if (p != NULL) memset(p, 0, n * size);
    return p;
}

void *cairn_host_realloc(void *p, size_t size) {
    if (p == NULL) return cairn_host_malloc(size);
    if (!from_hook(p)) return realloc(p, size);
    void *q = blk_alloc(size, 16);
    if (q == NULL) return NULL;
    size_t old = ((blk_hdr_t *)p - 1)->size;
    memcpy(q, p, old < size ? old : size);
    cairn_host_free(p);
    return q;
}

int cairn_host_posix_memalign(void **out, size_t align, size_t size) {
    void *p = blk_alloc(size, align < 16 ? 16 : align);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
