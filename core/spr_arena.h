/* spr_arena.h - one region for the long-lived buffers of a run.
 *
 * A run allocates its heads' and threads' buffers once (tens of MiB) and
 * touches every page of them.  On the virtual machines this was measured
 * on, the first touch of a 4 KiB page costs 10 us of CPU, about 1.6
 * GEMM-equivalents of the default run (docs/performance.md 6.0).
 * An arena takes its memory in chunks aligned to 2 MiB and asks the kernel
 * for transparent huge pages on them (madvise MADV_HUGEPAGE), so one fault
 * maps 2 MiB.  Where the kernel has no huge pages, or they are off, the
 * arena is plain anonymous memory.
 *
 * Its buffers are freed together, with the arena.  Every buffer starts on
 * a 64-byte boundary and is zero.  In a sanitizer build (AddressSanitizer)
 * each buffer is an aligned_alloc of its own, so out-of-bounds accesses
 * between buffers are still caught. */
#ifndef SPR_ARENA_H
#define SPR_ARENA_H

#include <stddef.h>

typedef struct spr_arena spr_arena;

/* A new, empty arena, or NULL (out of memory). */
spr_arena *spr_arena_new(void);
/* bytes (0: as 1) of zeroed memory, 64-byte aligned, valid until the arena is
 * freed; NULL when the memory is exhausted (or a NULL arena). */
void *spr_arena_alloc(spr_arena *a, size_t bytes);
/* Frees every buffer of a; NULL: no-op. */
void spr_arena_free(spr_arena *a);
/* The bytes a has taken from the system (chunks, or the sanitizer's
 * buffers), for tests. */
size_t spr_arena_reserved(const spr_arena *a);

#endif
