/* spr_clones.h - the hot loops of the library compiled for x86-64-v4
 * (AVX-512), x86-64-v3 (AVX2, POPCNT, BMI) and baseline x86-64, the loader
 * picking one (GCC function multiversioning; clang 14 emitted no symbol for
 * them, so clang builds one variant).  Every variant
 * performs the same IEEE operations: the project builds with -std=c11,
 * whose -ffp-contract=off keeps a * b + c from becoming one fused
 * multiply-add, so results do not depend on the variant.  Internal header
 * (not installed). */
#ifndef SPR_CLONES_H
#define SPR_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && !defined(SPR_NO_CLONES)
#define SPR_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* kernels written with AVX-512 intrinsics (target("avx512f") functions),
 * run when spr_cpu_avx512() says so, beside their generic twins */
#define SPR_AVX512_KERNELS 1
#include <immintrin.h>
#else
#define SPR_HOT
#define SPR_AVX512_KERNELS 0
#endif

#endif
