/* FreeRTOS V11.2 configuration of the host tests of cairndb's FreeRTOS port: the POSIX port
 * (portable/ThirdParty/GCC/Posix) on Linux, heap_4. Every task is a pthread; the tick is a
 * SIGALRM sent by a timer thread every millisecond (it drifts: never assert tight timings);
 * TickType_t is `unsigned long` (64 bits on x86_64). */
#ifndef FREERTOS_CONFIG_H
#define FREERTOS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define configTICK_RATE_HZ 1000
#define configUSE_PREEMPTION 1
#define configUSE_TIME_SLICING 1
#define configUSE_PORT_OPTIMISED_TASK_SELECTION 0
#define configUSE_TICKLESS_IDLE 0
#define configMAX_PRIORITIES 8
/* The POSIX port runs each task on its pthread's own stack; the FreeRTOS stack only holds the
 * port's thread record, so its high-water mark says nothing about real stack use here. */
#define configMINIMAL_STACK_SIZE 256
#define configMAX_TASK_NAME_LEN 16
#define configTICK_TYPE_WIDTH_IN_BITS TICK_TYPE_WIDTH_64_BITS
#define configIDLE_SHOULD_YIELD 1
#define configTASK_NOTIFICATION_ARRAY_ENTRIES 1
#define configQUEUE_REGISTRY_SIZE 0
#define configENABLE_BACKWARD_COMPATIBILITY 0
#define configSTACK_DEPTH_TYPE uint32_t
#define configMESSAGE_BUFFER_LENGTH_TYPE size_t
#define configHEAP_CLEAR_MEMORY_ON_FREE 0
#define configUSE_NEWLIB_REENTRANT 0

/* Memory: heap_4 (pvPortMalloc) also serves cairndb (cairn_fr_use_freertos_heap(), see
 * heap_shim.c); the idle and timer tasks come from the application's static buffers. */
#define configSUPPORT_STATIC_ALLOCATION 1
#define configSUPPORT_DYNAMIC_ALLOCATION 1
#define configKERNEL_PROVIDED_STATIC_MEMORY 0
#define configTOTAL_HEAP_SIZE ((size_t)8u * 1024u * 1024u)
#define configAPPLICATION_ALLOCATED_HEAP 1 /* ucHeap is in heap_shim.c: its bounds are known */

/* The idle hook sleeps, so the idle task does not spin a core of the (shared) machine. */
#define configUSE_IDLE_HOOK 1
#define configUSE_TICK_HOOK 0
#define configCHECK_FOR_STACK_OVERFLOW 0
#define configUSE_MALLOC_FAILED_HOOK 1
#define configUSE_DAEMON_TASK_STARTUP_HOOK 0
#define configGENERATE_RUN_TIME_STATS 0
#define configUSE_TRACE_FACILITY 0
#define configUSE_STATS_FORMATTING_FUNCTIONS 0
#define configUSE_CO_ROUTINES 0

#define configUSE_TIMERS 1
#define configTIMER_TASK_PRIORITY (configMAX_PRIORITIES - 1)
#define configTIMER_QUEUE_LENGTH 8
#define configTIMER_TASK_STACK_DEPTH configMINIMAL_STACK_SIZE

#define configUSE_MUTEXES 1
#define configUSE_RECURSIVE_MUTEXES 1
#define configUSE_COUNTING_SEMAPHORES 1
#define configUSE_TASK_NOTIFICATIONS 1
#define configUSE_EVENT_GROUPS 1

#define INCLUDE_vTaskPrioritySet 1
#define INCLUDE_uxTaskPriorityGet 1
#define INCLUDE_vTaskDelete 1
#define INCLUDE_vTaskSuspend 1
#define INCLUDE_vTaskDelay 1
#define INCLUDE_xTaskDelayUntil 1
#define INCLUDE_xTaskGetCurrentTaskHandle 1
#define INCLUDE_uxTaskGetStackHighWaterMark 1
#define INCLUDE_xTaskGetSchedulerState 1
#define INCLUDE_eTaskGetState 1
#define INCLUDE_xSemaphoreGetMutexHolder 1
#define INCLUDE_xTimerPendFunctionCall 0

/* A failed assertion prints where and ends the process with status 2 (main.c). */
void test_assert_failed(const char *file, int line) __attribute__((noreturn));
#define configASSERT(x)                                   \
    do {                                                  \
        if (!(x)) test_assert_failed(__FILE__, __LINE__); \
    } while (0)

#endif
