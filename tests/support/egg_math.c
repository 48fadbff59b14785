/* tests/support/egg_math.c - egg's math test language and its ConstantFold
 * analysis, written against the e-graph's public API only.
 *
 * Semantics follow shared/bench/egg-math-suite.md fact by fact, so that the
 * benchmark does the same work as egg 0.9.5: make folds + - * / over constant
 * children (/ only by a non-zero), merge keeps a Some over a None, modify adds
 * the constant leaf, unions it in and then prunes the class to its leaves
 * (pruned nodes stay in the hash-cons). */
#include "tests/support/egg_math.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[EG_MATH_NOPS] = {
  "const", "sym", "d", "i", "+", "-", "*", "/", "pow", "ln", "sqrt", "sin", "cos"};
static const int arity[EG_MATH_NOPS] = {0, 0, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1};

/* A token that parses completely as a float is a constant, any other a
 * symbol. -0 is folded into 0 (egg's NotNan compares them equal). */
static int parse_leaf(const eg_lang *l, const char *tok, size_t n, int *op, uint8_t *attr) {
  (void)l;
  if (n == 0 || n >= 64 || tok[0] == '(' || tok[0] == '?' || tok[0] == ':') return -1;
  char buf[64];
  memcpy(buf, tok, n);
  buf[n] = 0;
  char *end;
  double v = strtod(buf, &end);
  if (end == buf + n && !isnan(v)) {
    if (v == 0) v = 0;
    *op = EG_MATH_CONST;
    memcpy(attr, &v, sizeof v);
    return (int)sizeof v;
  }
  *op = EG_MATH_SYM;
  memcpy(attr, tok, n);
  return (int)n;
}

static int print_head(const eg_lang *l, int op, const uint8_t *attr, size_t n, char *buf, size_t size) {
  (void)l;
  if (op == EG_MATH_CONST && n == sizeof(double)) {
    double v;
    memcpy(&v, attr, sizeof v);
    return snprintf(buf, size, "%.17g", v);
  }
  if (op == EG_MATH_SYM) return snprintf(buf, size, "%.*s", (int)n, (const char *)attr);
  return snprintf(buf, size, "%s", names[op]);
}

static double cval(eg_egraph *g, uint32_t attr) {
  size_t n;
  const uint8_t *b = eg_attr_bytes(g, attr, &n);
  double v;
  memcpy(&v, b, sizeof v);
  return v;
}

static void make(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n,
                 void *out, void *ctx) {
  (void)ctx;
  (void)n;
  eg_math_data *d = out;
  d->has = 0;
  d->v = 0;
  if (op == EG_MATH_CONST) {
    d->v = cval(g, attr);
    d->has = 1;
    return;
  }
  if (op < EG_MATH_ADD || op > EG_MATH_DIV) return;
  const eg_math_data *a = eg_data(g, kids[0]), *b = eg_data(g, kids[1]);
  if (!a->has || !b->has) return;
  switch (op) {
  case EG_MATH_ADD: d->v = a->v + b->v; break;
  case EG_MATH_SUB: d->v = a->v - b->v; break;
  case EG_MATH_MUL: d->v = a->v * b->v; break;
  default:
    if (b->v == 0) return;
    d->v = a->v / b->v;
  }
  if (isnan(d->v)) return;
  if (d->v == 0) d->v = 0;
  d->has = 1;
}

static unsigned merge(eg_egraph *g, void *to, const void *from, void *ctx) {
  (void)g;
  (void)ctx;
  eg_math_data *t = to;
  const eg_math_data *f = from;
  if (!t->has && f->has) {
    *t = *f;
    return EG_MERGE_TO;
  }
  /* two constants that differ (egg asserts they do not): `to` stays, and
   * the parents of from's class were made from the other one */
  if (t->has && (!f->has || t->v != f->v)) return EG_MERGE_FROM;
  return 0;
}

static bool is_leaf(const eg_egraph *g, const eg_node *nd, void *ctx) {
  (void)g;
  (void)ctx;
  return nd->n == 0;
}

static void modify(eg_egraph *g, eg_id cls, void *ctx) {
  const eg_math *m = ctx;
  eg_math_data d = *(const eg_math_data *)eg_data(g, cls);
  if (!d.has) return;
  uint32_t a = eg_attr_intern(g, &d.v, sizeof d.v);
  eg_id c = eg_add(g, EG_MATH_CONST, a, NULL, 0);
  static const eg_reason why = {EG_WHY_ANALYSIS, "constant-fold", false};
  eg_union_why(g, cls, c, &why);
  if (m->prune) eg_class_retain(g, cls, is_leaf, NULL);
}

bool eg_math_const(eg_egraph *g, eg_id c, double *v) {
  const eg_math_data *d = eg_data(g, c);
  if (d->has && v) *v = d->v;
  return d->has;
}

static bool has_sym(eg_egraph *g, eg_id c) {
  uint32_t n;
  const uint32_t *ns = eg_class_nodes(g, eg_find(g, c), &n);
  for (uint32_t i = 0; i < n; i++)
    if (eg_get_node(g, ns[i])->op == EG_MATH_SYM) return true;
  return false;
}

/* is_not_zero: false only when the class is known to be the constant 0 */
static bool c_nonzero(eg_egraph *g, const uint32_t *a, const char *const *at, int n, void *ctx) {
  (void)at; (void)n; (void)ctx;
  double v;
  return !(eg_math_const(g, a[0], &v) && v == 0);
}
static bool c_const(eg_egraph *g, const uint32_t *a, const char *const *at, int n, void *ctx) {
  (void)at; (void)n; (void)ctx;
  return eg_math_const(g, a[0], NULL);
}
static bool c_sym(eg_egraph *g, const uint32_t *a, const char *const *at, int n, void *ctx) {
  (void)at; (void)n; (void)ctx;
  return has_sym(g, a[0]);
}
static bool c_cdv(eg_egraph *g, const uint32_t *a, const char *const *at, int n, void *ctx) {
  (void)at; (void)n; (void)ctx;
  if (eg_find(g, a[0]) == eg_find(g, a[1])) return false;
  return eg_math_const(g, a[0], NULL) || has_sym(g, a[0]);
}

void eg_math_init(eg_math *m) {
  memset(m, 0, sizeof *m);
  m->lang = (eg_lang){.name = "math", .nops = EG_MATH_NOPS, .op_names = names, .arity = arity,
                     .parse_leaf = parse_leaf, .print_head = print_head};
  m->fold = (eg_analysis){sizeof(eg_math_data), make, merge, modify, NULL, m};
  m->prune = true;
  m->conds = eg_conds_new();
  eg_conds_add(m->conds, "nonzero", "v", c_nonzero, NULL);
  eg_conds_add(m->conds, "const", "v", c_const, NULL);
  eg_conds_add(m->conds, "is-sym", "v", c_sym, NULL);
  eg_conds_add(m->conds, "const-or-distinct-var", "vv", c_cdv, NULL);
}

void eg_math_fini(eg_math *m) {
  eg_conds_free(m->conds);
  m->conds = NULL;
}

eg_params eg_math_params(const eg_math *m, bool explain) {
  return (eg_params){.lang = &m->lang, .analysis = &m->fold, .seed = 0x71a10c, .explain = explain};
}
