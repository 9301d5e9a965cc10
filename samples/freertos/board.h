/* The emulated board of the FreeRTOS samples: QEMU mps2-an385 (Cortex-M3). UART0 for the log,
 * semihosting for the exit status and for host files (the persisted flash image), a NOR flash
 * emulated in RAM. */
#ifndef BOARD_H
#define BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "cairndb.h"

/* UART0 (CMSDK APB UART). board_printf serialises lines with a mutex once the scheduler runs. */
void board_init(void);
void board_puts(const char *s);
void board_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void board_exit(int code);

/* Semihosting. */
int board_cmdline(char *buf, size_t cap); /* SYS_GET_CMDLINE (-semihosting-config arg=...) */
int board_file_open(const char *path, int mode); /* SYS_OPEN; returns a handle or -1 */
int board_file_close(int fh);
int board_file_write(int fh, const void *buf, size_t len); /* 0 when all written */
int board_file_read(int fh, void *buf, size_t len);        /* bytes NOT read (0: all) */
int board_file_seek(int fh, size_t pos);
long board_file_len(int fh);
#define SH_MODE_RB 1
#define SH_MODE_RPB 3 /* "r+b" */
#define SH_MODE_WB 5
#define SH_MODE_WPB 7 /* "w+b" */

/* NOR flash emulated in RAM: erase sets 0xFF, program only clears bits (a program that would
 * set a bit is an error, as on real NOR). Optionally written through to a host file: every
 * program and erase reaches the file before the callback returns, so the file is the flash as
 * of the last completed operation, whenever QEMU is killed. */
#define NOR_BLOCK_SIZE 4096u
#define NOR_BLOCK_COUNT 64u
#define NOR_SIZE (NOR_BLOCK_SIZE * NOR_BLOCK_COUNT)
/* A second, smaller chip for the backup ring (a partition of its own; on a real board it may
 * as well be a range of the same chip outside the database's volume). */
#define BACKUP_NOR_BLOCK_COUNT 24u
typedef struct {
    uint8_t *mem;
    uint32_t blocks;
    int fh;          /* write-through host file, or -1 */
    uint32_t progs, erases;
} nor_t;
void nor_init(nor_t *n);                        /* the database chip, all erased, no file */
void nor_init_backup(nor_t *n);                 /* the backup chip, all erased, no file */
int nor_load(nor_t *n, const char *path);       /* 0: loaded the whole image; -1: no such file */
int nor_save(nor_t *n, const char *path);       /* writes the whole image; 0 on success */
int nor_write_through(nor_t *n, const char *path); /* opens/creates path, saves, keeps it */
void nor_config(nor_t *n, cairn_config_t *cfg); /* device fields of cfg */

#endif
