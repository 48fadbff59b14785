/* rules.c - the reader of derivative rules: the `grad` declarations of .rw
 * files (docs/grad.md, "The rule language"; the grammar is in docs/design.md).
 *
 *   (ruleset NAME
 *     (grad NAME (OP ?x ?y [:KEY ?a]) :wrt ?x => RHS [:if (COND ARG...)]...)
 *     ...)
 *
 * Every other declaration of a ruleset (rule, fuse, inplace, opclass) is
 * skipped: egraph/rules.c reads those and skips these. Recursive descent
 * over ir/lex.h's tokens; an error inside a declaration skips to its
 * closing paren so one run reports every bad rule, and a text with errors
 * adds nothing. Right sides nest at most 64 deep. */
#include "grad/internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "ir/lex.h"
#include "ir/tg.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_DEPTH = 64 };

static const char *const helper_names[GR_H_COUNT_] = {
  [GR_H_UNREDUCE] = "unreduce", [GR_H_COUNT] = "count", [GR_H_RESHAPE_LIKE] = "reshape_like",
  [GR_H_UNTRANSPOSE] = "untranspose", [GR_H_UNCONCAT] = "unconcat", [GR_H_MT] = "mT",
};
static const int helper_arity[GR_H_COUNT_] = {2, 1, 2, 1, 2, 1};
/* the attributes a helper takes, and the op whose syntax parses them */
static const unsigned helper_attrs[GR_H_COUNT_] = {
  [GR_H_UNREDUCE] = TL_A_AXIS | TL_A_KEEPDIMS, [GR_H_COUNT] = TL_A_AXIS,
  [GR_H_UNTRANSPOSE] = TL_A_PERM, [GR_H_UNCONCAT] = TL_A_AXIS,
};
static const int helper_parse_op[GR_H_COUNT_] = {
  [GR_H_UNREDUCE] = TL_OP_SUM, [GR_H_COUNT] = TL_OP_SUM, [GR_H_RESHAPE_LIKE] = TL_OP_SUM,
  [GR_H_UNTRANSPOSE] = TL_OP_TRANSPOSE, [GR_H_UNCONCAT] = TL_OP_CONCAT, [GR_H_MT] = TL_OP_SUM,
};

static const char *const key_names[] = {"axis", "keepdims", "dtype", "shape", "perm", "start", "stop", "step"};

static int key_bit(const tl_tok *t) {
  for (int b = 0; b < 8; b++)
    if (tl_tok_is(t, key_names[b])) return 1 << b;
  return 0;
}

/* ---- the rule set ------------------------------------------------------------ */

gr_rules *gr_rules_new(void) { return tl_xcalloc(1, sizeof(gr_rules)); }

static void rule_clear(gr_rule *r) {
  tl_free(r->name);
  for (int i = 0; i < r->nvars; i++) tl_free(r->vars[i]);
  tl_free(r->vars);
  tl_free(r->t);
  tl_free(r->kid);
  tl_free(r->conds);
  memset(r, 0, sizeof *r);
}

void gr_rules_free(gr_rules *r) {
  if (!r) return;
  for (int i = 0; i < r->n; i++) rule_clear(&r->r[i]);
  tl_free(r->r);
  for (int i = 0; i < r->nfiles; i++) tl_free(r->files[i]);
  tl_free(r->files);
  tl_free(r);
}

int gr_rules_count(const gr_rules *r) { return r->n; }

gr_rule_info gr_rule_at(const gr_rules *r, int i) {
  const gr_rule *x = &r->r[i];
  return (gr_rule_info){x->name, x->file, x->loc.line, x->loc.col, x->op, x->wrt, x->text};
}

/* ---- the reader ------------------------------------------------------------------ */

typedef struct rp {
  gr_rules *rs;
  const char *file;
  tl_lexer lx;
  tl_diag d;
  int first_rule; /* the rules of this text start here */
  tl_graph *scratch; /* symbols of fixed shape attributes */
} rp;

static tl_tok next(rp *p) { return tl_lex_next(&p->lx); }
static tl_tok peek(rp *p) { return tl_lex_peek(&p->lx); }

__attribute__((format(printf, 3, 4))) static void error_at(rp *p, tl_loc loc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tl_diag_error(&p->d, loc, "%s", msg);
}

/* Consumes tokens up to the ')' closing a list whose '(' was read. */
static void skip_close(rp *p) {
  for (int depth = 1; depth > 0;) {
    tl_tok t = next(p);
    if (t.kind == TK_EOF) return;
    if (t.kind == TK_LPAREN) depth++;
    if (t.kind == TK_RPAREN) depth--;
  }
}

/* After an error at token t of a declaration: the rest of it. */
static void skip_decl(rp *p, tl_tok t) {
  if (t.kind == TK_LPAREN) skip_close(p);
  if (t.kind != TK_RPAREN && t.kind != TK_EOF) skip_close(p);
}

static int find_var(const gr_rule *r, const char *s, size_t n) {
  for (int i = 0; i < r->nvars; i++)
    if (strlen(r->vars[i]) == n && !memcmp(r->vars[i], s, n)) return i;
  return -1;
}

static int add_var(gr_rule *r, const char *s, size_t n) {
  r->vars = tl_xrealloc(r->vars, (size_t)(r->nvars + 1) * sizeof *r->vars);
  r->vars[r->nvars] = tl_xstrndup(s, n);
  return r->nvars++;
}

static bool is_operand_var(const gr_rule *r, int v) {
  return v == GR_V_G || v == GR_V_OUT || (v >= GR_V_FIRST && v < GR_V_FIRST + r->noperands);
}

static int push_term(gr_rule *r, gr_term t) {
  r->t = tl_xrealloc(r->t, (size_t)(r->nt + 1) * sizeof *r->t);
  r->t[r->nt] = t;
  return r->nt++;
}

/* The left side: (OP ?x ... [:KEY ?a]). */
static int read_lhs(rp *p, gr_rule *r) {
  tl_tok lp = next(p);
  if (lp.kind != TK_LPAREN) {
    error_at(p, lp.loc, "expected the op's pattern '(OP ?x ...)' after the rule name");
    skip_decl(p, lp);
    return -1;
  }
  tl_tok op = next(p);
  int o = op.kind == TK_NAME ? tl_op_lookup(op.text, op.len) : -1;
  if (o < 0) {
    error_at(p, op.loc, "expected an op of the op table, got '%.*s'", (int)op.len, op.text);
    skip_decl(p, op);
    skip_close(p);
    return -1;
  }
  if (tl_ops[o].arity == 0) {
    error_at(p, op.loc, "%s has no operands to differentiate", tl_ops[o].name);
    skip_close(p);
    skip_close(p);
    return -1;
  }
  r->op = o;
  for (;;) {
    tl_tok t = next(p);
    if (t.kind == TK_RPAREN) break;
    if (t.kind == TK_VAR) {
      if (r->attr_var >= 0) {
        error_at(p, t.loc, "operands come before the attribute");
        skip_close(p);
        skip_close(p);
        return -1;
      }
      if (tl_tok_is(&t, "g") || tl_tok_is(&t, "out") || find_var(r, t.text, t.len) >= 0) {
        error_at(p, t.loc, "'?%.*s' %s", (int)t.len, t.text,
                 find_var(r, t.text, t.len) >= 0 ? "is repeated: a rule's operands are distinct variables"
                                                 : "is reserved (?g is the cotangent, ?out the result)");
        skip_close(p);
        skip_close(p);
        return -1;
      }
      add_var(r, t.text, t.len);
      r->noperands++;
      continue;
    }
    if (t.kind == TK_KEYWORD && r->attr_var < 0) {
      int bit = key_bit(&t);
      tl_tok v = next(p);
      if (!bit || !(tl_ops[o].allowed_attrs & (unsigned)bit) || v.kind != TK_VAR ||
          find_var(r, v.text, v.len) >= 0 || tl_tok_is(&v, "g") || tl_tok_is(&v, "out")) {
        error_at(p, t.loc, "expected ':KEY ?a' with a key %s takes and a new variable (it binds the "
                 "node's attributes)", tl_ops[o].name);
        skip_decl(p, v);
        skip_close(p);
        return -1;
      }
      r->attr_var = add_var(r, v.text, v.len);
      continue;
    }
    error_at(p, t.loc, "expected an operand ?var or ':KEY ?a' in the op's pattern");
    skip_decl(p, t);
    skip_close(p);
    return -1;
  }
  int want = tl_ops[o].arity;
  if ((want > 0 && r->noperands != want) || (want < 0 && r->noperands != 1)) {
    error_at(p, op.loc, "%s takes %d operand%s; a variadic op's pattern has one ?var (each operand)",
             tl_ops[o].name, want < 0 ? 1 : want, want == 1 ? "" : "s");
    skip_close(p);
    return -1;
  }
  return 0;
}

/* An attribute value of a right-side term (a number, a name or a [list])
 * as ":key value" text, parsed as .tg does. 0; -1 after reporting, the
 * term's list still open; -2 when the error token was its ')'. */
static int read_fixed_attr(rp *p, tl_tok key, int parse_op, tl_attrs *a) {
  tl_buf text = {0};
  tl_buf_printf(&text, ":%.*s", (int)key.len, key.text);
  tl_tok t = next(p);
  if (t.kind == TK_LBRACK) {
    tl_buf_printf(&text, " [");
    for (;;) {
      tl_tok u = next(p);
      if (u.kind == TK_RBRACK) break;
      if (u.kind != TK_NUMBER && u.kind != TK_NAME) {
        error_at(p, u.loc, "expected a list value or ']'");
        tl_free(text.s);
        if (u.kind == TK_LPAREN) skip_close(p);
        return u.kind == TK_RPAREN ? -2 : -1;
      }
      tl_buf_printf(&text, " %.*s", (int)u.len, u.text);
    }
    tl_buf_printf(&text, "]");
  } else if (t.kind == TK_NUMBER || t.kind == TK_NAME) {
    tl_buf_printf(&text, " %.*s", (int)t.len, t.text);
  } else {
    error_at(p, t.loc, "expected a value after ':%.*s'", (int)key.len, key.text);
    tl_free(text.s);
    if (t.kind == TK_LPAREN) skip_close(p);
    return t.kind == TK_RPAREN ? -2 : -1;
  }
  char err[256];
  int rc = tl_tg_parse_attr(p->scratch, parse_op, text.s, text.len, a, err, sizeof err);
  tl_free(text.s);
  if (rc) error_at(p, key.loc, "%s", err);
  return rc;
}

/* A right-side term; its index in r->t, -1 after reporting (the lexer is
 * then past the term, or at the declaration's end). */
static int read_term(rp *p, gr_rule *r, int depth) {
  tl_tok t = next(p);
  gr_term x;
  memset(&x, 0, sizeof x);
  tl_attrs_init(&x.attrs);
  x.attr_var = x.dtype_var = -1;
  x.loc = t.loc;
  if (t.kind == TK_VAR) {
    int v = tl_tok_is(&t, "g") ? GR_V_G : tl_tok_is(&t, "out") ? GR_V_OUT : find_var(r, t.text, t.len);
    if (v < 0 || v == r->attr_var) {
      error_at(p, t.loc, "'?%.*s' is not an operand of the left side (nor ?g or ?out)", (int)t.len, t.text);
      return -1;
    }
    x.kind = GR_T_VAR;
    x.var = v;
    return push_term(r, x);
  }
  if (t.kind == TK_NUMBER) {
    x.kind = GR_T_NUM;
    if (!tl_tok_number(&t, &x.f, &x.i, &x.is_int)) {
      error_at(p, t.loc, "integer literal out of range");
      return -1;
    }
    return push_term(r, x);
  }
  if (t.kind != TK_LPAREN) {
    error_at(p, t.loc, "expected a term: ?var, a number or '(OP ...)'");
    if (t.kind == TK_RPAREN) return -2; /* the declaration's ')' */
    return -1;
  }
  if (depth >= MAX_DEPTH) {
    error_at(p, t.loc, "the right side nests deeper than %d", MAX_DEPTH);
    skip_close(p);
    return -1;
  }
  tl_tok head = next(p);
  int parse_op = -1, arity = 0;
  unsigned allowed = 0;
  if (head.kind == TK_NAME) {
    for (int h = 0; h < GR_H_COUNT_; h++)
      if (tl_tok_is(&head, helper_names[h])) {
        x.kind = GR_T_HELPER;
        x.op = (int16_t)h;
        parse_op = helper_parse_op[h];
        arity = helper_arity[h];
        allowed = helper_attrs[h];
      }
    int o = tl_op_lookup(head.text, head.len);
    if (parse_op < 0 && o >= 0 && tl_ops[o].kind != TL_KIND_SOURCE && o != TL_OP_LIT && o != TL_OP_CONST &&
        o != TL_OP_FILL) {
      x.kind = GR_T_OP;
      x.op = (int16_t)o;
      parse_op = o;
      arity = tl_ops[o].arity;
      allowed = tl_ops[o].allowed_attrs;
    }
  }
  if (parse_op < 0) {
    error_at(p, head.loc, "expected an op or a helper (unreduce count reshape_like untranspose unconcat mT), "
             "got '%.*s'", (int)head.len, head.text);
    skip_decl(p, head);
    return -1;
  }
  int kids[TL_GRAPH_MAX_ARGS], nk = 0;
  for (;;) {
    tl_tok u = peek(p);
    if (u.kind == TK_RPAREN || u.kind == TK_KEYWORD || u.kind == TK_EOF) break;
    if (nk == 64) {
      error_at(p, u.loc, "too many operands");
      skip_close(p);
      return -1;
    }
    int k = read_term(p, r, depth + 1);
    if (k < 0) {
      if (k == -1) skip_close(p);
      return -1;
    }
    kids[nk++] = k;
  }
  for (;;) {
    tl_tok k = next(p);
    if (k.kind == TK_RPAREN) break;
    int bit = k.kind == TK_KEYWORD ? key_bit(&k) : 0;
    if (!bit || !(allowed & (unsigned)bit)) {
      error_at(p, k.loc, k.kind == TK_KEYWORD ? "%.*s does not take the attribute ':%.*s'"
                                               : "%.*s: expected ':KEY value' or ')' after the operands",
               (int)head.len, head.text, (int)k.len, k.text);
      skip_decl(p, k);
      return -1;
    }
    if (peek(p).kind == TK_VAR) {
      tl_tok v = next(p);
      int var = find_var(r, v.text, v.len);
      if (tl_tok_is(&v, "g")) var = GR_V_G;
      if (tl_tok_is(&v, "out")) var = GR_V_OUT;
      if (var >= 0 && var == r->attr_var) {
        x.copy |= (unsigned)bit;
        x.attr_var = var;
      } else if (var >= 0 && bit == TL_A_DTYPE && is_operand_var(r, var)) {
        x.dtype_var = var;
      } else {
        error_at(p, v.loc, "'?%.*s': ':%.*s ?a' takes the value from the left side's attribute variable "
                 "(':dtype ?x' also an operand's dtype)", (int)v.len, v.text, (int)k.len, k.text);
        skip_close(p);
        return -1;
      }
      continue;
    }
    int rc = read_fixed_attr(p, k, parse_op, &x.attrs);
    if (rc) {
      if (rc == -1) skip_close(p);
      return -1;
    }
  }
  if ((arity >= 0 && nk != arity) || (arity < 0 && nk < 1)) {
    error_at(p, head.loc, "%.*s takes %d operand%s, got %d", (int)head.len, head.text, arity < 0 ? 1 : arity,
             arity == 1 ? "" : "s", nk);
    return -1;
  }
  x.kids = r->nkid;
  x.nkids = nk;
  r->kid = tl_xrealloc(r->kid, (size_t)(r->nkid + nk + 1) * sizeof *r->kid);
  memcpy(r->kid + r->nkid, kids, (size_t)nk * sizeof *kids);
  r->nkid += nk;
  return push_term(r, x);
}

/* After ":if": (NAME ARG...). 0, or -1 with the declaration still open. */
static int read_cond(rp *p, gr_rule *r) {
  tl_tok lp = next(p);
  tl_tok nm = lp.kind == TK_LPAREN ? next(p) : lp;
  static const char *const names[] = {"rank", "scalar", "float", "dtype", "same-shape"};
  int kind = -1;
  for (int i = 0; i < 5; i++)
    if (nm.kind == TK_NAME && tl_tok_is(&nm, names[i])) kind = i;
  if (lp.kind != TK_LPAREN || kind < 0) {
    error_at(p, nm.loc, "expected a condition on types: (rank ?x N), (scalar ?x), (float ?x), "
             "(dtype ?x T) or (same-shape ?x ?y ...)");
    if (lp.kind == TK_RPAREN) return -2; /* the declaration's ')' */
    if (lp.kind == TK_LPAREN) skip_decl(p, nm);
    return -1;
  }
  gr_cond c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.loc = lp.loc;
  bool bad = false;
  for (;;) {
    tl_tok a = next(p);
    if (a.kind == TK_RPAREN) break;
    if (a.kind == TK_VAR && c.nvars < 8) {
      int v = tl_tok_is(&a, "g") ? GR_V_G : tl_tok_is(&a, "out") ? GR_V_OUT : find_var(r, a.text, a.len);
      if (v < 0 || !is_operand_var(r, v)) {
        error_at(p, a.loc, "'?%.*s' is not an operand of the left side (nor ?g or ?out)", (int)a.len, a.text);
        bad = true;
      }
      c.vars[c.nvars++] = v;
      continue;
    }
    if (c.nvars == 1 && kind == GR_C_RANK && a.kind == TK_NUMBER) {
      double f;
      bool is_int;
      if (tl_tok_number(&a, &f, &c.n, &is_int) && is_int && c.n >= 0 && c.n <= TL_MAX_RANK) continue;
    }
    if (c.nvars == 1 && kind == GR_C_DTYPE && a.kind == TK_NAME) {
      c.dtype = tl_dtype_lookup(a.text, a.len);
      if (c.dtype >= 0) continue;
    }
    error_at(p, a.loc, "bad argument for condition '%s'", names[kind]);
    skip_decl(p, a);
    return -1;
  }
  int want = kind == GR_C_SAME_SHAPE ? 2 : 1;
  if (!bad && (c.nvars < want || (kind != GR_C_SAME_SHAPE && c.nvars != 1))) {
    error_at(p, nm.loc, "condition '%s' takes %s", names[kind],
             kind == GR_C_SAME_SHAPE ? "two or more ?vars" : kind == GR_C_RANK ? "?x N" : kind == GR_C_DTYPE ? "?x T" : "one ?var");
    bad = true;
  }
  if (bad) return 1; /* the condition's ')' was read */
  r->conds = tl_xrealloc(r->conds, (size_t)(r->nconds + 1) * sizeof *r->conds);
  r->conds[r->nconds++] = c;
  return 0;
}

/* After "(grad": NAME LHS :wrt ?v => RHS conditions ")" */
static void read_grad(rp *p, tl_loc at) {
  gr_rules *rs = p->rs;
  tl_tok nm = next(p);
  if (nm.kind != TK_NAME) {
    error_at(p, nm.loc, "expected a name after 'grad'");
    skip_decl(p, nm);
    return;
  }
  for (int i = p->first_rule; i < rs->n; i++)
    if (strlen(rs->r[i].name) == nm.len && !memcmp(rs->r[i].name, nm.text, nm.len)) {
      error_at(p, nm.loc, "duplicate derivative rule name '%.*s' (first defined at %s:%d:%d)", (int)nm.len,
               nm.text, rs->r[i].file, rs->r[i].loc.line, rs->r[i].loc.col);
      skip_close(p);
      return;
    }
  gr_rule r;
  memset(&r, 0, sizeof r);
  r.attr_var = -1;
  r.loc = at;
  add_var(&r, "g", 1);
  add_var(&r, "out", 3);
  if (read_lhs(p, &r)) goto bad_closed;
  tl_tok w = next(p);
  bool has_wrt = w.kind == TK_KEYWORD && tl_tok_is(&w, "wrt");
  tl_tok v = has_wrt ? next(p) : w;
  int wv = v.kind == TK_VAR ? find_var(&r, v.text, v.len) : -1;
  if (!has_wrt || wv < GR_V_FIRST || wv >= GR_V_FIRST + r.noperands) {
    error_at(p, v.loc, "expected ':wrt ?x' naming an operand of the left side");
    skip_decl(p, v);
    goto bad_closed;
  }
  r.wrt = tl_ops[r.op].arity < 0 ? -1 : wv - GR_V_FIRST;
  if (r.wrt >= 0 && ((tl_ops[r.op].nograd >> r.wrt) & 1)) {
    error_at(p, v.loc, "operand %d of %s carries no gradient (the op table's NOGRAD)", r.wrt, tl_ops[r.op].name);
    skip_close(p);
    goto bad_closed;
  }
  tl_tok arrow = next(p);
  if (arrow.kind != TK_ARROW) {
    error_at(p, arrow.loc, "expected '=>' after ':wrt ?x'");
    skip_decl(p, arrow);
    goto bad_closed;
  }
  int root = read_term(p, &r, 0);
  if (root == -2) goto bad_closed;
  if (root < 0) {
    skip_close(p);
    goto bad_closed;
  }
  for (;;) {
    tl_tok t = next(p);
    if (t.kind == TK_RPAREN) break;
    if (t.kind == TK_KEYWORD && tl_tok_is(&t, "if")) {
      int rc = read_cond(p, &r);
      if (rc == -2) goto bad_closed;
      if (rc) {
        skip_close(p);
        goto bad_closed;
      }
      continue;
    }
    error_at(p, t.loc, "expected ':if (COND ...)' or ')' after the right side");
    skip_decl(p, t);
    goto bad_closed;
  }
  r.name = tl_xstrndup(nm.text, nm.len);
  r.file = p->file;
  r.text = rs->ntexts;
  TL_GROW(rs->r, rs->n, rs->cap);
  rs->r[rs->n++] = r;
  return;
bad_closed:
  rule_clear(&r);
}

int gr_rules_load(gr_rules *rs, const char *file, const char *text, size_t len, tl_buf *diag) {
  rs->files = tl_xrealloc(rs->files, (size_t)(rs->nfiles + 1) * sizeof *rs->files);
  char *fname = tl_xstrdup(file ? file : "<rules>");
  rs->files[rs->nfiles++] = fname;
  rp p = {.rs = rs, .file = fname, .first_rule = rs->n, .scratch = tl_graph_new("rules")};
  tl_diag_init(&p.d, fname, text, len);
  tl_lex_init(&p.lx, text, len);
  for (;;) {
    tl_tok t = next(&p);
    if (t.kind == TK_EOF) break;
    tl_tok kw = t.kind == TK_LPAREN ? next(&p) : t;
    if (t.kind != TK_LPAREN || !tl_tok_is(&kw, "ruleset")) {
      error_at(&p, t.loc, "expected '(ruleset NAME ...)'");
      if (t.kind == TK_LPAREN) skip_decl(&p, kw);
      continue;
    }
    tl_tok nm = next(&p);
    if (nm.kind != TK_NAME) {
      error_at(&p, nm.loc, "expected a ruleset name");
      skip_decl(&p, nm);
      continue;
    }
    for (;;) {
      tl_tok it = next(&p);
      if (it.kind == TK_RPAREN || it.kind == TK_EOF) break;
      if (it.kind != TK_LPAREN) {
        error_at(&p, it.loc, "expected a declaration '(KIND NAME ...)'");
        continue;
      }
      tl_tok k2 = next(&p);
      if (k2.kind == TK_NAME && tl_tok_is(&k2, "grad")) read_grad(&p, it.loc);
      else skip_decl(&p, k2); /* a rewrite rule, fuse, inplace or opclass: egraph/ reads it */
    }
  }
  int errors = p.d.nerrors;
  if (errors) {
    while (rs->n > p.first_rule) rule_clear(&rs->r[--rs->n]);
    if (diag) tl_buf_printf(diag, "%s", tl_diag_text(&p.d));
  } else {
    rs->ntexts++;
  }
  tl_diag_free(&p.d);
  tl_graph_free(p.scratch);
  return errors;
}

static int load_file(gr_rules *rs, const char *path, tl_buf *diag) {
  char err[512];
  size_t len;
  char *src = tl_read_file(path, &len, err, sizeof err);
  if (!src) {
    if (diag) tl_buf_printf(diag, "%s: error: %s\n", path, err);
    return 1;
  }
  int e = gr_rules_load(rs, path, src, len, diag);
  tl_free(src);
  return e;
}

int gr_rules_load_path(gr_rules *rs, const char *path, tl_buf *diag) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (diag) tl_buf_printf(diag, "%s: no such rule file or folder\n", path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return load_file(rs, path, diag);
  int n = 0, errors = 0;
  char **names = tl_dir_list(path, ".rw", &n);
  if (!names) {
    if (diag) tl_buf_printf(diag, "%s: cannot open folder\n", path);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    tl_buf full = {0};
    tl_buf_printf(&full, "%s/%s", path, names[i]);
    errors += load_file(rs, full.s, diag);
    tl_free(full.s);
  }
  tl_dir_list_free(names, n);
  return errors;
}

int gr_rules_missing(const gr_rules *rs, tl_buf *out) {
  int missing = 0;
  for (int op = 0; op < TL_OP_COUNT; op++) {
    const tl_op_info *o = &tl_ops[op];
    if (o->grad != TL_GRAD_DIFF || o->arity == 0 || o->kind == TL_KIND_CONTROL) continue;
    int nk = o->arity < 0 ? 1 : o->arity;
    for (int k = 0; k < nk; k++) {
      if ((o->nograd >> k) & 1) continue;
      bool have = false;
      for (int i = 0; i < rs->n && !have; i++)
        have = rs->r[i].op == op && (rs->r[i].wrt == k || rs->r[i].wrt < 0);
      if (!have) {
        missing++;
        if (out) tl_buf_printf(out, "%s operand %d\n", o->name, k);
      }
    }
  }
  return missing;
}
