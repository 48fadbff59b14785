/* gk_sim.h - private to gpu/: the host emulator of the GPU grid (gk_sim.c
 * says how it runs a kernel and what it checks). */
#ifndef TL_GPU_GK_SIM_H
#define TL_GPU_GK_SIM_H

#include "gpu/gk.h"

typedef struct gk_sim_args {
  unsigned grid, block;   /* blocks, and threads per block (a multiple of 32) */
  void *const *bufs;      /* per plan buffer: its memory (NULL: the kernel is not given it) */
  const int64_t *numel;   /* per plan buffer: its elements */
  const int64_t *syms;    /* per graph symbol: its size */
  int32_t *err;           /* the program's error word */
} gk_sim_args;

/* Runs kernel k on the grid a describes. 0, or -1 with a message naming
 * the kernel, instruction, block and thread (an out-of-bounds or
 * misaligned access, a race, a barrier or shuffle in divergent code, what
 * LLVM would make poison). */
int gk_sim_launch(const gk_kernel *k, const gk_sim_args *a, char *err, size_t n);

#endif
