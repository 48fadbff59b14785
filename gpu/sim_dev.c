/* sim_dev.c - the emulated device behind engine `gpu-sim`: device memory
 * is host memory (256-byte aligned, as cuMemAlloc's, and filled with 0xff
 * bytes, NaN in floats, so that reading memory no kernel wrote shows up in
 * the results), copies are memcpy, and a launch runs the kernel's
 * description on the emulated grid (gk_sim.c). The runtime (gpurt.c) is
 * the one the CUDA driver runs under: binding, memory planning and the
 * program's steps are the same code. */
#include "gpu/gk_sim.h"
#include "gpu/gpu_internal.h"

#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sim_alloc(void *self, size_t bytes, uint64_t *ptr, char *err, size_t n) {
  (void)self;
  size_t sz = (bytes + 255) & ~(size_t)255;
  void *q = tl_xaligned_alloc(256, sz ? sz : 256);
  if (!q) {
    snprintf(err, n, "gpu-sim: out of memory for %zu bytes", bytes);
    return -2;
  }
  memset(q, 0xff, sz);
  *ptr = (uint64_t)(uintptr_t)q;
  return 0;
}

static void sim_release(void *self, uint64_t ptr) {
  (void)self;
  tl_free((void *)(uintptr_t)ptr);
}

static int sim_h2d(void *self, uint64_t dst, const void *src, size_t bytes, char *err, size_t n) {
  (void)self, (void)err, (void)n;
  memcpy((void *)(uintptr_t)dst, src, bytes);
  return 0;
}

static int sim_d2h(void *self, void *dst, uint64_t src, size_t bytes, char *err, size_t n) {
  (void)self, (void)err, (void)n;
  memcpy(dst, (const void *)(uintptr_t)src, bytes);
  return 0;
}

static int sim_zero(void *self, uint64_t dst, size_t bytes, char *err, size_t n) {
  (void)self, (void)err, (void)n;
  memset((void *)(uintptr_t)dst, 0, bytes);
  return 0;
}

static int sim_sync(void *self, char *err, size_t n) {
  (void)self, (void)err, (void)n;
  return 0;
}

static int sim_launch(void *self, int ki, unsigned grid, unsigned block, const uint64_t *ptr, const int64_t *numel,
                      const int64_t *syms, uint64_t errp, char *err, size_t n) {
  gpu_sim *s = self;
  const gpu_build *b = s->b;
  const be_plan *p = &b->plan;
  const gk_kernel *k = b->ks[ki];
  /* the kernel's buffers: its parameters, and the constants it reads (a
   * constant is part of the module on the GPU, here the graph's literal) */
  void **bufs = tl_xcalloc((size_t)p->nbufs + 1, sizeof *bufs);
  int64_t *ne = tl_xcalloc((size_t)p->nbufs + 1, sizeof *ne);
  for (int i = 0; i < k->nbufs; i++) {
    bufs[k->bufs[i]] = (void *)(uintptr_t)ptr[k->bufs[i]];
    ne[k->bufs[i]] = numel[k->bufs[i]];
  }
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].kind == BE_BUF_CONST) {
      const tl_tensor *t = b->g->lits[b->g->nodes[p->bufs[i].node].attrs.lit];
      bufs[i] = t->data;
      ne[i] = t->numel;
    }
  gk_sim_args a = {.grid = grid, .block = block, .bufs = bufs, .numel = ne, .syms = syms,
                   .err = (int32_t *)(uintptr_t)errp};
  int rc = gk_sim_launch(k, &a, err, n);
  tl_free(bufs);
  tl_free(ne);
  return rc ? -2 : 0;
}

gpu_rt_dev gpu_sim_dev(gpu_sim *s, const gpu_build *b, unsigned max_blocks) {
  s->b = b;
  gpu_rt_dev d;
  memset(&d, 0, sizeof d);
  d.self = s;
  d.name = "gpu-sim";
  d.max_blocks = max_blocks;
  d.alloc = sim_alloc;
  d.release = sim_release;
  d.h2d = sim_h2d;
  d.d2h = sim_d2h;
  d.zero = sim_zero;
  d.launch = sim_launch;
  d.gemm = NULL;
  d.sync = sim_sync;
  return d;
}
