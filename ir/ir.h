/* ir.h - tlaloc's tensor IR: dtypes, symbolic shapes, attributes, the op
 * table, and the graph (a hash-consed DAG of typed nodes).
 *
 * A graph is built node by node; every node is type-checked as it is added
 * (tl_infer), so a graph that exists is well typed. Identical nodes (same op,
 * attributes and operands) are shared: building is common-subexpression
 * elimination for free, and graph equality is structural equality of the
 * nodes reachable from the outputs.
 *
 * Dims are int64: a value >= 0 is a concrete size, a value < 0 is the
 * symbolic dim number -(d+1) of the graph's symbol table (`n` in `[n 10]`).
 * The same symbol name is the same dim everywhere in a graph. */
#ifndef TL_IR_H
#define TL_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* dtypes, TL_MAX_RANK and the tensors that constants hold */
#include "tensor/tensor.h"
#include "util/error.h"
/* the op table */
#include "ir/ops.h"

/* numpy's promotion of two strong dtypes (i32+f32 -> f64, bool+x -> x). */
tl_dtype tl_dtype_promote(tl_dtype a, tl_dtype b);

struct tl_type;
/* The dtype n operands compute in, numpy NEP 50: strong dtypes promote by
 * the table, weakly typed literals only lift the kind (bool < int < float);
 * weak is set when every operand is weak. */
void tl_promote(const struct tl_type *const *in, int n, uint8_t *dtype, uint8_t *weak);

/* A value's type. `weak` marks a Python-style scalar literal whose dtype
 * yields to the other operand's (numpy NEP 50): f32 + 2.0 is f32. */
typedef struct tl_type {
  uint8_t dtype;
  uint8_t weak;
  uint8_t rank;
  int64_t dims[TL_MAX_RANK];
} tl_type;

static inline bool tl_dim_is_sym(int64_t d) { return d < 0; }
static inline int64_t tl_dim_sym(int sym) { return -(int64_t)sym - 1; }
static inline int tl_dim_sym_id(int64_t d) { return (int)(-d - 1); }

/* Op attributes. One fixed struct (zeroed before use, compared with memcmp
 * and hashed as bytes) keeps nodes flat and lets the e-graph intern
 * attribute sets by value. `present` says which TL_A_* fields are set. */
typedef struct tl_attrs {
  uint32_t present;
  uint8_t naxes, keepdims, dtype, nshape, nperm, is_int, pad_[2];
  int8_t axes[TL_MAX_RANK];
  int8_t perm[TL_MAX_RANK];
  int32_t lit;  /* const: index of its tensor in the graph's literal table */
  int64_t shape[TL_MAX_RANK]; /* dims (symbolic allowed); TL_DIM_INFER in reshape */
  int64_t start, stop, step;  /* slice bounds, when present */
  double f;     /* lit/fill value (as a double); an input's lowest value (TL_A_RANGE) */
  double hi;    /* an input's highest value (TL_A_RANGE) */
  int64_t i;    /* lit/fill value when is_int (exact for all of i64) */
} tl_attrs;

/* reshape's "-1" (infer this dim); distinct from every symbol id in use */
#define TL_DIM_INFER INT64_MIN

void tl_attrs_init(tl_attrs *a);

/* tl_loc (a position in the .tg text) is util/error.h's. */

typedef struct tl_node {
  uint16_t op;
  uint16_t ninputs;
  uint32_t inputs; /* offset of the operand ids in graph->args */
  int32_t name;    /* index in graph->names, or -1 */
  tl_loc loc;      /* where it was written; 0:0 when built by code */
  tl_attrs attrs;
  tl_type type;
} tl_node;

typedef struct tl_output { int32_t name; int32_t node; } tl_output;

typedef struct tl_graph {
  char *name;
  tl_node *nodes; int32_t nnodes, capnodes;
  int32_t *args; uint32_t nargs, capargs;
  char **names; int32_t nnames, capnames;      /* value names (in/let/out) */
  char **syms; int32_t nsyms, capsyms;         /* symbolic dim names */
  int32_t *inputs; int32_t ninputs, capinputs; /* INPUT nodes, declared order */
  tl_output *outputs; int32_t noutputs, capoutputs;
  int32_t *lets; int32_t nlets, caplets;       /* let-named nodes, in order */
  struct tl_tensor **lits; int32_t nlits, caplits; /* const payloads, owned */
  uint64_t *memo; uint32_t memocap;            /* hash-cons table (graph.c) */
} tl_graph;

/* A node's operand ids. args is NULL until the first operand is added: a
 * node without operands then gets an empty array, not NULL + 0 (undefined
 * behaviour, which clang's UBSan reports). */
static inline const int32_t *tl_node_inputs(const tl_graph *g, const tl_node *n) {
  static const int32_t none[1] = {0};
  return g->args ? g->args + n->inputs : none;
}

tl_graph *tl_graph_new(const char *name);
void tl_graph_free(tl_graph *g);
/* A deep copy of g (same node ids, names, symbols, constants) under a new
 * name; its arrays are copied as they are, without rebuilding anything. */
tl_graph *tl_graph_copy(const tl_graph *g, const char *name);

/* Interned symbol id for a dim name (created if new). */
int tl_graph_sym(tl_graph *g, const char *name, size_t n);
/* Index of a fresh copy of `name` in g->names. */
int32_t tl_graph_name(tl_graph *g, const char *name);

/* Adds an input with the given type (dims may be symbolic). */
int32_t tl_graph_add_input(tl_graph *g, const char *name, const tl_type *t, tl_loc loc);
/* An input's declared range: every element in [lo, hi] (`:range` in .tg);
 * a promise the optimizer's sign facts use, not checked at run time. */
void tl_graph_set_range(tl_graph *g, int32_t input, double lo, double hi);
/* The declared range of input node `input`: true and [*lo, *hi], or false. */
bool tl_graph_range(const tl_graph *g, int32_t input, double *lo, double *hi);

/* Adds (or finds, by hash-consing) the node op(inputs) with attrs. Infers
 * its type; on a type error returns -1 and writes a message naming the op
 * and the operand types to err (err_size bytes). Operands whose dtype is
 * TL_DTYPE_ERROR make the result poisoned without a new message. */
int32_t tl_graph_add(tl_graph *g, int op, const tl_attrs *attrs,
                     const int32_t *inputs, int ninputs, tl_loc loc,
                     char *err, size_t err_size);

/* Adds a constant tensor (ownership of t passes to g). */
int32_t tl_graph_add_const(tl_graph *g, struct tl_tensor *t, tl_loc loc);

void tl_graph_add_output(tl_graph *g, const char *name, int32_t node);
void tl_graph_add_let(tl_graph *g, const char *name, int32_t node);

/* Structural equality of two graphs: same inputs (names, types), same
 * outputs (names, and equal DAGs behind them). */
bool tl_graph_equal(const tl_graph *a, const tl_graph *b);

/* Type inference for one node (also used by the e-graph's analysis). The
 * operand types are given; writes the result type or a message. */
int tl_infer(const tl_graph *g, int op, const tl_attrs *attrs,
             const tl_type *const *in, int nin, tl_type *out,
             char *err, size_t err_size);

/* Whether op has an inference function (tests check every op has one). */
bool tl_infer_has(int op);

/* "f32[n 10]" into buf; returns buf. */
char *tl_type_str(const tl_graph *g, const tl_type *t, char *buf, size_t size);
/* Number of elements when every dim is concrete; -1 otherwise. */
int64_t tl_type_numel(const tl_type *t);

#endif
