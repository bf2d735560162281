/* Internal interface between the CRC-32C kernels and the CPython binding.
 *
 * Invariants:
 * - Kernels work on the raw CRC register: callers apply the pre/post
 *   inversion (crc ^ 0xFFFFFFFF) exactly once, around a whole call chain.
 * - Polynomials are reflected (LSB-first): bit 31 is x^0.
 * - Lengths are size_t for memory and uint64_t for combine, never 32-bit.
 * - crc32c_sw_init() runs once, before any kernel or combine is used; after
 *   that every table is read-only, so the kernels are safe without the GIL.
 */
#ifndef RESUMABLE_MEDIA_CRC32C_H
#define RESUMABLE_MEDIA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_POLY 0x82F63B78u

/* Stream lengths of the 3-way interleaved hardware kernels, in bytes.  Long
 * streams let the hardware prefetchers ramp up on each of the three: on the
 * Zen 3 dev box, hashing 1 MiB slices of a 64 MiB mmap ran at ~15 GB/s with
 * 8 KiB streams, ~19 with 32 KiB and ~21 with 64 KiB (larger gained nothing). */
#define CRC32C_LONG 65536u
#define CRC32C_SHORT 256u

typedef uint32_t (*crc32c_kernel_fn)(uint32_t crc, const unsigned char *buf, size_t len);

/* Tables that shift a register past CRC32C_LONG / CRC32C_SHORT zero bytes. */
extern uint32_t crc32c_shift_long[4][256];
extern uint32_t crc32c_shift_short[4][256];

void crc32c_sw_init(void);
uint32_t crc32c_slice8(uint32_t crc, const unsigned char *buf, size_t len);

/* a(x) * b(x) mod P(x). */
uint32_t crc32c_multmodp(uint32_t a, uint32_t b);
/* x^(8 * len) mod P(x): the operator that moves a CRC past len bytes. */
uint32_t crc32c_x8nmodp(uint64_t len);
/* CRC of A+B from the finished CRCs of A and B and len(B), O(log len_b). */
uint32_t crc32c_combine_crcs(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

static inline uint32_t crc32c_shift(const uint32_t table[4][256], uint32_t crc)
{
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^
           table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

/* Hardware kernel for this CPU, or NULL; *name receives its label.
 * Probes the CPU (call once, at import). */
crc32c_kernel_fn crc32c_hw_probe(const char **name);

#endif
