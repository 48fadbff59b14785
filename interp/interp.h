/* interp.h - the reference interpreter: the oracle every optimisation and
 * backend is checked against. Plain C, one obviously-correct kernel per op,
 * numpy semantics (broadcasting, wrapping integers, NaN propagation, empty
 * dims). Slow on purpose: clarity over speed. */
#ifndef TL_INTERP_H
#define TL_INTERP_H

#include "ir/ir.h"
#include "tensor/tensor.h"

/* Binds the graph's symbolic dims: sym_values[i] is the size of symbol i
 * (-1 = not yet known; the caller may preset some). Each given input (NULL
 * entries are skipped) must have its declared dtype, rank and concrete dims;
 * its symbolic dims take their sizes from it, consistently across inputs.
 * Returns 0, or -1 with a message naming the input and the dim. */
int tl_bind_inputs(const tl_graph *g, tl_tensor *const *inputs, int64_t *sym_values,
                   char *err, size_t err_size);

/* The concrete dims of type t under sym_values; -1 if a symbol is unbound. */
int tl_concrete_dims(const tl_graph *g, const tl_type *t, const int64_t *sym_values,
                     int64_t *dims, char *err, size_t err_size);

/* Random inputs for every NULL entry of inputs (deterministic in seed):
 * floats ~ N(0,1), integers uniform in [0, 3), bools fair. All symbols must
 * be bound. */
int tl_random_inputs(const tl_graph *g, tl_tensor **inputs, const int64_t *sym_values,
                     uint64_t seed, char *err, size_t err_size);

/* Runs g. inputs[i] is the value of g->inputs[i] (already bound); outputs[i]
 * receives a new tensor for g->outputs[i] (caller frees). On a run-time error
 * (an index out of range, an integer to a negative power, a max over an
 * empty axis) returns -1 with a message naming the op; no output is left
 * allocated. */
int tl_interp_run(const tl_graph *g, tl_tensor *const *inputs, const int64_t *sym_values,
                  tl_tensor **outputs, char *err, size_t err_size);

/* One op on given operand tensors (constant folding uses this: the same
 * kernels as the interpreter). types are the operands' static types (weak
 * literals matter for promotion); out_type must be concrete. A const's
 * payload is its single argument. */
int tl_interp_eval(int op, const tl_attrs *attrs, const tl_tensor *const *args,
                   const tl_type *const *types, int nargs, const tl_type *out_type,
                   tl_tensor **out, char *err, size_t err_size);

/* How an engine runs function fn of a graph's table: inputs in, a new
 * tensor per output into out (run), or into the given buffers (run_into,
 * optional: NULL when the engine has none). 0, or -1 with a message and no
 * output left allocated. */
typedef struct tl_ctl_runner {
  void *ctx;
  int (*run)(void *ctx, int32_t fn, tl_tensor *const *in, tl_tensor **out, char *err, size_t n);
  int (*run_into)(void *ctx, int32_t fn, tl_tensor *const *in, tl_tensor *const *out, char *err, size_t n);
  /* optional: a buffer like t (its dtype and dims, any contents) for the
   * double buffers, and its return once the run is done; an engine that
   * keeps them across runs saves the fresh pages of every run */
  tl_tensor *(*get)(void *ctx, const tl_tensor *like, char *err, size_t n);
  void (*put)(void *ctx, tl_tensor *t);
  /* the caller's symbol values (a loop's per-trip results of no trip take
   * their element shape from them); NULL: none */
  const int64_t *syms;
} tl_ctl_runner;

/* Runs control node x (call, cond, loop, scan: interp/control.c says what
 * each does) on args; results[i] receives result i of the run (a new
 * tensor; tl_control_nresults of them). -1 on a run-time error (a loop past
 * its :max, a failing function) with no result left allocated. */
int tl_control_run(const tl_graph *g, const tl_node *x, tl_tensor *const *args, tl_tensor **results,
                   const tl_ctl_runner *r, char *err, size_t n);

/* After a run of loop x with :stack, binds its :trips symbol in syms to the
 * trip count (the first dim of its first per-trip result, res[x->ninputs]);
 * -1 with a message naming the loop when syms holds another value for it
 * (an input's dim, or another loop's count). A no-op for other nodes. */
int tl_control_bind_trips(const tl_graph *g, const tl_node *x, tl_tensor *const *res, int64_t *syms, char *err,
                          size_t n);

/* Whether op has an interpreter kernel (tests check every op has one). */
bool tl_interp_has(int op);

#endif
