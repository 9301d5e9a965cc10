/*
 * A NOR flash in RAM for the host tests, stricter than a real chip is forgiving: erase sets a
 * block to 0xFF, a program may only clear bits (1 -> 0), and every access must be inside the
 * chip and aligned to the read or program unit. Anything else is a violation: the callback
 * fails (the library sees an I/O error) and the test that owns the chip fails (fx_close()).
 * Callbacks run with the database's lock held, one at a time per chip.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

void ramnor_init(ramnor_t *n, uint8_t *mem, uint32_t blocks) {
    memset(n, 0, sizeof *n);
    n->mem = mem;
    n->blocks = blocks;
    memset(mem, 0xFF, (size_t)blocks * RAMNOR_BLOCK);
}

static void violation(ramnor_t *n, const char *what, uint32_t block, uint32_t off, uint32_t len) {
    if (n->violations++ == 0)
        snprintf(n->first_violation, sizeof n->first_violation, "%s (block %u, offset %u, %u bytes)",
                 what, (unsigned)block, (unsigned)off, (unsigned)len);
}

static int in_chip(ramnor_t *n, const char *op, uint32_t block, uint32_t off, uint32_t len,
                   uint32_t unit) {
    if (block >= n->blocks || off > RAMNOR_BLOCK || len > RAMNOR_BLOCK - off || len == 0) {
        violation(n, op, block, off, len);
        return 0;
    }
    if (off % unit != 0 || len % unit != 0) {
        violation(n, op, block, off, len);
        return 0;
    }
    return 1;
}

static int32_t nor_read(void *ctx, uint32_t block, uint32_t off, uint8_t *buf, uint32_t len) {
    ramnor_t *n = ctx;
    if (!in_chip(n, "read outside the chip or unaligned", block, off, len, RAMNOR_READ)) return -1;
    memcpy(buf, n->mem + (size_t)block * RAMNOR_BLOCK + off, len);
    n->reads++;
    return 0;
}

static int32_t nor_prog(void *ctx, uint32_t block, uint32_t off, const uint8_t *buf, uint32_t len) {
    ramnor_t *n = ctx;
    if (!in_chip(n, "program outside the chip or unaligned", block, off, len, RAMNOR_PROG))
        return -1;
    uint8_t *at = n->mem + (size_t)block * RAMNOR_BLOCK + off;
    for (uint32_t i = 0; i < len; i++) {
        if ((at[i] & buf[i]) != buf[i]) {
            char what[80];
            snprintf(what, sizeof what, "program sets bits 0->1: 0x%02x over 0x%02x at +%u", buf[i],
                     at[i], (unsigned)i);
            violation(n, what, block, off, len);
            return -1;
        }
    }
    memcpy(at, buf, len);
    n->progs++;
    return 0;
}

static int32_t nor_erase(void *ctx, uint32_t block) {
    ramnor_t *n = ctx;
    if (!in_chip(n, "erase outside the chip", block, 0, RAMNOR_BLOCK, RAMNOR_BLOCK)) return -1;
    memset(n->mem + (size_t)block * RAMNOR_BLOCK, 0xFF, RAMNOR_BLOCK);
    n->erases++;
    return 0;
}

void ramnor_config(ramnor_t *n, cairn_config_t *cfg) {
    cfg->ctx = n;
    cfg->read = nor_read;
    cfg->prog = nor_prog;
    cfg->erase = nor_erase;
    cfg->sync = NULL;
    cfg->read_size = RAMNOR_READ;
    cfg->prog_size = RAMNOR_PROG;
    cfg->block_size = RAMNOR_BLOCK;
    cfg->block_count = n->blocks;
}
