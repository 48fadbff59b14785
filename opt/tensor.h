/* tensor.h - tlaloc's tensor ops as an e-graph language (egraph/ is generic
 * over languages), and the tensor e-class analysis.
 *
 * An e-node's attribute payload is the op's tl_attrs, byte for byte: two
 * nodes are the same term exactly when op, attributes and children agree,
 * as in the graph's own hash-consing. Leaves: `in` (payload: the input's
 * index in the context), `lit` (a weakly typed scalar literal; in .rw files
 * every number is one), `const` (index of a tensor the context owns) and
 * `fill`.
 *
 * The analysis keeps per e-class: the type (dtype, weak flag, shape, from
 * tl_infer), the value when every element is the same known constant
 * (folded with the interpreter's kernels), and sign facts that rule
 * conditions query. A fact holds for every element that is not NaN. Two
 * classes of different type never merge: the e-graph refuses the union and
 * logs it with the rule that asked for it (eg_refusals). */
#ifndef TL_OPT_TENSOR_H
#define TL_OPT_TENSOR_H

#include "egraph/egraph.h"
#include "egraph/rules.h"
#include "ir/ir.h"

/* the op table's sign facts (ir/ops.h) */
enum { TN_NONZERO = TL_FACT_NONZERO, TN_POSITIVE = TL_FACT_POSITIVE, TN_NONNEG = TL_FACT_NONNEG, TN_NONPOS = TL_FACT_NONPOS };

typedef struct tn_data {
  tl_type type;      /* dtype TL_DTYPE_ERROR: the node is ill-typed */
  uint8_t facts;     /* TN_* */
  uint8_t has_value; /* every element equals `value` */
  uint8_t pad[6];
  double value;
} tn_data;

/* The context shared by the language, the analysis and the conditions: the
 * symbols, input names and constants of every graph loaded into one
 * e-graph (so two graphs proved equal share them). */
/* The conditions rule files may use on tensor terms, one table for every
 * reader: the optimizer evaluates them on e-class facts (tn_ctx_new
 * registers them in this order, so a registry index is a tn_cond_id), and
 * `tlaloc check-rules` on the concrete values of its trials (check.c). */
typedef enum tn_cond_id {
  TN_C_NONZERO, TN_C_POSITIVE, TN_C_NONNEG, TN_C_NONPOS, TN_C_CONST, TN_C_SCALAR, TN_C_FLOAT,
  TN_C_STRONG, TN_C_NUMERIC, TN_C_SAME_SHAPE, TN_C_SAME_TYPE, TN_C_SAME_DTYPE, TN_C_DTYPE, TN_C_RANK,
  TN_C_VALUE, TN_C_LOSSLESS_CAST, TN_C_FITS,
  TN_C_IMPROVES_ACCURACY, /* a marker for check-rules: inf/NaN -> finite counts as a pass */
  TN_C_COUNT
} tn_cond_id;

typedef struct tn_cond_def {
  const char *name;
  const char *args;      /* the arguments the reader accepts (eg_conds_add) */
  eg_cond_fn on_classes; /* the optimizer's test (ctx: the tn_ctx) */
} tn_cond_def;

extern const tn_cond_def tn_conds[TN_C_COUNT];

typedef struct tn_ctx {
  tl_graph *store;   /* symbols, names, and const payloads (lits) */
  int32_t *in_name;  /* per input: index in store->names */
  tl_type *in_type;
  double *in_lo, *in_hi; /* per input: its declared range (-inf, inf: none) */
  int ninputs, capinputs;
  eg_lang lang;
  uint8_t op_class[TL_OP_COUNT]; /* lang.op_class: the op table's fusion classes */
  eg_analysis analysis;
  eg_conds *conds;
  /* per store symbol: a loop's :trips (bound by the loop's run, so a graph
   * built from the store takes it only where a chosen node uses it) */
  uint8_t *trips_sym;
  int32_t ntrips_sym;
} tn_ctx;

tn_ctx *tn_ctx_new(void);
void tn_ctx_free(tn_ctx *c);

/* The store's size at a point (after the rules are read, say): what an
 * e-graph adds later (its graphs' symbols, names and tensors, the input
 * slots) belongs to that e-graph, and tn_ctx_reset drops it, so a context
 * used for many graphs does not grow with each. */
typedef struct tn_mark { int32_t nsyms, nnames, nlits; } tn_mark;
tn_mark tn_ctx_mark(const tn_ctx *c);
void tn_ctx_reset(tn_ctx *c, tn_mark m);

/* The input slots of one e-graph, set aside while another e-graph loads
 * its own (names may repeat with other types), then put back. */
typedef struct tn_slots {
  int32_t *in_name;
  tl_type *in_type;
  double *in_lo, *in_hi;
  int n;
} tn_slots;
tn_slots tn_ctx_take_slots(tn_ctx *c);
void tn_ctx_put_slots(tn_ctx *c, tn_slots s);

/* The input slot for src's input node (its name, type and declared
 * range), created on first use. -1 (with a message) when the name exists
 * with another type or range. The type's symbols are ids of src's table;
 * they are renamed into the context's. */
int tn_input(tn_ctx *c, const tl_graph *src, int32_t node, char *err, size_t err_size);

/* Loads the nodes of g into e; out_cls[i] gets the class of output i and
 * in_slots[i] (if not NULL) the context's slot of input i. Inputs are
 * matched by name. */
int tn_load_graph(tn_ctx *c, eg_egraph *e, const tl_graph *g, eg_id *out_cls, int *in_slots,
                  char *err, size_t err_size);

/* Loads function f's nodes into e on the argument classes args (one per
 * parameter; f's symbols take the arguments' dims); out_cls[i] gets the
 * class of f's output i (args[i] EG_NONE: parameter i is not read). -1
 * when a dim in an attribute is none of the
 * parameters' (f's own derived dims): nothing is reported. */
int tn_load_fn(tn_ctx *c, eg_egraph *e, const tl_graph *f, const eg_id *args, eg_id *out_cls);

/* A node's attributes, and adding a node by attributes. */
tl_attrs tn_attrs(eg_egraph *e, const eg_node *nd);
eg_id tn_add(eg_egraph *e, int op, const tl_attrs *a, const eg_id *kids, uint32_t n);

/* Builds a graph computing the chosen terms of roots (the extractor's
 * choice), declaring the inputs in_slots (in order) and the outputs. */
/* facts (may be NULL) receives, per node of the result, the sign facts
 * (TN_*) the analysis knows of its e-class: what extraction priced the node
 * with (a class knows more than its chosen node alone, from every node it
 * holds); the caller frees it. */
tl_graph *tn_build_graph(tn_ctx *c, eg_egraph *e, const uint32_t *choice, const eg_id *roots,
                         const char *const *out_names, int nroots, const int *in_slots, int nin,
                         const char *name, uint8_t **facts, char *err, size_t err_size);

/* Per-op weights for the greedy extractor (the op table's WEIGHT column):
 * roughly flops per element, transcendental functions dearer, and the
 * numerically stable fused forms cheaper than the naive compositions. */
const double *tn_op_weights(void);

/* The op table's in-place facts (ir/ops.def, INPLACE) as declarations of a
 * ruleset "op-table" loaded into r (a tensor-language rule set), each
 * located at its op's row of ir/ops.def, so that `tlaloc check-rules
 * --op-table` tests them like a rule file's. Returns 0, or -1 with the
 * diagnostics in d (a name clash with a declaration already in r). */
int tn_op_table_rules(eg_rules *r, tl_diag *d);

const tn_data *tn_data_of(eg_egraph *e, eg_id id);

#endif
