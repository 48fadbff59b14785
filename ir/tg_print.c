/* tg_print.c - the canonical .tg text of a graph.
 *
 * What gets a `let`: every node a let named, and every other node used more
 * than once (so shared work stays shared when the text is read back).
 * Scalar literals and inputs are always written in place. Generated names
 * are t0, t1, ... skipping names the graph already uses. */
#include "tensor/tensor.h"
#include "util/alloc.h"
#include "ir/tg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_fmt_double(char *buf, size_t size, double v, bool as_f32) {
  if (isnan(v)) {
    snprintf(buf, size, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, size, v > 0 ? "inf" : "-inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    double back = strtod(buf, NULL);
    if (as_f32 ? (float)back == (float)v : back == v) break;
  }
  if (!strpbrk(buf, ".eEn")) {
    size_t n = strlen(buf);
    if (n + 2 < size) memcpy(buf + n, ".0", 3);
  }
}

#define TL_PRINT_MAX_DEPTH 48

typedef struct printer {
  const tl_graph *g;
  tl_buf out;
  char **names; /* per node: name to refer to it by, or NULL: inline */
} printer;

static void put_dims(printer *pr, const int64_t *dims, int n) {
  tl_buf_putn(&pr->out, "[", 1);
  for (int i = 0; i < n; i++) {
    if (i) tl_buf_putn(&pr->out, " ", 1);
    if (dims[i] == TL_DIM_INFER) tl_buf_printf(&pr->out, "-1");
    else if (tl_dim_is_sym(dims[i])) tl_buf_printf(&pr->out, "%s", pr->g->syms[tl_dim_sym_id(dims[i])]);
    else tl_buf_printf(&pr->out, "%lld", (long long)dims[i]);
  }
  tl_buf_putn(&pr->out, "]", 1);
}

static void put_ints(printer *pr, const int8_t *v, int n, bool scalar_if_one) {
  if (n == 1 && scalar_if_one) {
    tl_buf_printf(&pr->out, "%d", v[0]);
    return;
  }
  tl_buf_putn(&pr->out, "[", 1);
  for (int i = 0; i < n; i++) tl_buf_printf(&pr->out, i ? " %d" : "%d", v[i]);
  tl_buf_putn(&pr->out, "]", 1);
}

static void put_attrs(printer *pr, const tl_attrs *a) {
  if (a->present & TL_A_AXIS) {
    tl_buf_printf(&pr->out, " :axis ");
    put_ints(pr, a->axes, a->naxes, true);
  }
  if ((a->present & TL_A_KEEPDIMS) && a->keepdims) tl_buf_printf(&pr->out, " :keepdims true");
  if (a->present & TL_A_DTYPE) tl_buf_printf(&pr->out, " :dtype %s", tl_dtype_name((tl_dtype)a->dtype));
  if (a->present & TL_A_SHAPE) {
    tl_buf_printf(&pr->out, " :shape ");
    put_dims(pr, a->shape, a->nshape);
  }
  if (a->present & TL_A_PERM) {
    tl_buf_printf(&pr->out, " :perm ");
    put_ints(pr, a->perm, a->nperm, false);
  }
  if (a->present & TL_A_START) tl_buf_printf(&pr->out, " :start %lld", (long long)a->start);
  if (a->present & TL_A_STOP) tl_buf_printf(&pr->out, " :stop %lld", (long long)a->stop);
  if (a->present & TL_A_STEP) tl_buf_printf(&pr->out, " :step %lld", (long long)a->step);
  static const struct { unsigned bit; const char *key; int slot; } fk[] = {
    {TL_A_FN, "fn", 0}, {TL_A_THEN, "then", 0}, {TL_A_ELSE, "else", 1},
    {TL_A_COND, "cond", 0}, {TL_A_BODY, "body", 1}, {TL_A_UNTIL, "until", 2}};
  for (size_t k = 0; k < sizeof fk / sizeof *fk; k++) {
    if (!(a->present & fk[k].bit)) continue;
    const tl_fns *t = pr->g->fns;
    int32_t i = a->fn[fk[k].slot];
    if (t && i >= 0 && i < t->n) tl_buf_printf(&pr->out, " :%s %s", fk[k].key, t->fn[i]->name);
    else tl_buf_printf(&pr->out, " :%s ?%d", fk[k].key, i);
  }
  if (a->present & TL_A_CARRY) tl_buf_printf(&pr->out, " :carry %lld", (long long)a->carry);
  if (a->present & TL_A_CONSTS) tl_buf_printf(&pr->out, " :consts %lld", (long long)a->consts);
  if (a->present & TL_A_LENGTH) tl_buf_printf(&pr->out, " :length %lld", (long long)a->length);
  if (a->present & TL_A_MAX) {
    if (a->trips < 0) tl_buf_printf(&pr->out, " :max unbounded");
    else tl_buf_printf(&pr->out, " :max %lld", (long long)a->trips);
  }
  if (a->present & TL_A_STACK) tl_buf_printf(&pr->out, " :stack %lld", (long long)a->stack);
  if ((a->present & TL_A_TRIPS) && tl_dim_is_sym(a->tdim) && tl_dim_sym_id(a->tdim) < pr->g->nsyms)
    tl_buf_printf(&pr->out, " :trips %s", pr->g->syms[tl_dim_sym_id(a->tdim)]);
  if (a->present & TL_A_OUT) tl_buf_printf(&pr->out, " :out %d", a->out);
}

static void put_value(printer *pr, tl_dtype dt, double f, int64_t i, bool is_int) {
  char b[64];
  if (is_int || !tl_dtype_is_float(dt)) {
    tl_buf_printf(&pr->out, "%lld", (long long)i);
    return;
  }
  tl_fmt_double(b, sizeof b, f, dt == TL_F32);
  tl_buf_printf(&pr->out, "%s", b);
}

/* Writes a leaf (literal, const, fill) in place; false for other ops. */
static bool put_leaf(printer *pr, const tl_node *n) {
  const tl_graph *g = pr->g;
  const tl_attrs *a = &n->attrs;
  switch (n->op) {
  case TL_OP_LIT:
    put_value(pr, a->is_int ? TL_I64 : TL_F64, a->f, a->i, a->is_int);
    return true;
  case TL_OP_CONST: {
    const tl_tensor *x = g->lits[a->lit];
    tl_buf_printf(&pr->out, "(const %s ", tl_dtype_name((tl_dtype)x->dtype));
    put_dims(pr, x->dims, x->rank);
    for (int64_t k = 0; k < x->numel; k++) {
      tl_buf_putn(&pr->out, " ", 1);
      put_value(pr, (tl_dtype)x->dtype, tl_tensor_get_f64(x, k), tl_tensor_get_i64(x, k),
                !tl_dtype_is_float((tl_dtype)x->dtype));
    }
    tl_buf_putn(&pr->out, ")", 1);
    return true;
  }
  case TL_OP_FILL:
    tl_buf_printf(&pr->out, "(fill %s ", tl_dtype_name((tl_dtype)a->dtype));
    put_dims(pr, a->shape, a->nshape);
    tl_buf_putn(&pr->out, " ", 1);
    put_value(pr, (tl_dtype)a->dtype, a->f, a->i, a->is_int);
    tl_buf_putn(&pr->out, ")", 1);
    return true;
  default: return false;
  }
}

/* Writes node id: by name unless top (the definition itself), operands by
 * name where they have one and in place otherwise. Iterative, with an
 * explicit stack of the calls still open: tl_tg_print cuts deep chains with
 * lets, but tl_tg_print_node is given graphs built by code, whose unnamed
 * chains are as deep as the graph is long. */
static void put_expr(printer *pr, int32_t id, bool top) {
  const tl_graph *g = pr->g;
  if (!top && pr->names[id]) {
    tl_buf_printf(&pr->out, "%s", pr->names[id]);
    return;
  }
  if (put_leaf(pr, &g->nodes[id])) return;
  typedef struct frame { int32_t id, k; } frame; /* node, its next operand */
  size_t sp = 0, cap = 16;
  frame *st = tl_xmalloc(cap * sizeof *st);
  tl_buf_printf(&pr->out, "(%s", tl_ops[g->nodes[id].op].name);
  st[sp++] = (frame){id, 0};
  while (sp) {
    frame *f = &st[sp - 1];
    const tl_node *n = &g->nodes[f->id];
    if (f->k == n->ninputs) {
      put_attrs(pr, &n->attrs);
      tl_buf_putn(&pr->out, ")", 1);
      sp--;
      continue;
    }
    int32_t x = tl_node_inputs(g, n)[f->k++];
    tl_buf_putn(&pr->out, " ", 1);
    if (pr->names[x]) {
      tl_buf_printf(&pr->out, "%s", pr->names[x]);
      continue;
    }
    if (put_leaf(pr, &g->nodes[x])) continue;
    tl_buf_printf(&pr->out, "(%s", tl_ops[g->nodes[x].op].name);
    if (sp == cap) st = tl_xrealloc(st, (cap *= 2) * sizeof *st);
    st[sp++] = (frame){x, 0};
  }
  tl_free(st);
}

static void put_ref(printer *pr, int32_t id) { put_expr(pr, id, false); }

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorted, the k of every name "t<k>" the graph already uses (decimal, no
 * leading zero): generated names skip them. Comparing each candidate with
 * every name instead made printing quadratic in the graph's size. */
static int64_t *taken_t_names(const tl_graph *g, int *n) {
  int64_t *t = tl_xmalloc(((size_t)g->nnames + 1) * sizeof *t);
  *n = 0;
  for (int i = 0; i < g->nnames; i++) {
    const char *s = g->names[i];
    size_t len = strlen(s);
    if (s[0] != 't' || len < 2 || len > 19 || (s[1] == '0' && len > 2)) continue;
    int64_t v = 0;
    size_t q = 1;
    for (; q < len && s[q] >= '0' && s[q] <= '9'; q++) v = v * 10 + (s[q] - '0');
    if (q == len) t[(*n)++] = v;
  }
  qsort(t, (size_t)*n, sizeof *t, cmp_i64);
  return t;
}

/* Decides which nodes are referred to by name. */
static void assign_names(printer *pr, bool *let) {
  const tl_graph *g = pr->g;
  int32_t *uses = tl_xcalloc((size_t)g->nnodes + 1, sizeof *uses);
  bool *live = tl_xcalloc((size_t)g->nnodes + 1, sizeof *live);
  for (int i = 0; i < g->noutputs; i++) live[g->outputs[i].node] = true;
  for (int i = 0; i < g->nlets; i++) live[g->lets[i]] = true;
  for (int32_t id = g->nnodes - 1; id >= 0; id--) {
    if (!live[id]) continue;
    const tl_node *n = &g->nodes[id];
    for (int k = 0; k < n->ninputs; k++) {
      int32_t x = tl_node_inputs(g, n)[k];
      live[x] = true;
      uses[x]++;
    }
  }
  for (int i = 0; i < g->noutputs; i++) uses[g->outputs[i].node]++;
  /* depth of the expression that would be written in place; a deep chain
   * is cut by lets so printing (and reading back) stays shallow */
  int32_t *depth = tl_xcalloc((size_t)g->nnodes + 1, sizeof *depth);
  int ntaken, ti = 0;
  int64_t *taken = taken_t_names(g, &ntaken), next = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const tl_node *n = &g->nodes[id];
    let[id] = false;
    if (!live[id]) continue;
    if (n->op == TL_OP_INPUT) {
      pr->names[id] = tl_xstrdup(g->names[n->name]);
      continue;
    }
    if (n->op == TL_OP_LIT) continue;
    for (int k = 0; k < n->ninputs; k++) {
      int32_t x = tl_node_inputs(g, n)[k];
      if (!pr->names[x] && depth[x] + 1 > depth[id]) depth[id] = depth[x] + 1;
    }
    bool named = n->name >= 0;
    if (!named && uses[id] < 2 && depth[id] < TL_PRINT_MAX_DEPTH) continue;
    let[id] = true;
    if (named) {
      pr->names[id] = tl_xstrdup(g->names[n->name]);
    } else {
      char b[32];
      for (;;) {
        while (ti < ntaken && taken[ti] < next) ti++;
        if (ti == ntaken || taken[ti] != next) break;
        next++;
      }
      snprintf(b, sizeof b, "t%lld", (long long)next++);
      pr->names[id] = tl_xstrdup(b);
    }
  }
  tl_free(uses);
  tl_free(live);
  tl_free(depth);
  tl_free(taken);
}

/* One graph or function form, appended to *out. */
static void print_form(const tl_graph *g, const char *keyword, tl_buf *out) {
  printer pr = {g, *out, tl_xcalloc((size_t)g->nnodes + 1, sizeof(char *))};
  bool *let = tl_xcalloc((size_t)g->nnodes + 1, sizeof *let);
  assign_names(&pr, let);
  tl_buf_printf(&pr.out, "(%s %s", keyword, g->name);
  for (int i = 0; i < g->ninputs; i++) {
    const tl_node *n = &g->nodes[g->inputs[i]];
    tl_buf_printf(&pr.out, "\n  (in %s %s ", g->names[n->name], tl_dtype_name((tl_dtype)n->type.dtype));
    put_dims(&pr, n->type.dims, n->type.rank);
    double lo, hi;
    if (tl_graph_range(g, g->inputs[i], &lo, &hi)) {
      char a[64], b[64];
      tl_fmt_double(a, sizeof a, lo, false);
      tl_fmt_double(b, sizeof b, hi, false);
      tl_buf_printf(&pr.out, " :range %s %s", a, b);
    }
    tl_buf_putn(&pr.out, ")", 1);
  }
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (!let[id]) continue;
    tl_buf_printf(&pr.out, "\n  (let %s ", pr.names[id]);
    put_expr(&pr, id, true);
    tl_buf_putn(&pr.out, ")", 1);
  }
  for (int i = 0; i < g->noutputs; i++) {
    tl_buf_printf(&pr.out, "\n  (out %s ", g->names[g->outputs[i].name]);
    put_ref(&pr, g->outputs[i].node);
    tl_buf_putn(&pr.out, ")", 1);
  }
  tl_buf_putn(&pr.out, ")\n", 2);
  for (int32_t i = 0; i < g->nnodes; i++) tl_free(pr.names[i]);
  tl_free(pr.names);
  tl_free(let);
  *out = pr.out;
}

char *tl_tg_print(const tl_graph *g) {
  tl_buf out = {0};
  /* a graph that holds a function table prints it first, in table order
   * (a function calls only those before it, so this reads back) */
  if (g->fns && g->fns_owned)
    for (int i = 0; i < g->fns->n; i++) print_form(g->fns->fn[i], "func", &out);
  print_form(g, "graph", &out);
  return out.s;
}

char *tl_tg_print_node(const tl_graph *g, int32_t node) {
  printer pr = {g, {0}, tl_xcalloc((size_t)g->nnodes + 1, sizeof(char *))};
  for (int32_t id = 0; id < g->nnodes; id++) {
    const tl_node *n = &g->nodes[id];
    if (id != node && n->name >= 0) pr.names[id] = tl_xstrdup(g->names[n->name]);
  }
  put_expr(&pr, node, true);
  for (int32_t i = 0; i < g->nnodes; i++) tl_free(pr.names[i]);
  tl_free(pr.names);
  return pr.out.s ? pr.out.s : tl_xstrdup("");
}

void tl_tg_print_attrs(const tl_graph *g, const tl_attrs *a, tl_buf *out) {
  printer pr = {g, *out, NULL};
  put_attrs(&pr, a);
  *out = pr.out;
}

void tl_tg_print_dims(const tl_graph *g, const int64_t *dims, int n, tl_buf *out) {
  printer pr = {g, *out, NULL};
  put_dims(&pr, dims, n);
  *out = pr.out;
}
