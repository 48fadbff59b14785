/* random_graph.h - random graphs for differential tests of the backends
 * (tests/backend, tests/gpu): DAGs of depth <= 8 over elementwise,
 * reduction, normalisation and shape ops, on random shapes with
 * broadcasting and size-1 and empty dims, f32 and f64. Candidates the type
 * checker refuses are skipped, so every graph built is well typed. The
 * sequence is deterministic in the seed; not thread-safe (one sequence per
 * process). */
#ifndef TL_TESTS_RANDOM_GRAPH_H
#define TL_TESTS_RANDOM_GRAPH_H

#include "ir/ir.h"

/* Restarts the sequence. */
void rg_seed(uint64_t seed);
/* The next graph of the sequence (caller frees); *depth: its outputs' depth. */
tl_graph *rg_graph(int *depth);

#endif
