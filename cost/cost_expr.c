/* cost/cost_expr.c - the objective: `--cost EXPR` parsed once into a small
 * stack program, evaluated per e-node over its property vector (cost.h).
 *
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := '-' unary | primary
 *   primary := NUMBER | PROPERTY | '(' expr ')'
 *
 * A recursive-descent parser emits postfix code; the evaluator runs it on a
 * fixed stack (the parser bounds its depth). */
#include "cost/cost.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

enum { X_NUM, X_PROP, X_ADD, X_SUB, X_MUL, X_DIV, X_NEG };
#define EXPR_MAX_DEPTH 64

typedef struct xins {
  int op;
  int prop;
  double num;
} xins;

struct tl_cost_expr {
  char *text;
  xins *code;
  int n, cap;
};

typedef struct xparser {
  const tl_cost_registry *r;
  const char *s;
  size_t pos;
  int depth;     /* nesting of the recursion, bounds the stack */
  tl_cost_expr *e;
  char *err;
  size_t errn;
  bool failed;
} xparser;

static void fail(xparser *p, size_t col, const char *what) {
  if (p->failed) return;
  p->failed = true;
  snprintf(p->err, p->errn, "cost expression '%s': column %zu: %s", p->s, col + 1, what);
}

static void emit(xparser *p, int op, int prop, double num) {
  tl_cost_expr *e = p->e;
  TL_GROW(e->code, e->n, e->cap);
  e->code[e->n++] = (xins){op, prop, num};
}

static void skip(xparser *p) {
  while (isspace((unsigned char)p->s[p->pos])) p->pos++;
}

static void expr(xparser *p);

static void primary(xparser *p) {
  skip(p);
  const char *s = p->s;
  size_t at = p->pos;
  char c = s[at];
  if (c == '(') {
    p->pos++;
    expr(p);
    skip(p);
    if (p->failed) return;
    if (s[p->pos] != ')') {
      char msg[96];
      snprintf(msg, sizeof msg, "expected ')' to close the '(' of column %zu", at + 1);
      fail(p, p->pos, msg);
    } else {
      p->pos++;
    }
    return;
  }
  if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[at + 1]))) {
    char *end;
    errno = 0;
    double v = strtod(s + at, &end);
    if (errno || !isfinite(v)) {
      fail(p, at, "number out of range");
      return;
    }
    p->pos = (size_t)(end - s);
    emit(p, X_NUM, 0, v);
    return;
  }
  if (isalpha((unsigned char)c) || c == '_') {
    size_t end = at;
    while (isalnum((unsigned char)s[end]) || s[end] == '_') end++;
    char name[TL_COST_NAME_MAX + 1];
    size_t len = end - at < TL_COST_NAME_MAX ? end - at : TL_COST_NAME_MAX;
    memcpy(name, s + at, len);
    name[len] = 0;
    int id = end - at < TL_COST_NAME_MAX ? tl_cost_find(p->r, name) : -1;
    if (id < 0) {
      tl_buf known = {0};
      for (int i = 0; i < tl_cost_nprops(p->r); i++)
        tl_buf_printf(&known, "%s%s", i ? ", " : "", tl_cost_prop_name(p->r, i));
      char msg[512];
      snprintf(msg, sizeof msg, "unknown property '%s' (properties: %s)", name, known.s ? known.s : "");
      tl_free(known.s);
      fail(p, at, msg);
      return;
    }
    p->pos = end;
    emit(p, X_PROP, id, 0);
    return;
  }
  char msg[96];
  if (c == 0) snprintf(msg, sizeof msg, "expected a property, a number or '(' at the end");
  else snprintf(msg, sizeof msg, "expected a property, a number or '(', not '%c'", c);
  fail(p, at, msg);
}

static void unary(xparser *p) {
  skip(p);
  if (p->s[p->pos] == '-') {
    p->pos++;
    if (++p->depth > EXPR_MAX_DEPTH) {
      fail(p, p->pos, "expression nested too deeply");
      return;
    }
    unary(p);
    p->depth--;
    emit(p, X_NEG, 0, 0);
    return;
  }
  primary(p);
}

static void term(xparser *p) {
  unary(p);
  for (;;) {
    skip(p);
    char c = p->s[p->pos];
    if (p->failed || (c != '*' && c != '/')) return;
    p->pos++;
    unary(p);
    emit(p, c == '*' ? X_MUL : X_DIV, 0, 0);
  }
}

static void expr(xparser *p) {
  if (++p->depth > EXPR_MAX_DEPTH) {
    fail(p, p->pos, "expression nested too deeply");
    return;
  }
  term(p);
  for (;;) {
    skip(p);
    char c = p->s[p->pos];
    if (p->failed || (c != '+' && c != '-')) break;
    p->pos++;
    term(p);
    emit(p, c == '+' ? X_ADD : X_SUB, 0, 0);
  }
  p->depth--;
}

tl_cost_expr *tl_cost_expr_parse(const tl_cost_registry *r, const char *text, char *err, size_t n) {
  tl_cost_expr *e = tl_xcalloc(1, sizeof *e);
  e->text = tl_xstrdup(text ? text : "");
  xparser p = {r, e->text, 0, 0, e, err, n, false};
  expr(&p);
  skip(&p);
  if (!p.failed && p.s[p.pos]) {
    char msg[96];
    snprintf(msg, sizeof msg, "unexpected '%c' (expected + - * / or the end)", p.s[p.pos]);
    fail(&p, p.pos, msg);
  }
  if (p.failed) {
    tl_cost_expr_free(e);
    return NULL;
  }
  return e;
}

double tl_cost_expr_eval(const tl_cost_expr *e, const double *props) {
  /* the parser nests at most EXPR_MAX_DEPTH levels and each level leaves at
   * most two values on the stack, so this stack cannot overflow */
  double st[2 * EXPR_MAX_DEPTH + 4];
  int sp = 0;
  for (int i = 0; i < e->n; i++) {
    const xins *x = &e->code[i];
    switch (x->op) {
    case X_NUM: st[sp++] = x->num; break;
    case X_PROP: st[sp++] = props[x->prop]; break;
    case X_NEG: st[sp - 1] = -st[sp - 1]; break;
    default: {
      double b = st[--sp], a = st[sp - 1];
      st[sp - 1] = x->op == X_ADD ? a + b : x->op == X_SUB ? a - b : x->op == X_MUL ? a * b : a / b;
    }
    }
  }
  return st[0];
}

const char *tl_cost_expr_text(const tl_cost_expr *e) { return e->text; }

void tl_cost_expr_free(tl_cost_expr *e) {
  if (!e) return;
  tl_free(e->text);
  tl_free(e->code);
  tl_free(e);
}
