/* gpu_internal.h - private to gpu/: a graph's kernel plan with its kernel
 * descriptions (program.c), the runtime's tables made from them, the PTX
 * lowering (gk_nvptx.c) and the emulated device (sim_dev.c). */
#ifndef TL_GPU_INTERNAL_H
#define TL_GPU_INTERNAL_H

#include "gpu/gb.h"
#include "gpu/gpu.h"
#include "gpu/gpurt.h"

/* The plan of g (the CPU backend's, in-place over inputs allowed: inputs
 * are device copies) and one description per kernel. */
typedef struct gpu_build {
  const tl_graph *g;
  be_plan plan;
  gk_kernel **ks; /* [plan.nks] */
  int nks;
  uint8_t *is_const; /* per plan buffer */
  int math;          /* GB_MATH_* the descriptions were built with */
} gpu_build;

/* name_prefix: kernels are PREFIXk0, PREFIXk1, ... 0 or -1 with a message. */
int gpu_build_make(gpu_build *b, const tl_graph *g, int math, const char *name_prefix, char *err, size_t n);
void gpu_build_free(gpu_build *b);

/* The runtime's tables for a build (they point into the build's kernels'
 * names: the build must outlive them). */
typedef struct gpu_tables {
  gpu_rt_buf *bufs;
  gpu_rt_kernel *ks;
  gpu_rt_step *steps;
  int32_t **lists; /* per kernel: its parameter and read lists */
  gpu_rt_prog prog;
} gpu_tables;
void gpu_tables_make(gpu_tables *t, const gpu_build *b);
void gpu_tables_free(gpu_tables *t);

/* PTX for the build's kernels (gk_nvptx.c); NULL with a message. */
char *gpu_nvptx(const gpu_build *b, const char *arch, const char *libdevice, int opt_level, gpu_ptx_stats *st,
                char *err, size_t n);

/* The emulated device: host memory, kernels run by gk_sim_launch. */
typedef struct gpu_sim {
  const gpu_build *b;
} gpu_sim;
gpu_rt_dev gpu_sim_dev(gpu_sim *s, const gpu_build *b, unsigned max_blocks);

#endif
