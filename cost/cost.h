/* cost/cost.h - the cost model: a registry of properties inferred per e-node,
 * the objective (`--cost EXPR`) over them, cost plugins, and the cost of an
 * extracted program.
 *
 *   tl_profile prof; tl_profile_default(&prof);
 *   tl_cost_registry *r = tl_cost_registry_new(&prof, 1024);   // built-ins
 *   tl_cost_register(r, "time", "exp", my_exp_time, NULL, err, sizeof err);
 *   tl_cost_expr *obj = tl_cost_expr_parse(r, "time + 1e-9*memory", err, sizeof err);
 *   ... for each e-node: fill a tl_cost_node, tl_cost_eval(r, &n, props, ...),
 *       cost = tl_cost_expr_eval(obj, props)
 *   tl_cost_expr_free(obj); tl_cost_registry_free(r);
 *
 * A property P has one function per op (and a default for the others). The
 * function infers P of an e-node F(x, y, ...) from what the e-graph knows:
 * the result and operand types (dtype, shape), the attributes, which
 * operands are known constants, the properties of the operands, and the
 * properties of this node registered before P. Properties are evaluated in
 * registration order. Two kinds:
 *
 *   TL_PROP_COST   what computing the node costs (time, bytes, ...). The
 *                  function returns the cost of the term F(x, y...) given the
 *                  operands' costs (egg's model); the built-ins are additive:
 *                  own + the operands' sum. Extraction charges every node its
 *                  own contribution, the function evaluated with the
 *                  operands' costs at 0, and sums over distinct nodes.
 *                  CONTRACT: monotone: raising an operand's costs never
 *                  lowers the result. Checked in debug builds (NDEBUG
 *                  undefined) and when the optimizer's `check` flag is on.
 *   TL_PROP_VALUE  a fact about the value (where it lives: `placement`). An
 *                  operand's value property is its e-class's, taken from
 *                  the first of its nodes settled bottom-up.
 *
 * No global mutable state: a registry belongs to its owner (one per
 * optimizer), so two optimizers on two threads are independent. */
#ifndef TL_COST_H
#define TL_COST_H

#include <stdbool.h>
#include <stddef.h>

#include "cost/profile.h"
#include "ir/ir.h"

#define TL_COST_DEFAULT "time + accuracy + 1e-8*code" /* the objective when none is given */
#define TL_COST_MAX_PROPS 64
#define TL_COST_NAME_MAX 32

typedef struct tl_cost_registry tl_cost_registry;

typedef enum tl_prop_kind { TL_PROP_COST, TL_PROP_VALUE } tl_prop_kind;

/* What a cost function sees of one node F(x, y, ...). Borrowed for the call. */
typedef struct tl_cost_node {
  int op;                         /* tl_op */
  const tl_attrs *attrs;
  const tl_type *type;            /* the result */
  int nin;
  const tl_type *const *in_type;  /* operand types */
  const bool *in_known;           /* operand k is a known uniform constant, */
  const double *in_value;         /* ... of this value */
  const uint8_t *in_facts;        /* operand k's sign facts (TL_FACT_*), or NULL: none known */
  const double *const *in;        /* in[k][p]: property p of operand k */
  const double *self;             /* self[p]: this node's properties registered before */
  const tl_profile *profile;      /* the machine the time model describes */
  double sym_size;                /* elements a symbolic dim counts as */
  /* The op's work (profile.h's tl_node_work) with the fusion refinement:
   * an op fused into its consumer's loop (elementwise, index-map shape
   * ops) reads its operands but writes no result. Set by tl_cost_eval. */
  const tl_kernel_work *work;
} tl_cost_node;

typedef double (*tl_cost_fn)(const tl_cost_node *n, void *user);

/* ---- the registry -------------------------------------------------------- */

/* A registry with the built-in properties (in this order): placement (value:
 * 0 = host, 1 = the GPU), flops, bytes, time, memory, transfer, accuracy.
 * The profile is copied; sym_size > 0. */
tl_cost_registry *tl_cost_registry_new(const tl_profile *p, double sym_size);

/* Where the built-in `placement` puts values: TL_DEVICE_CPU (the default)
 * every value on the host; TL_DEVICE_GPU every value but the graph's inputs
 * on the GPU (the inputs arrive from the host, so their consumers pay
 * `transfer`). `time` prices a node placed on the GPU with the profile's
 * GPU roofline, `transfer` prices each operand placed elsewhere than its
 * consumer as a copy over the link (seconds). */
typedef enum tl_device { TL_DEVICE_CPU, TL_DEVICE_GPU } tl_device;
void tl_cost_set_device(tl_cost_registry *r, tl_device d);
tl_device tl_cost_device(const tl_cost_registry *r);
/* Releases kept objects (tl_cost_keep) and closes plugins. NULL is fine. */
void tl_cost_registry_free(tl_cost_registry *r);

/* Adds property `name` ([A-Za-z_][A-Za-z0-9_]*, at most 31 bytes) whose
 * function for every op is fn. Returns its id, or -1 with a message (a
 * duplicate or bad name, too many properties). */
int tl_cost_add_property(tl_cost_registry *r, const char *name, tl_prop_kind kind,
                         tl_cost_fn fn, void *user, char *err, size_t n);
/* Sets property prop's function for op (an op name as in .tg text, e.g.
 * "matmul"; NULL or "*" replaces the default for every op without its own).
 * Returns 0, or -1 with a message naming the unknown property or op. */
int tl_cost_register(tl_cost_registry *r, const char *prop, const char *op, tl_cost_fn fn,
                     void *user, char *err, size_t n);
/* Ties p's lifetime to the registry: release(p) runs in tl_cost_registry_free
 * (for the `user` data of cost functions). */
void tl_cost_keep(tl_cost_registry *r, void *p, void (*release)(void *));

int tl_cost_find(const tl_cost_registry *r, const char *name); /* id or -1 */
int tl_cost_nprops(const tl_cost_registry *r);
const char *tl_cost_prop_name(const tl_cost_registry *r, int id);
tl_prop_kind tl_cost_prop_kind(const tl_cost_registry *r, int id);
const tl_profile *tl_cost_profile(const tl_cost_registry *r);
double tl_cost_sym_size(const tl_cost_registry *r);

/* Evaluates every property of n into out[nprops] (n->self and n->work are
 * set here; the rest of n is the caller's). 0, or -1 when a function
 * returns NaN (the message names the property and op). */
int tl_cost_eval(const tl_cost_registry *r, tl_cost_node *n, double *out, char *err, size_t en);
/* The monotonicity contract at n: for each operand, raising its cost
 * properties must not lower any cost property of base (= tl_cost_eval's
 * output for n). 0, or -1 with a message naming the property and op. */
int tl_cost_check_monotone(const tl_cost_registry *r, const tl_cost_node *n, const double *base,
                           char *err, size_t en);

/* ---- the objective ------------------------------------------------------- */

/* An expression over property names with numbers, + - * / and parentheses,
 * e.g. "time + 1e-9*memory". Errors give the column and name an unknown
 * property. The expression is applied to each node's properties; a
 * program's objective is the sum over its nodes. */
typedef struct tl_cost_expr tl_cost_expr;
tl_cost_expr *tl_cost_expr_parse(const tl_cost_registry *r, const char *text, char *err, size_t n);
double tl_cost_expr_eval(const tl_cost_expr *e, const double *props);
const char *tl_cost_expr_text(const tl_cost_expr *e);
void tl_cost_expr_free(tl_cost_expr *e);

/* ---- plugins --------------------------------------------------------------
 * A plugin is a shared object exporting
 *
 *   int tlaloc_plugin_init(const tl_cost_api *api, char *err, size_t n);
 *
 * which registers properties and functions through api (so it links nothing
 * of tlaloc) and returns 0, or non-zero with a message in err. Its static
 * data must be constant: per-registry state goes in `user` pointers kept with
 * api->keep. The registry closes the plugin when it is freed. */
#define TL_COST_API_VERSION 1
#define TL_COST_PLUGIN_ENTRY "tlaloc_plugin_init"

typedef struct tl_cost_api {
  int version; /* TL_COST_API_VERSION */
  tl_cost_registry *registry;
  int (*add_property)(tl_cost_registry *r, const char *name, tl_prop_kind kind, tl_cost_fn fn,
                      void *user, char *err, size_t n);
  int (*register_fn)(tl_cost_registry *r, const char *prop, const char *op, tl_cost_fn fn,
                     void *user, char *err, size_t n);
  int (*find)(const tl_cost_registry *r, const char *name);
  void (*keep)(tl_cost_registry *r, void *p, void (*release)(void *));
  /* helpers for cost functions: profile.h's per-op work and roofline */
  void (*node_work)(const tl_profile *p, tl_op op, const tl_attrs *attrs, const tl_type *out,
                    const tl_type *const *in, int nin, double sym_size, tl_kernel_work *w);
  double (*kernel_time)(const tl_profile *p, const tl_kernel_work *w);
  double (*type_elems)(const tl_type *t, double sym_size);
  const char *(*op_name)(int op);
} tl_cost_api;

typedef int (*tl_cost_plugin_init)(const tl_cost_api *api, char *err, size_t n);

/* dlopens path and runs its entry point on r. 0, or -1 with a message. */
int tl_cost_load_plugin(tl_cost_registry *r, const char *path, char *err, size_t n);

/* ---- the cost of a program ------------------------------------------------ */

/* The cost properties one run of a control node adds (op, attributes and
 * operand types as in a graph; its functions from t): a call costs its
 * function; a cond its dearer branch, property by property; a loop :max
 * times body and condition (10 when unbounded: an estimate) plus the first
 * test; a scan its length times the body. `code` is left out (0): a
 * function's code is charged once per program, not per run. fn_totals:
 * each function's tl_cost_graph totals ([t->n][nprops]) when the caller
 * keeps them (the optimizer prices many runs of few functions), or NULL. */
int tl_cost_control(const tl_cost_registry *r, const tl_fns *t, const double *fn_totals, int op, const tl_attrs *at,
                    const tl_type *const *in_type, int nin, double *add, char *err, size_t n);

/* Properties of an extracted graph: totals[p] sums each node's own cost
 * (value properties are not summed: 0), *objective sums the objective per
 * node (obj may be NULL), *peak_bytes is the peak of live intermediate and
 * output bytes when the nodes run in order (see tl_cost_peak_bytes). 0, or
 * -1 with a message. facts: the sign facts (TL_FACT_*) of each node, as the
 * optimizer's analysis knows them, or NULL to derive them from the graph
 * (literals, declared ranges, the op table's SIGN column). */
int tl_cost_graph(const tl_cost_registry *r, const tl_cost_expr *obj, const tl_graph *g, const uint8_t *facts,
                  double *totals, double *objective, double *peak_bytes, char *err, size_t n);
/* Peak live bytes of g's values when its nodes run in id order (a
 * topological order): a value is allocated when computed and freed after
 * its last reader; outputs live to the end. Inputs (the caller's) and
 * scalar literals are not counted. */
double tl_cost_peak_bytes(const tl_graph *g, double sym_size);

/* ---- placement: the CPU or the GPU -----------------------------------------
 * The predicted time of g on each device (cost_place.c; docs/gpu.md,
 * "Placement"): the `time` of every node under a registry of each device,
 * plus one call's fixed cost, plus on the GPU the copies of the inputs to
 * the device and of the outputs back (each once) and the stream's
 * synchronisation. Symbols take their sizes from syms (g->nsyms entries;
 * NULL or a negative entry: sym_size). */
typedef struct tl_placement {
  double cpu_s;      /* the CPU's kernels and one call */
  double gpu_s;      /* gpu_kernels_s + h2d_s + d2h_s + the GPU's sync per call */
  double gpu_kernels_s, h2d_s, d2h_s;
  double h2d_bytes, d2h_bytes;
  bool gpu;          /* the GPU is predicted faster */
} tl_placement;
int tl_cost_place(const tl_profile *p, const tl_graph *g, const int64_t *syms, double sym_size, tl_placement *out,
                  char *err, size_t n);

#endif
