/* c_peer.h - the peer of bench-backend's compile-latency rows: the kernels
 * of a graph's plan written as C source, for gcc to compile (the target:
 * compiling is 5x faster than writing the same kernels as C and compiling
 * them with gcc -O2). */
#ifndef TL_BENCH_C_PEER_H
#define TL_BENCH_C_PEER_H

#include "backend/be_internal.h"
#include "ir/ir.h"

#include <stddef.h>

/* C source of g's kernels (one function per kernel of be_plan_build's
 * plan, and `void run(void **bufs, const long *syms)` calling them in
 * order over the plan's buffers), malloc'd; NULL with a message when the
 * plan fails or an op has no C form here. */
char *c_peer_source(const tl_graph *g, char *err, size_t n);
/* The plan the C source follows (buffer numbers included): the backend's
 * without row kernels (a layer norm is then its reductions' kernels and
 * the elementwise one: the same work in more loops). */
int c_peer_plan(be_plan *pl, const tl_graph *g, char *err, size_t n);

#endif
