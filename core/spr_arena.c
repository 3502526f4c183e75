/* spr_arena.c - one region for the long-lived buffers of a run
 * (spr_arena.h). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include "config.h"
#include "spr_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SPR_ARENA_PER_BUFFER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPR_ARENA_PER_BUFFER 1
#endif
#endif

enum {
  ALIGN = 64,
  HUGE = 2 << 20,             /* a transparent huge page on x86-64 and arm64 */
  CHUNK_MIN = 8 * (2 << 20)   /* the smallest chunk: 16 MiB of address space;
                                 only the huge pages touched become resident */
};

typedef struct chunk {
  struct chunk *next;
  char *base;  /* the chunk, HUGE-aligned (or a sanitizer build's buffer) */
  size_t size, used, map; /* map: the bytes mapped at base */
} chunk;

struct spr_arena {
  chunk *top;
  size_t reserved;
};

spr_arena *spr_arena_new(void) { return calloc(1, sizeof(spr_arena)); }

/* A chunk of at least bytes, HUGE-aligned: map HUGE more than the size and
 * unmap what lies before the first boundary and after the end. */
static chunk *chunk_new(size_t bytes) {
  chunk *k = calloc(1, sizeof *k);
  if (!k) return NULL;
#ifdef SPR_ARENA_PER_BUFFER
  /* bytes is a multiple of ALIGN (spr_arena_alloc) */
  if (!(k->base = aligned_alloc(ALIGN, bytes))) {
    free(k);
    return NULL;
  }
  memset(k->base, 0, bytes);
  k->size = k->map = bytes;
  return k;
#else
  size_t size = bytes < CHUNK_MIN ? CHUNK_MIN : (bytes + HUGE - 1) / HUGE * HUGE;
  if (size < bytes) { /* wrapped */
    free(k);
    return NULL;
  }
  char *p = mmap(NULL, size + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    free(k);
    return NULL;
  }
  char *b = (char *)(((uintptr_t)p + HUGE - 1) / HUGE * HUGE);
  if (b > p) munmap(p, (size_t)(b - p));
  size_t tail = (size_t)(p + size + HUGE - (b + size));
  if (tail) munmap(b + size, tail);
#ifdef MADV_HUGEPAGE
  madvise(b, size, MADV_HUGEPAGE); /* advice: no huge pages is no error */
#endif
  k->base = b;
  k->size = k->map = size;
  return k;
#endif
}

static void chunk_free(chunk *k) {
#ifdef SPR_ARENA_PER_BUFFER
  free(k->base);
#else
  munmap(k->base, k->map);
#endif
  free(k);
}

void *spr_arena_alloc(spr_arena *a, size_t bytes) {
  if (!a || bytes > SIZE_MAX - 2 * (size_t)HUGE) return NULL;
  if (!bytes) bytes = 1; /* as malloc(0): a buffer to free with the rest */
  bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
#ifndef SPR_ARENA_PER_BUFFER
  chunk *t = a->top;
  if (t && t->size - t->used >= bytes) {
    void *p = t->base + t->used;
    t->used += bytes;
    return p;
  }
#endif
  chunk *k = chunk_new(bytes);
  if (!k) return NULL;
  k->used = bytes;
  a->reserved += k->map;
  if (a->top && k->size - k->used < a->top->size - a->top->used) {
    /* a buffer of a chunk of its own: the top chunk keeps its room */
    k->next = a->top->next;
    a->top->next = k;
  } else {
    k->next = a->top;
    a->top = k;
  }
  return k->base;
}

void spr_arena_free(spr_arena *a) {
  if (!a) return;
  for (chunk *k = a->top, *next; k; k = next) {
    next = k->next;
    chunk_free(k);
  }
  free(a);
}

size_t spr_arena_reserved(const spr_arena *a) { return a ? a->reserved : 0; }
