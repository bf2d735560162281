/* Hardware CRC-32C kernels and the CPU probe that picks one.
 *
 * Invariants: each kernel is compiled with a per-function target attribute,
 * so this file needs no ISA flags and the module still loads on CPUs without
 * the instructions; a kernel is only handed out after the runtime probe says
 * the CPU has it.  x86-64: SSE4.2 crc32; AArch64: ARMv8 CRC32 extension.
 */
#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__) || defined(_M_X64)
#define HAVE_X86_KERNEL 1
#include <nmmintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define CRC3_TARGET
#else
#include <cpuid.h>
#define CRC3_TARGET __attribute__((target("sse4.2")))
#endif
#define CRC3_NAME crc32c_sse42_3way
#define CRC3_ROUND crc32c_sse42_round
#define CRC3_U64(crc, word) _mm_crc32_u64((crc), (word))
#define CRC3_U8(crc, byte) _mm_crc32_u8((crc), (byte))
#include "crc32c_3way.h"

static int cpu_has_sse42(void)
{
#if defined(_MSC_VER) && !defined(__clang__)
    int info[4];
    __cpuid(info, 1);
    return (info[2] >> 20) & 1;
#else
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    return (ecx & bit_SSE4_2) != 0;
#endif
}

#elif defined(__aarch64__) || defined(_M_ARM64)
#define HAVE_ARM_KERNEL 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <arm64_neon.h>
#include <windows.h>
#define CRC3_TARGET
#define CRC3_U64(crc, word) __crc32cd((uint32_t)(crc), (word))
#define CRC3_U8(crc, byte) __crc32cb((crc), (byte))
#elif defined(__clang__)
/* Builtins, not <arm_acle.h>: clang < 17 only declares the intrinsics when
 * the whole file targets +crc, which would defeat the runtime probe. */
#define CRC3_TARGET __attribute__((target("crc")))
#define CRC3_U64(crc, word) __builtin_arm_crc32cd((uint32_t)(crc), (word))
#define CRC3_U8(crc, byte) __builtin_arm_crc32cb((crc), (byte))
#else
#include <arm_acle.h> /* GCC enables +crc around its intrinsics itself */
#define CRC3_TARGET __attribute__((target("+crc")))
#define CRC3_U64(crc, word) __crc32cd((uint32_t)(crc), (word))
#define CRC3_U8(crc, byte) __crc32cb((crc), (byte))
#endif
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif
#define CRC3_NAME crc32c_armv8_3way
#define CRC3_ROUND crc32c_armv8_round
#include "crc32c_3way.h"

static int cpu_has_arm_crc(void)
{
#if defined(__ARM_FEATURE_CRC32) || defined(__APPLE__)
    return 1; /* guaranteed by the compile target / every Apple arm64 CPU */
#elif defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#elif defined(_MSC_VER)
    return IsProcessorFeaturePresent(PF_ARM_V8_CRC32_INSTRUCTIONS_AVAILABLE) != 0;
#else
    return 0;
#endif
}
#endif

crc32c_kernel_fn crc32c_hw_probe(const char **name)
{
#if defined(HAVE_X86_KERNEL)
    if (cpu_has_sse42()) {
        *name = "sse4.2-3way";
        return crc32c_sse42_3way;
    }
#elif defined(HAVE_ARM_KERNEL)
    if (cpu_has_arm_crc()) {
        *name = "armv8-3way";
        return crc32c_armv8_3way;
    }
#endif
    *name = NULL;
    return NULL;
}
