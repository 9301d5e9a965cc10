/*
 * Bare-metal start for QEMU mps2-an385: a vector table, a reset handler that clears .bss and
 * runs main, and semihosting for output and the exit status (SYS_EXIT_EXTENDED).
 */
#include <stdint.h>
#include <string.h>

extern uint32_t __bss_start__, __bss_end__, __stack_top;
int main(void);
void reset_handler(void);

static void semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void qemu_puts(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }

__attribute__((noreturn)) void qemu_exit(int code) {
    uint32_t args[2] = {0x20026 /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    semihost(0x20, args); /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

static void fault_handler(void) {
    qemu_puts("qemu: hard fault\n");
    qemu_exit(3);
}

/* Called by the C library's abort() (the Rust panic handler calls abort). */
void _exit(int code) { qemu_exit(code == 0 ? 4 : code); }

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top, (const void *)reset_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler,
};

void reset_handler(void) {
    memset(&__bss_start__, 0, (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
    qemu_exit(main());
}
