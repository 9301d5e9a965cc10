/* See board.h. */
#include "board.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "FreeRTOS.h"
#include "semphr.h"
#include "task.h"

/* ---- start ------------------------------------------------------------------------------ */

extern uint32_t __bss_start__, __bss_end__, __stack_top;
int main(void);
void reset_handler(void);
void SVC_Handler(void);
void PendSV_Handler(void);
void SysTick_Handler(void);

static void fault_handler(void) {
    board_puts("board: hard fault\n");
    board_exit(3);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top,   (const void *)reset_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler, 0, 0, 0, 0, (const void *)SVC_Handler,
    (const void *)fault_handler, 0, (const void *)PendSV_Handler, (const void *)SysTick_Handler,
};

void reset_handler(void) {
    memset(&__bss_start__, 0, (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
    board_exit(main());
}

/* ---- semihosting ------------------------------------------------------------------------ */

static int semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

void board_exit(int code) {
    uint32_t args[2] = {0x20026 /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    semihost(0x20, args); /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

/* The C library's abort() (the Rust panic handler calls it) ends here. */
void _exit(int code) { board_exit(code == 0 ? 4 : code); }

int board_cmdline(char *buf, size_t cap) {
    uint32_t args[2] = {(uint32_t)buf, (uint32_t)cap};
    return semihost(0x15, args) == 0 ? 0 : -1;
}

int board_file_open(const char *path, int mode) {
    uint32_t args[3] = {(uint32_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return semihost(0x01, args);
}

int board_file_close(int fh) {
    uint32_t args[1] = {(uint32_t)fh};
    return semihost(0x02, args);
}

int board_file_write(int fh, const void *buf, size_t len) {
    uint32_t args[3] = {(uint32_t)fh, (uint32_t)buf, (uint32_t)len};
    return semihost(0x05, args);
}

int board_file_read(int fh, void *buf, size_t len) {
    uint32_t args[3] = {(uint32_t)fh, (uint32_t)buf, (uint32_t)len};
    return semihost(0x06, args);
}

int board_file_seek(int fh, size_t pos) {
    uint32_t args[2] = {(uint32_t)fh, (uint32_t)pos};
    return semihost(0x0A, args);
}

long board_file_len(int fh) {
    uint32_t args[1] = {(uint32_t)fh};
    return semihost(0x0C, args);
}

/* ---- UART0 ------------------------------------------------------------------------------ */

#define UART0 ((volatile uint32_t *)0x40004000u)
static SemaphoreHandle_t out_mutex;
static StaticSemaphore_t out_mutex_buf;

void board_init(void) {
    UART0[4] = 16; /* BAUDDIV */
    UART0[2] = 1;  /* CTRL: TX enable */
    out_mutex = xSemaphoreCreateMutexStatic(&out_mutex_buf);
}

static void uart_putc(char c) {
    while (UART0[1] & 1u) {
    }
    UART0[0] = (uint32_t)(uint8_t)c;
}

static int scheduler_running(void) { return xTaskGetSchedulerState() == taskSCHEDULER_RUNNING; }

void board_puts(const char *s) {
    int locked = scheduler_running() && out_mutex != NULL &&
                 xSemaphoreTake(out_mutex, portMAX_DELAY) == pdTRUE;
    for (; *s; s++) {
        if (*s == '\n') uart_putc('\r');
        uart_putc(*s);
    }
    if (locked) xSemaphoreGive(out_mutex);
}

void board_printf(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    board_puts(line);
}

/* ---- FreeRTOS hooks --------------------------------------------------------------------- */

void board_assert_failed(const char *file, int line) {
    taskDISABLE_INTERRUPTS();
    char msg[160];
    snprintf(msg, sizeof msg, "board: assertion failed at %s:%d\n", file, line);
    board_puts(msg);
    board_exit(5);
}

void vApplicationStackOverflowHook(TaskHandle_t task, char *name) {
    (void)task;
    board_printf("board: stack overflow in task %s\n", name);
    board_exit(6);
}

void vApplicationMallocFailedHook(void) {
    board_puts("board: pvPortMalloc failed\n");
    board_exit(7);
}

/* ---- NOR flash in RAM ------------------------------------------------------------------- */

static uint8_t nor_mem[NOR_SIZE] __attribute__((aligned(8)));
static uint8_t backup_mem[BACKUP_NOR_BLOCK_COUNT * NOR_BLOCK_SIZE] __attribute__((aligned(8)));

static uint32_t nor_size(const nor_t *n) { return n->blocks * NOR_BLOCK_SIZE; }

static void nor_init_on(nor_t *n, uint8_t *mem, uint32_t blocks) {
    n->mem = mem;
    n->blocks = blocks;
    n->fh = -1;
    n->progs = n->erases = 0;
    memset(n->mem, 0xFF, nor_size(n));
}

void nor_init(nor_t *n) { nor_init_on(n, nor_mem, NOR_BLOCK_COUNT); }

void nor_init_backup(nor_t *n) { nor_init_on(n, backup_mem, BACKUP_NOR_BLOCK_COUNT); }

int nor_load(nor_t *n, const char *path) {
    int fh = board_file_open(path, SH_MODE_RB);
    if (fh < 0) return -1;
    int rc = (board_file_len(fh) == (long)nor_size(n) && board_file_read(fh, n->mem, nor_size(n)) == 0) ? 0 : -2;
    board_file_close(fh);
    return rc;
}

int nor_save(nor_t *n, const char *path) {
    int fh = board_file_open(path, SH_MODE_WB);
    if (fh < 0) return -1;
    int rc = board_file_write(fh, n->mem, nor_size(n)) == 0 ? 0 : -2;
    board_file_close(fh);
    return rc;
}

int nor_write_through(nor_t *n, const char *path) {
    int fh = board_file_open(path, SH_MODE_WPB);
    if (fh < 0) return -1;
    if (board_file_write(fh, n->mem, nor_size(n)) != 0) {
        board_file_close(fh);
        return -2;
    }
    n->fh = fh;
    return 0;
}

static void nor_mirror(nor_t *n, uint32_t pos, uint32_t len) {
    if (n->fh < 0) return;
    if (board_file_seek(n->fh, pos) != 0 || board_file_write(n->fh, n->mem + pos, len) != 0) {
        board_puts("board: write-through to the host file failed\n");
        board_exit(8);
    }
}

/* The library never asks outside the geometry it was given; refuse it anyway, as a driver
 * should. */
static int nor_in_range(const nor_t *n, uint32_t block, uint32_t off, uint32_t len) {
    return block < n->blocks && off <= NOR_BLOCK_SIZE && len <= NOR_BLOCK_SIZE - off;
}

static int32_t nor_read(void *ctx, uint32_t block, uint32_t off, uint8_t *buf, uint32_t len) {
    nor_t *n = ctx;
    if (!nor_in_range(n, block, off, len)) return -1;
    memcpy(buf, n->mem + block * NOR_BLOCK_SIZE + off, len);
    return 0;
}

static int32_t nor_prog(void *ctx, uint32_t block, uint32_t off, const uint8_t *buf, uint32_t len) {
    nor_t *n = ctx;
    if (!nor_in_range(n, block, off, len)) return -1;
    uint8_t *p = n->mem + block * NOR_BLOCK_SIZE + off;
    for (uint32_t i = 0; i < len; i++) {
        if ((p[i] & buf[i]) != buf[i]) return -1; /* would set a bit: not erased */
    }
    for (uint32_t i = 0; i < len; i++) p[i] &= buf[i];
    n->progs++;
    nor_mirror(n, block * NOR_BLOCK_SIZE + off, len);
    return 0;
}

static int32_t nor_erase(void *ctx, uint32_t block) {
    nor_t *n = ctx;
    if (!nor_in_range(n, block, 0, NOR_BLOCK_SIZE)) return -1;
    memset(n->mem + block * NOR_BLOCK_SIZE, 0xFF, NOR_BLOCK_SIZE);
    n->erases++;
    nor_mirror(n, block * NOR_BLOCK_SIZE, NOR_BLOCK_SIZE);
    return 0;
}

void nor_config(nor_t *n, cairn_config_t *cfg) {
    cfg->ctx = n;
    cfg->read = nor_read;
    cfg->prog = nor_prog;
    cfg->erase = nor_erase;
    cfg->sync = NULL;
    cfg->read_size = 16;
    cfg->prog_size = 16;
    cfg->block_size = NOR_BLOCK_SIZE;
    cfg->block_count = n->blocks;
}
