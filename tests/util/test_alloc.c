/* test_alloc.c - tl_xrealloc_dense and tl_xcalloc_dense: contents kept and
 * zeroed across the huge-page threshold, and a grown block keeps its place
 * in the region lists (a region's unwind frees what it owns, and only
 * that; ASan/UBSan runs report a leak or a double free). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"

enum { MIB = 1 << 20 };

static void fill(uint32_t *a, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) a[i] = (uint32_t)(i * 2654435761u) ^ seed;
}

static void expect(const uint32_t *a, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != ((uint32_t)(i * 2654435761u) ^ seed)) cr_assert_fail("word %zu changed", i);
}

Test(util_alloc, dense_growth_keeps_contents) {
  /* from below the threshold to past it, in steps that cross it */
  size_t n = 1000;
  uint32_t *a = tl_xrealloc_dense(NULL, n * 4);
  fill(a, n, 7);
  for (size_t want = 256 * 1024; want <= 24 * MIB / 4; want *= 3) {
    a = tl_xrealloc_dense(a, want * 4);
    expect(a, n, 7);
    n = want;
    fill(a, n, 7);
  }
  /* shrinking keeps the prefix */
  a = tl_xrealloc_dense(a, 5 * MIB);
  expect(a, 5 * MIB / 4, 7);
  tl_free(a);
}

Test(util_alloc, dense_calloc_is_zero) {
  for (size_t bytes = 4096; bytes <= 12 * MIB; bytes *= 8) {
    unsigned char *z = tl_xcalloc_dense(bytes / 8, 8);
    for (size_t i = 0; i < bytes; i += 4093) cr_assert_eq(z[i], 0);
    cr_assert_eq(z[bytes - 1], 0);
    tl_free(z);
  }
}

/* A block made before a region and grown inside it belongs to its owner:
 * the region's unwind must not free it. A block made inside is the
 * region's: the unwind frees it (a leak otherwise). */
Test(util_alloc, dense_growth_keeps_region_ownership) {
  uint32_t *volatile outer = tl_xmalloc(4096);
  fill(outer, 1024, 3);
  uint32_t *volatile inner = NULL;
  tl_region r;
  if (TL_REGION_TRY(&r)) {
    outer = tl_xrealloc_dense(outer, 6 * MIB);
    inner = tl_xrealloc_dense(NULL, 4096);
    inner = tl_xrealloc_dense(inner, 5 * MIB);
    tl_alloc_fail_at(1);
    (void)tl_xmalloc(16); /* fails: unwinds, freeing inner */
    cr_assert_fail("the failed allocation returned");
  }
  tl_alloc_fail_at(0);
  cr_assert_eq(r.failed, 16);
  expect(outer, 1024, 3);
  outer[6 * MIB / 4 - 1] = 1; /* still owned, whole */
  tl_free(outer);
}

Test(util_alloc, dense_growth_failure_unwinds) {
  uint32_t *volatile a = tl_xrealloc_dense(NULL, 4096);
  fill(a, 1024, 5);
  tl_region r;
  if (TL_REGION_TRY(&r)) {
    tl_alloc_fail_at(1);
    a = tl_xrealloc_dense(a, 8 * MIB); /* fails: the old block stays valid */
    cr_assert_fail("the failed allocation returned");
  }
  tl_alloc_fail_at(0);
  cr_assert_eq(r.failed, 8 * MIB);
  expect(a, 1024, 5);
  tl_free(a);
}
