/* explain.c - the proof forest and flat explanations.
 *
 * Per id: its original node (op, attr, children as *original* ids, never
 * canonicalised) and a forest edge to a parent with a justification. A union
 * of a and b re-roots a's tree at a (reversing the path) and hangs it under
 * b, so the forest stays a spanning forest of the union-find's classes and
 * the path between two equal ids is unique. A congruence edge between
 * f(a1..an) and f(b1..bn) is justified by the proofs of ai = bi, which only
 * use older edges, so the recursive expansion terminates. */
#include "egraph/explain.h"
#include "egraph/internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct ex_just {
  uint8_t kind;
  uint8_t backward;
  uint32_t name; /* index in names */
  uint32_t from; /* the id that was the rule's left side */
} ex_just;

struct eg_explain {
  uint32_t *off;    /* per id: offset of [op, attr, n, kids...] in pool */
  uint32_t *parent; /* per id: forest parent or EG_NONE */
  ex_just *just;    /* per id: justification of the edge to parent */
  uint32_t nids, capids;
  uint32_t *pool;
  size_t npool, cappool;
  uint32_t *tab; /* exact original node -> id + 1 */
  uint32_t tabcap, ntab;
  char **names;
  uint32_t nnames;
  size_t bytes;
};

struct eg_explain *eg_ex_new(void) {
  struct eg_explain *ex = calloc(1, sizeof *ex);
  EG_ASSERT(ex);
  ex->tabcap = 256;
  ex->tab = calloc(ex->tabcap, sizeof *ex->tab);
  EG_ASSERT(ex->tab);
  return ex;
}

void eg_ex_free(struct eg_explain *ex) {
  if (!ex) return;
  free(ex->off); free(ex->parent); free(ex->just); free(ex->pool); free(ex->tab);
  for (uint32_t i = 0; i < ex->nnames; i++) free(ex->names[i]);
  free(ex->names);
  free(ex);
}

size_t eg_ex_bytes(const struct eg_explain *ex) {
  if (!ex) return 0;
  return (size_t)ex->capids * (4 + 4 + sizeof(ex_just)) + ex->cappool * 4 + (size_t)ex->tabcap * 4;
}

static const uint32_t *exnode(const struct eg_explain *ex, uint32_t id) { return ex->pool + ex->off[id]; }

static uint64_t exhash(const uint32_t *w, uint32_t n) {
  return XXH3_64bits_withSeed(w, (size_t)(3 + n) * 4, 0x3e91u);
}

static void tab_put(uint32_t *t, uint32_t mask, uint64_t h, uint32_t id) {
  uint32_t i = (uint32_t)h & mask;
  while (t[i]) i = (i + 1) & mask;
  t[i] = id + 1;
}

static uint32_t tab_find(const struct eg_explain *ex, const uint32_t *w, uint32_t n) {
  uint32_t mask = ex->tabcap - 1;
  for (uint32_t i = (uint32_t)exhash(w, n) & mask; ex->tab[i]; i = (i + 1) & mask) {
    const uint32_t *x = exnode(ex, ex->tab[i] - 1);
    if (!memcmp(x, w, (size_t)(3 + n) * 4)) return ex->tab[i] - 1;
  }
  return EG_NONE;
}

static uint32_t name_id(struct eg_explain *ex, const char *s) {
  for (uint32_t i = ex->nnames; i-- > 0;)
    if (!strcmp(ex->names[i], s)) return i;
  ex->names = realloc(ex->names, sizeof *ex->names * (ex->nnames + 1));
  EG_ASSERT(ex->names);
  ex->names[ex->nnames] = strdup(s);
  EG_ASSERT(ex->names[ex->nnames]);
  return ex->nnames++;
}

void eg_ex_new_id(eg_egraph *g, eg_id id, int op, uint32_t attr, const eg_id *kids, uint32_t n) {
  struct eg_explain *ex = g->ex;
  EG_ASSERT(id == ex->nids);
  if (ex->nids == ex->capids) {
    ex->capids = ex->capids ? ex->capids * 2 : 64;
    ex->off = realloc(ex->off, sizeof *ex->off * ex->capids);
    ex->parent = realloc(ex->parent, sizeof *ex->parent * ex->capids);
    ex->just = realloc(ex->just, sizeof *ex->just * ex->capids);
    EG_ASSERT(ex->off && ex->parent && ex->just);
  }
  if (ex->npool + 3 + n > ex->cappool) {
    ex->cappool = (ex->npool + 3 + n) * 2;
    ex->pool = realloc(ex->pool, sizeof *ex->pool * ex->cappool);
    EG_ASSERT(ex->pool);
  }
  uint32_t *w = ex->pool + ex->npool;
  w[0] = (uint32_t)op;
  w[1] = attr;
  w[2] = n;
  if (n) memcpy(w + 3, kids, (size_t)n * 4);
  ex->off[id] = (uint32_t)ex->npool;
  ex->npool += 3 + n;
  ex->parent[id] = EG_NONE;
  ex->nids++;
  if ((ex->ntab + 1) * 2 > ex->tabcap) {
    uint32_t nc = ex->tabcap * 2;
    uint32_t *t = calloc(nc, sizeof *t);
    EG_ASSERT(t);
    for (uint32_t i = 0; i < ex->tabcap; i++)
      if (ex->tab[i]) {
        const uint32_t *x = exnode(ex, ex->tab[i] - 1);
        tab_put(t, nc - 1, exhash(x, x[2]), ex->tab[i] - 1);
      }
    free(ex->tab);
    ex->tab = t;
    ex->tabcap = nc;
  }
  tab_put(ex->tab, ex->tabcap - 1, exhash(w, n), id);
  ex->ntab++;
}

/* Re-roots x's tree at x by reversing the edges on the path to its root. */
static void reroot(struct eg_explain *ex, uint32_t x) {
  uint32_t prev = EG_NONE, cur = x;
  ex_just pj = {0};
  while (cur != EG_NONE) {
    uint32_t next = ex->parent[cur];
    ex_just j = ex->just[cur];
    ex->parent[cur] = prev;
    ex->just[cur] = pj;
    pj = j;
    prev = cur;
    cur = next;
  }
}

static void add_edge(struct eg_explain *ex, eg_id a, eg_id b, int kind, const char *name,
                     bool backward, eg_id from) {
  reroot(ex, a);
  ex->parent[a] = b;
  ex->just[a] = (ex_just){(uint8_t)kind, backward, name_id(ex, name ? name : "?"), from};
}

void eg_ex_union(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why) {
  add_edge(g->ex, a, b, why->kind, why->name, why->backward, a);
}

eg_id eg_ex_add_existing(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n,
                         uint32_t holder) {
  struct eg_explain *ex = g->ex;
  uint32_t wb[3 + 16], *w = n <= 16 ? wb : malloc(sizeof *w * (3 + n));
  EG_ASSERT(w);
  w[0] = (uint32_t)op;
  w[1] = attr;
  w[2] = n;
  if (n) memcpy(w + 3, kids, (size_t)n * 4);
  uint32_t id = tab_find(ex, w, n);
  if (w != wb) free(w);
  if (id != EG_NONE) return id;
  uint32_t existing = eg_nd_(g, holder)->cls;
  id = eg_uf_make(g);
  eg_ex_new_id(g, id, op, attr, kids, n);
  g->uf[id] = eg_uf_find(g->uf, existing);
  add_edge(ex, id, existing, EG_WHY_CONGRUENCE, "congruence", false, id);
  return id;
}

/* ---- terms ------------------------------------------------------------- */

typedef struct tn {
  uint32_t op, attr, n;
  struct tn **kids;
} tn;

typedef struct arena {
  void **blocks;
  size_t n, cap;
} arena;

static void *amalloc(arena *a, size_t sz) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->blocks = realloc(a->blocks, sizeof *a->blocks * a->cap);
    EG_ASSERT(a->blocks);
  }
  void *p = malloc(sz ? sz : 1);
  EG_ASSERT(p);
  a->blocks[a->n++] = p;
  return p;
}

static void afree(arena *a) {
  for (size_t i = 0; i < a->n; i++) free(a->blocks[i]);
  free(a->blocks);
}

static tn *term_of(const struct eg_explain *ex, arena *a, tn **memo, uint32_t id) {
  if (memo[id]) return memo[id];
  const uint32_t *w = exnode(ex, id);
  tn *t = amalloc(a, sizeof *t);
  t->op = w[0];
  t->attr = w[1];
  t->n = w[2];
  t->kids = amalloc(a, sizeof *t->kids * t->n);
  for (uint32_t i = 0; i < t->n; i++) t->kids[i] = term_of(ex, a, memo, w[3 + i]);
  memo[id] = t;
  return t;
}

typedef struct sbuf { char *s; size_t n, cap; } sbuf;

static void sput(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->s = realloc(b->s, b->cap);
    EG_ASSERT(b->s);
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

/* Prints t; the subterm at path (depth plen) is wrapped in mark. */
static void print_term(const eg_egraph *g, const tn *t, sbuf *b, const uint32_t *path,
                       int plen, const char *mark) {
  if (mark && plen == 0) {
    sput(b, mark, strlen(mark));
    sput(b, " ", 1);
  }
  char head[600];
  int k = eg_print_head(g, (int)t->op, t->attr, head, sizeof head);
  if (k < 0) k = 0;
  if (k >= (int)sizeof head) k = (int)sizeof head - 1;
  if (t->n) sput(b, "(", 1);
  sput(b, head, (size_t)k);
  for (uint32_t i = 0; i < t->n; i++) {
    sput(b, " ", 1);
    bool on = mark && plen > 0 && path[0] == i;
    print_term(g, t->kids[i], b, on ? path + 1 : NULL, on ? plen - 1 : -1, on ? mark : NULL);
  }
  if (t->n) sput(b, ")", 1);
  if (mark && plen == 0) sput(b, ")", 1);
}

static char *term_str(const eg_egraph *g, const tn *t) {
  sbuf b = {0};
  print_term(g, t, &b, NULL, -1, NULL);
  return b.s;
}

/* ---- explanations -------------------------------------------------------- */

typedef struct rstep {
  uint32_t *path;
  int plen;
  uint32_t name;
  bool backward;
  tn *after;
} rstep;

struct eg_expl {
  eg_expl_step *steps;
  size_t n, cap;
  char *start, *text;
  char **strs;
  size_t nstrs, capstrs;
};

typedef struct xctx {
  eg_egraph *g;
  struct eg_explain *ex;
  arena a;
  tn **memo;
  rstep *st;
  size_t n, cap;
  uint32_t *path; /* current context path */
  int plen, pcap;
} xctx;

static void push_step(xctx *x, uint32_t name, bool backward, tn *after) {
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 16;
    x->st = realloc(x->st, sizeof *x->st * x->cap);
    EG_ASSERT(x->st);
  }
  rstep *s = &x->st[x->n++];
  s->path = amalloc(&x->a, sizeof *s->path * (size_t)x->plen);
  if (x->plen) memcpy(s->path, x->path, sizeof *s->path * (size_t)x->plen);
  s->plen = x->plen;
  s->name = name;
  s->backward = backward;
  s->after = after;
}

static uint32_t depth_of(const struct eg_explain *ex, uint32_t x) {
  uint32_t d = 0;
  for (; ex->parent[x] != EG_NONE; x = ex->parent[x]) d++;
  return d;
}

static void explain_ids(xctx *x, uint32_t a, uint32_t b);

/* One forest edge walked from u to v. */
static void explain_edge(xctx *x, uint32_t u, uint32_t v, const ex_just *j) {
  if (j->kind == EG_WHY_CONGRUENCE) {
    const uint32_t *wu = exnode(x->ex, u), *wv = exnode(x->ex, v);
    EG_ASSERT(wu[0] == wv[0] && wu[2] == wv[2]);
    for (uint32_t i = 0; i < wu[2]; i++) {
      if (x->plen == x->pcap) {
        x->pcap = x->pcap ? x->pcap * 2 : 16;
        x->path = realloc(x->path, sizeof *x->path * (size_t)x->pcap);
        EG_ASSERT(x->path);
      }
      x->path[x->plen++] = i;
      explain_ids(x, wu[3 + i], wv[3 + i]);
      x->plen--;
    }
    return;
  }
  bool forward = j->from == u;
  push_step(x, j->name, forward ? (bool)j->backward : !j->backward, term_of(x->ex, &x->a, x->memo, v));
}

static void explain_ids(xctx *x, uint32_t a, uint32_t b) {
  if (a == b) return;
  const struct eg_explain *ex = x->ex;
  uint32_t da = depth_of(ex, a), db = depth_of(ex, b), p = a, q = b;
  while (da > db) { p = ex->parent[p]; da--; }
  while (db > da) { q = ex->parent[q]; db--; }
  while (p != q) { p = ex->parent[p]; q = ex->parent[q]; }
  EG_ASSERT(p != EG_NONE);
  uint32_t lca = p;
  for (uint32_t u = a; u != lca; u = ex->parent[u]) explain_edge(x, u, ex->parent[u], &ex->just[u]);
  /* from lca down to b: collect b's upward path, walk it reversed */
  uint32_t cnt = 0;
  for (uint32_t u = b; u != lca; u = ex->parent[u]) cnt++;
  uint32_t *up = malloc(sizeof *up * (cnt ? cnt : 1));
  EG_ASSERT(up);
  cnt = 0;
  for (uint32_t u = b; u != lca; u = ex->parent[u]) up[cnt++] = u;
  for (uint32_t i = cnt; i-- > 0;) explain_edge(x, ex->parent[up[i]], up[i], &ex->just[up[i]]);
  free(up);
}

static tn *replace_at(arena *a, const tn *t, const uint32_t *path, int plen, tn *with) {
  if (plen == 0) return with;
  tn *c = amalloc(a, sizeof *c);
  *c = *t;
  c->kids = amalloc(a, sizeof *c->kids * t->n);
  memcpy(c->kids, t->kids, sizeof *c->kids * t->n);
  c->kids[path[0]] = replace_at(a, t->kids[path[0]], path + 1, plen - 1, with);
  return c;
}

static const tn *sub_at(const tn *t, const uint32_t *path, int plen) {
  for (int i = 0; i < plen; i++) t = t->kids[path[i]];
  return t;
}

static char *keep(eg_expl *e, char *s) {
  if (e->nstrs == e->capstrs) {
    e->capstrs = e->capstrs ? e->capstrs * 2 : 32;
    e->strs = realloc(e->strs, sizeof *e->strs * e->capstrs);
    EG_ASSERT(e->strs);
  }
  e->strs[e->nstrs++] = s;
  return s;
}

eg_expl *eg_explain(eg_egraph *g, eg_id a, eg_id b) {
  if (!g->ex || a >= g->nids || b >= g->nids || eg_find(g, a) != eg_find(g, b)) return NULL;
  xctx x = {g, g->ex, {0}, calloc(g->ex->nids, sizeof(tn *)), NULL, 0, 0, NULL, 0, 0};
  EG_ASSERT(x.memo);
  explain_ids(&x, a, b);
  eg_expl *e = calloc(1, sizeof *e);
  EG_ASSERT(e);
  tn *cur = term_of(g->ex, &x.a, x.memo, a);
  e->start = keep(e, term_str(g, cur));
  sbuf text = {0};
  sput(&text, e->start, strlen(e->start));
  sput(&text, "\n", 1);
  e->steps = calloc(x.n ? x.n : 1, sizeof *e->steps);
  EG_ASSERT(e->steps);
  for (size_t i = 0; i < x.n; i++) {
    rstep *s = &x.st[i];
    eg_expl_step *o = &e->steps[e->n++];
    o->rule = g->ex->names[s->name];
    o->backward = s->backward;
    o->before = keep(e, term_str(g, sub_at(cur, s->path, s->plen)));
    o->after = keep(e, term_str(g, s->after));
    cur = replace_at(&x.a, cur, s->path, s->plen, s->after);
    char mark[300];
    snprintf(mark, sizeof mark, "(Rewrite%s %s", s->backward ? "<=" : "=>", o->rule);
    sbuf b2 = {0};
    print_term(g, cur, &b2, s->path, s->plen, mark);
    o->term = keep(e, b2.s);
    o->plain = keep(e, term_str(g, cur));
    sput(&text, o->term, strlen(o->term));
    sput(&text, "\n", 1);
  }
  e->text = keep(e, text.s ? text.s : strdup(""));
  afree(&x.a);
  free(x.memo);
  free(x.st);
  free(x.path);
  return e;
}

void eg_expl_free(eg_expl *e) {
  if (!e) return;
  for (size_t i = 0; i < e->nstrs; i++) free(e->strs[i]);
  free(e->strs);
  free(e->steps);
  free(e);
}

size_t eg_expl_nsteps(const eg_expl *e) { return e->n; }
const eg_expl_step *eg_expl_step_at(const eg_expl *e, size_t i) { return i < e->n ? &e->steps[i] : NULL; }
const char *eg_expl_start(const eg_expl *e) { return e->start; }
const char *eg_expl_text(const eg_expl *e) { return e->text; }

char *eg_id_term(eg_egraph *g, eg_id id) {
  if (!g->ex || id >= g->ex->nids) return NULL;
  arena a = {0};
  tn **memo = calloc(g->ex->nids, sizeof *memo);
  EG_ASSERT(memo);
  char *s = term_str(g, term_of(g->ex, &a, memo, id));
  afree(&a);
  free(memo);
  return s;
}
