#include "ccrc32c.h"
#include <string.h>

// Slicing-by-8 tables, built once on first use.
static uint32_t table[8][256];
static int table_ready = 0;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t tributary_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_tables();
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        uint32_t lo = (uint32_t)word ^ crc;
        uint32_t hi = (uint32_t)(word >> 32);
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24] ^
              table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^ table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        length -= 8;
    }
    while (length--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}

#if defined(__x86_64__)
#include <cpuid.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = ~crc;
    // Three independent streams hide the instruction's 3-cycle latency on large inputs.
    while (length >= 3 * 1024) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *p1 = p + 1024, *p2 = p + 2048;
        for (int i = 0; i < 1024; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p1 + i, 8);
            memcpy(&w2, p2 + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        // Combine: shift c over 2048 bytes and c1 over 1024 bytes of zeros.
        // Done with the portable shift since it happens once per 3 KiB.
        extern uint32_t tributary_crc32c_shift(uint32_t crc, size_t zeros);
        c = (uint64_t)(tributary_crc32c_shift((uint32_t)c, 2048) ^ tributary_crc32c_shift((uint32_t)c1, 1024) ^ (uint32_t)c2);
        p += 3 * 1024;
        length -= 3 * 1024;
    }
    while (length >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

static int hw_state = -1;

static int has_sse42(void) {
    int s = __atomic_load_n(&hw_state, __ATOMIC_ACQUIRE);
    if (s < 0) {
        unsigned a, b, c, d;
        s = (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) ? 1 : 0;
        __atomic_store_n(&hw_state, s, __ATOMIC_RELEASE);
    }
    return s;
}
#endif

// Multiplies in GF(2) modulo the reflected Castagnoli polynomial.
static uint32_t gf2_multiply(uint32_t a, uint32_t b) {
    uint32_t product = 0;
    for (int i = 0; i < 32; i++) {
        if (b & 0x80000000u) product ^= a;
        b <<= 1;
        a = (a >> 1) ^ (0x82F63B78u & (0u - (a & 1)));
    }
    return product;
}

// x^(8*n) mod P, by square-and-multiply, in reflected form.
static uint32_t x_pow_8n(size_t n) {
    uint32_t result = 0x80000000u;  // x^0
    uint32_t power = 0x00800000u;   // x^8
    while (n) {
        if (n & 1) result = gf2_multiply(result, power);
        power = gf2_multiply(power, power);
        n >>= 1;
    }
    return result;
}

// Advances a raw (non-inverted) CRC register over `zeros` zero bytes.
uint32_t tributary_crc32c_shift(uint32_t crc, size_t zeros) {
    static uint32_t cached1024 = 0, cached2048 = 0;
    uint32_t factor;
    if (zeros == 1024) {
        if (!cached1024) cached1024 = x_pow_8n(1024);
        factor = cached1024;
    } else if (zeros == 2048) {
        if (!cached2048) cached2048 = x_pow_8n(2048);
        factor = cached2048;
    } else {
        factor = x_pow_8n(zeros);
    }
    return gf2_multiply(crc, factor);
}

uint32_t tributary_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    if (has_sse42()) return crc32c_hw(crc, data, length);
#endif
    return tributary_crc32c_portable(crc, data, length);
}

int tributary_crc32c_is_hardware(void) {
#if defined(__x86_64__)
    return has_sse42();
#else
    return 0;
#endif
}
