/* pattern.c - reading patterns and terms, the naive reference matcher, and
 * the match buffer. Compilation and the matching machine are in machine.c. */
#include "egraph/pattern_parse.h"
#include "util/alloc.h"
#include "egraph/internal.h"

#include <stdarg.h>

int eg_lang_op(const eg_lang *l, const char *s, size_t n) {
  for (int i = 0; i < l->nops; i++)
    if (strlen(l->op_names[i]) == n && memcmp(l->op_names[i], s, n) == 0) return i;
  return -1;
}

static void *xgrow(void *p, uint32_t *cap, size_t elem, uint64_t need) {
  if (need <= *cap) return p;
  uint64_t nc = *cap ? (uint64_t)*cap * 2 : 8;
  if (nc < need) nc = need;
  void *q = tl_xrealloc(p, (size_t)nc * elem);
  EG_ASSERT(q != NULL);
  *cap = (uint32_t)nc;
  return q;
}

int eg_vartab_find(const eg_vartab *v, const char *s, size_t n) {
  for (uint32_t i = 0; i < v->n; i++)
    if (strlen(v->names[i]) == n && memcmp(v->names[i], s, n) == 0) return (int)i;
  return -1;
}

uint32_t eg_vartab_add(eg_vartab *v, const char *s, size_t n, bool is_attr) {
  uint32_t cap = v->cap;
  v->names = xgrow(v->names, &cap, sizeof *v->names, v->n + 1);
  cap = v->cap;
  v->is_attr = xgrow(v->is_attr, &cap, 1, v->n + 1);
  v->cap = cap;
  char *c = tl_xmalloc(n + 1);
  EG_ASSERT(c);
  memcpy(c, s, n);
  c[n] = 0;
  v->names[v->n] = c;
  v->is_attr[v->n] = is_attr;
  return v->n++;
}

void eg_vartab_clear(eg_vartab *v) {
  for (uint32_t i = 0; i < v->n; i++) tl_free(v->names[i]);
  tl_free(v->names);
  tl_free(v->is_attr);
  memset(v, 0, sizeof *v);
}

void eg_pattern_clear(eg_pattern *p) {
  tl_free(p->nodes);
  tl_free(p->kids);
  tl_free(p->blob);
  memset(p, 0, sizeof *p);
}

/* ---- the reader ---------------------------------------------------------- */

typedef struct rd {
  sx_lexer *lx;
  const eg_lang *l;
  eg_vartab *vt;
  int flags;
  eg_pattern *p;
  eg_perr *err;
  uint32_t capn, capk, capb;
  int depth; /* open '(' of the pattern being read */
} rd;

static int fail(rd *r, sx_tok t, const char *fmt, ...) {
  r->err->line = t.line;
  r->err->col = t.col;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err->msg, sizeof r->err->msg, fmt, ap);
  va_end(ap);
  return -1;
}

static uint32_t push_node(rd *r, eg_pnode nd) {
  r->p->nodes = xgrow(r->p->nodes, &r->capn, sizeof *r->p->nodes, r->p->n + 1);
  r->p->nodes[r->p->n] = nd;
  return r->p->n++;
}

static int read_expr(rd *r, uint32_t *out);

static int read_var(rd *r, sx_tok t, bool as_attr, uint32_t *var) {
  if (t.n < 2) return fail(r, t, "expected a variable name after '?'");
  if (r->flags & EG_VARS_NONE) return fail(r, t, "variable '%.*s' in a ground term", (int)t.n, t.s);
  int v = eg_vartab_find(r->vt, t.s, t.n);
  if (v < 0) {
    if (!(r->flags & EG_VARS_NEW))
      return fail(r, t, "unbound variable '%.*s' on the right side", (int)t.n, t.s);
    v = (int)eg_vartab_add(r->vt, t.s, t.n, as_attr);
  }
  if (r->vt->is_attr[v] != as_attr)
    return fail(r, t, "variable '%.*s' used both as %s", (int)t.n, t.s,
                "an operand and an attribute");
  *var = (uint32_t)v;
  return 0;
}

static int read_node(rd *r, sx_tok lp, uint32_t *out) {
  sx_tok ot = sx_next(r->lx);
  if (ot.k != SX_ATOM) {
    if (ot.k != SX_RP) sx_skip_close(r->lx);
    return fail(r, ot, "expected an op name after '('");
  }
  int op = eg_lang_op(r->l, ot.s, ot.n);
  if (op < 0) {
    sx_skip_close(r->lx);
    return fail(r, ot, "unknown op '%.*s'", (int)ot.n, ot.s);
  }
  uint32_t kbuf[16], *kids = kbuf, nk = 0, capk = 16;
  eg_kv kv[8];
  int nkv = 0, rc = 0;
  sx_tok attrvar = {0};
  bool has_attrvar = false;
  for (;;) {
    sx_tok t = sx_peek(r->lx);
    if (t.k == SX_RP) {
      sx_next(r->lx);
      break;
    }
    if (t.k == SX_EOF) {
      rc = fail(r, lp, "unbalanced parentheses: '(' is never closed");
      goto out;
    }
    if (t.k == SX_ATOM && t.s[0] == ':' && t.n > 1) {
      sx_next(r->lx);
      sx_tok v = sx_next(r->lx);
      if (v.k == SX_LB) { /* [ ... ] list value: keep its source text */
        const char *s = v.s;
        sx_tok e;
        do e = sx_next(r->lx); while (e.k != SX_RB && e.k != SX_EOF && e.k != SX_RP);
        if (e.k != SX_RB) {
          if (e.k != SX_RP) rc = fail(r, v, "unterminated '['");
          else rc = fail(r, v, "expected ']'");
          if (e.k == SX_RP) goto out;
          goto out;
        }
        v.s = s;
        v.n = (size_t)(e.s + 1 - s);
      } else if (v.k != SX_ATOM) {
        rc = fail(r, v, "expected a value after '%.*s'", (int)t.n, t.s);
        if (v.k != SX_RP) sx_skip_close(r->lx);
        goto out;
      }
      if (nkv == 8) {
        rc = fail(r, t, "too many attributes");
        sx_skip_close(r->lx);
        goto out;
      }
      if (v.s[0] == '?') {
        has_attrvar = true;
        attrvar = v;
      }
      kv[nkv++] = (eg_kv){t.s + 1, v.s, t.n - 1, v.n};
      continue;
    }
    if (nkv) {
      rc = fail(r, t, "operands must come before attributes");
      sx_skip_close(r->lx);
      goto out;
    }
    uint32_t c;
    if (read_expr(r, &c)) {
      sx_skip_close(r->lx);
      rc = -1;
      goto out;
    }
    if (nk == capk) {
      uint32_t *nkids = tl_xmalloc(sizeof *nkids * capk * 2);
      EG_ASSERT(nkids);
      memcpy(nkids, kids, nk * sizeof *kids);
      if (kids != kbuf) tl_free(kids);
      kids = nkids;
      capk *= 2;
    }
    kids[nk++] = c;
  }
  int ar = r->l->arity[op];
  if (ar >= 0 ? (uint32_t)ar != nk : nk < 1) {
    rc = ar >= 0 ? fail(r, ot, "op '%s' takes %d operand%s, got %u", r->l->op_names[op], ar,
                        ar == 1 ? "" : "s", nk)
                 : fail(r, ot, "op '%s' takes at least one operand", r->l->op_names[op]);
    goto out;
  }
  eg_pnode nd = {EG_PAT_NODE, 0, (uint16_t)op, nk, r->p->nkids, 0, 0, 0, ot.line, ot.col};
  if (has_attrvar) {
    if (nkv != 1) {
      rc = fail(r, attrvar, "an attribute variable must be the op's only attribute");
      goto out;
    }
    nd.attr_var = 1;
    if (read_var(r, attrvar, true, &nd.var)) {
      rc = -1;
      goto out;
    }
  } else if (nkv && !r->l->parse_attrs) {
    rc = fail(r, ot, "op '%s' takes no attributes", r->l->op_names[op]);
    goto out;
  } else if (r->l->parse_attrs) {
    uint8_t buf[EG_ATTR_MAX];
    char msg[200] = "bad attribute";
    int len = r->l->parse_attrs(r->l, op, kv, nkv, buf, msg, sizeof msg);
    if (len < 0) {
      rc = fail(r, ot, "%s", msg);
      goto out;
    }
    r->p->blob = xgrow(r->p->blob, &r->capb, 1, (uint64_t)r->p->nblob + (uint32_t)len);
    if (len) memcpy(r->p->blob + r->p->nblob, buf, (size_t)len);
    nd.attr_off = r->p->nblob;
    nd.attr_len = (uint32_t)len;
    r->p->nblob += (uint32_t)len;
  }
  r->p->kids = xgrow(r->p->kids, &r->capk, sizeof *r->p->kids, (uint64_t)r->p->nkids + nk);
  if (nk) memcpy(r->p->kids + r->p->nkids, kids, nk * sizeof *kids);
  r->p->nkids += nk;
  *out = push_node(r, nd);
out:
  if (kids != kbuf) tl_free(kids);
  return rc;
}

static int read_expr(rd *r, uint32_t *out) {
  sx_tok t = sx_next(r->lx);
  if (t.k == SX_LP) {
    if (r->depth >= EG_PAT_MAX_DEPTH && !(r->flags & EG_VARS_NONE)) {
      sx_skip_close(r->lx);
      return fail(r, t, "pattern nested more than %d deep", EG_PAT_MAX_DEPTH);
    }
    r->depth++;
    int rc = read_node(r, t, out);
    r->depth--;
    return rc;
  }
  if (t.k != SX_ATOM || t.s[0] == ':')
    return fail(r, t, t.k == SX_EOF ? "unexpected end of input, expected an expression"
                                    : "expected an expression");
  if (t.s[0] == '?') {
    uint32_t v;
    if (read_var(r, t, false, &v)) return -1;
    *out = push_node(r, (eg_pnode){EG_PAT_VAR, 0, 0, 0, 0, v, 0, 0, t.line, t.col});
    return 0;
  }
  if (sx_is(t, "=>") || sx_is(t, "<=>")) return fail(r, t, "expected an expression");
  int op = -1;
  uint8_t buf[EG_ATTR_MAX];
  int len = r->l->parse_leaf ? r->l->parse_leaf(r->l, t.s, t.n, &op, buf) : -1;
  if (len < 0) {
    int o = eg_lang_op(r->l, t.s, t.n);
    if (o >= 0 && r->l->arity[o] == 0) { /* a nullary op written bare: as (op) */
      op = o;
      len = 0;
      if (r->l->parse_attrs) {
        char msg[200] = "bad attribute";
        if ((len = r->l->parse_attrs(r->l, o, NULL, 0, buf, msg, sizeof msg)) < 0)
          return fail(r, t, "%s", msg);
      }
    } else {
      return fail(r, t, "unknown leaf '%.*s'", (int)t.n, t.s);
    }
  }
  r->p->blob = xgrow(r->p->blob, &r->capb, 1, (uint64_t)r->p->nblob + (uint32_t)len);
  if (len) memcpy(r->p->blob + r->p->nblob, buf, (size_t)len);
  *out = push_node(r, (eg_pnode){EG_PAT_NODE, 0, (uint16_t)op, 0, r->p->nkids, 0,
                                 r->p->nblob, (uint32_t)len, t.line, t.col});
  r->p->nblob += (uint32_t)len;
  return 0;
}

int eg_pattern_read(sx_lexer *lx, const eg_lang *l, eg_vartab *vt, int flags,
                    eg_pattern *out, eg_perr *err) {
  rd r = {lx, l, vt, flags, out, err, 0, 0, 0, 0};
  uint32_t root;
  if (read_expr(&r, &root)) return -1;
  /* the subtree is post-order and contiguous: its root is the last node */
  return 0;
}

eg_pat *eg_pat_parse(const eg_lang *l, const char *text, char *err, size_t errsz) {
  eg_pat *p = tl_xcalloc(1, sizeof *p);
  EG_ASSERT(p);
  sx_lexer lx;
  sx_init(&lx, text, strlen(text));
  eg_perr pe = {0};
  if (eg_pattern_read(&lx, l, &p->vars, EG_VARS_NEW, &p->p, &pe) == 0) {
    sx_tok t = sx_next(&lx);
    if (t.k == SX_EOF) return p;
    pe.line = t.line;
    pe.col = t.col;
    snprintf(pe.msg, sizeof pe.msg, "unexpected text after the pattern");
  }
  if (err) snprintf(err, errsz, "%d:%d: error: %s", pe.line, pe.col, pe.msg);
  eg_pat_free(p);
  return NULL;
}

void eg_pat_free(eg_pat *p) {
  if (!p) return;
  eg_pattern_clear(&p->p);
  eg_vartab_clear(&p->vars);
  tl_free(p);
}

eg_id eg_add_term(eg_egraph *g, const char *text, char *err, size_t errsz) {
  eg_pattern p = {0};
  eg_vartab vt = {0};
  sx_lexer lx;
  sx_init(&lx, text, strlen(text));
  eg_perr pe = {0};
  eg_id res = EG_NONE;
  if (eg_pattern_read(&lx, eg_lang_of(g), &vt, EG_VARS_NONE, &p, &pe) == 0) {
    sx_tok t = sx_next(&lx);
    if (t.k == SX_EOF) {
      eg_id *ids = tl_xmalloc(sizeof *ids * p.n);
      eg_id kb[16];
      EG_ASSERT(ids);
      for (uint32_t i = 0; i < p.n; i++) {
        const eg_pnode *nd = &p.nodes[i];
        eg_id *kids = nd->n <= 16 ? kb : tl_xmalloc(sizeof *kids * nd->n);
        EG_ASSERT(kids);
        for (uint32_t k = 0; k < nd->n; k++) kids[k] = ids[p.kids[nd->kids + k]];
        uint32_t attr = eg_attr_intern(g, p.blob + nd->attr_off, nd->attr_len);
        ids[i] = eg_add(g, nd->op, attr, kids, nd->n);
        if (kids != kb) tl_free(kids);
      }
      res = ids[p.n - 1];
      tl_free(ids);
    } else {
      pe.line = t.line;
      pe.col = t.col;
      snprintf(pe.msg, sizeof pe.msg, "unexpected text after the term");
    }
  }
  if (res == EG_NONE && err) snprintf(err, errsz, "%d:%d: error: %s", pe.line, pe.col, pe.msg);
  eg_pattern_clear(&p);
  eg_vartab_clear(&vt);
  return res;
}

/* ---- matches ------------------------------------------------------------- */

void eg_matches_clear(eg_matches *m, uint32_t width) {
  m->n = 0;
  m->width = width;
}

void eg_matches_free(eg_matches *m) {
  tl_free(m->a);
  memset(m, 0, sizeof *m);
}

/* ---- naive backtracking matcher (the tests' reference) -------------------- */

typedef struct naive {
  eg_egraph *g;
  const eg_pattern *p;
  const eg_vartab *v;
  uint32_t *subst; /* EG_NONE = unbound */
  eg_matches *out;
  uint32_t root;
} naive;

static void naive_push(naive *s) {
  eg_matches *m = s->out;
  size_t w = 1 + (size_t)m->width;
  if ((m->n + 1) * w > m->cap) {
    m->cap = (m->n + 1) * w * 2;
    m->a = tl_xrealloc(m->a, m->cap * sizeof *m->a);
    EG_ASSERT(m->a);
  }
  uint32_t *rec = m->a + m->n * w;
  rec[0] = s->root;
  memcpy(rec + 1, s->subst, m->width * sizeof *rec);
  m->n++;
}

/* Matches pattern nodes todo[0..ntodo) against classes cls[...], in order;
 * calls naive_push for every complete assignment. */
static void naive_go(naive *s, const uint32_t *todo, const eg_id *cls, uint32_t ntodo) {
  if (!ntodo) {
    naive_push(s);
    return;
  }
  const eg_pnode *pn = &s->p->nodes[todo[0]];
  eg_id c = eg_find(s->g, cls[0]);
  if (pn->kind == EG_PAT_VAR) {
    if (s->subst[pn->var] == EG_NONE) {
      s->subst[pn->var] = c;
      naive_go(s, todo + 1, cls + 1, ntodo - 1);
      s->subst[pn->var] = EG_NONE;
    } else if (s->subst[pn->var] == c) {
      naive_go(s, todo + 1, cls + 1, ntodo - 1);
    }
    return;
  }
  uint32_t nn;
  const uint32_t *nodes = eg_class_nodes(s->g, c, &nn);
  uint32_t want_attr = EG_NONE;
  if (!pn->attr_var)
    want_attr = eg_attr_intern(s->g, s->p->blob + pn->attr_off, pn->attr_len);
  for (uint32_t i = 0; i < nn; i++) {
    const eg_node *nd = eg_get_node(s->g, nodes[i]);
    if (nd->op != pn->op || nd->n != pn->n) continue;
    bool bound_here = false;
    if (pn->attr_var) {
      if (s->subst[pn->var] == EG_NONE) {
        s->subst[pn->var] = nd->attr;
        bound_here = true;
      } else if (s->subst[pn->var] != nd->attr) {
        continue;
      }
    } else if (nd->attr != want_attr) {
      continue;
    }
    /* new worklist: this node's children, then the rest */
    uint32_t k = pn->n + ntodo - 1;
    uint32_t *t2 = tl_xmalloc(sizeof *t2 * (k ? k : 1));
    eg_id *c2 = tl_xmalloc(sizeof *c2 * (k ? k : 1));
    EG_ASSERT(t2 && c2);
    const eg_id *kids = eg_node_kids(s->g, nd);
    for (uint32_t j = 0; j < pn->n; j++) {
      t2[j] = s->p->kids[pn->kids + j];
      c2[j] = kids[j];
    }
    memcpy(t2 + pn->n, todo + 1, (ntodo - 1) * sizeof *t2);
    memcpy(c2 + pn->n, cls + 1, (ntodo - 1) * sizeof *c2);
    naive_go(s, t2, c2, k);
    tl_free(t2);
    tl_free(c2);
    if (bound_here) s->subst[pn->var] = EG_NONE;
  }
}

size_t eg_pattern_search_naive(eg_egraph *g, const eg_pattern *p, const eg_vartab *v,
                               eg_matches *out) {
  if (!eg_is_clean(g)) eg_rebuild(g);
  eg_matches_clear(out, v->n);
  naive s = {g, p, v, tl_xmalloc(sizeof(uint32_t) * (v->n ? v->n : 1)), out, 0};
  EG_ASSERT(s.subst);
  uint32_t nr;
  const eg_id *roots = eg_classes_with_op(g, -1, &nr);
  eg_id *copy = tl_xmalloc(sizeof *copy * (nr ? nr : 1));
  EG_ASSERT(copy);
  memcpy(copy, roots, nr * sizeof *copy);
  uint32_t root = p->n - 1;
  for (uint32_t i = 0; i < nr; i++) {
    for (uint32_t k = 0; k < v->n; k++) s.subst[k] = EG_NONE;
    s.root = copy[i];
    naive_go(&s, &root, &copy[i], 1);
  }
  tl_free(copy);
  tl_free(s.subst);
  return out->n;
}
