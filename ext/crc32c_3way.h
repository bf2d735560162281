/* Template for a 3-way interleaved hardware CRC-32C kernel; included once per
 * instruction set by crc32c_hw.c with these macros defined:
 *   CRC3_NAME            function name;  CRC3_ROUND  name of its helper
 *   CRC3_TARGET          function attribute enabling the instructions (may be empty)
 *   CRC3_U64(crc, word)  one 64-bit step;  CRC3_U8(crc, byte)  one byte step
 *
 * Invariant: three independent streams over adjacent blocks hide the
 * instruction's 3-cycle latency; their registers are merged with the
 * shift tables (multiplication by x^(8 * block) mod P), so the result equals
 * the single-stream CRC.  Loads use memcpy, so any alignment is accepted.
 */
/* One round: three streams over adjacent `block`-byte blocks, then merged. */
CRC3_TARGET static inline uint32_t CRC3_ROUND(uint32_t crc, const unsigned char *buf,
                                              size_t block, const uint32_t shift[4][256])
{
    uint64_t c0 = crc, c1 = 0, c2 = 0, w;
    const unsigned char *end = buf + block;
    do {
        memcpy(&w, buf, 8);
        c0 = CRC3_U64(c0, w);
        memcpy(&w, buf + block, 8);
        c1 = CRC3_U64(c1, w);
        memcpy(&w, buf + 2 * block, 8);
        c2 = CRC3_U64(c2, w);
        buf += 8;
    } while (buf < end);
    crc = crc32c_shift(shift, (uint32_t)c0) ^ (uint32_t)c1;
    return crc32c_shift(shift, crc) ^ (uint32_t)c2;
}

CRC3_TARGET static uint32_t CRC3_NAME(uint32_t crc, const unsigned char *buf, size_t len)
{
    while (len && ((uintptr_t)buf & 7)) {
        crc = CRC3_U8(crc, *buf++);
        len--;
    }
    for (; len >= 3 * CRC32C_LONG; buf += 3 * CRC32C_LONG, len -= 3 * CRC32C_LONG)
        crc = CRC3_ROUND(crc, buf, CRC32C_LONG, crc32c_shift_long);
    for (; len >= 3 * CRC32C_SHORT; buf += 3 * CRC32C_SHORT, len -= 3 * CRC32C_SHORT)
        crc = CRC3_ROUND(crc, buf, CRC32C_SHORT, crc32c_shift_short);
    {
        uint64_t c = crc, w;
        for (; len >= 8; buf += 8, len -= 8) {
            memcpy(&w, buf, 8);
            c = CRC3_U64(c, w);
        }
        crc = (uint32_t)c;
    }
    while (len--)
        crc = CRC3_U8(crc, *buf++);
    return crc;
}
