/* alloc.h - the one allocation hook of tlaloc, and recovery from running
 * out of memory.
 *
 * Every heap block tlaloc's own code allocates comes from here and is
 * released with tl_free (never libc's free, and tl_free never takes a block
 * that libc or LLVM allocated). That gives one place where an out-of-memory
 * test can fail any allocation (tl_alloc_fail_at), and one way to recover:
 *
 *   - tl_x* never return NULL. When memory runs out they unwind (longjmp)
 *     to the innermost *region* of the calling thread, which frees every
 *     block allocated since it was entered and still live, runs the cleanups
 *     registered since (LLVM objects, open files), and reports
 *     "out of memory" to its caller. With no region, they print and abort.
 *   - tl_try_* return NULL instead: for sizes the user chose (tensors, input
 *     files), where the caller reports which allocation failed.
 *
 * A region is entered at each entry point that can fail (the public C API,
 * each CLI command):
 *
 *   tl_region r;
 *   if (!TL_REGION_TRY(&r)) return TLALOC_OUT_OF_MEMORY; // unwound
 *   status = work(...);           // may allocate; keeps or frees as usual
 *   tl_region_end(&r);            // what is still live now belongs to the caller
 *
 * Rules for code that runs inside a region (all of tlaloc): write a new
 * block into an object that existed before the region only after the last
 * allocation of that step (so an unwind never leaves a pointer to a freed
 * block behind), and arm a cleanup (tl_cleanup_push) before acquiring any
 * resource that is not a tl_ block. Blocks are tracked in a list per region
 * (32 bytes of header); blocks allocated outside any region are untracked
 * and cost no lock. */
#ifndef TL_ALLOC_H
#define TL_ALLOC_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

void *tl_xmalloc(size_t n);
void *tl_xcalloc(size_t n, size_t size);
/* As tl_xcalloc, but from 256 KiB on the block gets pages of its own (huge
 * pages, unmapped when freed; alloc.c says why): for tables that are built
 * and grown within one run, like the e-graph's, not for blocks allocated
 * and freed each call (tensors), which stay warm in glibc's heap. */
void *tl_xcalloc_pages(size_t n, size_t size);
void *tl_xrealloc(void *p, size_t n);
char *tl_xstrdup(const char *s);
char *tl_xstrndup(const char *s, size_t n);
/* align: a power of two; the block is released with tl_free too. */
void *tl_xaligned_alloc(size_t align, size_t n);

/* Keeps freed memory of tensor sizes warm in this process: glibc's
 * defaults return a freed block of over 128 KiB to the kernel (mmap'd, or
 * trimmed off the heap's top once 2x that is free), so the next call's
 * outputs fault their pages in again, which costs ~10 us per 4 KiB page on
 * the VMs measured: two 256 KiB outputs made a 20 us call 900 us. Sets
 * M_MMAP_THRESHOLD to 32 MiB and M_TRIM_THRESHOLD to 64 MiB, once, unless
 * the environment sets either (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)
 * or TLALOC_MALLOC_TUNE=0; a no-op without glibc. Process-wide, so the
 * library never calls it on its own: the CLI and the Python package do
 * (the public tlaloc_malloc_tune), C hosts may. */
void tl_alloc_tune(void);

void *tl_try_malloc(size_t n);
void *tl_try_calloc(size_t n, size_t size);
void *tl_try_calloc_pages(size_t n, size_t size);
void *tl_try_realloc(void *p, size_t n);
char *tl_try_strdup(const char *s);
char *tl_try_strndup(const char *s, size_t n);
void *tl_try_aligned_alloc(size_t align, size_t n);

void tl_free(void *p);
/* Releases a block that libc allocated for tlaloc (open_memstream's). */
void tl_free_foreign(void *p);

/* Fault injection for the out-of-memory tests: the k-th allocation from
 * now on (1-based; 0: none) fails, and only that one. The CLI reads k from
 * the environment variable TLALOC_FAIL_ALLOC. */
void tl_alloc_fail_at(uint64_t k);
/* Allocations made so far (tracked or not, failed ones included). */
uint64_t tl_alloc_count(void);

typedef struct tl_block {
  struct tl_block *prev, *next; /* NULL, NULL: untracked */
  void *base;                   /* what libc returned (aligned blocks); NULL: pages of its own */
  size_t size;
} tl_block;

typedef struct tl_cleanup tl_cleanup;

typedef struct tl_region {
  jmp_buf jb;
  struct tl_region *parent;
  tl_block head; /* sentinel of the list of live blocks */
  tl_cleanup *cleanups;
  size_t failed; /* after an unwind: the size of the allocation that failed */
} tl_region;

/* Enters region r on this thread and is true; after an unwind to r it is
 * false and r has already been left. */
#define TL_REGION_TRY(r) (tl_region_enter_(r), setjmp((r)->jb) == 0)
void tl_region_enter_(tl_region *r);
/* Leaves r (the innermost region): its live blocks and armed cleanups pass
 * to the enclosing region, or become untracked at the outermost one. */
void tl_region_end(tl_region *r);
/* Takes block p (from tl_x* or tl_try_*) out of every region: an unwind no
 * longer frees it. For a block stored into an object that outlives the
 * region (a compiled program's lazily grown state during a run). */
void tl_keep(void *p);
/* The other way: puts a block that belongs to no region (one another
 * thread allocated, having no region) into this thread's innermost region,
 * as if allocated here; a no-op for a tracked block or outside any region. */
void tl_adopt(void *p);
/* True when this thread is inside a region. */
int tl_in_region(void);
/* Unwinds to the innermost region (reporting out of memory), or prints
 * "out of memory" and aborts when there is none. */
_Noreturn void tl_oom(size_t n);

/* A cleanup: fn(arg) runs if the region unwinds while it is armed.
 * Allocate it (which may unwind) before acquiring the resource, then set
 * ->arg; tl_cleanup_pop disarms and frees it once the resource is released
 * or handed on. */
struct tl_cleanup {
  void (*fn)(void *arg);
  void *arg;
  tl_cleanup *next;
  tl_region *region;
};
tl_cleanup *tl_cleanup_push(void (*fn)(void *arg));
void tl_cleanup_pop(tl_cleanup *c);

#endif
