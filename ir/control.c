/* control.c - type inference for call, cond, loop and scan, and the facts
 * about their runs that the interpreter and the optimizer share.
 *
 * A control node applies a function of the graph's table to its operands.
 * The function's parameters are matched against the operand types: a
 * parameter's concrete dim must be the operand's, and a symbolic one takes
 * the operand's dim (the same symbol must get the same dim everywhere).
 * The results are the function's output types with its symbols replaced by
 * what they were bound to, so a function is typed per call signature and
 * one function serves every shape it is called with. A result dim that no
 * parameter determines is an error: the caller could not know its size. */
#include "ir/ir.h"
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNBOUND TL_DIM_NONE

typedef struct cctx {
  const tl_graph *g;
  int op;
  char *err;
  size_t n;
} cctx;

__attribute__((format(printf, 2, 3))) static int fail(cctx *c, const char *fmt, ...) {
  int k = snprintf(c->err, c->n, "%s: ", tl_ops[c->op].name);
  if (k < 0 || (size_t)k >= c->n) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + k, c->n - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

static const tl_graph *callee(cctx *c, const tl_attrs *a, int slot, const char *key) {
  const tl_fns *t = c->g ? c->g->fns : NULL;
  int32_t i = a->fn[slot];
  if (!t || i < 0 || i >= t->n) {
    fail(c, ":%s names no function of this graph's table", key);
    return NULL;
  }
  return t->fn[i];
}

/* map[s]: the caller dim callee symbol s is bound to (UNBOUND: none yet). */
static int bind_params(cctx *c, const tl_graph *f, const tl_type *const *args, int nargs, int64_t *map,
                       const char *role) {
  if (f->ninputs != nargs)
    return fail(c, "%s '%s' takes %d operand%s, given %d", role, f->name, f->ninputs, f->ninputs == 1 ? "" : "s",
                nargs);
  for (int s = 0; s < f->nsyms; s++) map[s] = UNBOUND;
  /* base symbols first; derived ones are then computed in the caller's
   * table (ir/symdim.h) and compared */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      char e[200];
      if (tl_syms_map((tl_graph *)(uintptr_t)c->g, f, map, e, sizeof e)) return fail(c, "%s", e);
    }
    for (int k = 0; k < nargs; k++) {
      const tl_node *p = &f->nodes[f->inputs[k]];
      const tl_type *pt = &p->type, *at = args[k];
      char s1[128], s2[128];
      bool ok = pt->dtype == at->dtype && pt->rank == at->rank;
      for (int d = 0; ok && d < pt->rank; d++) {
        int64_t pd = pt->dims[d], ad = at->dims[d];
        if (!tl_dim_is_sym(pd)) {
          ok = pd == ad;
        } else if (tl_sym_derived(f, tl_dim_sym_id(pd)) != (pass == 1)) {
          continue;
        } else {
          int64_t *m = &map[tl_dim_sym_id(pd)];
          if (*m == UNBOUND && pass == 1)
            return fail(c, "parameter '%s' of %s '%s' has dim '%s', which none of its parameters determines by "
                           "itself", f->names[p->name], role, f->name, f->syms[tl_dim_sym_id(pd)]);
          if (*m == UNBOUND) *m = ad;
          ok = *m == ad;
        }
      }
      if (!ok)
        return fail(c, "operand %d is %s but parameter '%s' of %s '%s' is %s", k,
                    tl_type_str(c->g, at, s1, sizeof s1), f->names[p->name], role, f->name,
                    tl_type_str(f, pt, s2, sizeof s2));
    }
  }
  return 0;
}

/* Output k of f as the caller sees it under map. */
static int result_type(cctx *c, const tl_graph *f, int k, const int64_t *map, tl_type *out, const char *role) {
  const tl_output *o = &f->outputs[k];
  *out = f->nodes[o->node].type;
  out->weak = 0;
  for (int d = 0; d < out->rank; d++) {
    if (!tl_dim_is_sym(out->dims[d])) continue;
    int s = tl_dim_sym_id(out->dims[d]);
    if (map[s] == UNBOUND)
      return fail(c, "output '%s' of %s '%s' has dim '%s', which none of its parameters determines", f->names[o->name],
                  role, f->name, f->syms[s]);
    out->dims[d] = map[s];
  }
  return 0;
}

static bool same_type(const tl_type *a, const tl_type *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d]) return false;
  return true;
}

static int64_t *new_map(const tl_graph *f) { return tl_xmalloc(((size_t)f->nsyms + 1) * sizeof(int64_t)); }

/* A predicate function (loop :cond/:until): state -> one scalar. */
static int check_pred(cctx *c, const tl_graph *f, const tl_type *const *in, int nin, const char *role) {
  int64_t *map = new_map(f);
  int r = bind_params(c, f, in, nin, map, role);
  tl_type t;
  if (!r && f->noutputs != 1)
    r = fail(c, "%s '%s' must have one output (a scalar), it has %d", role, f->name, f->noutputs);
  if (!r) r = result_type(c, f, 0, map, &t, role);
  if (!r && t.rank != 0) {
    char s1[128];
    r = fail(c, "%s '%s' must return a scalar, not %s", role, f->name, tl_type_str(c->g, &t, s1, sizeof s1));
  }
  tl_free(map);
  return r;
}

static int infer_call(cctx *c, const tl_attrs *a, const tl_type *const *in, int nin, tl_type *out) {
  const tl_graph *f = callee(c, a, 0, "fn");
  if (!f) return -1;
  if (a->out < 0 || a->out >= f->noutputs)
    return fail(c, ":out %d, but '%s' has %d output%s", a->out, f->name, f->noutputs, f->noutputs == 1 ? "" : "s");
  int64_t *map = new_map(f);
  int r = bind_params(c, f, in, nin, map, "function");
  if (!r) r = result_type(c, f, a->out, map, out, "function");
  tl_free(map);
  return r;
}

static int infer_cond(cctx *c, const tl_attrs *a, const tl_type *const *in, int nin, tl_type *out) {
  const tl_graph *ft = callee(c, a, 0, "then"), *fe = callee(c, a, 1, "else");
  if (!ft || !fe) return -1;
  char s1[128], s2[128];
  if (in[0]->rank != 0)
    return fail(c, "the condition must be a scalar, not %s", tl_type_str(c->g, in[0], s1, sizeof s1));
  if (ft->noutputs != fe->noutputs)
    return fail(c, "the branches disagree: '%s' has %d outputs, '%s' has %d", ft->name, ft->noutputs, fe->name,
                fe->noutputs);
  if (a->out < 0 || a->out >= ft->noutputs)
    return fail(c, ":out %d, but the branches have %d output%s", a->out, ft->noutputs, ft->noutputs == 1 ? "" : "s");
  int64_t *mt = new_map(ft), *me = new_map(fe);
  int r = bind_params(c, ft, in + 1, nin - 1, mt, "branch");
  if (!r) r = bind_params(c, fe, in + 1, nin - 1, me, "branch");
  for (int k = 0; !r && k < ft->noutputs; k++) {
    tl_type tt, te;
    r = result_type(c, ft, k, mt, &tt, "branch");
    if (!r) r = result_type(c, fe, k, me, &te, "branch");
    if (!r && !same_type(&tt, &te))
      r = fail(c, "the branches disagree on output %d: '%s' gives %s, '%s' gives %s", k, ft->name,
               tl_type_str(c->g, &tt, s1, sizeof s1), fe->name, tl_type_str(c->g, &te, s2, sizeof s2));
    if (!r && k == a->out) *out = tt;
  }
  tl_free(mt);
  tl_free(me);
  return r;
}

static int infer_loop(cctx *c, const tl_attrs *a, const tl_type *const *in, int nin, tl_type *out) {
  const tl_graph *fc = callee(c, a, 0, "cond"), *fb = callee(c, a, 1, "body");
  if (!fc || !fb) return -1;
  const tl_graph *fu = (a->present & TL_A_UNTIL) ? callee(c, a, 2, "until") : NULL;
  if ((a->present & TL_A_UNTIL) && !fu) return -1;
  if (a->trips < -1) return fail(c, ":max must be a count >= 0 or 'unbounded'");
  bool stacks = (a->present & TL_A_STACK) != 0;
  if (stacks != ((a->present & TL_A_TRIPS) != 0))
    return fail(c, ":stack and :trips go together (the per-trip results and the symbol of their length)");
  int ny = stacks ? (int)a->stack : 0;
  if (stacks && (a->stack < 1 || !tl_dim_is_sym(a->tdim) || !c->g || tl_dim_sym_id(a->tdim) >= c->g->nsyms ||
                 tl_sym_derived(c->g, tl_dim_sym_id(a->tdim))))
    return fail(c, ":stack needs a count >= 1 and :trips a symbol of this graph");
  if (a->out < 0 || a->out >= nin + ny)
    return fail(c, ":out %d, but the loop gives %d value%s", a->out, nin + ny, nin + ny == 1 ? "" : "s");
  if (check_pred(c, fc, in, nin, "condition") || (fu && check_pred(c, fu, in, nin, "post-condition"))) return -1;
  int64_t *map = new_map(fb);
  int r = bind_params(c, fb, in, nin, map, "body");
  if (!r && fb->noutputs != nin + ny)
    r = ny ? fail(c, "body '%s' must return the %d carried value%s and %d per-trip value%s, it has %d output%s",
                  fb->name, nin, nin == 1 ? "" : "s", ny, ny == 1 ? "" : "s", fb->noutputs, fb->noutputs == 1 ? "" : "s")
           : fail(c, "body '%s' must return the %d carried value%s, it has %d output%s", fb->name, nin,
                  nin == 1 ? "" : "s", fb->noutputs, fb->noutputs == 1 ? "" : "s");
  for (int k = 0; !r && k < nin + ny; k++) {
    tl_type t;
    char s1[128], s2[128];
    r = result_type(c, fb, k, map, &t, "body");
    if (!r && k < nin && !same_type(&t, in[k]))
      r = fail(c, "body '%s' turns carried value %d from %s into %s (a loop keeps its state's types)", fb->name, k,
               tl_type_str(c->g, in[k], s1, sizeof s1), tl_type_str(c->g, &t, s2, sizeof s2));
    else if (!r && k >= nin && t.rank + 1 > TL_MAX_RANK)
      r = fail(c, "stacking output %d of '%s' needs rank %d (at most %d)", k, fb->name, t.rank + 1, TL_MAX_RANK);
    if (!r && k == a->out) {
      *out = t;
      out->weak = 0;
      if (k >= nin) { /* stacked along a new first dim: the trip count */
        memmove(out->dims + 1, t.dims, sizeof(int64_t) * (TL_MAX_RANK - 1));
        out->dims[0] = a->tdim;
        out->rank++;
      }
    }
  }
  tl_free(map);
  return r;
}

static int infer_scan(cctx *c, const tl_attrs *a, const tl_type *const *in, int nin, tl_type *out) {
  const tl_graph *f = callee(c, a, 1, "body");
  if (!f) return -1;
  int64_t nc = (a->present & TL_A_CONSTS) ? a->consts : 0;
  if (a->carry < 0 || nc < 0 || a->carry + nc > nin)
    return fail(c, ":carry %lld and :consts %lld, but it has %d operands", (long long)a->carry, (long long)nc, nin);
  int k = (int)a->carry, m = (int)nc, nx = nin - k - m;
  char s1[128], s2[128];
  int64_t len = (a->present & TL_A_LENGTH) ? a->length : UNBOUND;
  if ((a->present & TL_A_LENGTH) && len < 0) return fail(c, ":length must be >= 0");
  tl_type *slices = tl_xmalloc(sizeof *slices * ((size_t)nx + 1));
  const tl_type **args = tl_xmalloc(sizeof *args * ((size_t)nin + 1));
  for (int i = 0; i < k + m; i++) args[i] = in[i];
  for (int i = 0; i < nx; i++) {
    const tl_type *x = in[k + m + i];
    int bad =
        x->rank < 1 ? fail(c, "sequence operand %d is a scalar (it is scanned along its first dim)", k + m + i) : 0;
    if (!bad && len == UNBOUND)
      len = x->dims[0];
    else if (!bad && x->dims[0] != len)
      bad = fail(c, "sequence operand %d is %s, whose first dim is not the scan's length", k + m + i,
                 tl_type_str(c->g, x, s1, sizeof s1));
    if (bad) {
      tl_free(slices);
      tl_free(args);
      return -1;
    }
    slices[i] = *x;
    slices[i].rank--;
    memmove(slices[i].dims, x->dims + 1, sizeof(int64_t) * (TL_MAX_RANK - 1));
    args[k + m + i] = &slices[i];
  }
  int64_t *map = new_map(f);
  int r = len == UNBOUND ? fail(c, "has no sequence operand, so it needs :length") : 0;
  if (!r) r = bind_params(c, f, args, nin, map, "body");
  if (!r && f->noutputs < k)
    r = fail(c, "body '%s' must return the %d carried value%s first, it has %d output%s", f->name, k, k == 1 ? "" : "s",
             f->noutputs, f->noutputs == 1 ? "" : "s");
  if (!r && (a->out < 0 || a->out >= f->noutputs))
    r = fail(c, ":out %d, but body '%s' has %d output%s", a->out, f->name, f->noutputs, f->noutputs == 1 ? "" : "s");
  for (int i = 0; !r && i < f->noutputs; i++) {
    tl_type t;
    r = result_type(c, f, i, map, &t, "body");
    if (r) break;
    if (i < k && !same_type(&t, in[i]))
      r = fail(c, "body '%s' turns carried value %d from %s into %s (a scan keeps its carries' types)", f->name, i,
               tl_type_str(c->g, in[i], s1, sizeof s1), tl_type_str(c->g, &t, s2, sizeof s2));
    else if (i >= k && t.rank + 1 > TL_MAX_RANK)
      r = fail(c, "stacking output %d of '%s' needs rank %d (at most %d)", i, f->name, t.rank + 1, TL_MAX_RANK);
    if (!r && i == a->out) {
      *out = t;
      if (i >= k) {
        memmove(out->dims + 1, t.dims, sizeof(int64_t) * (TL_MAX_RANK - 1));
        out->dims[0] = len;
        out->rank++;
      }
    }
  }
  tl_free(map);
  tl_free(slices);
  tl_free(args);
  return r;
}

int tl_infer_control(const tl_graph *g, int op, const tl_attrs *a, const tl_type *const *in, int nin, tl_type *out,
                     char *err, size_t n) {
  cctx c = {g, op, err, n};
  switch (op) {
  case TL_OP_CALL: return infer_call(&c, a, in, nin, out);
  case TL_OP_COND: return infer_cond(&c, a, in, nin, out);
  case TL_OP_LOOP: return infer_loop(&c, a, in, nin, out);
  case TL_OP_SCAN: return infer_scan(&c, a, in, nin, out);
  default: return fail(&c, "is not a control-flow op");
  }
}

bool tl_graph_stacks(const tl_graph *g) {
  for (int f = -1; f < (g->fns ? g->fns->n : 0); f++) {
    const tl_graph *h = f < 0 ? g : g->fns->fn[f];
    for (int32_t i = 0; i < h->nnodes; i++)
      if (h->nodes[i].op == TL_OP_LOOP && (h->nodes[i].attrs.present & TL_A_STACK)) return true;
  }
  return false;
}

int tl_control_nresults(const tl_graph *g, const tl_node *x) {
  const tl_fns *t = g->fns;
  switch (x->op) {
  case TL_OP_CALL: return t->fn[x->attrs.fn[0]]->noutputs;
  case TL_OP_COND: return t->fn[x->attrs.fn[0]]->noutputs;
  case TL_OP_LOOP: return x->ninputs + ((x->attrs.present & TL_A_STACK) ? (int)x->attrs.stack : 0);
  case TL_OP_SCAN: return t->fn[x->attrs.fn[1]]->noutputs;
  default: return 1;
  }
}

int tl_control_fns(const tl_node *x, int32_t fns[3]) {
  const tl_attrs *a = &x->attrs;
  switch (x->op) {
  case TL_OP_CALL: fns[0] = a->fn[0]; return 1;
  case TL_OP_COND: fns[0] = a->fn[0], fns[1] = a->fn[1]; return 2;
  case TL_OP_LOOP: fns[0] = a->fn[0], fns[1] = a->fn[1], fns[2] = a->fn[2]; return (a->present & TL_A_UNTIL) ? 3 : 2;
  case TL_OP_SCAN: fns[0] = a->fn[1]; return 1;
  default: return 0;
  }
}

bool tl_control_same_run(const tl_graph *g, int32_t a, int32_t b) {
  const tl_node *x = &g->nodes[a], *y = &g->nodes[b];
  if (x->op != y->op || x->ninputs != y->ninputs || tl_ops[x->op].kind != TL_KIND_CONTROL) return false;
  tl_attrs ax = x->attrs, ay = y->attrs;
  ax.out = ay.out = 0;
  ax.present &= ~(unsigned)TL_A_OUT; /* set for every :out but 0 */
  ay.present &= ~(unsigned)TL_A_OUT;
  if (memcmp(&ax, &ay, sizeof ax) != 0) return false;
  return x->ninputs == 0 ||
         memcmp(tl_node_inputs(g, x), tl_node_inputs(g, y), (size_t)x->ninputs * sizeof(int32_t)) == 0;
}

/* Whether runs a and b (first nodes) compute the same first results: the
 * same op, operands and attributes but the functions, and b's functions
 * give a's results first (f and f.trace: a gradient's forward scan). */
bool tl_control_prefix_run(const tl_graph *g, int32_t a, int32_t b) {
  const tl_node *x = &g->nodes[a], *y = &g->nodes[b];
  if (x->op != y->op || x->ninputs != y->ninputs || a == b) return false;
  if (x->ninputs && memcmp(tl_node_inputs(g, x), tl_node_inputs(g, y), (size_t)x->ninputs * sizeof(int32_t)))
    return false;
  tl_attrs ax = x->attrs, ay = y->attrs;
  for (int k = 0; k < 3; k++) ax.fn[k] = ay.fn[k] = 0;
  ax.out = ay.out = 0;
  ax.present &= ~(unsigned)TL_A_OUT;
  ay.present &= ~(unsigned)TL_A_OUT;
  if (memcmp(&ax, &ay, sizeof ax) || x->op == TL_OP_LOOP) return false;
  int32_t fx[3], fy[3];
  int nf = tl_control_fns(x, fx);
  tl_control_fns(y, fy);
  for (int k = 0; k < nf; k++) {
    const tl_graph *fa = g->fns->fn[fx[k]], *fb = g->fns->fn[fy[k]];
    if (fa == fb) continue;
    if (fb->noutputs < fa->noutputs) return false;
    tl_graph head = *fb; /* fb with only as many results as fa */
    head.noutputs = fa->noutputs;
    /* a gradient's functions sit in a copy of the table that grew; bodies
     * without control flow do not look into it */
    if (!tl_graph_has_control(fa) && !tl_graph_has_control(fb)) head.fns = fa->fns;
    if (!tl_graph_equal(fa, &head)) return false;
  }
  return true;
}
