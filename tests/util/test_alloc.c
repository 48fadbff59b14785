/* test_alloc.c - tl_adopt: a block allocated on a thread without a region
 * (the e-graph's search workers grow match buffers so) joins this thread's
 * innermost region, so the region's unwind frees it; a block already
 * tracked stays where it is (the region's list is checked directly; the
 * ASan/UBSan run also reports a double free if an adopted block were freed
 * twice). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"

/* Is block p on region r's list of live blocks? */
static bool in_region(const tl_region *r, const void *p) {
  const tl_block *h = (const tl_block *)p - 1;
  for (const tl_block *b = r->head.next; b != &r->head; b = b->next)
    if (b == h) return true;
  return false;
}

static void *grow_on_thread(void *arg) {
  /* no region on this thread: the block is untracked */
  uint32_t *a = tl_try_realloc(NULL, 4096);
  if (a) memset(a, 7, 4096);
  *(uint32_t **)arg = a;
  return NULL;
}

Test(util_alloc, adopted_block_is_freed_by_the_unwind) {
  tl_region r;
  if (TL_REGION_TRY(&r)) {
    uint32_t *a = NULL;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, grow_on_thread, &a), 0);
    pthread_join(th, NULL);
    cr_assert(a);
    cr_assert_eq(a[10], 0x07070707u);
    cr_assert(!in_region(&r, a));
    tl_adopt(a); /* now the region's: the unwind below frees it */
    cr_assert(in_region(&r, a));
    tl_alloc_fail_at(1);
    (void)tl_xmalloc(16);
    cr_assert_fail("the failed allocation returned");
  }
  tl_alloc_fail_at(0);
  cr_assert_eq(r.failed, 16);
}

Test(util_alloc, adopting_a_tracked_block_changes_nothing) {
  uint32_t *volatile outer = tl_xmalloc(64); /* untracked: no region yet */
  tl_region r;
  if (TL_REGION_TRY(&r)) {
    uint32_t *inner = tl_xmalloc(64);
    cr_assert(in_region(&r, inner));
    tl_adopt(inner); /* tracked already: stays in this region */
    cr_assert(in_region(&r, inner));
    tl_region_end(&r);
    tl_free(inner);
  }
  tl_region r2;
  if (TL_REGION_TRY(&r2)) {
    outer[0] = 5;
    tl_region_end(&r2);
  }
  /* adopting outside any region leaves the block untracked */
  tl_adopt(outer);
  cr_assert_eq(outer[0], 5u);
  tl_free(outer);
}

/* Blocks zeroed or grown to 256 KiB and more get pages of their own
 * (alloc.c): zero from tl_xcalloc_pages, their bytes kept when grown from a small
 * block, grown again (their pages moved), shrunk within the mapping and
 * below it, and freed by a region's unwind like any other block. */
static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 7);
}

static bool same(const uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(seed + i * 7)) return false;
  return true;
}

Test(util_alloc, large_blocks_keep_their_bytes) {
  size_t big = 3u << 20;
  uint8_t *z = tl_xcalloc_pages(big, 1);
  for (size_t i = 0; i < big; i += 4093) cr_assert_eq(z[i], 0);
  cr_assert_eq(z[big - 1], 0);
  fill(z, big, 1);
  z = tl_xrealloc(z, 9u << 20); /* past its 2 MiB pages: moved */
  cr_assert(same(z, big, 1));
  fill(z, 9u << 20, 2);
  z = tl_xrealloc(z, (9u << 20) + 100); /* within its last page */
  cr_assert(same(z, 9u << 20, 2));
  z = tl_xrealloc(z, 5u << 20); /* shrunk: the mapping's tail unmapped */
  cr_assert(same(z, 5u << 20, 2));
  z = tl_xrealloc(z, 1000); /* below the threshold: stays mapped */
  cr_assert(same(z, 1000, 2));
  tl_free(z);

  uint8_t *s = tl_xmalloc(5000); /* glibc's block, grown into pages of its own */
  fill(s, 5000, 3);
  s = tl_xrealloc(s, 600u << 10);
  cr_assert(same(s, 5000, 3));
  fill(s, 600u << 10, 4);
  s = tl_xrealloc(s, 7u << 20);
  cr_assert(same(s, 600u << 10, 4));
  tl_free(s);
}

Test(util_alloc, large_blocks_are_freed_by_the_unwind) {
  tl_region r;
  if (TL_REGION_TRY(&r)) {
    uint8_t *a = tl_xcalloc_pages(1u << 20, 4);
    cr_assert(in_region(&r, a));
    a = tl_xrealloc(a, 13u << 20);
    cr_assert(in_region(&r, a));
    fill(a, 13u << 20, 5);
    tl_alloc_fail_at(1);
    (void)tl_xcalloc_pages(1u << 20, 8); /* the injected failure, on a large block */
    cr_assert_fail("the failed allocation returned");
  }
  tl_alloc_fail_at(0);
  cr_assert_eq(r.failed, 8u << 20);
}

/* Blocks of 32 MiB and more from malloc and aligned_alloc are mapped too:
 * aligned as asked, their bytes kept when grown and shrunk. */
Test(util_alloc, mapped_blocks_keep_alignment_and_bytes) {
  size_t n = 33u << 20;
  uint8_t *a = tl_xaligned_alloc(64, n);
  cr_assert_eq((uintptr_t)a % 64, 0);
  fill(a, n, 6);
  a = tl_xrealloc(a, n + (5u << 20));
  cr_assert_eq((uintptr_t)a % 64, 0);
  cr_assert(same(a, n, 6));
  a = tl_xrealloc(a, 3000);
  cr_assert(same(a, 3000, 6));
  tl_free(a);
  uint8_t *m = tl_xmalloc(n);
  cr_assert_eq((uintptr_t)m % 16, 0);
  fill(m, n, 7);
  cr_assert(same(m, n, 7));
  tl_free(m);
  cr_assert_null(tl_try_malloc(SIZE_MAX - 64));
  cr_assert_null(tl_try_aligned_alloc(64, SIZE_MAX - 256));
}
