/* symdim.c - symbolic dims with arithmetic (see symdim.h).
 *
 * Canonical form: a polynomial with integer coefficients over atoms (base
 * symbols and divisions). Within a term the atoms are sorted by name;
 * terms are sorted by degree (highest first), then by their atoms' names,
 * the constant last. A derived polynomial used as an operand is expanded
 * into its atoms, so (n + 1) + (n - 1) is 2n, not a sum of two symbols.
 * Names, not ids, order the atoms: ids depend on the order a graph met its
 * symbols, names do not, so two graphs give a dim the same name. */
#include "ir/symdim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/lex.h"
#include "util/util.h"

typedef struct poly {
  int n;
  int64_t c[TL_SYM_TERMS];
  int deg[TL_SYM_TERMS];
  int32_t a[TL_SYM_TERMS][TL_SYM_DEG];
} poly;

static int err_at(char *err, size_t n, const char *msg) {
  snprintf(err, n, "%s", msg);
  return -1;
}

static const char *sname(const tl_graph *g, int32_t s) { return g->syms[s]; }

static int cmp_atoms(const tl_graph *g, const int32_t *a, int da, const int32_t *b, int db) {
  if (da != db) return da > db ? -1 : 1; /* higher degree first */
  for (int i = 0; i < da; i++) {
    int c = strcmp(sname(g, a[i]), sname(g, b[i]));
    if (c) return c;
  }
  return 0;
}

/* Sorts each term's atoms, merges equal monomials, drops zeros, orders. */
static int normalize(const tl_graph *g, poly *p, char *err, size_t n) {
  for (int t = 0; t < p->n; t++)
    for (int i = 1; i < p->deg[t]; i++)
      for (int j = i; j > 0 && strcmp(sname(g, p->a[t][j - 1]), sname(g, p->a[t][j])) > 0; j--) {
        int32_t x = p->a[t][j];
        p->a[t][j] = p->a[t][j - 1];
        p->a[t][j - 1] = x;
      }
  for (int i = 1; i < p->n; i++)
    for (int j = i; j > 0 && cmp_atoms(g, p->a[j - 1], p->deg[j - 1], p->a[j], p->deg[j]) > 0; j--) {
      int64_t c = p->c[j];
      int d = p->deg[j];
      int32_t a[TL_SYM_DEG];
      memcpy(a, p->a[j], sizeof a);
      p->c[j] = p->c[j - 1];
      p->deg[j] = p->deg[j - 1];
      memcpy(p->a[j], p->a[j - 1], sizeof a);
      p->c[j - 1] = c;
      p->deg[j - 1] = d;
      memcpy(p->a[j - 1], a, sizeof a);
    }
  int w = 0;
  for (int t = 0; t < p->n; t++) {
    if (w > 0 && cmp_atoms(g, p->a[w - 1], p->deg[w - 1], p->a[t], p->deg[t]) == 0) {
      if (__builtin_add_overflow(p->c[w - 1], p->c[t], &p->c[w - 1])) return err_at(err, n, "symbolic size overflows");
      continue;
    }
    if (w != t) {
      p->c[w] = p->c[t];
      p->deg[w] = p->deg[t];
      memcpy(p->a[w], p->a[t], sizeof p->a[t]);
    }
    w++;
  }
  p->n = 0;
  for (int t = 0; t < w; t++)
    if (p->c[t] != 0) {
      if (p->n != t) {
        p->c[p->n] = p->c[t];
        p->deg[p->n] = p->deg[t];
        memcpy(p->a[p->n], p->a[t], sizeof p->a[t]);
      }
      p->n++;
    }
  return 0;
}

static void poly_const(poly *p, int64_t k) {
  memset(p, 0, sizeof *p);
  if (k) {
    p->n = 1;
    p->c[0] = k;
  }
}

/* The polynomial of dim d: a derived polynomial expands into its terms. */
static void poly_of(const tl_graph *g, int64_t d, poly *p) {
  if (!tl_dim_is_sym(d)) {
    poly_const(p, d);
    return;
  }
  int s = tl_dim_sym_id(d);
  const tl_symdef *def = &g->symdefs[s];
  memset(p, 0, sizeof *p);
  if (def->kind == TL_SYM_POLY) {
    p->n = def->nterms;
    for (int t = 0; t < p->n; t++) {
      p->c[t] = def->coef[t];
      p->deg[t] = def->deg[t];
      memcpy(p->a[t], def->atom[t], sizeof p->a[t]);
    }
  } else {
    p->n = 1;
    p->c[0] = 1;
    p->deg[0] = 1;
    p->a[0][0] = s;
  }
}

static const char *too_big = "symbolic size too complex (more than 8 terms or 4 factors a term)";

static int poly_add(const tl_graph *g, const poly *a, const poly *b, int64_t sb, poly *r, char *err, size_t n) {
  if (a->n + b->n > 2 * TL_SYM_TERMS) return err_at(err, n, too_big);
  struct { int n; int64_t c[2 * TL_SYM_TERMS]; int deg[2 * TL_SYM_TERMS]; int32_t a[2 * TL_SYM_TERMS][TL_SYM_DEG]; } w;
  w.n = 0;
  for (int k = 0; k < 2; k++) {
    const poly *p = k ? b : a;
    for (int t = 0; t < p->n; t++) {
      w.c[w.n] = p->c[t];
      if (k && __builtin_mul_overflow(p->c[t], sb, &w.c[w.n])) return err_at(err, n, "symbolic size overflows");
      w.deg[w.n] = p->deg[t];
      memcpy(w.a[w.n], p->a[t], sizeof w.a[0]);
      w.n++;
    }
  }
  /* merge in a poly of twice the room, then require it to fit */
  poly tmp;
  int out = 0;
  memset(&tmp, 0, sizeof tmp);
  for (int t = 0; t < w.n; t++) {
    int j = 0;
    for (; j < out; j++)
      if (cmp_atoms(g, tmp.a[j], tmp.deg[j], w.a[t], w.deg[t]) == 0) break;
    if (j < out) {
      if (__builtin_add_overflow(tmp.c[j], w.c[t], &tmp.c[j])) return err_at(err, n, "symbolic size overflows");
      continue;
    }
    if (out == TL_SYM_TERMS) return err_at(err, n, too_big);
    tmp.c[out] = w.c[t];
    tmp.deg[out] = w.deg[t];
    memcpy(tmp.a[out], w.a[t], sizeof tmp.a[0]);
    out++;
  }
  tmp.n = out;
  *r = tmp;
  return normalize(g, r, err, n);
}

static int poly_mul(const tl_graph *g, const poly *a, const poly *b, poly *r, char *err, size_t n) {
  poly acc;
  poly_const(&acc, 0);
  for (int i = 0; i < a->n; i++)
    for (int j = 0; j < b->n; j++) {
      poly t;
      memset(&t, 0, sizeof t);
      t.n = 1;
      if (__builtin_mul_overflow(a->c[i], b->c[j], &t.c[0])) return err_at(err, n, "symbolic size overflows");
      if (a->deg[i] + b->deg[j] > TL_SYM_DEG) return err_at(err, n, too_big);
      t.deg[0] = a->deg[i] + b->deg[j];
      memcpy(t.a[0], a->a[i], (size_t)a->deg[i] * sizeof(int32_t));
      memcpy(t.a[0] + a->deg[i], b->a[j], (size_t)b->deg[j] * sizeof(int32_t));
      if (normalize(g, &t, err, n) || poly_add(g, &acc, &t, 1, &acc, err, n)) return -1;
    }
  *r = acc;
  return 0;
}

static bool poly_is_const(const poly *p, int64_t *k) {
  if (p->n == 0) {
    *k = 0;
    return true;
  }
  if (p->n == 1 && p->deg[0] == 0) {
    *k = p->c[0];
    return true;
  }
  return false;
}

/* The canonical text of a polynomial (or of a division with operands a, b). */
static void put_dim(const tl_graph *g, int64_t d, char *buf, size_t size, size_t *len) {
  if (*len >= size) return;
  if (tl_dim_is_sym(d)) *len += (size_t)snprintf(buf + *len, size - *len, "%s", sname(g, tl_dim_sym_id(d)));
  else *len += (size_t)snprintf(buf + *len, size - *len, "%" PRId64, d);
}

static void put_poly(const tl_graph *g, const poly *p, char *buf, size_t size) {
  size_t len = 0;
#define PUT(...) (len < size ? (len += (size_t)snprintf(buf + len, size - len, __VA_ARGS__)) : 0)
  if (p->n > 1) PUT("(+");
  for (int t = 0; t < p->n; t++) {
    if (p->n > 1) PUT(" ");
    if (p->deg[t] == 0) {
      PUT("%" PRId64, p->c[t]);
      continue;
    }
    bool prod = p->c[t] != 1 || p->deg[t] > 1;
    if (prod) PUT("(*");
    if (p->c[t] != 1) PUT(" %" PRId64, p->c[t]);
    for (int i = 0; i < p->deg[t]; i++) PUT("%s%s", prod ? " " : "", sname(g, p->a[t][i]));
    if (prod) PUT(")");
  }
  if (p->n > 1) PUT(")");
#undef PUT
}

/* The id of symbol `name` with definition def (interned: found or added). */
static int intern(tl_graph *g, const char *name, const tl_symdef *def) {
  for (int i = 0; i < g->nsyms; i++)
    if (strcmp(g->syms[i], name) == 0) return i;
  return tl_graph_sym_append(g, name, strlen(name), def);
}

/* The dim of polynomial p: a constant, an atom, or a derived symbol. */
static int poly_dim(tl_graph *g, const poly *p, int64_t *out, char *err, size_t n) {
  int64_t k;
  if (poly_is_const(p, &k)) {
    if (k < 0) {
      snprintf(err, n, "symbolic size is the negative constant %" PRId64, k);
      return -1;
    }
    *out = k;
    return 0;
  }
  if (p->n == 1 && p->c[0] == 1 && p->deg[0] == 1) {
    *out = tl_dim_sym(p->a[0][0]);
    return 0;
  }
  char name[512];
  put_poly(g, p, name, sizeof name);
  if (strlen(name) >= sizeof name - 1) return err_at(err, n, too_big);
  tl_symdef def;
  memset(&def, 0, sizeof def);
  def.kind = TL_SYM_POLY;
  def.nterms = (uint8_t)p->n;
  for (int t = 0; t < p->n; t++) {
    def.coef[t] = p->c[t];
    def.deg[t] = (uint8_t)p->deg[t];
    memcpy(def.atom[t], p->a[t], sizeof def.atom[t]);
  }
  *out = tl_dim_sym(intern(g, name, &def));
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

/* Exact division of p by monomial m (coefficient c, atoms of degree deg):
 * true and *q when every term is divisible. */
static bool div_monomial(const tl_graph *g, const poly *p, const poly *m, poly *q) {
  if (m->n != 1 || m->c[0] <= 0) return false;
  memset(q, 0, sizeof *q);
  q->n = p->n;
  for (int t = 0; t < p->n; t++) {
    if (p->c[t] % m->c[0]) return false;
    q->c[t] = p->c[t] / m->c[0];
    bool used[TL_SYM_DEG] = {false};
    for (int i = 0; i < m->deg[0]; i++) {
      int j = 0;
      while (j < p->deg[t] && (used[j] || p->a[t][j] != m->a[0][i])) j++;
      if (j == p->deg[t]) return false;
      used[j] = true;
    }
    q->deg[t] = 0;
    for (int j = 0; j < p->deg[t]; j++)
      if (!used[j]) q->a[t][q->deg[t]++] = p->a[t][j];
  }
  char e[8];
  return normalize(g, q, e, sizeof e) == 0;
}

static int divide(tl_graph *g, int kind, int64_t a, int64_t b, int64_t *out, char *err, size_t n) {
  poly pa, pb, q;
  poly_of(g, a, &pa);
  poly_of(g, b, &pb);
  int64_t ka = 0, kb = 0;
  bool ca = poly_is_const(&pa, &ka), cb = poly_is_const(&pb, &kb);
  if (cb && kb <= 0) {
    snprintf(err, n, "symbolic size divided by %" PRId64, kb);
    return -1;
  }
  if (ca && cb) {
    *out = kind == TL_SYM_FLOORDIV ? floor_div(ka, kb) : ceil_div(ka, kb);
    return 0;
  }
  if (ca && ka == 0) {
    *out = 0;
    return 0;
  }
  if (div_monomial(g, &pa, &pb, &q)) return poly_dim(g, &q, out, err, n);
  char name[512];
  size_t len = (size_t)snprintf(name, sizeof name, "(%s ", kind == TL_SYM_FLOORDIV ? "floordiv" : "ceildiv");
  put_dim(g, a, name, sizeof name, &len);
  if (len < sizeof name) len += (size_t)snprintf(name + len, sizeof name - len, " ");
  put_dim(g, b, name, sizeof name, &len);
  if (len < sizeof name) len += (size_t)snprintf(name + len, sizeof name - len, ")");
  if (len >= sizeof name - 1) return err_at(err, n, too_big);
  tl_symdef def;
  memset(&def, 0, sizeof def);
  def.kind = (uint8_t)kind;
  def.num = a;
  def.den = b;
  *out = tl_dim_sym(intern(g, name, &def));
  return 0;
}

int tl_dim_arith(tl_graph *g, int op, int64_t a, int64_t b, int64_t *out, char *err, size_t n) {
  if (op == TL_DIM_FLOORDIV || op == TL_DIM_CEILDIV)
    return divide(g, op == TL_DIM_FLOORDIV ? TL_SYM_FLOORDIV : TL_SYM_CEILDIV, a, b, out, err, n);
  poly pa, pb, r;
  poly_of(g, a, &pa);
  poly_of(g, b, &pb);
  int rc = op == TL_DIM_MUL ? poly_mul(g, &pa, &pb, &r, err, n)
                            : poly_add(g, &pa, &pb, op == TL_DIM_SUB ? -1 : 1, &r, err, n);
  return rc ? rc : poly_dim(g, &r, out, err, n);
}

int tl_dim_add_int(tl_graph *g, int64_t a, int64_t k, int64_t *out, char *err, size_t n) {
  if (k >= 0) return tl_dim_arith(g, TL_DIM_ADD, a, k, out, err, n);
  if (k == INT64_MIN) return err_at(err, n, "symbolic size overflows");
  return tl_dim_arith(g, TL_DIM_SUB, a, -k, out, err, n);
}

/* ---- parsing ------------------------------------------------------------ */

/* Expressions are parsed into polynomials and interned once, at the end:
 * an intermediate such as the -m of (+ (- 0 m) n) is not a dim (interning
 * it would promise it is not negative). Division operands are dims. */
static int parse_poly(tl_graph *g, tl_lexer *lx, poly *o, int depth, char *err, size_t n);

static int parse_expr(tl_graph *g, tl_lexer *lx, poly *o, int depth, char *err, size_t n) {
  if (depth > 32) return err_at(err, n, "symbolic size nested too deeply");
  tl_tok op = tl_lex_next(lx);
  if (op.kind != TK_NAME) return err_at(err, n, "symbolic size: expected an operator (+ - * floordiv ceildiv)");
  int kind = tl_tok_is(&op, "+") ? TL_DIM_ADD : tl_tok_is(&op, "-") ? TL_DIM_SUB : tl_tok_is(&op, "*") ? TL_DIM_MUL
           : tl_tok_is(&op, "floordiv") ? TL_DIM_FLOORDIV : tl_tok_is(&op, "ceildiv") ? TL_DIM_CEILDIV : -1;
  if (kind < 0) {
    snprintf(err, n, "symbolic size: unknown operator '%.*s' (+ - * floordiv ceildiv)", (int)op.len, op.text);
    return -1;
  }
  poly acc, x;
  int count = 0;
  for (;;) {
    tl_tok t = tl_lex_peek(lx);
    if (t.kind == TK_RPAREN) {
      tl_lex_next(lx);
      break;
    }
    if (t.kind == TK_EOF) return err_at(err, n, "symbolic size: unclosed '('");
    if (parse_poly(g, lx, &x, depth + 1, err, n)) return -1;
    if (count++ == 0) {
      acc = x;
      continue;
    }
    if (kind == TL_DIM_FLOORDIV || kind == TL_DIM_CEILDIV) {
      int64_t a, b, r;
      if (count > 2) return err_at(err, n, "symbolic size: floordiv and ceildiv take two operands");
      if (poly_dim(g, &acc, &a, err, n) || poly_dim(g, &x, &b, err, n) || tl_dim_arith(g, kind, a, b, &r, err, n))
        return -1;
      poly_of(g, r, &acc);
    } else if (kind == TL_DIM_MUL ? poly_mul(g, &acc, &x, &acc, err, n)
                                  : poly_add(g, &acc, &x, kind == TL_DIM_SUB ? -1 : 1, &acc, err, n)) {
      return -1;
    }
  }
  if (count == 0) return err_at(err, n, "symbolic size: an operator without operands");
  if ((kind == TL_DIM_FLOORDIV || kind == TL_DIM_CEILDIV) && count != 2)
    return err_at(err, n, "symbolic size: floordiv and ceildiv take two operands");
  if (kind == TL_DIM_SUB && count == 1) {
    poly zero;
    poly_const(&zero, 0);
    if (poly_add(g, &zero, &acc, -1, &acc, err, n)) return -1;
  }
  *o = acc;
  return 0;
}

static int parse_poly(tl_graph *g, tl_lexer *lx, poly *o, int depth, char *err, size_t n) {
  tl_tok t = tl_lex_next(lx);
  if (t.kind == TK_LPAREN) return parse_expr(g, lx, o, depth, err, n);
  if (t.kind == TK_NUMBER) {
    double f;
    int64_t i;
    bool is_int;
    if (!tl_tok_number(&t, &f, &i, &is_int) || !is_int) {
      snprintf(err, n, "symbolic size: '%.*s' is not an integer", (int)t.len, t.text);
      return -1;
    }
    poly_const(o, i);
    return 0;
  }
  if (t.kind == TK_NAME && !tl_tok_is(&t, "+") && !tl_tok_is(&t, "-") && !tl_tok_is(&t, "*")) {
    poly_of(g, tl_dim_sym(tl_graph_sym(g, t.text, t.len)), o);
    return 0;
  }
  snprintf(err, n, "symbolic size: expected a size, a name or '(', found '%.*s'", (int)(t.len > 40 ? 40 : t.len),
           t.text);
  return -1;
}

int tl_dim_parse(tl_graph *g, const char *text, size_t len, int64_t *out, char *err, size_t n) {
  tl_lexer lx;
  tl_lex_init(&lx, text, len);
  poly p;
  if (parse_poly(g, &lx, &p, 0, err, n)) return -1;
  if (tl_lex_next(&lx).kind != TK_EOF) return err_at(err, n, "symbolic size: text after the dim");
  return poly_dim(g, &p, out, err, n);
}

/* ---- values --------------------------------------------------------------- */

bool tl_sym_derived(const tl_graph *g, int s) { return s >= 0 && s < g->nsyms && g->symdefs[s].kind != TL_SYM_BASE; }

static int64_t dval(int64_t d, const int64_t *syms) { return tl_dim_is_sym(d) ? syms[tl_dim_sym_id(d)] : d; }

/* Symbol s's value from syms (its operands' values): -1 unbound, -2
 * negative or a division by zero (the caller reports it). */
static int64_t sym_compute(const tl_graph *g, int s, const int64_t *syms) {
  const tl_symdef *def = &g->symdefs[s];
  if (def->kind == TL_SYM_POLY) {
    int64_t sum = 0;
    for (int t = 0; t < def->nterms; t++) {
      int64_t v = def->coef[t];
      for (int i = 0; i < def->deg[t]; i++) {
        int64_t x = syms[def->atom[t][i]];
        if (x < 0) return -1;
        if (__builtin_mul_overflow(v, x, &v)) return -2;
      }
      if (__builtin_add_overflow(sum, v, &sum)) return -2;
    }
    return sum < 0 ? -2 : sum;
  }
  int64_t a = dval(def->num, syms), b = dval(def->den, syms);
  if (a < 0 || b < 0) return -1;
  if (b == 0) return -2;
  return def->kind == TL_SYM_FLOORDIV ? a / b : a / b + (a % b != 0);
}

int tl_syms_eval(const tl_graph *g, int64_t *syms, char *err, size_t n) {
  for (int s = 0; s < g->nsyms; s++) {
    if (g->symdefs[s].kind == TL_SYM_BASE) continue;
    int64_t v = sym_compute(g, s, syms);
    if (v == -2) {
      size_t len = (size_t)snprintf(err, n, "symbolic dim '%s' is negative or divides by zero for", g->syms[s]);
      const char *sep = " ";
      const tl_symdef *def = &g->symdefs[s];
      for (int b = 0; b < s && len < n; b++) {
        bool used = def->num == tl_dim_sym(b) || def->den == tl_dim_sym(b);
        for (int t = 0; def->kind == TL_SYM_POLY && t < def->nterms; t++)
          for (int i = 0; i < def->deg[t]; i++) used |= def->atom[t][i] == b;
        if (!used) continue;
        len += (size_t)snprintf(err + len, n - len, "%s%s = %" PRId64, sep, g->syms[b], syms[b]);
        sep = ", ";
      }
      if (len < n)
        snprintf(err + len, n - len, " (it must be >= 0: a slice's bounds must lie in its dim, and sizes the graph "
                 "needs equal must be)");
      return -1;
    }
    syms[s] = v;
  }
  return 0;
}

int tl_syms_at(const tl_graph *g, int64_t *syms, int64_t size, int64_t step, char *err, size_t n) {
  for (int s = 0; s < g->nsyms; s++) syms[s] = g->symdefs[s].kind == TL_SYM_BASE ? size + step * s : -1;
  return tl_syms_eval(g, syms, err, n);
}

int64_t tl_dim_value(const tl_graph *g, int64_t d, const int64_t *syms) {
  if (!tl_dim_is_sym(d)) return d;
  int s = tl_dim_sym_id(d);
  if (!syms || s >= g->nsyms) return -1;
  if (syms[s] >= 0 || g->symdefs[s].kind == TL_SYM_BASE) return syms[s];
  /* computed on the way: derived symbols before s, in a scratch copy */
  int64_t *v = tl_xmalloc(((size_t)s + 1) * sizeof *v);
  memcpy(v, syms, (size_t)s * sizeof *v);
  for (int k = 0; k < s; k++)
    if (v[k] < 0 && g->symdefs[k].kind != TL_SYM_BASE) {
      int64_t x = sym_compute(g, k, v);
      v[k] = x < 0 ? -1 : x;
    }
  int64_t r = sym_compute(g, s, v);
  tl_free(v);
  return r < 0 ? -1 : r;
}

/* ---- between tables --------------------------------------------------------- */

static int map_dim(const int64_t *map, int64_t d, int64_t *out) {
  if (!tl_dim_is_sym(d)) {
    *out = d;
    return 0;
  }
  *out = map[tl_dim_sym_id(d)];
  return *out == TL_DIM_NONE ? -1 : 0;
}

int tl_syms_map(tl_graph *to, const tl_graph *from, int64_t *map, char *err, size_t n) {
  if (!to) return 0;
  for (int s = 0; s < from->nsyms; s++) {
    const tl_symdef *def = &from->symdefs[s];
    if (def->kind == TL_SYM_BASE || map[s] != TL_DIM_NONE) continue;
    int64_t r;
    if (def->kind == TL_SYM_POLY) {
      /* substituted as polynomials: a partial sum may be negative */
      bool ok = true;
      poly acc;
      poly_const(&acc, 0);
      for (int t = 0; ok && t < def->nterms; t++) {
        poly term, x;
        poly_const(&term, def->coef[t]);
        for (int i = 0; ok && i < def->deg[t]; i++) {
          int64_t a;
          ok = map_dim(map, tl_dim_sym(def->atom[t][i]), &a) == 0;
          if (!ok) break;
          poly_of(to, a, &x);
          if (poly_mul(to, &term, &x, &term, err, n)) return -1;
        }
        if (ok && poly_add(to, &acc, &term, 1, &acc, err, n)) return -1;
      }
      if (!ok) continue;
      if (poly_dim(to, &acc, &r, err, n)) return -1;
    } else {
      int64_t a, b;
      if (map_dim(map, def->num, &a) || map_dim(map, def->den, &b)) continue;
      if (tl_dim_arith(to, def->kind == TL_SYM_FLOORDIV ? TL_DIM_FLOORDIV : TL_DIM_CEILDIV, a, b, &r, err, n))
        return -1;
    }
    map[s] = r;
  }
  return 0;
}

/* ---- C text --------------------------------------------------------------- */

static void emit_dim(FILE *f, const char *arr, int64_t d) {
  if (tl_dim_is_sym(d)) fprintf(f, "%s[%d]", arr, tl_dim_sym_id(d));
  else fprintf(f, "(int64_t)%" PRId64, d);
}

void tl_syms_emit_c(const tl_graph *g, FILE *f, const char *arr) {
  for (int s = 0; s < g->nsyms; s++) {
    const tl_symdef *def = &g->symdefs[s];
    if (def->kind == TL_SYM_BASE) continue;
    fprintf(f, "  { /* %s */\n    int64_t v_ = ", g->syms[s]);
    if (def->kind == TL_SYM_POLY) {
      fprintf(f, "0");
      for (int t = 0; t < def->nterms; t++) {
        fprintf(f, " + (int64_t)%" PRId64, def->coef[t]);
        for (int i = 0; i < def->deg[t]; i++) fprintf(f, " * %s[%d]", arr, def->atom[t][i]);
      }
      fprintf(f, ";\n");
    } else {
      emit_dim(f, arr, def->den);
      fprintf(f, " > 0 ? ");
      emit_dim(f, arr, def->num);
      fprintf(f, " / ");
      emit_dim(f, arr, def->den);
      if (def->kind == TL_SYM_CEILDIV) {
        fprintf(f, " + (");
        emit_dim(f, arr, def->num);
        fprintf(f, " %% ");
        emit_dim(f, arr, def->den);
        fprintf(f, " != 0)");
      }
      fprintf(f, " : -1;\n");
    }
    fprintf(f, "    if (v_ < 0 || (%s[%d] >= 0 && %s[%d] != v_)) return -1;\n    %s[%d] = v_;\n  }\n", arr, s, arr,
            s, arr, s);
  }
}
