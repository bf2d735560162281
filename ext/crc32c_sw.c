/* Portable CRC-32C: slicing-by-8 kernel and GF(2) polynomial arithmetic.
 *
 * Invariants: tables are filled once by crc32c_sw_init() and only read
 * afterwards; combine is O(log n) square-and-multiply with a table of
 * x^(2^k) mod P covering every 64-bit length, never hashing zeros.
 */
#include <string.h>

#include "crc32c.h"

static uint32_t slice8_table[8][256];
/* x2n_table[k] = x^(2^k) mod P; 67 entries reach 8 * (2^64 - 1) bits. */
#define X2N_ENTRIES 67
static uint32_t x2n_table[X2N_ENTRIES];

uint32_t crc32c_shift_long[4][256];
uint32_t crc32c_shift_short[4][256];

uint32_t crc32c_multmodp(uint32_t a, uint32_t b)
{
    /* Branch-free: the bits of a are random, so branching on them would
     * mispredict half the time and cost several times the arithmetic. */
    uint32_t product = 0;
    for (int i = 31; i >= 0; i--) {
        product ^= b & (0u - ((a >> i) & 1u)); /* bit i of a is x^(31 - i) */
        b = (b >> 1) ^ (CRC32C_POLY & (0u - (b & 1u)));
    }
    return product;
}

uint32_t crc32c_x8nmodp(uint64_t len)
{
    uint32_t result = 0x80000000u; /* x^0 */
    unsigned k = 3;                /* 8 * len = len * 2^3 */
    while (len) {
        if (len & 1)
            result = crc32c_multmodp(x2n_table[k], result);
        len >>= 1;
        k++;
    }
    return result;
}

uint32_t crc32c_combine_crcs(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    if (len_b == 0)
        return crc_a;
    return crc32c_multmodp(crc32c_x8nmodp(len_b), crc_a) ^ crc_b;
}

static void make_shift_table(uint32_t table[4][256], uint64_t len)
{
    uint32_t op = crc32c_x8nmodp(len);
    for (unsigned k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            table[k][b] = crc32c_multmodp(op, b << (8 * k));
}

void crc32c_sw_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int i = 0; i < 8; i++)
            crc = (crc & 1) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
        slice8_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = slice8_table[0][n];
        for (int k = 1; k < 8; k++) {
            crc = slice8_table[0][crc & 0xff] ^ (crc >> 8);
            slice8_table[k][n] = crc;
        }
    }
    x2n_table[0] = 0x40000000u; /* x^1 */
    for (int k = 1; k < X2N_ENTRIES; k++)
        x2n_table[k] = crc32c_multmodp(x2n_table[k - 1], x2n_table[k - 1]);
    make_shift_table(crc32c_shift_long, CRC32C_LONG);
    make_shift_table(crc32c_shift_short, CRC32C_SHORT);
}

static inline uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

uint32_t crc32c_slice8(uint32_t crc, const unsigned char *buf, size_t len)
{
    while (len && ((uintptr_t)buf & 7)) {
        crc = slice8_table[0][(crc ^ *buf++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t word = load_le64(buf) ^ crc;
        crc = slice8_table[7][word & 0xff] ^ slice8_table[6][(word >> 8) & 0xff] ^
              slice8_table[5][(word >> 16) & 0xff] ^ slice8_table[4][(word >> 24) & 0xff] ^
              slice8_table[3][(word >> 32) & 0xff] ^ slice8_table[2][(word >> 40) & 0xff] ^
              slice8_table[1][(word >> 48) & 0xff] ^ slice8_table[0][word >> 56];
        buf += 8;
        len -= 8;
    }
    while (len--)
        crc = slice8_table[0][(crc ^ *buf++) & 0xff] ^ (crc >> 8);
    return crc;
}
