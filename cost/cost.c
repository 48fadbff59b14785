/* cost/cost.c - the property registry, node evaluation, the monotonicity
 * check, and the built-in properties (cost.h). */
#include "cost/cost.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

typedef struct cost_prop {
  char name[TL_COST_NAME_MAX];
  tl_prop_kind kind;
  tl_cost_fn fn[TL_OP_COUNT];
  void *user[TL_OP_COUNT];
  bool own[TL_OP_COUNT]; /* set for this op by name: a later default keeps it */
} cost_prop;

typedef struct cost_kept {
  void *p;
  void (*release)(void *);
} cost_kept;

struct tl_cost_registry {
  cost_prop *props;
  int nprops;
  tl_device device; /* where the built-in placement puts values */
  tl_profile profile;
  double sym_size;
  cost_kept *kept;
  int nkept, capkept;
};

/* ---- registry --------------------------------------------------------- */

static bool valid_name(const char *s) {
  if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
  size_t n = 0;
  for (; s[n]; n++)
    if (!(isalnum((unsigned char)s[n]) || s[n] == '_')) return false;
  return n < TL_COST_NAME_MAX;
}

int tl_cost_add_property(tl_cost_registry *r, const char *name, tl_prop_kind kind, tl_cost_fn fn,
                         void *user, char *err, size_t n) {
  if (!valid_name(name)) {
    snprintf(err, n, "cost property name '%s' is not a name ([A-Za-z_][A-Za-z0-9_]*, at most %d bytes)",
             name ? name : "(null)", TL_COST_NAME_MAX - 1);
    return -1;
  }
  if (tl_cost_find(r, name) >= 0) {
    snprintf(err, n, "cost property '%s' is already registered", name);
    return -1;
  }
  if (!fn || (kind != TL_PROP_COST && kind != TL_PROP_VALUE)) {
    snprintf(err, n, "cost property '%s': needs a function and a kind (cost or value)", name);
    return -1;
  }
  if (r->nprops == TL_COST_MAX_PROPS) {
    snprintf(err, n, "cost property '%s': at most %d properties", name, TL_COST_MAX_PROPS);
    return -1;
  }
  cost_prop *p = &r->props[r->nprops];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->kind = kind;
  for (int op = 0; op < TL_OP_COUNT; op++) {
    p->fn[op] = fn;
    p->user[op] = user;
  }
  return r->nprops++;
}

int tl_cost_register(tl_cost_registry *r, const char *prop, const char *op, tl_cost_fn fn, void *user,
                     char *err, size_t n) {
  int id = prop ? tl_cost_find(r, prop) : -1;
  if (id < 0) {
    snprintf(err, n, "cost function for unknown property '%s'", prop ? prop : "(null)");
    return -1;
  }
  if (!fn) {
    snprintf(err, n, "cost function for property '%s': NULL function", prop);
    return -1;
  }
  cost_prop *p = &r->props[id];
  if (!op || strcmp(op, "*") == 0) {
    for (int o = 0; o < TL_OP_COUNT; o++)
      if (!p->own[o]) {
        p->fn[o] = fn;
        p->user[o] = user;
      }
    return 0;
  }
  int o = tl_op_lookup(op, strlen(op));
  if (o < 0) {
    snprintf(err, n, "cost function for property '%s': unknown op '%s'", prop, op);
    return -1;
  }
  p->fn[o] = fn;
  p->user[o] = user;
  p->own[o] = true;
  return 0;
}

void tl_cost_keep(tl_cost_registry *r, void *p, void (*release)(void *)) {
  TL_GROW(r->kept, r->nkept, r->capkept);
  r->kept[r->nkept++] = (cost_kept){p, release};
}

int tl_cost_find(const tl_cost_registry *r, const char *name) {
  for (int i = 0; i < r->nprops; i++)
    if (strcmp(r->props[i].name, name) == 0) return i;
  return -1;
}

int tl_cost_nprops(const tl_cost_registry *r) { return r->nprops; }
const char *tl_cost_prop_name(const tl_cost_registry *r, int id) { return r->props[id].name; }
tl_prop_kind tl_cost_prop_kind(const tl_cost_registry *r, int id) { return r->props[id].kind; }
const tl_profile *tl_cost_profile(const tl_cost_registry *r) { return &r->profile; }
double tl_cost_sym_size(const tl_cost_registry *r) { return r->sym_size; }

void tl_cost_registry_free(tl_cost_registry *r) {
  if (!r) return;
  /* newest first: a plugin's data goes before the plugin's code (kept first) */
  for (int i = r->nkept - 1; i >= 0; i--)
    if (r->kept[i].release) r->kept[i].release(r->kept[i].p);
  tl_free(r->kept);
  tl_free(r->props);
  tl_free(r);
}

/* ---- evaluation ---------------------------------------------------------- */

static double value_bytes(const tl_type *t, double sym_size) {
  return tl_type_elems(t, sym_size) * (double)tl_dtype_size((tl_dtype)t->dtype);
}

/* Ops the backend fuses into their consumer's loop (elementwise, and shape
 * ops that are index maps): their result is never written to memory and
 * they add no kernel of their own. concat, take, slice_update and
 * scatter_add copy; they are kernels;
 * reshape is a view. */
static bool fused(int op) {
  return tl_ops[op].fuse == TL_FUSE_ELEMENTWISE ||
         (tl_ops[op].kind == TL_KIND_SHAPE && op != TL_OP_CONCAT && op != TL_OP_TAKE &&
          op != TL_OP_SLICE_UPDATE && op != TL_OP_SCATTER_ADD);
}

/* profile.h's per-op work with the fusion refinement: a fused op pays the
 * reads of its operands but not the write of its result. */
static void node_work(const tl_cost_node *n, tl_kernel_work *w) {
  tl_node_work(n->profile, (tl_op)n->op, n->attrs, n->type, n->in_type, n->nin, n->sym_size, w);
  if (fused(n->op)) {
    w->bytes -= value_bytes(n->type, n->sym_size);
    if (w->bytes < 0) w->bytes = 0;
  }
}

int tl_cost_eval(const tl_cost_registry *r, tl_cost_node *n, double *out, char *err, size_t en) {
  tl_kernel_work w; /* once per node: several properties read it */
  node_work(n, &w);
  n->work = &w;
  n->self = out;
  int rc = 0;
  for (int p = 0; p < r->nprops; p++) {
    const cost_prop *cp = &r->props[p];
    out[p] = cp->fn[n->op](n, cp->user[n->op]);
    if (isnan(out[p])) {
      snprintf(err, en, "cost property '%s' of op '%s' is NaN", cp->name, tl_ops[n->op].name);
      rc = -1;
      break;
    }
  }
  n->work = NULL; /* it lived on this stack */
  return rc;
}

int tl_cost_check_monotone(const tl_cost_registry *r, const tl_cost_node *n, const double *base,
                           char *err, size_t en) {
  int np = r->nprops;
  double *raised = tl_xmalloc((size_t)np * sizeof *raised);
  double *out = tl_xmalloc((size_t)np * sizeof *out);
  const double **in = tl_xmalloc(((size_t)n->nin + 1) * sizeof *in);
  int rc = 0;
  for (int k = 0; k < n->nin && rc == 0; k++) {
    /* operand k's costs raised (value properties kept: they are not costs) */
    for (int p = 0; p < np; p++)
      raised[p] = n->in[k][p] + (r->props[p].kind == TL_PROP_COST ? 1.0 + fabs(n->in[k][p]) : 0.0);
    for (int j = 0; j < n->nin; j++) in[j] = j == k ? raised : n->in[j];
    tl_cost_node m = *n;
    m.in = in;
    char e2[256];
    if (tl_cost_eval(r, &m, out, e2, sizeof e2)) {
      snprintf(err, en, "%s (with operand %d's costs raised)", e2, k);
      rc = -1;
      break;
    }
    for (int p = 0; p < np; p++) {
      if (r->props[p].kind != TL_PROP_COST) continue;
      if (out[p] < base[p] - 1e-12 * fabs(base[p])) {
        snprintf(err, en,
                 "cost function for property '%s' of op '%s' is not monotone: raising operand %d's "
                 "costs lowers it from %.6g to %.6g",
                 r->props[p].name, tl_ops[n->op].name, k, base[p], out[p]);
        rc = -1;
        break;
      }
    }
  }
  tl_free(raised);
  tl_free(out);
  tl_free(in);
  return rc;
}

/* ---- the built-in properties ------------------------------------------------
 * Ids in registration order (tl_cost_registry_new). */
enum { P_PLACEMENT, P_FLOPS, P_BYTES, P_TIME, P_MEMORY, P_TRANSFER, P_ACCURACY, P_CODE };

static double operands(const tl_cost_node *n, int p) {
  double s = 0;
  for (int k = 0; k < n->nin; k++) s += n->in[k][p];
  return s;
}

static bool free_op(int op) {
  tl_kind k = tl_ops[op].kind;
  return k == TL_KIND_SOURCE || k == TL_KIND_CONSTANT;
}

static double b_placement(const tl_cost_node *n, void *u) {
  const tl_cost_registry *r = u;
  /* on the GPU every computed value (constants too: they are part of the
   * module) lives there; the graph's inputs come from the host */
  return r->device == TL_DEVICE_GPU && n->op != TL_OP_INPUT ? 1 : 0;
}

void tl_cost_set_device(tl_cost_registry *r, tl_device d) { r->device = d; }
tl_device tl_cost_device(const tl_cost_registry *r) { return r->device; }

static double b_flops(const tl_cost_node *n, void *u) {
  (void)u;
  const tl_kernel_work *w = n->work;
  /* an element of exp/log/... is one operation here; its real price is in `time` */
  double own = w->flops + w->gemm_flops_f32 + w->gemm_flops_f64 + (w->math_ns > 0 ? w->elems : 0);
  return own + operands(n, P_FLOPS);
}

static double b_bytes(const tl_cost_node *n, void *u) {
  (void)u;
  return n->work->bytes + operands(n, P_BYTES);
}

static double b_time(const tl_cost_node *n, void *u) {
  (void)u;
  double own = 0;
  if (!free_op(n->op)) {
    if (n->self[P_PLACEMENT] != 0) { /* the GPU's roofline, its launch instead of the CPU's call */
      bool f64 = n->type->dtype == TL_F64 || (n->nin > 0 && n->in_type[0]->dtype == TL_F64);
      own = tl_profile_gpu_kernel_time(n->profile, n->work, f64);
      if (fused(n->op)) own -= n->profile->gpu_launch;
    } else {
      own = tl_profile_kernel_time(n->profile, n->work);
      if (fused(n->op)) own -= n->profile->kernel_overhead; /* the consumer's kernel pays it */
    }
    if (own < 0) own = 0;
  }
  return own + operands(n, P_TIME);
}

static double b_memory(const tl_cost_node *n, void *u) {
  (void)u;
  /* the value this node materialises; inputs are the caller's, literals are scalars in code */
  double own = n->op == TL_OP_INPUT || n->op == TL_OP_LIT ? 0 : value_bytes(n->type, n->sym_size);
  return own + operands(n, P_MEMORY);
}

/* Seconds of copies: each operand placed elsewhere than this node moves
 * over the link (a value used by several such consumers is charged once
 * each). */
static double b_transfer(const tl_cost_node *n, void *u) {
  (void)u;
  double own = 0;
  for (int k = 0; k < n->nin; k++)
    if (n->in[k][P_PLACEMENT] != n->self[P_PLACEMENT])
      own += tl_profile_transfer_time(n->profile, value_bytes(n->in_type[k], n->sym_size));
  return own + operands(n, P_TRANSFER);
}

/* Whether add or sub can cancel: its operands may have opposite signs
 * (add) or the same sign (sub), as far as the sign facts know. An add of
 * two non-negative values, or a sub of a non-negative and a non-positive
 * one, rounds once and loses nothing. */
static bool cancels(const tl_cost_node *n) {
  if (!n->in_facts) return true;
  uint8_t a = n->in_facts[0], b = n->in_facts[1];
  const uint8_t NN = TL_FACT_NONNEG, NP = TL_FACT_NONPOS;
  if (n->op == TL_OP_ADD) return !((a & b & NN) || (a & b & NP));
  return !((a & NN && b & NP) || (a & NP && b & NN));
}

/* A cancellation can lose every digit where an overflow needs extreme
 * inputs: it weighs two hazards. */
#define CANCELLATION 2.0

/* Numerical hazards of float ops (the op table's HAZARD column), one each:
 * exp overflows; log is ill-conditioned near 1 and turns an underflowed 0
 * into -inf; add and sub cancel (unless the sign facts rule it out:
 * two hazards, see cancels); div and reciprocal overflow when the
 * divisor underflows. The
 * fused forms of rules/stability.rw (log1p, softplus, logsumexp, sigmoid,
 * ...) have none: that is what they are for. */
static double b_accuracy(const tl_cost_node *n, void *u) {
  (void)u;
  if (!tl_dtype_is_float((tl_dtype)n->type->dtype)) return operands(n, P_ACCURACY);
  double own = tl_ops[n->op].hazard;
  if ((n->op == TL_OP_ADD || n->op == TL_OP_SUB) && n->nin == 2)
    own = cancels(n) ? CANCELLATION : 0;
  return own + operands(n, P_ACCURACY);
}

/* Code: one per op that generates code (sources and constants none). A
 * control node is one (its call); the code of its functions is charged
 * once per program, not per call (tl_cost_control leaves it out; the
 * optimizer's extraction and tl_cost_graph add each function's once), so
 * that inlining a function at k places costs k copies of its code where
 * calling it costs one: the objective's weight on `code` is what makes a
 * large function called from many places stay a call. */
static double b_code(const tl_cost_node *n, void *u) {
  (void)u;
  tl_kind k = tl_ops[n->op].kind;
  return (k == TL_KIND_SOURCE || k == TL_KIND_CONSTANT ? 0 : 1) + operands(n, P_CODE);
}

tl_cost_registry *tl_cost_registry_new(const tl_profile *p, double sym_size) {
  tl_cost_registry *r = tl_xcalloc(1, sizeof *r);
  r->props = tl_xcalloc(TL_COST_MAX_PROPS, sizeof *r->props);
  r->profile = *p;
  r->sym_size = sym_size > 0 ? sym_size : 1;
  static const struct {
    const char *name;
    tl_prop_kind kind;
    tl_cost_fn fn;
  } builtin[] = {
    [P_PLACEMENT] = {"placement", TL_PROP_VALUE, b_placement},
    [P_FLOPS] = {"flops", TL_PROP_COST, b_flops},
    [P_BYTES] = {"bytes", TL_PROP_COST, b_bytes},
    [P_TIME] = {"time", TL_PROP_COST, b_time},
    [P_MEMORY] = {"memory", TL_PROP_COST, b_memory},
    [P_TRANSFER] = {"transfer", TL_PROP_COST, b_transfer},
    [P_ACCURACY] = {"accuracy", TL_PROP_COST, b_accuracy},
    [P_CODE] = {"code", TL_PROP_COST, b_code},
  };
  char err[128];
  for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++) {
    int id = tl_cost_add_property(r, builtin[i].name, builtin[i].kind, builtin[i].fn, i == P_PLACEMENT ? r : NULL,
                                  err, sizeof err);
    if (id != (int)i) { /* a broken invariant, not a user error */
      fprintf(stderr, "%s:%d: built-in cost property %s: %s\n", __FILE__, __LINE__, builtin[i].name, err);
      abort();
    }
  }
  return r;
}
