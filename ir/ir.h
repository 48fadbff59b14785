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
/* symbolic dims with arithmetic */
#include "ir/symdim.h"

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
  /* control flow (call, cond, loop, scan): functions of the graph's
   * function table, by index. call :fn -> fn[0]; cond :then/:else -> fn[0],
   * fn[1]; loop :cond/:body/:until -> fn[0], fn[1], fn[2]; scan :body ->
   * fn[1]. Which are set is in `present`. */
  int32_t fn[3];
  int32_t out;   /* which of the callee's outputs this node is (:out) */
  int64_t trips; /* loop: the most iterations (:max N), -1 unbounded (:max unbounded) */
  int64_t carry; /* scan: how many of the operands and outputs are carried state */
  int64_t length; /* scan: the number of steps when it has no sequence operand */
  int64_t consts; /* scan: how many operands after the carries every step gets whole */
  int64_t stack;  /* loop: how many per-trip results its body gives after the state (:stack) */
  int64_t tdim;   /* loop with :stack: the symbolic dim (tl_dim_sym) its trip count binds (:trips) */
} tl_attrs;

/* reshape's "-1" (infer this dim); distinct from every symbol id in use */
#define TL_DIM_INFER INT64_MIN

void tl_attrs_init(tl_attrs *a);

/* A transpose's :perm that reverses the dims of a rank-r operand is its
 * default: drops it from a (one encoding, so that rules written without
 * :perm match it; tl_graph_add and rule patterns call this). */
void tl_perm_drop_reversal(tl_attrs *a, int r);

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

struct tl_graph;
/* A function table: the named functions a graph's call/cond/loop/scan
 * nodes refer to (by index). A function is an ordinary graph whose inputs
 * are its parameters and whose outputs are its results; it may call the
 * functions before it in the table (so there is no recursion). The table
 * is shared, reference counted, by every graph that holds it strongly (a
 * top-level graph and its copies); the functions inside hold it weakly. */
typedef struct tl_fns {
  int refs;
  /* the optimizer chose which calls stay calls (its inlining is a rule
   * whose result the cost model accepts or rejects): engines then do not
   * inline by size */
  bool calls_decided;
  struct tl_graph **fn;
  int32_t n, cap;
} tl_fns;

typedef struct tl_graph {
  char *name;
  tl_node *nodes; int32_t nnodes, capnodes;
  int32_t *args; uint32_t nargs, capargs;
  char **names; int32_t nnames, capnames;      /* value names (in/let/out) */
  char **syms; int32_t nsyms, capsyms;         /* symbolic dim names */
  tl_symdef *symdefs; int32_t capsymdefs;      /* their definitions (symdim.h) */
  int32_t *inputs; int32_t ninputs, capinputs; /* INPUT nodes, declared order */
  tl_output *outputs; int32_t noutputs, capoutputs;
  int32_t *lets; int32_t nlets, caplets;       /* let-named nodes, in order */
  struct tl_tensor **lits; int32_t nlits, caplits; /* const payloads, owned */
  uint64_t *memo; uint32_t memocap;            /* hash-cons table (graph.c) */
  tl_fns *fns;    /* the functions it may call; NULL: none */
  bool fns_owned; /* it holds a reference to fns (a function does not) */
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

/* Makes fns g's function table (holding a reference; NULL: none). */
void tl_graph_set_fns(tl_graph *g, tl_fns *fns);
/* A new, empty function table with one reference (the caller's). */
tl_fns *tl_fns_new(void);
/* Drops one reference; the last frees the functions. */
void tl_fns_release(tl_fns *f);
/* Appends function f (its fns set weakly to the table); returns its index. */
int32_t tl_fns_add(tl_fns *t, tl_graph *f);
/* The index of the function named name (n bytes), or -1. */
int32_t tl_fns_find(const tl_fns *t, const char *name, size_t n);
/* g with every call of a function that has no control flow of its own and
 * at most max_nodes nodes replaced by the function's body (ir/inline.c),
 * its table's functions likewise; a new graph with a new table. NULL with
 * a message on a (internal) failure to rebuild. */
tl_graph *tl_inline_calls(const tl_graph *g, int max_nodes, char *err, size_t n);
/* The size below which a function is inlined where it is called: the
 * engines compile a call of a larger one once and run it from every call. */
#define TL_INLINE_MAX_NODES 256
/* A copy of g whose table holds only the functions g calls (directly or
 * through others), callees first; NULL with a message on an error. */
tl_graph *tl_graph_keep_fns(const tl_graph *g, char *err, size_t n);

/* Whether g has a call, cond, loop or scan node. */
bool tl_graph_has_control(const tl_graph *g);

/* Interned symbol id for a dim name (created if new). A name starting
 * with '(' is a derived dim's canonical text, interned with its definition. */
int tl_graph_sym(tl_graph *g, const char *name, size_t n);
/* Appends symbol `name` with definition def (NULL: a base symbol), without
 * looking it up: for symdim.c, which has looked. */
int tl_graph_sym_append(tl_graph *g, const char *name, size_t n, const tl_symdef *def);
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

/* Inference of call/cond/loop/scan (ir/control.c): the operands against
 * the called functions' parameters, the result from their outputs. */
int tl_infer_control(const tl_graph *g, int op, const tl_attrs *a, const tl_type *const *in, int nin,
                     tl_type *out, char *err, size_t n);
/* How many results one run of control node x has (its callee's outputs, a
 * loop's carried values); x's own is attrs.out of them. */
int tl_control_nresults(const tl_graph *g, const tl_node *x);
/* The functions control node x runs (its table indices, in slot order:
 * call f; cond then, else; loop cond, body[, until]; scan body) into fns;
 * returns how many. */
int tl_control_fns(const tl_node *x, int32_t fns[3]);
/* Whether control nodes a and b are results of the same run (same op,
 * operands and functions; only :out differs): one run computes both. */
bool tl_control_same_run(const tl_graph *g, int32_t a, int32_t b);
/* Whether run b computes run a's results first: the same op, operands and
 * attributes but the functions, and b's functions give a's results first
 * (f and f.trace: a gradient's forward scan reads what the loss's scan
 * computes). Not for loops. */
bool tl_control_prefix_run(const tl_graph *g, int32_t a, int32_t b);
/* Whether g or a function of its table has a loop with :stack (per-trip
 * results whose length its :trips symbol gets only when it has run). */
bool tl_graph_stacks(const tl_graph *g);

/* For a view that only re-indexes its operand (transpose, broadcast_to,
 * expand_dims, squeeze) whose type has been inferred: the result axis
 * whose index each axis of the operand reads, or -1 where it reads index
 * 0 (a dim of 1 broadcast, or squeezed away). False, src untouched, for
 * every other op. The CPU lowering, its access scan and the GPU kernels
 * all take a view's indices from here, so they cannot disagree on one. */
bool tl_view_src_axes(const tl_graph *g, const tl_node *n, int src[TL_MAX_RANK]);
/* The same map for an operand of type xt broadcast to type ot (numpy's
 * rule, aligned at the right): broadcast_to's, and every elementwise op's
 * for each of its operands. */
void tl_broadcast_src_axes(const tl_type *xt, const tl_type *ot, int src[TL_MAX_RANK]);

/* Whether op has an inference function (tests check every op has one). */
bool tl_infer_has(int op);

/* "f32[n 10]" into buf; returns buf. */
char *tl_type_str(const tl_graph *g, const tl_type *t, char *buf, size_t size);
/* Number of elements when every dim is concrete; -1 otherwise. */
int64_t tl_type_numel(const tl_type *t);

#endif
