//! Empty: this package exists only to fetch the FreeRTOS kernel sources.
