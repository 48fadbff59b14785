/* staged.h - private to engine/: graphs with functions, conditionals and
 * loops on an engine that compiles straight-line graphs.
 *
 * The graph is cut at its control nodes into straight-line segments, each
 * compiled by the base engine (its kernels fused as usual); every function
 * of the graph's table is compiled once the same way. A run executes the
 * segments in order and, between them, the control nodes through
 * interp/control.c with a runner over the compiled functions: the branch
 * not taken never runs, a loop's state is double-buffered in the base
 * engine's run_into, and a scan writes each step's outputs into its stacked
 * result. Control flow is thus driven from C between compiled programs, not
 * emitted into one LLVM function (docs/design.md says what that costs). */
#ifndef TL_ENGINE_STAGED_H
#define TL_ENGINE_STAGED_H

#include "engine/engine.h"

typedef struct tl_staged tl_staged;

tl_staged *tl_staged_compile(const tl_graph *g, const tl_engine *base, const tl_engine_opts *o, tl_error *err);
int tl_staged_run(tl_staged *s, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor **outputs,
                  tl_error *err);
/* JSON: the segments' and functions' programs (base->describe of each). */
char *tl_staged_describe(const tl_staged *s);
void tl_staged_free(tl_staged *s);

#endif
