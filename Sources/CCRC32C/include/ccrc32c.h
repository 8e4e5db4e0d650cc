#ifndef CCRC32C_H
#define CCRC32C_H
#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli) over `length` bytes. Pass 0 to start; the
/// value is pre- and post-inverted as Kafka's Crc32C expects.
uint32_t tributary_crc32c(uint32_t crc, const void *data, size_t length);

/// 1 when the SSE4.2 crc32 instruction is used, 0 for the portable table.
int tributary_crc32c_is_hardware(void);

/// The portable path, exposed so tests can compare both.
uint32_t tributary_crc32c_portable(uint32_t crc, const void *data, size_t length);
#endif
