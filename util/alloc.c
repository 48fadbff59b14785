/* alloc.c - see alloc.h. Blocks carry a 32-byte header (tl_block) in front
 * of the user's pointer; tracked ones sit in their region's doubly linked
 * list, which one process-wide mutex guards (a block may be freed by another
 * thread than the one that allocated it). Untracked blocks never touch the
 * mutex, so the allocations of a run outside any region stay cheap. */
#define _GNU_SOURCE /* mremap */
#include "util/alloc.h"

#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(sizeof(tl_block) == 32, "tl_block must keep 16-byte alignment");

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local tl_region *top;
static _Atomic uint64_t count;
static _Atomic uint64_t fail_at;

void tl_alloc_fail_at(uint64_t k) { atomic_store(&fail_at, k ? atomic_load(&count) + k : 0); }
uint64_t tl_alloc_count(void) { return atomic_load(&count); }

/* True when this allocation is the one chosen to fail. */
static int inject(void) {
  uint64_t c = atomic_fetch_add(&count, 1) + 1;
  uint64_t k = atomic_load(&fail_at);
  return k && c == k;
}

static void link_block(tl_block *h) {
  tl_region *r = top;
  if (!r) {
    h->prev = h->next = NULL;
    return;
  }
  pthread_mutex_lock(&lock);
  h->next = r->head.next;
  h->prev = &r->head;
  r->head.next->prev = h;
  r->head.next = h;
  pthread_mutex_unlock(&lock);
}

static void unlink_block(tl_block *h) {
  if (!h->prev) return;
  pthread_mutex_lock(&lock);
  h->prev->next = h->next;
  h->next->prev = h->prev;
  pthread_mutex_unlock(&lock);
}

/* Blocks grown (realloc) to BIG bytes or more, blocks zeroed by
 * tl_xcalloc_pages from BIG bytes on, and any block of MAPPED bytes or more
 * get pages of their own: an anonymous mapping of whole 2 MiB pages at a
 * 2 MiB boundary, advised MADV_HUGEPAGE, unmapped when freed (tl_block.base
 * NULL). Where the kernel's THP mode is `madvise` (Debian's default) their
 * first touch faults 2 MiB at a time instead of 4 KiB (a 4 KiB fault cost
 * ~10 us on the VMs measured), growth moves page tables instead of copying
 * bytes, and a freed block goes back to the kernel at once. The first two
 * are the e-graph's tables and match buffers, whose last iterations fault
 * in tens of megabytes (docs/egraph.md, "Pages of their own"); the third
 * what glibc maps and unmaps at every allocation anyway (its mmap
 * threshold grows to 32 MiB at most). Smaller blocks from malloc and
 * calloc stay glibc's: a tensor output freed and allocated again each call
 * stays warm there (tl_alloc_tune), where a mapping of its own faulted
 * 256 KiB in 60 us instead of 5 each call. */
enum { BIG = 256 << 10, MAPPED = 32 << 20, HUGE = 2 << 20 };

static size_t round_huge(size_t n) { return (n + HUGE - 1) & ~(size_t)(HUGE - 1); }

/* A mapped block's mapping starts at the 2 MiB boundary below its header
 * (the user's bytes start at most 2 MiB into it) and spans its offset
 * there plus n bytes, in whole 2 MiB pages. */
static char *map_base(const tl_block *h) { return (char *)((uintptr_t)h & ~(uintptr_t)(HUGE - 1)); }
static size_t map_span(const tl_block *h, size_t n) {
  return round_huge((size_t)((const char *)(h + 1) - map_base(h)) + n);
}

/* len bytes (a multiple of HUGE) of zero pages at a HUGE-aligned address,
 * advised (without THP the advice changes nothing) */
static void *map_aligned(size_t len) {
  char *raw = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *a = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
  if (a > raw) munmap(raw, (size_t)(a - raw));
  if (raw + HUGE > a) munmap(a + len, (size_t)(raw + HUGE - a));
#ifdef MADV_HUGEPAGE
  (void)madvise(a, len, MADV_HUGEPAGE);
#endif
  return a;
}

/* The header of a new mapped block of n bytes whose bytes are aligned to
 * align (a power of two, at most HUGE) */
static tl_block *map_block(size_t n, size_t align) {
  size_t off = align > sizeof(tl_block) ? align : sizeof(tl_block);
  if (n > SIZE_MAX - off - HUGE) return NULL;
  char *a = map_aligned(round_huge(off + n));
  return a ? (tl_block *)(a + off) - 1 : NULL;
}

/* A mapped block h grown or shrunk to n bytes: within its mapping, or its
 * pages moved (page tables, not bytes) to the front of a new aligned
 * mapping, where 2 MiB pages stay whole. NULL when out of memory. */
static tl_block *remap_block(tl_block *h, size_t n) {
  if (n > SIZE_MAX - 2 * (size_t)HUGE) return NULL;
  char *m = map_base(h);
  size_t old = map_span(h, h->size), len = map_span(h, n);
  if (len == old) return h;
  if (len < old) {
    munmap(m + len, old - len);
    return h;
  }
  char *a = map_aligned(len);
  if (!a) return NULL;
  if (mremap(m, old, old, MREMAP_MAYMOVE | MREMAP_FIXED, a) == MAP_FAILED) {
    munmap(a, len);
    return NULL;
  }
  return (tl_block *)(a + ((char *)h - m));
}

static void release(tl_block *h) {
  if (h->base)
    free(h->base);
  else
    munmap(map_base(h), map_span(h, h->size));
}

static void *finish(tl_block *h, void *base, size_t n) {
  h->base = base;
  h->size = n;
  link_block(h);
  return h + 1;
}

/* A new block of n bytes, aligned to align, on pages of its own */
static void *map_new(size_t n, size_t align) {
  tl_block *h = map_block(n, align);
  return h ? finish(h, NULL, n) : NULL;
}

void *tl_try_malloc(size_t n) {
  if (inject() || n > SIZE_MAX - sizeof(tl_block) - HUGE) return NULL;
  if (n >= MAPPED) return map_new(n, 16);
  tl_block *h = malloc(sizeof *h + n);
  return h ? finish(h, h, n) : NULL;
}

/* calloc itself, not malloc + memset: a large block then comes as fresh
 * zero pages that are faulted in only when written. */
static void *calloc_from(size_t n, size_t size, size_t own_pages_from) {
  if (inject() || (size && n > (SIZE_MAX - sizeof(tl_block)) / size - 1)) return NULL;
  if (n * size >= own_pages_from) return map_new(n * size, 16); /* zero pages, faulted in when touched */
  tl_block *h = calloc(1, sizeof *h + n * size);
  return h ? finish(h, h, n * size) : NULL;
}

void *tl_try_calloc(size_t n, size_t size) { return calloc_from(n, size, MAPPED); }
void *tl_try_calloc_pages(size_t n, size_t size) { return calloc_from(n, size, BIG); }

void *tl_try_realloc(void *p, size_t n) {
  if (!p) return tl_try_malloc(n);
  if (inject() || n > SIZE_MAX - sizeof(tl_block)) return NULL;
  tl_block *h = (tl_block *)p - 1;
  /* an aligned block, or one growing to BIG bytes: moved by hand (a BIG
   * block into pages of its own, advised before the copy touches them) */
  if (h->base && (h->base != h || n >= BIG)) {
    void *q = n >= BIG ? map_new(n, 16) : tl_try_malloc(n);
    if (!q) return NULL;
    memcpy(q, p, h->size < n ? h->size : n);
    tl_free(p);
    return q;
  }
  int tracked = h->prev != NULL;
  if (tracked) pthread_mutex_lock(&lock);
  tl_block *nh;
  int mapped = !h->base;
  if (mapped) {
    nh = remap_block(h, n);
  } else {
    nh = realloc(h, sizeof *nh + n);
  }
  if (nh) {
    nh->base = mapped ? NULL : nh;
    nh->size = n;
    if (tracked) {
      nh->prev->next = nh;
      nh->next->prev = nh;
    }
  }
  if (tracked) pthread_mutex_unlock(&lock);
  return nh ? nh + 1 : NULL;
}

char *tl_try_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = tl_try_malloc(len + 1);
  if (!d) return NULL;
  memcpy(d, s, len);
  d[len] = 0;
  return d;
}

char *tl_try_strdup(const char *s) { return tl_try_strndup(s, SIZE_MAX); }

void *tl_try_aligned_alloc(size_t align, size_t n) {
  if (align < sizeof(tl_block)) align = sizeof(tl_block);
  if (inject() || n > SIZE_MAX - 2 * align - HUGE) return NULL;
  if (n >= MAPPED && align <= HUGE) return map_new(n, align);
  size_t total = (align + n + align - 1) & ~(align - 1);
  char *base = aligned_alloc(align, total);
  if (!base) return NULL;
  tl_block *h = (tl_block *)(base + align) - 1;
  return finish(h, base, n);
}

void tl_free(void *p) {
  if (!p) return;
  tl_block *h = (tl_block *)p - 1;
  unlink_block(h);
  release(h);
}

void tl_free_foreign(void *p) { free(p); }

_Noreturn void tl_oom(size_t n) {
  tl_region *r = top;
  if (!r) {
    fprintf(stderr, "tlaloc: out of memory (allocating %zu bytes)\n", n);
    abort();
  }
  /* Cleanups first: they may read blocks of the region (an LLVM context
   * kept in a struct the region allocated). */
  while (r->cleanups) {
    tl_cleanup *c = r->cleanups;
    r->cleanups = c->next;
    if (c->arg) c->fn(c->arg);
    c->region = NULL;
  }
  pthread_mutex_lock(&lock);
  tl_block *h = r->head.next;
  r->head.next = r->head.prev = &r->head;
  pthread_mutex_unlock(&lock);
  while (h != &r->head) {
    tl_block *next = h->next;
    release(h);
    h = next;
  }
  top = r->parent;
  r->failed = n;
  longjmp(r->jb, 1);
}

void *tl_xmalloc(size_t n) {
  void *p = tl_try_malloc(n);
  if (!p) tl_oom(n);
  return p;
}

void *tl_xcalloc(size_t n, size_t size) {
  void *p = tl_try_calloc(n, size);
  if (!p) tl_oom(n * size);
  return p;
}

void *tl_xcalloc_pages(size_t n, size_t size) {
  void *p = tl_try_calloc_pages(n, size);
  if (!p) tl_oom(n * size);
  return p;
}

void *tl_xrealloc(void *p, size_t n) {
  void *q = tl_try_realloc(p, n);
  if (!q) tl_oom(n);
  return q;
}

char *tl_xstrndup(const char *s, size_t n) {
  char *d = tl_try_strndup(s, n);
  if (!d) tl_oom(n);
  return d;
}

char *tl_xstrdup(const char *s) { return tl_xstrndup(s, SIZE_MAX); }

void *tl_xaligned_alloc(size_t align, size_t n) {
  void *p = tl_try_aligned_alloc(align, n);
  if (!p) tl_oom(n);
  return p;
}

void tl_region_enter_(tl_region *r) {
  r->parent = top;
  r->head.next = r->head.prev = &r->head;
  r->head.base = NULL;
  r->head.size = 0;
  r->cleanups = NULL;
  r->failed = 0;
  top = r;
}

void tl_keep(void *p) {
  if (!p) return;
  tl_block *h = (tl_block *)p - 1;
  unlink_block(h);
  h->prev = h->next = NULL;
}

void tl_adopt(void *p) {
  if (!p) return;
  tl_block *h = (tl_block *)p - 1;
  if (!h->prev) link_block(h);
}

int tl_in_region(void) { return top != NULL; }

void tl_region_end(tl_region *r) {
  if (top != r) {
    fprintf(stderr, "tlaloc: internal error: regions left out of order\n");
    abort();
  }
  tl_region *p = r->parent;
  /* Cleanups still armed pass to the parent (the resource was handed on);
   * at the outermost region they are detached for their owner to pop. */
  while (r->cleanups) {
    tl_cleanup *c = r->cleanups;
    r->cleanups = c->next;
    c->region = p;
    if (p) {
      c->next = p->cleanups;
      p->cleanups = c;
    } else {
      c->next = NULL;
    }
  }
  pthread_mutex_lock(&lock);
  if (r->head.next != &r->head) {
    if (p) { /* splice the whole list in front of the parent's */
      tl_block *first = r->head.next, *last = r->head.prev;
      last->next = p->head.next;
      p->head.next->prev = last;
      p->head.next = first;
      first->prev = &p->head;
    } else {
      for (tl_block *h = r->head.next, *next; h != &r->head; h = next) {
        next = h->next;
        h->prev = h->next = NULL;
      }
    }
  }
  r->head.next = r->head.prev = &r->head;
  pthread_mutex_unlock(&lock);
  top = p;
}

tl_cleanup *tl_cleanup_push(void (*fn)(void *arg)) {
  tl_cleanup *c = tl_xmalloc(sizeof *c);
  c->fn = fn;
  c->arg = NULL;
  c->region = top;
  c->next = NULL;
  if (top) {
    c->next = top->cleanups;
    top->cleanups = c;
  }
  return c;
}

void tl_cleanup_pop(tl_cleanup *c) {
  if (!c) return;
  if (c->region) {
    for (tl_cleanup **pp = &c->region->cleanups; *pp; pp = &(*pp)->next)
      if (*pp == c) {
        *pp = c->next;
        break;
      }
  }
  tl_free(c);
}

/* ---- glibc's thresholds (alloc.h) ----------------------------------------- */

static void tune_once(void) {
#ifdef __GLIBC__
  const char *t = getenv("TLALOC_MALLOC_TUNE");
  if ((t && t[0] == '0') || getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_")) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

void tl_alloc_tune(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, tune_once);
}
