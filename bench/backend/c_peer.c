/* c_peer.c - see c_peer.h. The C is what a "C string fed to gcc" backend
 * writes for the same plan: per kernel a function of nested loops over its
 * output, the fused ops as one C expression over loads with explicit index
 * arithmetic (libm calls for exp, log, ...), reductions and softmax as
 * accumulator loops, matmul as a cblas call. bench-backend times its
 * compile and runs it on small random inputs, whose outputs must agree
 * with tlaloc's; the corner cases tlaloc's lowering handles (NaN rules of
 * max, float-to-int conversion, take's bounds checks, batch dims
 * broadcast in part) are not reproduced. */
#include "bench/backend/c_peer.h"

#include "backend/be_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cg {
  const be_plan *p;
  const tl_graph *g;
  tl_buf *b;
  int failed;
} cg;

typedef char ixs[TL_MAX_RANK][160]; /* one C index expression per dim */

static const char *cty(int dt) {
  switch (dt) {
  case TL_BOOL: return "unsigned char";
  case TL_I32: return "int";
  case TL_I64: return "long";
  case TL_F32: return "float";
  default: return "double";
  }
}

static void dim(cg *c, char *out, size_t n, int64_t d) {
  (void)c;
  if (tl_dim_is_sym(d)) snprintf(out, n, "s[%d]", (int)(-d - 1));
  else snprintf(out, n, "%lldL", (long long)d);
}

/* Offset of idx in a contiguous array of type t, in Horner form. */
static void offset(cg *c, const tl_type *t, ixs idx, char *out, size_t n) {
  tl_buf o = {0};
  tl_buf_printf(&o, "0");
  for (int i = 0; i < t->rank; i++) {
    char d[32];
    dim(c, d, sizeof d, t->dims[i]);
    char *prev = tl_xstrdup(o.s);
    o.len = 0;
    tl_buf_printf(&o, "(%s)*%s+(%s)", prev, d, idx[i]);
    tl_free(prev);
  }
  snprintf(out, n, "%s", o.s);
  tl_free(o.s);
}

/* Index of operand type xt from the indices of a result of type ot
 * (numpy broadcasting: dims of size 1 read index 0). */
static void bcast(const tl_type *xt, const tl_type *ot, ixs idx, ixs xi) {
  for (int i = 0; i < xt->rank; i++) {
    int j = ot->rank - xt->rank + i;
    snprintf(xi[i], sizeof xi[i], "%s", xt->dims[i] == 1 ? "0" : idx[j]);
  }
}

static void gen(cg *c, int32_t id, ixs idx, bool own);

static void load(cg *c, int32_t bi, const tl_type *t, ixs idx) {
  char off[4096];
  offset(c, t, idx, off, sizeof off);
  tl_buf_printf(c->b, "((%s*)b[%d])[%s]", cty(c->p->bufs[bi].dtype), bi, off);
}

static const char *fn(const char *name, int dt) {
  static char s[4][32];
  static int k;
  k = (k + 1) & 3;
  snprintf(s[k], sizeof s[k], "%s%s", name, dt == TL_F32 ? "f" : "");
  return s[k];
}

static void elemwise(cg *c, const tl_node *n, int32_t id, ixs idx) {
  const int32_t *in = tl_node_inputs(c->g, n);
  int dt = n->type.dtype;
  tl_buf *b = c->b;
  ixs xi[3];
  for (int k = 0; k < n->ninputs && k < 3; k++) bcast(&c->g->nodes[in[k]].type, &n->type, idx, xi[k]);
#define A(k) gen(c, in[k], xi[k], false)
  /* the libm ops of the op table, and three more libm functions */
  static const char *const un[] = {"sqrt", "floor", "ceil"};
  const char *name = tl_ops[n->op].math && tl_ops[n->op].arity == 1 ? tl_ops[n->op].math : NULL;
  for (size_t i = 0; !name && i < sizeof un / sizeof un[0]; i++)
    if (!strcmp(tl_ops[n->op].name, un[i])) name = un[i];
  if (name) {
    tl_buf_printf(b, "%s(", fn(name, dt)); A(0); tl_buf_printf(b, ")");
    return;
  }
  const char *bin = NULL;
  switch (n->op) {
  case TL_OP_ADD: bin = "+"; break;
  case TL_OP_SUB: bin = "-"; break;
  case TL_OP_MUL: bin = "*"; break;
  case TL_OP_DIV: bin = "/"; break;
  case TL_OP_EQ: bin = "=="; break;
  case TL_OP_NE: bin = "!="; break;
  case TL_OP_LT: bin = "<"; break;
  case TL_OP_LE: bin = "<="; break;
  case TL_OP_GT: bin = ">"; break;
  case TL_OP_GE: bin = ">="; break;
  case TL_OP_AND: bin = "&&"; break;
  case TL_OP_OR: bin = "||"; break;
  case TL_OP_BITWISE_XOR: bin = "^"; break;
  default: break;
  }
  if (bin) {
    tl_buf_printf(b, "((%s)(", cty(dt)); A(0); tl_buf_printf(b, ") %s (%s)(", bin, cty(dt)); A(1);
    tl_buf_printf(b, "))");
    return;
  }
  switch (n->op) {
  case TL_OP_NEG: tl_buf_printf(b, "(-("); A(0); tl_buf_printf(b, "))"); return;
  case TL_OP_NOT: tl_buf_printf(b, "(!("); A(0); tl_buf_printf(b, "))"); return;
  case TL_OP_ABS: tl_buf_printf(b, "%s(", fn("fabs", dt)); A(0); tl_buf_printf(b, ")"); return;
  case TL_OP_RECIPROCAL: tl_buf_printf(b, "(1/("); A(0); tl_buf_printf(b, "))"); return;
  case TL_OP_SIGMOID: tl_buf_printf(b, "(1/(1+%s(-(", fn("exp", dt)); A(0); tl_buf_printf(b, "))))"); return;
  case TL_OP_SOFTPLUS: tl_buf_printf(b, "%s(%s(", fn("log1p", dt), fn("exp", dt)); A(0); tl_buf_printf(b, "))"); return;
  case TL_OP_SIGN: tl_buf_printf(b, "({%s v_=", cty(dt)); A(0); tl_buf_printf(b, "; (v_>0)-(v_<0);})"); return;
  case TL_OP_CAST: tl_buf_printf(b, "((%s)(", cty(dt)); A(0); tl_buf_printf(b, "))"); return;
  case TL_OP_MAXIMUM: case TL_OP_MINIMUM:
    tl_buf_printf(b, "%s(", fn(n->op == TL_OP_MAXIMUM ? "fmax" : "fmin", dt)); A(0); tl_buf_printf(b, ","); A(1);
    tl_buf_printf(b, ")");
    return;
  case TL_OP_POW: tl_buf_printf(b, "%s(", fn("pow", dt)); A(0); tl_buf_printf(b, ","); A(1); tl_buf_printf(b, ")"); return;
  case TL_OP_WHERE:
    tl_buf_printf(b, "((");
    A(0); tl_buf_printf(b, ") ? (%s)(", cty(dt)); A(1); tl_buf_printf(b, ") : (%s)(", cty(dt)); A(2);
    tl_buf_printf(b, "))");
    return;
  case TL_OP_LOGADDEXP:
    tl_buf_printf(b, "({%s a_=", cty(dt)); A(0); tl_buf_printf(b, ", b_="); A(1);
    tl_buf_printf(b, ", m_=%s(a_,b_); m_+%s(%s(-%s(a_-b_)));})", fn("fmax", dt), fn("log1p", dt), fn("exp", dt),
                  fn("fabs", dt));
    return;
  default:
    c->failed = 1;
    tl_buf_printf(b, "0 /* %s */", tl_ops[n->op].name);
  }
#undef A
  (void)id;
}

/* The value of node id at idx (own: the kernel's root, computed even
 * though it has a buffer). */
static void gen(cg *c, int32_t id, ixs idx, bool own) {
  const be_plan *p = c->p;
  const tl_node *n = &c->g->nodes[id];
  const int32_t *in = tl_node_inputs(c->g, n);
  if (!own && (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS)) {
    load(c, p->buf_of[id], &n->type, idx);
    return;
  }
  const tl_type *xt = n->ninputs ? &c->g->nodes[in[0]].type : NULL;
  ixs xi;
  switch (n->op) {
  case TL_OP_LIT: case TL_OP_FILL:
    tl_buf_printf(c->b, "(%s)%.17g", cty(n->type.dtype), n->attrs.is_int ? (double)n->attrs.i : n->attrs.f);
    return;
  case TL_OP_ZEROS_LIKE: tl_buf_printf(c->b, "0"); return;
  case TL_OP_ONES_LIKE: tl_buf_printf(c->b, "1"); return;
  case TL_OP_TRANSPOSE:
    for (int i = 0; i < xt->rank; i++) {
      int q = (n->attrs.present & TL_A_PERM) ? n->attrs.perm[i] : xt->rank - 1 - i;
      if (q < 0) q += xt->rank;
      snprintf(xi[q], sizeof xi[q], "%s", idx[i]);
    }
    gen(c, in[0], xi, false);
    return;
  case TL_OP_BROADCAST_TO:
    bcast(xt, &n->type, idx, xi);
    gen(c, in[0], xi, false);
    return;
  case TL_OP_EXPAND_DIMS: case TL_OP_SQUEEZE: case TL_OP_RESHAPE: {
    /* through the flat index: dims of size 1 added or dropped */
    char flat[4096];
    offset(c, &n->type, idx, flat, sizeof flat);
    tl_buf r = {0};
    for (int i = xt->rank - 1; i >= 0; i--) {
      char d[32];
      dim(c, d, sizeof d, xt->dims[i]);
      r.len = 0;
      tl_buf_printf(&r, "(%s)", flat);
      for (int j = xt->rank - 1; j > i; j--) {
        char dj[32];
        dim(c, dj, sizeof dj, xt->dims[j]);
        tl_buf_printf(&r, "/%s", dj);
      }
      snprintf(xi[i], sizeof xi[i], "(%.*s)%%%s", (int)(r.len < 120 ? r.len : 120), r.s, d);
    }
    tl_free(r.s);
    gen(c, in[0], xi, false);
    return;
  }
  case TL_OP_SLICE: {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
    if (ax < 0) ax += xt->rank;
    for (int i = 0; i < xt->rank; i++) snprintf(xi[i], sizeof xi[i], "%s", idx[i]);
    int64_t st = (n->attrs.present & TL_A_STEP) ? n->attrs.step : 1, s0 = (n->attrs.present & TL_A_START) ? n->attrs.start : 0;
    snprintf(xi[ax], sizeof xi[ax], "(%s)*%lld+%lld", idx[ax], (long long)st, (long long)s0);
    gen(c, in[0], xi, false);
    return;
  }
  default:
    if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) elemwise(c, n, id, idx);
    else {
      c->failed = 1;
      tl_buf_printf(c->b, "0 /* %s */", tl_ops[n->op].name);
    }
  }
}

/* for (long iK = 0; iK < dK; iK++) over t's dims; names i0, i1, ... */
static void open_loops(cg *c, const tl_type *t, ixs idx, const char *pre, int skip) {
  for (int i = 0; i < t->rank; i++) {
    snprintf(idx[i], sizeof idx[i], "%s%d", pre, i);
    if (i == skip) continue;
    char d[32];
    dim(c, d, sizeof d, t->dims[i]);
    tl_buf_printf(c->b, "  for (long %s%d = 0; %s%d < %s; %s%d++)\n", pre, i, pre, i, d, pre, i);
  }
}

static void k_ew(cg *c, const be_kern *k) {
  const tl_node *n = &c->g->nodes[k->node];
  ixs idx;
  open_loops(c, &n->type, idx, "i", -1);
  char off[4096];
  offset(c, &n->type, idx, off, sizeof off);
  tl_buf_printf(c->b, "    ((%s*)b[%d])[%s] = ", cty(c->p->bufs[k->out].dtype), k->out, off);
  bool own = c->p->buf_of[k->node] == k->out && c->p->state[k->node] == BE_S_MAT;
  gen(c, k->node, idx, own);
  tl_buf_printf(c->b, ";\n");
}

/* A reduction: the output zeroed (or set to the identity), then one pass
 * over the input adding into the output element the input maps to. */
static void k_red(cg *c, const be_kern *k) {
  const tl_node *n = &c->g->nodes[k->node];
  int32_t x = tl_node_inputs(c->g, n)[0];
  const tl_type *xt = &c->g->nodes[x].type;
  bool red[TL_MAX_RANK] = {false};
  if (n->attrs.present & TL_A_AXIS)
    for (int i = 0; i < n->attrs.naxes; i++) red[(n->attrs.axes[i] + xt->rank) % xt->rank] = true;
  else
    for (int i = 0; i < xt->rank; i++) red[i] = true;
  const char *ty = cty(c->p->bufs[k->out].dtype);
  int dt = n->type.dtype;
  bool lse = n->op == TL_OP_LOGSUMEXP, mx = n->op == TL_OP_MAX, mn = n->op == TL_OP_MIN;
  const char *init = n->op == TL_OP_PROD ? "1" : mx || lse ? "-INFINITY" : mn ? "INFINITY" : "0";
  ixs oi, xi;
  open_loops(c, &n->type, oi, "o", -1);
  char off[4096];
  offset(c, &n->type, oi, off, sizeof off);
  tl_buf_printf(c->b, "    ((%s*)b[%d])[%s] = %s;\n", ty, k->out, off, init);
  {
    open_loops(c, xt, xi, "i", -1);
    ixs o;
    int j = 0;
    for (int i = 0; i < xt->rank; i++)
      if (!red[i]) snprintf(o[j++], sizeof o[0], "%.150s", xi[i]);
      else if (n->attrs.keepdims) snprintf(o[j++], sizeof o[0], "0");
    offset(c, &n->type, o, off, sizeof off);
    tl_buf_printf(c->b, "    { %s v = ", ty);
    gen(c, x, xi, false);
    tl_buf_printf(c->b, "; %s *a = &((%s*)b[%d])[%s]; ", ty, ty, k->out, off);
    if (lse) /* log(exp(a) + exp(v)), one pass */
      tl_buf_printf(c->b, "%s m = %s(*a, v); *a = m + %s(%s(-%s(*a - v))); }\n", ty, fn("fmax", dt),
                    fn("log1p", dt), fn("exp", dt), fn("fabs", dt));
    else if (mx) tl_buf_printf(c->b, "if (v > *a) *a = v; }\n");
    else if (mn) tl_buf_printf(c->b, "if (v < *a) *a = v; }\n");
    else if (n->op == TL_OP_PROD) tl_buf_printf(c->b, "*a *= v; }\n");
    else tl_buf_printf(c->b, "*a += v; }\n");
  }
  if (n->op == TL_OP_MEAN) {
    tl_buf cnt = {0};
    tl_buf_printf(&cnt, "1");
    for (int i = 0; i < xt->rank; i++)
      if (red[i]) {
        char d[32];
        dim(c, d, sizeof d, xt->dims[i]);
        tl_buf_printf(&cnt, "*%s", d);
      }
    open_loops(c, &n->type, oi, "o", -1);
    offset(c, &n->type, oi, off, sizeof off);
    tl_buf_printf(c->b, "    ((%s*)b[%d])[%s] /= (%s)(%s);\n", ty, k->out, off, ty, cnt.s);
    tl_free(cnt.s);
  }
}

/* softmax / log_softmax: per row, max, sum of exponentials, write. */
static void k_softmax(cg *c, const be_kern *k) {
  const tl_node *n = &c->g->nodes[k->node];
  int32_t x = tl_node_inputs(c->g, n)[0];
  int R = n->type.rank, dt = n->type.dtype;
  int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
  if (ax < 0) ax += R;
  const char *ty = cty(dt);
  ixs idx;
  tl_buf_printf(c->b, "  {\n");
  open_loops(c, &n->type, idx, "i", ax);
  char d[32], off[4096];
  dim(c, d, sizeof d, n->type.dims[ax]);
  offset(c, &n->type, idx, off, sizeof off);
  tl_buf_printf(c->b, "  { %s m_ = -INFINITY, s_ = 0;\n", ty);
  tl_buf_printf(c->b, "    for (long i%d = 0; i%d < %s; i%d++) { %s v = ", ax, ax, d, ax, ty);
  gen(c, x, idx, false);
  tl_buf_printf(c->b, "; if (v > m_) m_ = v; }\n");
  tl_buf_printf(c->b, "    for (long i%d = 0; i%d < %s; i%d++) s_ += %s((", ax, ax, d, ax, fn("exp", dt));
  gen(c, x, idx, false);
  tl_buf_printf(c->b, ") - m_);\n");
  tl_buf_printf(c->b, "    for (long i%d = 0; i%d < %s; i%d++) ((%s*)b[%d])[%s] = ", ax, ax, d, ax, ty, k->out, off);
  if (n->op == TL_OP_SOFTMAX) {
    tl_buf_printf(c->b, "%s((", fn("exp", dt));
    gen(c, x, idx, false);
    tl_buf_printf(c->b, ") - m_) / s_;\n  }\n  }\n");
  } else {
    tl_buf_printf(c->b, "(");
    gen(c, x, idx, false);
    tl_buf_printf(c->b, ") - m_ - %s(s_);\n  }\n  }\n", fn("log", dt));
  }
}

static void k_matmul(cg *c, const be_kern *k) {
  const tl_node *n = &c->g->nodes[k->node];
  int R = n->type.rank, dt = n->type.dtype;
  const int32_t *in = tl_node_inputs(c->g, n);
  const tl_type *at = &c->g->nodes[in[0]].type, *bt = &c->g->nodes[in[1]].type;
  /* as lower_matmul.c: a vector on the left is one row, on the right one
   * column (the result then lacks that dim) */
  int64_t m = at->rank >= 2 ? at->dims[at->rank - 2] : 1, kk = at->dims[at->rank - 1];
  int64_t nn = bt->rank >= 2 ? bt->dims[bt->rank - 1] : 1;
  int nbatch = R - (at->rank >= 2) - (bt->rank >= 2);
  char M[32], N[32], K[32];
  dim(c, M, sizeof M, m);
  dim(c, N, sizeof N, nn);
  dim(c, K, sizeof K, kk);
  tl_buf_printf(c->b, "  { long bt = 1;\n");
  for (int i = 0; i < nbatch; i++) {
    char d[32];
    dim(c, d, sizeof d, n->type.dims[i]);
    tl_buf_printf(c->b, "    bt *= %s;\n", d);
  }
  /* an operand without the batch dims is shared by every product */
  const char *qa = at->rank - 2 == nbatch ? "q" : "0", *qb = bt->rank - 2 == nbatch ? "q" : "0";
  tl_buf_printf(c->b,
                "    for (long q = 0; q < bt; q++)\n"
                "      cblas_%cgemm(CblasRowMajor, %s, %s, %s, %s, %s, 1, (%s*)b[%d] + %s*%s*%s, %s, (%s*)b[%d] + %s*%s*%s, %s,"
                " 0, (%s*)b[%d] + q*%s*%s, %s);\n  }\n",
                dt == TL_F32 ? 's' : 'd', k->trans[0] ? "CblasTrans" : "CblasNoTrans",
                k->trans[1] ? "CblasTrans" : "CblasNoTrans", M, N, K, cty(dt), k->opbuf[0], qa, M, K,
                k->trans[0] ? M : K, cty(dt), k->opbuf[1], qb, K, N, k->trans[1] ? K : N, cty(dt), k->out, M, N, N);
}

int c_peer_plan(be_plan *pl, const tl_graph *g, char *err, size_t n) {
  memset(pl, 0, sizeof *pl);
  be_options o = be_options_default();
  const be_rules *rules = be_rules_get(&o, NULL, err, n);
  return rules ? be_plan_build_for(pl, g, rules, 0, false, err, n) : -1;
}

char *c_peer_source(const tl_graph *g, char *err, size_t n) {
  be_plan pl;
  if (c_peer_plan(&pl, g, err, n)) {
    be_plan_free(&pl);
    return NULL;
  }
  tl_buf b = {0};
  cg C = {&pl, g, &b, 0};
  tl_buf_printf(&b, "#include <math.h>\n#include <cblas.h>\n\n");
  for (int i = 0; i < pl.nks; i++) {
    const be_kern *k = &pl.ks[i];
    tl_buf_printf(&b, "void k%d(void **b, const long *s) {\n  (void)s;\n", i);
    switch (k->kind) {
    case BE_K_EW: k_ew(&C, k); break;
    case BE_K_RED: k_red(&C, k); break;
    case BE_K_SOFTMAX: k_softmax(&C, k); break;
    case BE_K_MATMUL: k_matmul(&C, k); break;
    default: break; /* take's index checks: no C counterpart needed */
    }
    tl_buf_printf(&b, "}\n\n");
  }
  tl_buf_printf(&b, "void run(void **b, const long *s) {\n");
  for (int i = 0; i < pl.nks; i++) tl_buf_printf(&b, "  k%d(b, s);\n", i);
  tl_buf_printf(&b, "}\n");
  be_plan_free(&pl);
  if (C.failed) {
    snprintf(err, n, "an op has no C form here");
    tl_free(b.s);
    return NULL;
  }
  return b.s;
}
