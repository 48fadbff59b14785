/* rules.c - the .rw reader and the condition registry.
 *
 * The reader is recursive descent over the shared tokenizer. Parentheses are
 * checked in a first pass, so that an unbalanced file gets one precise
 * message at the unmatched paren instead of a cascade; after that every
 * error inside a rule skips to the rule's closing paren and reading goes on,
 * so one run reports every bad rule. A text with errors adds nothing. */
#include "egraph/rules.h"
#include "egraph/internal.h"
#include "egraph/pattern_parse.h"
#include "util/util.h"

#include <stdarg.h>

/* ---- conditions -------------------------------------------------------- */

typedef struct cond_def {
  char *name;
  char kinds[EG_COND_MAX_ARGS]; /* per argument: 'v' operand variable, 'a' atom */
  int min, max;
  eg_cond_fn fn;
  void *ctx;
} cond_def;

struct eg_conds {
  cond_def *a;
  int n, cap;
};

eg_conds *eg_conds_new(void) { return tl_xcalloc(1, sizeof(eg_conds)); }

void eg_conds_free(eg_conds *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) tl_free(c->a[i].name);
  tl_free(c->a);
  tl_free(c);
}

static int cond_find(const eg_conds *c, const char *s, size_t n) {
  for (int i = 0; c && i < c->n; i++)
    if (strlen(c->a[i].name) == n && !memcmp(c->a[i].name, s, n)) return i;
  return -1;
}

int eg_conds_add(eg_conds *c, const char *name, const char *args, eg_cond_fn fn, void *ctx) {
  if (cond_find(c, name, strlen(name)) >= 0) return -1;
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 8;
    c->a = tl_xrealloc(c->a, sizeof *c->a * (size_t)c->cap);
    EG_ASSERT(c->a);
  }
  cond_def d = {tl_xstrdup(name), {0}, 0, 0, fn, ctx};
  size_t n = strlen(args);
  bool more = n && args[n - 1] == '+';
  d.min = (int)(more ? n - 1 : n);
  d.max = more ? EG_COND_MAX_ARGS : d.min;
  EG_ASSERT(d.min <= EG_COND_MAX_ARGS && (!more || d.min > 0));
  for (int i = 0; i < EG_COND_MAX_ARGS; i++) {
    d.kinds[i] = i < d.min ? args[i] : d.min ? args[d.min - 1] : 'a';
    EG_ASSERT(d.kinds[i] == 'v' || d.kinds[i] == 'a');
  }
  c->a[c->n++] = d;
  return 0;
}

bool eg_cond_holds(eg_egraph *g, const eg_conds *c, const eg_cond_use *u, const uint32_t *subst) {
  uint32_t args[EG_COND_MAX_ARGS];
  EG_ASSERT(u->nargs <= EG_COND_MAX_ARGS && u->fn >= 0);
  for (int k = 0; k < u->nargs; k++) args[k] = u->vars[k] == EG_NONE ? EG_NONE : subst[u->vars[k]];
  const cond_def *d = &c->a[u->fn];
  return d->fn(g, args, (const char *const *)u->atoms, u->nargs, d->ctx);
}

bool eg_rule_conds_hold(eg_egraph *g, const eg_rules *r, const eg_rule *rule,
                        const uint32_t *subst) {
  for (int i = 0; i < rule->nconds; i++)
    if (!eg_cond_holds(g, r->conds, &rule->conds[i], subst)) return false;
  return true;
}

/* ---- diagnostics ---------------------------------------------------------- */

typedef struct parser {
  eg_rules *r;
  const char *file;
  sx_lexer lx;
  tl_diag *d, own;
  int errors;
} parser;

/* file:line:col: error: msg, the source line, a caret under col */
static void error_at(parser *ps, int line, int col, const char *fmt, ...) {
  ps->errors++;
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tl_diag_error(ps->d, (tl_loc){line, col}, "%s", msg);
}

/* ---- rules ---------------------------------------------------------------- */

/* Frees a rule's or control rule's conditions. */
static void conds_free(eg_cond_use *conds, int n) {
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < conds[i].nargs; k++) tl_free(conds[i].atoms[k]);
    tl_free(conds[i].vars);
    tl_free(conds[i].atoms);
  }
  tl_free(conds);
}

static void rule_clear(eg_rule *ru, bool own_vars) {
  tl_free(ru->name);
  eg_pattern_clear(&ru->lhs);
  eg_pattern_clear(&ru->rhs);
  if (own_vars && ru->vars) {
    eg_vartab_clear(ru->vars);
    tl_free(ru->vars);
  }
  conds_free(ru->conds, ru->nconds);
  memset(ru, 0, sizeof *ru);
}

eg_rules *eg_rules_new(const eg_lang *l, const eg_conds *conds) {
  eg_rules *r = tl_xcalloc(1, sizeof *r);
  EG_ASSERT(r);
  r->lang = l;
  r->conds = conds;
  return r;
}

static void class_clear(eg_opclass *c) {
  tl_free(c->name);
  tl_free(c->ops);
  memset(c, 0, sizeof *c);
}

static void fuse_clear(eg_fuse *f) {
  tl_free(f->name);
  tl_free(f->producer);
  tl_free(f->consumer);
  tl_free(f->conds);
  memset(f, 0, sizeof *f);
}

static void inplace_clear(eg_inplace *ip) {
  tl_free(ip->name);
  eg_pattern_clear(&ip->pat);
  if (ip->vars) {
    eg_vartab_clear(ip->vars);
    tl_free(ip->vars);
  }
  memset(ip, 0, sizeof *ip);
}

/* How much of r existed before a text was read (a text with errors adds
 * nothing: everything past the mark is dropped). */
typedef struct mark { int nrules, nsets, nclasses, nfuses, ninplaces, ncontrols; } mark;

static mark rules_mark(const eg_rules *r) {
  return (mark){r->nrules, r->nrulesets, r->nclasses, r->nfuses, r->ninplaces, r->ncontrols};
}

static void control_clear(eg_control *c) {
  tl_free(c->name);
  eg_vartab_clear(&c->vars);
  conds_free(c->conds, c->nconds);
  memset(c, 0, sizeof *c);
}

static void rules_truncate(eg_rules *r, mark m) {
  while (r->nrules > m.nrules) {
    eg_rule *ru = &r->rules[--r->nrules];
    rule_clear(ru, !ru->backward);
  }
  while (r->nrulesets > m.nsets) tl_free(r->rulesets[--r->nrulesets]);
  while (r->nclasses > m.nclasses) class_clear(&r->classes[--r->nclasses]);
  while (r->nfuses > m.nfuses) fuse_clear(&r->fuses[--r->nfuses]);
  while (r->ninplaces > m.ninplaces) inplace_clear(&r->inplaces[--r->ninplaces]);
  while (r->ncontrols > m.ncontrols) control_clear(&r->controls[--r->ncontrols]);
}

void eg_rules_free(eg_rules *r) {
  if (!r) return;
  rules_truncate(r, (mark){0, 0, 0, 0, 0, 0});
  tl_free(r->controls);
  tl_free(r->rules);
  tl_free(r->rulesets);
  tl_free(r->classes);
  tl_free(r->fuses);
  tl_free(r->inplaces);
  for (int i = 0; i < r->nfiles; i++) tl_free(r->files[i]);
  tl_free(r->files);
  tl_free(r);
}

int eg_rules_ruleset(const eg_rules *r, const char *name) {
  for (int i = 0; i < r->nrulesets; i++)
    if (!strcmp(r->rulesets[i], name)) return i;
  return -1;
}

const eg_rule *eg_rules_find(const eg_rules *r, const char *name, bool backward) {
  for (int i = 0; i < r->nrules; i++)
    if (!strcmp(r->rules[i].name, name) && r->rules[i].backward == backward) return &r->rules[i];
  return NULL;
}

static eg_rule *rule_push(eg_rules *r) {
  if (r->nrules == r->caprules) {
    r->caprules = r->caprules ? r->caprules * 2 : 32;
    r->rules = tl_xrealloc(r->rules, sizeof *r->rules * (size_t)r->caprules);
    EG_ASSERT(r->rules);
  }
  eg_rule *ru = &r->rules[r->nrules++];
  memset(ru, 0, sizeof *ru);
  return ru;
}

static char *dupn(const char *s, size_t n) {
  char *c = tl_xmalloc(n + 1);
  EG_ASSERT(c);
  memcpy(c, s, n);
  c[n] = 0;
  return c;
}

static void pattern_copy(eg_pattern *dst, const eg_pattern *src) {
  *dst = *src;
  dst->nodes = tl_xmalloc(sizeof *dst->nodes * (src->n ? src->n : 1));
  dst->kids = tl_xmalloc(sizeof *dst->kids * (src->nkids ? src->nkids : 1));
  dst->blob = tl_xmalloc(src->nblob ? src->nblob : 1);
  EG_ASSERT(dst->nodes && dst->kids && dst->blob);
  memcpy(dst->nodes, src->nodes, sizeof *dst->nodes * src->n);
  if (src->nkids) memcpy(dst->kids, src->kids, sizeof *dst->kids * src->nkids);
  if (src->nblob) memcpy(dst->blob, src->blob, src->nblob);
}

static bool pattern_uses(const eg_pattern *p, uint32_t v) {
  for (uint32_t i = 0; i < p->n; i++)
    if ((p->nodes[i].kind == EG_PAT_VAR || p->nodes[i].attr_var) && p->nodes[i].var == v) return true;
  return false;
}

static int read_cond(parser *ps, eg_rule *ru) {
  sx_tok lp = sx_next(&ps->lx);
  if (lp.k != SX_LP) {
    error_at(ps, lp.line, lp.col, "expected a condition '(NAME ARG...)' after ':if'");
    return lp.k == SX_RP ? -2 : -1; /* -2: the rule's ')' is consumed */
  }
  sx_tok nm = sx_next(&ps->lx);
  if (nm.k != SX_ATOM) {
    error_at(ps, nm.line, nm.col, "expected a condition name");
    if (nm.k != SX_RP) sx_skip_close(&ps->lx);
    return -1;
  }
  int fn = cond_find(ps->r->conds, nm.s, nm.n);
  if (fn < 0) {
    error_at(ps, nm.line, nm.col, "unknown condition '%.*s'", (int)nm.n, nm.s);
    sx_skip_close(&ps->lx);
    return -1;
  }
  eg_cond_use u = {fn, 0, NULL, NULL};
  u.vars = tl_xmalloc(sizeof *u.vars * EG_COND_MAX_ARGS);
  u.atoms = tl_xcalloc(EG_COND_MAX_ARGS, sizeof *u.atoms);
  EG_ASSERT(u.vars && u.atoms);
  sx_tok at[EG_COND_MAX_ARGS];
  int rc = 0;
  for (;;) {
    sx_tok t = sx_next(&ps->lx);
    if (t.k == SX_RP) break;
    if (t.k != SX_ATOM) {
      error_at(ps, t.line, t.col, "expected a condition argument");
      if (t.k == SX_LP) sx_skip_close(&ps->lx);
      sx_skip_close(&ps->lx);
      rc = -1;
      break;
    }
    if (u.nargs == EG_COND_MAX_ARGS) {
      error_at(ps, t.line, t.col, "too many condition arguments");
      sx_skip_close(&ps->lx);
      rc = -1;
      break;
    }
    at[u.nargs] = t;
    if (t.s[0] == '?') {
      int v = eg_vartab_find(ru->vars, t.s, t.n);
      if (v < 0) {
        error_at(ps, t.line, t.col, "unbound variable '%.*s' in condition", (int)t.n, t.s);
        sx_skip_close(&ps->lx);
        rc = -1;
        break;
      }
      u.vars[u.nargs++] = (uint32_t)v;
    } else {
      u.atoms[u.nargs] = dupn(t.s, t.n);
      u.vars[u.nargs++] = EG_NONE;
    }
  }
  const cond_def *d = &ps->r->conds->a[fn];
  if (!rc && (u.nargs < d->min || u.nargs > d->max)) {
    if (d->min == d->max)
      error_at(ps, nm.line, nm.col, "condition '%s' takes %d argument%s, got %d", d->name,
               d->min, d->min == 1 ? "" : "s", u.nargs);
    else
      error_at(ps, nm.line, nm.col, "condition '%s' takes %d to %d arguments, got %d", d->name,
               d->min, d->max, u.nargs);
    rc = -1;
  }
  /* each argument of the kind the condition reads: its function gets an
   * operand's class for a 'v' and the text for an 'a', nothing else */
  for (int i = 0; !rc && i < u.nargs; i++) {
    sx_tok t = at[i];
    if (d->kinds[i] == 'v' && u.vars[i] == EG_NONE) {
      error_at(ps, t.line, t.col, "condition '%s' takes a ?variable of the pattern as argument %d, "
               "not '%.*s'", d->name, i + 1, (int)t.n, t.s);
      rc = -1;
    } else if (d->kinds[i] == 'v' && ru->vars->is_attr[u.vars[i]]) {
      error_at(ps, t.line, t.col, "condition '%s' takes an operand as argument %d; '%.*s' is an "
               "attribute variable", d->name, i + 1, (int)t.n, t.s);
      rc = -1;
    } else if (d->kinds[i] == 'a' && u.vars[i] != EG_NONE) {
      error_at(ps, t.line, t.col, "condition '%s' takes an atom as argument %d, not the variable "
               "'%.*s'", d->name, i + 1, (int)t.n, t.s);
      rc = -1;
    }
  }
  ru->conds = tl_xrealloc(ru->conds, sizeof *ru->conds * (size_t)(ru->nconds + 1));
  EG_ASSERT(ru->conds);
  ru->conds[ru->nconds++] = u; /* kept even on error: freed with the rule */
  return rc;
}

static void pattern_error(parser *ps, const eg_perr *pe) {
  error_at(ps, pe->line, pe->col, "%s", pe->msg);
}

/* Rules, fuse, inplace and control declarations share one namespace. */
static bool duplicate_name(parser *ps, sx_tok nm) {
  const eg_rules *r = ps->r;
  const char *file = NULL;
  int line = 0, col = 0;
  for (int i = 0; i < r->nrules && !file; i++)
    if (strlen(r->rules[i].name) == nm.n && !memcmp(r->rules[i].name, nm.s, nm.n))
      file = r->rules[i].file, line = r->rules[i].line, col = r->rules[i].col;
  for (int i = 0; i < r->nfuses && !file; i++)
    if (strlen(r->fuses[i].name) == nm.n && !memcmp(r->fuses[i].name, nm.s, nm.n))
      file = r->fuses[i].file, line = r->fuses[i].line, col = r->fuses[i].col;
  for (int i = 0; i < r->ninplaces && !file; i++)
    if (strlen(r->inplaces[i].name) == nm.n && !memcmp(r->inplaces[i].name, nm.s, nm.n))
      file = r->inplaces[i].file, line = r->inplaces[i].line, col = r->inplaces[i].col;
  for (int i = 0; i < r->ncontrols && !file; i++)
    if (strlen(r->controls[i].name) == nm.n && !memcmp(r->controls[i].name, nm.s, nm.n))
      file = r->controls[i].file, line = r->controls[i].line, col = r->controls[i].col;
  if (!file) return false;
  error_at(ps, nm.line, nm.col, "duplicate rule name '%.*s' (first defined at %s:%d:%d)", (int)nm.n,
           nm.s, file, line, col);
  return true;
}

/* After an error at token t inside a declaration: consume the rest of the
 * declaration (t itself may open a nested list, or be its closing paren). */
static void skip_decl(parser *ps, sx_tok t) {
  if (t.k == SX_LP) sx_skip_close(&ps->lx);
  if (t.k != SX_RP && t.k != SX_EOF) sx_skip_close(&ps->lx);
}

/* A declaration's name: an atom that is not a ?var or :key. */
static bool read_decl_name(parser *ps, const char *what, sx_tok *nm) {
  *nm = sx_next(&ps->lx);
  if (nm->k == SX_ATOM && nm->s[0] != '?' && nm->s[0] != ':') return true;
  error_at(ps, nm->line, nm->col, "expected a name after '%s'", what);
  skip_decl(ps, *nm);
  return false;
}

static void *grow(void *a, int n, int *cap, size_t elem) {
  if (n < *cap) return a;
  *cap = *cap ? *cap * 2 : 16;
  a = tl_xrealloc(a, elem * (size_t)*cap);
  EG_ASSERT(a);
  return a;
}

static int class_find(const eg_rules *r, const char *s, size_t n) {
  for (int i = 0; i < r->nclasses; i++)
    if (strlen(r->classes[i].name) == n && !memcmp(r->classes[i].name, s, n)) return i;
  return -1;
}

/* The language's built-in opclass named s, or 0. */
static int builtin_class(const eg_lang *l, const char *s, size_t n) {
  for (int k = 1; k < l->nclasses; k++)
    if (strlen(l->class_names[k]) == n && !memcmp(l->class_names[k], s, n)) return k;
  return 0;
}

/* An op, an opclass, `any` or `output` as a set of ops (nops + 1 flags,
 * the last one for `output`: the program's outputs); NULL after reporting. */
static uint8_t *read_selector(parser *ps, sx_tok t, const char *what) {
  const eg_rules *r = ps->r;
  int nops = r->lang->nops;
  if (t.k != SX_ATOM || t.s[0] == '?' || t.s[0] == ':') {
    error_at(ps, t.line, t.col, "expected %s: an op, an opclass, 'any' or 'output'", what);
    return NULL;
  }
  uint8_t *set = tl_xcalloc((size_t)nops + 1, 1);
  EG_ASSERT(set);
  int c = class_find(r, t.s, t.n), op = eg_lang_op(r->lang, t.s, t.n), b = builtin_class(r->lang, t.s, t.n);
  if (sx_is(t, "any")) memset(set, 1, (size_t)nops + 1);
  else if (c >= 0) memcpy(set, r->classes[c].ops, (size_t)nops + 1);
  else if (b) {
    for (int i = 0; i < nops; i++) set[i] = r->lang->op_class[i] == b;
  }
  else if (op >= 0) set[op] = 1;
  else if (sx_is(t, "output")) set[nops] = 1;
  else {
    error_at(ps, t.line, t.col, "unknown op or opclass '%.*s'", (int)t.n, t.s);
    tl_free(set);
    return NULL;
  }
  return set;
}

/* After "(opclass": NAME MEMBER... ")" */
static void read_opclass(parser *ps, sx_tok lp) {
  eg_rules *r = ps->r;
  sx_tok nm;
  if (!read_decl_name(ps, "opclass", &nm)) return;
  int c = class_find(r, nm.s, nm.n);
  if (builtin_class(r->lang, nm.s, nm.n)) {
    error_at(ps, nm.line, nm.col, "opclass '%.*s' is built in (the %s language's op table)", (int)nm.n, nm.s,
             r->lang->name);
    sx_skip_close(&ps->lx);
    return;
  }
  if (c >= 0 || sx_is(nm, "any") || sx_is(nm, "output") || eg_lang_op(r->lang, nm.s, nm.n) >= 0) {
    if (c >= 0)
      error_at(ps, nm.line, nm.col, "duplicate opclass '%.*s' (first defined at %s:%d:%d)", (int)nm.n,
               nm.s, r->classes[c].file, r->classes[c].line, r->classes[c].col);
    else
      error_at(ps, nm.line, nm.col, "opclass name '%.*s' is an op name, 'any' or 'output'", (int)nm.n, nm.s);
    sx_skip_close(&ps->lx);
    return;
  }
  int nops = r->lang->nops, nmembers = 0;
  uint8_t *ops = tl_xcalloc((size_t)nops + 1, 1);
  EG_ASSERT(ops);
  for (;;) {
    sx_tok t = sx_next(&ps->lx);
    if (t.k == SX_RP) break;
    uint8_t *m = read_selector(ps, t, "an opclass member");
    if (!m) {
      tl_free(ops);
      skip_decl(ps, t);
      return;
    }
    for (int i = 0; i <= nops; i++) ops[i] |= m[i];
    tl_free(m);
    nmembers++;
  }
  if (!nmembers) {
    error_at(ps, nm.line, nm.col, "opclass '%.*s' has no members", (int)nm.n, nm.s);
    tl_free(ops);
    return;
  }
  r->classes = grow(r->classes, r->nclasses, &r->capclasses, sizeof *r->classes);
  r->classes[r->nclasses++] = (eg_opclass){dupn(nm.s, nm.n), ops, ps->file, lp.line, lp.col};
}

/* After ":if" in a fuse declaration. 0, -1 (the rest of the declaration is
 * still to skip) or -2 (the declaration's ')' is consumed). */
static int read_fuse_cond(parser *ps, eg_fuse *f) {
  sx_tok lp = sx_next(&ps->lx);
  if (lp.k != SX_LP) {
    error_at(ps, lp.line, lp.col, "expected a condition '(NAME ARG...)' after ':if'");
    return lp.k == SX_RP ? -2 : -1;
  }
  sx_tok nm = sx_next(&ps->lx);
  int kind = sx_is(nm, "single-use") ? EG_FUSE_SINGLE_USE : sx_is(nm, "cheap") ? EG_FUSE_CHEAP
           : sx_is(nm, "light") ? EG_FUSE_LIGHT : sx_is(nm, "max-ops") ? EG_FUSE_MAX_OPS : -1;
  if (kind < 0) {
    if (nm.k == SX_ATOM)
      error_at(ps, nm.line, nm.col,
               "unknown fusion condition '%.*s' (known: single-use, cheap, light, max-ops N)", (int)nm.n, nm.s);
    else
      error_at(ps, nm.line, nm.col, "expected a fusion condition name");
    if (nm.k == SX_LP) sx_skip_close(&ps->lx);
    if (nm.k != SX_RP) sx_skip_close(&ps->lx);
    return -1;
  }
  eg_fuse_cond c = {kind, 0};
  sx_tok t = sx_next(&ps->lx);
  if (kind == EG_FUSE_MAX_OPS) {
    char *end = NULL;
    long long v = t.k == SX_ATOM ? strtoll(t.s, &end, 10) : 0;
    if (t.k != SX_ATOM || end != t.s + t.n || v < 1 || v > 1000000) {
      error_at(ps, t.line, t.col, "condition 'max-ops' takes a positive integer");
      if (t.k == SX_LP) sx_skip_close(&ps->lx);
      if (t.k != SX_RP) sx_skip_close(&ps->lx);
      return -1;
    }
    c.arg = v;
    t = sx_next(&ps->lx);
  }
  if (t.k != SX_RP) {
    error_at(ps, t.line, t.col, "condition '%.*s' takes %s", (int)nm.n, nm.s,
             kind == EG_FUSE_MAX_OPS ? "one argument" : "no arguments");
    if (t.k == SX_LP) sx_skip_close(&ps->lx);
    sx_skip_close(&ps->lx);
    return -1;
  }
  f->conds = tl_xrealloc(f->conds, sizeof *f->conds * (size_t)(f->nconds + 1));
  EG_ASSERT(f->conds);
  f->conds[f->nconds++] = c;
  return 0;
}

/* After "(fuse": NAME PRODUCER :into CONSUMER conditions ")" */
static void read_fuse(parser *ps, int set, sx_tok lp) {
  eg_rules *r = ps->r;
  sx_tok nm;
  if (!read_decl_name(ps, "fuse", &nm)) return;
  if (duplicate_name(ps, nm)) {
    sx_skip_close(&ps->lx);
    return;
  }
  eg_fuse f = {0};
  sx_tok t = sx_next(&ps->lx);
  if (!(f.producer = read_selector(ps, t, "a producer"))) goto bad;
  t = sx_next(&ps->lx);
  if (!sx_is(t, ":into")) {
    error_at(ps, t.line, t.col, "expected ':into CONSUMER' after the producer");
    goto bad;
  }
  t = sx_next(&ps->lx);
  if (!(f.consumer = read_selector(ps, t, "a consumer after ':into'"))) goto bad;
  for (;;) {
    t = sx_next(&ps->lx);
    if (t.k == SX_RP) break;
    if (!sx_is(t, ":if")) {
      error_at(ps, t.line, t.col, "expected ':if' or ')' after the consumer");
      goto bad;
    }
    int rc = read_fuse_cond(ps, &f);
    if (rc == -2) goto bad_closed;
    if (rc) {
      sx_skip_close(&ps->lx);
      goto bad_closed;
    }
  }
  f.name = dupn(nm.s, nm.n);
  f.ruleset = set;
  f.file = ps->file;
  f.line = lp.line;
  f.col = lp.col;
  r->fuses = grow(r->fuses, r->nfuses, &r->capfuses, sizeof *r->fuses);
  r->fuses[r->nfuses++] = f;
  return;
bad:
  skip_decl(ps, t);
bad_closed:
  fuse_clear(&f);
}

/* After "(inplace": NAME (OP ?a ...) :destroys ?v... [:rowwise] ")" */
static void read_inplace(parser *ps, int set, sx_tok lp) {
  eg_rules *r = ps->r;
  sx_tok nm;
  if (!read_decl_name(ps, "inplace", &nm)) return;
  if (duplicate_name(ps, nm)) {
    sx_skip_close(&ps->lx);
    return;
  }
  eg_inplace ip = {0};
  ip.vars = tl_xcalloc(1, sizeof *ip.vars);
  EG_ASSERT(ip.vars);
  eg_perr pe = {0};
  sx_tok at = sx_peek(&ps->lx);
  if (eg_pattern_read(&ps->lx, r->lang, ip.vars, EG_VARS_NEW, &ip.pat, &pe)) {
    pattern_error(ps, &pe);
    sx_skip_close(&ps->lx);
    goto bad_closed;
  }
  const eg_pnode *root = &ip.pat.nodes[ip.pat.n - 1];
  bool ok = root->kind == EG_PAT_NODE && root->n > 0 && root->n <= 32;
  for (uint32_t k = 0; ok && k < root->n; k++) {
    const eg_pnode *kid = &ip.pat.nodes[ip.pat.kids[root->kids + k]];
    ok = kid->kind == EG_PAT_VAR;
    for (uint32_t j = 0; ok && j < k; j++) ok = ip.pat.nodes[ip.pat.kids[root->kids + j]].var != kid->var;
  }
  if (!ok) {
    error_at(ps, at.line, at.col, "an in-place pattern is one op over distinct ?vars, e.g. (exp ?x)");
    sx_skip_close(&ps->lx);
    goto bad_closed;
  }
  ip.op = root->op;
  sx_tok t = sx_next(&ps->lx);
  if (!sx_is(t, ":destroys")) {
    error_at(ps, t.line, t.col, "expected ':destroys ?VAR...' after the pattern");
    goto bad;
  }
  for (;;) {
    t = sx_next(&ps->lx);
    if (t.k == SX_RP && ip.destroys) break;
    if (ip.destroys && sx_is(t, ":rowwise") && !ip.rowwise) {
      ip.rowwise = true;
      t = sx_next(&ps->lx);
      if (t.k == SX_RP) break;
      error_at(ps, t.line, t.col, "expected ')' after ':rowwise'");
      goto bad;
    }
    if (t.k != SX_ATOM || t.s[0] != '?') {
      error_at(ps, t.line, t.col, "expected an operand ?var after ':destroys'");
      goto bad;
    }
    int v = eg_vartab_find(ip.vars, t.s, t.n);
    int pos = -1;
    for (uint32_t k = 0; v >= 0 && k < root->n; k++)
      if (ip.pat.nodes[ip.pat.kids[root->kids + k]].var == (uint32_t)v) pos = (int)k;
    if (pos < 0) {
      error_at(ps, t.line, t.col, "'%.*s' is not an operand of the pattern", (int)t.n, t.s);
      goto bad;
    }
    ip.destroys |= 1u << pos;
  }
  ip.name = dupn(nm.s, nm.n);
  ip.ruleset = set;
  ip.file = ps->file;
  ip.line = lp.line;
  ip.col = lp.col;
  r->inplaces = grow(r->inplaces, r->ninplaces, &r->capinplaces, sizeof *r->inplaces);
  r->inplaces[r->ninplaces++] = ip;
  return;
bad:
  skip_decl(ps, t);
bad_closed:
  inplace_clear(&ip);
}

/* After "(rule": NAME LHS =>|<=> RHS conditions ")" */
static void read_rule(parser *ps, int set, sx_tok lp) {
  eg_rules *r = ps->r;
  sx_tok nm = sx_next(&ps->lx);
  if (nm.k != SX_ATOM || nm.s[0] == '?' || nm.s[0] == ':') {
    error_at(ps, nm.line, nm.col, "expected a rule name after 'rule'");
    if (nm.k == SX_LP) sx_skip_close(&ps->lx);
    if (nm.k != SX_RP) sx_skip_close(&ps->lx);
    return;
  }
  if (duplicate_name(ps, nm)) {
    sx_skip_close(&ps->lx);
    return;
  }
  eg_rule *ru = rule_push(r);
  ru->name = dupn(nm.s, nm.n);
  ru->ruleset = set;
  ru->file = ps->file;
  ru->line = lp.line;
  ru->col = lp.col;
  ru->vars = tl_xcalloc(1, sizeof *ru->vars);
  EG_ASSERT(ru->vars);
  eg_perr pe = {0};
  if (eg_pattern_read(&ps->lx, r->lang, ru->vars, EG_VARS_NEW, &ru->lhs, &pe)) {
    pattern_error(ps, &pe);
    goto bad;
  }
  sx_tok arrow = sx_next(&ps->lx);
  bool both = sx_is(arrow, "<=>");
  if (!both && !sx_is(arrow, "=>")) {
    error_at(ps, arrow.line, arrow.col, "expected '=>' or '<=>' after the left side");
    if (arrow.k == SX_LP) sx_skip_close(&ps->lx);
    if (arrow.k != SX_RP) sx_skip_close(&ps->lx);
    goto bad_nested;
  }
  if (eg_pattern_read(&ps->lx, r->lang, ru->vars, 0, &ru->rhs, &pe)) {
    pattern_error(ps, &pe);
    goto bad;
  }
  if (both)
    for (uint32_t v = 0; v < ru->vars->n; v++)
      if (!pattern_uses(&ru->rhs, v)) {
        error_at(ps, arrow.line, arrow.col,
                 "variable '%s' of the left side is unbound on the right side of '<=>'",
                 ru->vars->names[v]);
        goto bad;
      }
  for (;;) {
    sx_tok t = sx_next(&ps->lx);
    if (t.k == SX_RP) break;
    if (sx_is(t, ":if")) {
      int rc = read_cond(ps, ru);
      if (rc == -2) goto bad_nested;
      if (rc) goto bad;
      continue;
    }
    error_at(ps, t.line, t.col, "expected ':if' or ')' after the right side");
    if (t.k == SX_LP) sx_skip_close(&ps->lx);
    goto bad;
  }
  if (both) {
    ptrdiff_t at = ru - r->rules;
    eg_rule *rev = rule_push(r);
    ru = &r->rules[at];
    rev->name = tl_xstrdup(ru->name);
    rev->backward = true;
    rev->ruleset = set;
    rev->vars = ru->vars;
    pattern_copy(&rev->lhs, &ru->rhs);
    pattern_copy(&rev->rhs, &ru->lhs);
    rev->file = ru->file;
    rev->line = ru->line;
    rev->col = ru->col;
    rev->nconds = ru->nconds;
    rev->conds = tl_xmalloc(sizeof *rev->conds * (size_t)(ru->nconds ? ru->nconds : 1));
    EG_ASSERT(rev->conds);
    for (int i = 0; i < ru->nconds; i++) {
      eg_cond_use u = ru->conds[i];
      u.vars = tl_xmalloc(sizeof *u.vars * 8);
      u.atoms = tl_xcalloc(8, sizeof *u.atoms);
      EG_ASSERT(u.vars && u.atoms);
      memcpy(u.vars, ru->conds[i].vars, sizeof *u.vars * (size_t)u.nargs);
      for (int k = 0; k < u.nargs; k++)
        if (ru->conds[i].atoms[k]) u.atoms[k] = tl_xstrdup(ru->conds[i].atoms[k]);
      rev->conds[i] = u;
    }
  }
  return;
bad:
  sx_skip_close(&ps->lx);
bad_nested:
  r->nrules--;
  rule_clear(&r->rules[r->nrules], true);
}

/* ---- control-flow rules ---------------------------------------------------- */

static int name_find(const char *const *names, int n, const char *s, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == len && !memcmp(names[i], s, len)) return i;
  return -1;
}

/* One side: "(" HEAD item... ")", items `?v` then `:key ?f`. On the left
 * HEAD is an op and every variable is new (positional ones are classes,
 * keyed ones functions); on the right variables must be bound, and HEAD is
 * an op (positional: classes, keyed: functions) or a transformation
 * (positional: either kind). -1 after reporting (the side is consumed). */
static int read_cterm(parser *ps, eg_control *c, bool lhs, eg_cterm *t) {
  const eg_control_lang *cl = ps->r->lang->control;
  sx_tok lp = sx_next(&ps->lx);
  memset(t, 0, sizeof *t);
  t->line = lp.line;
  t->col = lp.col;
  if (lp.k != SX_LP) {
    error_at(ps, lp.line, lp.col, "expected '(OP ...)' as the %s side of a control rule", lhs ? "left" : "right");
    skip_decl(ps, lp);
    return -2; /* the declaration is consumed */
  }
  sx_tok hd = sx_next(&ps->lx);
  if (hd.k != SX_ATOM) {
    error_at(ps, hd.line, hd.col, "expected an op name after '('");
    if (hd.k == SX_LP) sx_skip_close(&ps->lx);
    if (hd.k != SX_RP) sx_skip_close(&ps->lx);
    return -1;
  }
  t->op = eg_lang_op(ps->r->lang, hd.s, hd.n);
  t->head = -1;
  if (t->op < 0 && !lhs) t->head = name_find(cl->heads, cl->nheads, hd.s, hd.n);
  if ((t->op < 0 && t->head < 0) || (t->op >= 0 && !cl->op_ok(t->op))) {
    char known[400] = "";
    size_t at = 0;
    for (int i = 0; !lhs && i < cl->nheads && at < sizeof known; i++)
      at += (size_t)snprintf(known + at, sizeof known - at, ", %s", cl->heads[i]);
    error_at(ps, hd.line, hd.col, "'%.*s' is not a control op%s%s%s", (int)hd.n, hd.s,
             lhs ? "" : " or a transformation (", lhs ? "" : known[0] ? known + 2 : "", lhs ? "" : ")");
    sx_skip_close(&ps->lx);
    return -1;
  }
  for (;;) {
    sx_tok it = sx_next(&ps->lx);
    if (it.k == SX_RP) break;
    bool keyed = it.k == SX_ATOM && it.s[0] == ':' && it.n > 1;
    sx_tok v = keyed ? sx_next(&ps->lx) : it;
    if (v.k != SX_ATOM || v.s[0] != '?' || v.n < 2) {
      error_at(ps, v.line, v.col, "expected a ?variable%s", keyed ? " after the key" : " or ':key ?f'");
      skip_decl(ps, v);
      return -1;
    }
    int key = -1;
    if (keyed) {
      key = name_find(cl->keys, cl->nkeys, it.s + 1, it.n - 1);
      if (key < 0 || t->op < 0 || !cl->key_ok(t->op, key)) {
        if (t->op < 0) error_at(ps, it.line, it.col, "a transformation takes ?variables, not keys");
        else error_at(ps, it.line, it.col, "op '%s' has no function under ':%.*s'", ps->r->lang->op_names[t->op],
                      (int)it.n - 1, it.s + 1);
        sx_skip_close(&ps->lx);
        return -1;
      }
    } else if (t->nkeys && t->op >= 0) {
      error_at(ps, v.line, v.col, "operands must come before keys");
      sx_skip_close(&ps->lx);
      return -1;
    }
    if ((keyed ? t->nkeys : t->nvars) == EG_CTERM_MAX) {
      error_at(ps, v.line, v.col, "too many items (at most %d)", EG_CTERM_MAX);
      sx_skip_close(&ps->lx);
      return -1;
    }
    int var = eg_vartab_find(&c->vars, v.s, v.n);
    bool is_fn = keyed;
    if (lhs) {
      if (var >= 0) {
        error_at(ps, v.line, v.col, "variable '%.*s' is bound twice on the left side", (int)v.n, v.s);
        sx_skip_close(&ps->lx);
        return -1;
      }
      var = (int)eg_vartab_add(&c->vars, v.s, v.n, is_fn);
    } else if (var < 0) {
      error_at(ps, v.line, v.col, "unbound variable '%.*s' on the right side", (int)v.n, v.s);
      sx_skip_close(&ps->lx);
      return -1;
    } else if (t->op >= 0 && c->vars.is_attr[var] != is_fn) {
      error_at(ps, v.line, v.col, "'%.*s' is a %s variable, used as %s", (int)v.n, v.s,
               c->vars.is_attr[var] ? "function" : "class", is_fn ? "a function" : "an operand");
      sx_skip_close(&ps->lx);
      return -1;
    }
    if (keyed) {
      t->keys[t->nkeys] = key;
      t->keyvars[t->nkeys++] = (uint32_t)var;
    } else {
      t->vars[t->nvars++] = (uint32_t)var;
    }
  }
  return 0;
}

/* After ":if": a condition of the registry (class variables) or of the
 * language (function variables). */
static int read_control_cond(parser *ps, eg_control *c) {
  const eg_control_lang *cl = ps->r->lang->control;
  sx_tok lp = sx_next(&ps->lx);
  if (lp.k != SX_LP) {
    error_at(ps, lp.line, lp.col, "expected a condition '(NAME ARG...)' after ':if'");
    return lp.k == SX_RP ? -2 : -1;
  }
  sx_tok nm = sx_next(&ps->lx);
  int reg = nm.k == SX_ATOM ? cond_find(ps->r->conds, nm.s, nm.n) : -1;
  int fc = nm.k == SX_ATOM ? name_find(cl->conds, cl->nconds, nm.s, nm.n) : -1;
  if (reg < 0 && fc < 0) {
    error_at(ps, nm.line, nm.col, "unknown condition '%.*s'", (int)nm.n, nm.s);
    if (nm.k != SX_RP) sx_skip_close(&ps->lx);
    return -1;
  }
  eg_cond_use u = {reg >= 0 ? reg : -1 - fc, 0, NULL, NULL};
  u.vars = tl_xmalloc(sizeof *u.vars * EG_COND_MAX_ARGS);
  u.atoms = tl_xcalloc(EG_COND_MAX_ARGS, sizeof *u.atoms);
  int rc = 0;
  for (;;) {
    sx_tok t = sx_next(&ps->lx);
    if (t.k == SX_RP) break;
    if (t.k != SX_ATOM || u.nargs == EG_COND_MAX_ARGS) {
      error_at(ps, t.line, t.col, t.k != SX_ATOM ? "expected a condition argument" : "too many condition arguments");
      skip_decl(ps, t);
      rc = -1;
      break;
    }
    int v = t.s[0] == '?' ? eg_vartab_find(&c->vars, t.s, t.n) : -1;
    if (t.s[0] == '?' && v < 0) {
      error_at(ps, t.line, t.col, "unbound variable '%.*s' in condition", (int)t.n, t.s);
      sx_skip_close(&ps->lx);
      rc = -1;
      break;
    }
    /* the registry's conditions read classes (and atoms); the language's
     * read functions */
    const cond_def *d = reg >= 0 ? &ps->r->conds->a[reg] : NULL;
    char want = d ? (u.nargs < d->max ? d->kinds[u.nargs] : 'x') : 'f';
    bool ok = v >= 0 ? (want == 'v' && !c->vars.is_attr[v]) || (want == 'f' && c->vars.is_attr[v]) : want == 'a';
    if (!ok) {
      error_at(ps, t.line, t.col, "condition '%.*s' does not take '%.*s' as argument %d (%s)", (int)nm.n, nm.s,
               (int)t.n, t.s, u.nargs + 1,
               want == 'f' ? "it takes function variables" : want == 'v' ? "it takes an operand's ?variable"
               : want == 'a' ? "it takes an atom" : "too many arguments");
      sx_skip_close(&ps->lx);
      rc = -1;
      break;
    }
    if (v < 0) u.atoms[u.nargs] = dupn(t.s, t.n);
    u.vars[u.nargs++] = v >= 0 ? (uint32_t)v : EG_NONE;
  }
  if (!rc && reg >= 0 && u.nargs < ps->r->conds->a[reg].min) {
    error_at(ps, nm.line, nm.col, "condition '%.*s' takes at least %d argument%s", (int)nm.n, nm.s,
             ps->r->conds->a[reg].min, ps->r->conds->a[reg].min == 1 ? "" : "s");
    rc = -1;
  }
  if (!rc && reg < 0 && u.nargs < 1) {
    error_at(ps, nm.line, nm.col, "condition '%.*s' takes function variables", (int)nm.n, nm.s);
    rc = -1;
  }
  c->conds = tl_xrealloc(c->conds, sizeof *c->conds * (size_t)(c->nconds + 1));
  c->conds[c->nconds++] = u;
  return rc;
}

/* After "(control": NAME LHS => RHS [:if (COND ARG...)]... ")" */
static void read_control(parser *ps, int set, sx_tok lp) {
  eg_rules *r = ps->r;
  sx_tok nm;
  if (!r->lang->control) {
    error_at(ps, lp.line, lp.col, "this language has no control-flow rules");
    sx_skip_close(&ps->lx);
    return;
  }
  if (!read_decl_name(ps, "control", &nm)) return;
  if (duplicate_name(ps, nm)) {
    sx_skip_close(&ps->lx);
    return;
  }
  eg_control c = {0};
  c.name = dupn(nm.s, nm.n);
  c.ruleset = set;
  c.file = ps->file;
  c.line = lp.line;
  c.col = lp.col;
  int rc = read_cterm(ps, &c, true, &c.lhs);
  if (rc == -2) goto done;
  if (rc) goto bad;
  sx_tok arrow = sx_next(&ps->lx);
  if (!sx_is(arrow, "=>")) {
    error_at(ps, arrow.line, arrow.col, "expected '=>' after the left side");
    skip_decl(ps, arrow);
    goto done;
  }
  rc = read_cterm(ps, &c, false, &c.rhs);
  if (rc == -2) goto done;
  if (rc) goto bad;
  for (;;) {
    sx_tok t = sx_next(&ps->lx);
    if (t.k == SX_RP) break;
    if (sx_is(t, ":if")) {
      rc = read_control_cond(ps, &c);
      if (rc == -2) goto done;
      if (rc) goto bad;
      continue;
    }
    error_at(ps, t.line, t.col, "expected ':if' or ')' after the right side");
    skip_decl(ps, t);
    goto done;
  }
  r->controls = grow(r->controls, r->ncontrols, &r->capcontrols, sizeof *r->controls);
  r->controls[r->ncontrols++] = c;
  return;
bad:
  sx_skip_close(&ps->lx);
done:
  control_clear(&c);
}

/* Unmatched parens, reported once, before anything else is read. */
static int check_parens(parser *ps, const char *text, size_t n) {
  sx_lexer lx;
  sx_init(&lx, text, n);
  int cap = 64, depth = 0;
  sx_tok *open = tl_xmalloc(sizeof *open * (size_t)cap);
  EG_ASSERT(open);
  int bad = 0;
  for (;;) {
    sx_tok t = sx_next(&lx);
    if (t.k == SX_EOF) break;
    if (t.k == SX_LP) {
      if (depth == cap) {
        cap *= 2;
        open = tl_xrealloc(open, sizeof *open * (size_t)cap);
        EG_ASSERT(open);
      }
      open[depth++] = t;
    } else if (t.k == SX_RP) {
      if (!depth) {
        error_at(ps, t.line, t.col, "unbalanced parentheses: unexpected ')'");
        bad = 1;
        break;
      }
      depth--;
    }
  }
  if (!bad && depth) {
    error_at(ps, open[depth - 1].line, open[depth - 1].col,
             "unbalanced parentheses: '(' is never closed");
    bad = 1;
  }
  tl_free(open);
  return bad;
}

int eg_rules_load(eg_rules *r, const char *file, const char *text, size_t n, tl_diag *d) {
  r->files = tl_xrealloc(r->files, sizeof *r->files * (size_t)(r->nfiles + 1));
  EG_ASSERT(r->files);
  char *fname = tl_xstrdup(file ? file : "<rules>");
  r->files[r->nfiles++] = fname;
  parser ps = {r, fname, {0}, d, {0}, 0};
  if (!ps.d) ps.d = &ps.own;
  /* the diagnostics may gather several files: point them at this one */
  const char *file0 = ps.d->file, *src0 = ps.d->src;
  size_t len0 = ps.d->len;
  ps.d->file = fname;
  ps.d->src = text;
  ps.d->len = n;
  sx_init(&ps.lx, text, n);
  mark m0 = rules_mark(r);
  if (check_parens(&ps, text, n)) goto done;
  for (;;) {
    sx_tok t = sx_next(&ps.lx);
    if (t.k == SX_EOF) break;
    sx_tok kw = t.k == SX_LP ? sx_next(&ps.lx) : t;
    if (t.k != SX_LP || !sx_is(kw, "ruleset")) {
      error_at(&ps, t.line, t.col, "expected '(ruleset NAME ...)'");
      if (t.k == SX_LP && kw.k == SX_LP) sx_skip_close(&ps.lx);
      if (t.k == SX_LP && kw.k != SX_RP) sx_skip_close(&ps.lx);
      continue;
    }
    sx_tok nm = sx_next(&ps.lx);
    if (nm.k != SX_ATOM) {
      error_at(&ps, nm.line, nm.col, "expected a ruleset name");
      if (nm.k == SX_LP) sx_skip_close(&ps.lx);
      if (nm.k != SX_RP) sx_skip_close(&ps.lx);
      continue;
    }
    char *name = dupn(nm.s, nm.n);
    int set = eg_rules_ruleset(r, name);
    if (set < 0) {
      if (r->nrulesets == r->caprulesets) {
        r->caprulesets = r->caprulesets ? r->caprulesets * 2 : 8;
        r->rulesets = tl_xrealloc(r->rulesets, sizeof *r->rulesets * (size_t)r->caprulesets);
        EG_ASSERT(r->rulesets);
      }
      set = r->nrulesets;
      r->rulesets[r->nrulesets++] = name;
    } else {
      tl_free(name);
    }
    for (;;) {
      sx_tok it = sx_next(&ps.lx);
      if (it.k == SX_RP || it.k == SX_EOF) break;
      sx_tok k2 = it.k == SX_LP ? sx_next(&ps.lx) : it;
      if (it.k == SX_LP && sx_is(k2, "rule")) read_rule(&ps, set, it);
      else if (it.k == SX_LP && sx_is(k2, "fuse")) read_fuse(&ps, set, it);
      else if (it.k == SX_LP && sx_is(k2, "inplace")) read_inplace(&ps, set, it);
      else if (it.k == SX_LP && sx_is(k2, "opclass")) read_opclass(&ps, it);
      else if (it.k == SX_LP && sx_is(k2, "control")) read_control(&ps, set, it);
      else if (it.k == SX_LP && sx_is(k2, "grad"))
        sx_skip_close(&ps.lx); /* a derivative rule: grad/ reads it */
      else {
        error_at(&ps, it.line, it.col,
                 "expected '(rule NAME LHS => RHS ...)', '(fuse ...)', '(inplace ...)', '(control ...)' or "
                 "'(opclass ...)'");
        if (it.k == SX_LP && k2.k == SX_LP) sx_skip_close(&ps.lx);
        if (it.k == SX_LP && k2.k != SX_RP) sx_skip_close(&ps.lx);
      }
    }
  }
done:
  if (ps.errors) rules_truncate(r, m0);
  if (ps.d != &ps.own) {
    ps.d->file = file0;
    ps.d->src = src0;
    ps.d->len = len0;
  }
  tl_diag_free(&ps.own);
  return ps.errors;
}

int eg_rules_load_file(eg_rules *r, const char *path, tl_diag *d) {
  tl_diag own = {0};
  if (!d) d = &own;
  char why[256];
  size_t n;
  char *buf = tl_read_input(path, TL_READ_MAX_TEXT, &n, why, sizeof why);
  if (!buf) {
    const char *file0 = d->file;
    d->file = path;
    tl_diag_error(d, (tl_loc){0, 0}, "%s", why);
    d->file = file0;
    tl_diag_free(&own);
    return 1;
  }
  int e = eg_rules_load(r, path, buf, n, d);
  tl_free(buf);
  tl_diag_free(&own);
  return e;
}
