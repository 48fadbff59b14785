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
#include "util/alloc.h"
#include "util/util.h"
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
  struct eg_explain *ex = tl_xcalloc(1, sizeof *ex);
  EG_ASSERT(ex);
  ex->tabcap = 256;
  ex->tab = tl_xcalloc(ex->tabcap, sizeof *ex->tab);
  EG_ASSERT(ex->tab);
  return ex;
}

void eg_ex_free(struct eg_explain *ex) {
  if (!ex) return;
  tl_free(ex->off); tl_free(ex->parent); tl_free(ex->just); tl_free(ex->pool); tl_free(ex->tab);
  for (uint32_t i = 0; i < ex->nnames; i++) tl_free(ex->names[i]);
  tl_free(ex->names);
  tl_free(ex);
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
  ex->names = tl_xrealloc(ex->names, sizeof *ex->names * (ex->nnames + 1));
  EG_ASSERT(ex->names);
  ex->names[ex->nnames] = tl_xstrdup(s);
  EG_ASSERT(ex->names[ex->nnames]);
  return ex->nnames++;
}

void eg_ex_new_id(eg_egraph *g, eg_id id, int op, uint32_t attr, const eg_id *kids, uint32_t n) {
  struct eg_explain *ex = g->ex;
  EG_ASSERT(id == ex->nids);
  if (ex->nids == ex->capids) {
    ex->capids = ex->capids ? ex->capids * 2 : 64;
    ex->off = tl_xrealloc(ex->off, sizeof *ex->off * ex->capids);
    ex->parent = tl_xrealloc(ex->parent, sizeof *ex->parent * ex->capids);
    ex->just = tl_xrealloc(ex->just, sizeof *ex->just * ex->capids);
    EG_ASSERT(ex->off && ex->parent && ex->just);
  }
  if (ex->npool + 3 + n > ex->cappool) {
    ex->cappool = (ex->npool + 3 + n) * 2;
    ex->pool = tl_xrealloc(ex->pool, sizeof *ex->pool * ex->cappool);
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
    uint32_t *t = tl_xcalloc(nc, sizeof *t);
    EG_ASSERT(t);
    for (uint32_t i = 0; i < ex->tabcap; i++)
      if (ex->tab[i]) {
        const uint32_t *x = exnode(ex, ex->tab[i] - 1);
        tab_put(t, nc - 1, exhash(x, x[2]), ex->tab[i] - 1);
      }
    tl_free(ex->tab);
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
  uint32_t wb[3 + 16], *w = n <= 16 ? wb : tl_xmalloc(sizeof *w * (3 + n));
  EG_ASSERT(w);
  w[0] = (uint32_t)op;
  w[1] = attr;
  w[2] = n;
  if (n) memcpy(w + 3, kids, (size_t)n * 4);
  uint32_t id = tab_find(ex, w, n);
  if (w != wb) tl_free(w);
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
    a->blocks = tl_xrealloc(a->blocks, sizeof *a->blocks * a->cap);
    EG_ASSERT(a->blocks);
  }
  void *p = tl_xmalloc(sz ? sz : 1);
  EG_ASSERT(p);
  a->blocks[a->n++] = p;
  return p;
}

static void afree(arena *a) {
  for (size_t i = 0; i < a->n; i++) tl_free(a->blocks[i]);
  tl_free(a->blocks);
}

/* A growable stack of u32 (the traversals below keep their own stacks:
 * terms and proofs are as deep as the program, 10^6 on a long chain). */
typedef struct ustack { uint32_t *a; size_t n, cap; } ustack;

static void upush(ustack *s, uint32_t x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->a = tl_xrealloc(s->a, sizeof *s->a * s->cap);
    EG_ASSERT(s->a);
  }
  s->a[s->n++] = x;
}

/* The original term of id, shared with memo (a DAG of tn), built bottom-up
 * from an explicit stack: an id is built once all its children are. */
static tn *term_of(const struct eg_explain *ex, arena *a, tn **memo, uint32_t id) {
  if (memo[id]) return memo[id];
  ustack st = {0};
  upush(&st, id);
  while (st.n) {
    uint32_t x = st.a[st.n - 1];
    if (memo[x]) {
      st.n--;
      continue;
    }
    const uint32_t *w = exnode(ex, x);
    bool ready = true;
    for (uint32_t i = 0; i < w[2]; i++)
      if (!memo[w[3 + i]]) {
        ready = false;
        upush(&st, w[3 + i]);
      }
    if (!ready) continue; /* children are older ids: no cycle, so this ends */
    w = exnode(ex, x);
    tn *t = amalloc(a, sizeof *t);
    t->op = w[0];
    t->attr = w[1];
    t->n = w[2];
    t->kids = amalloc(a, sizeof *t->kids * t->n);
    for (uint32_t i = 0; i < t->n; i++) t->kids[i] = memo[w[3 + i]];
    memo[x] = t;
    st.n--;
  }
  tl_free(st.a);
  return memo[id];
}

static void sputs(tl_buf *b, const char *s) { tl_buf_putn(b, s, strlen(s)); }

/* Bounds on the text of an explanation. A term is printed as a tree, so a
 * DAG with sharing prints exponentially long, and a 10^6-long chain prints
 * 10^6 levels deep; past EG_EXPL_TERM_BYTES an operand is written "...". A
 * marked term shows the path to the rewritten subterm, of which only the
 * EX_KEEP outermost and innermost levels when it is longer ("..." stands for
 * the levels left out). */
#define EX_KEEP 8

static bool hidden_level(int pd, int plen) { return plen > 2 * EX_KEEP && pd >= EX_KEEP && pd < plen - EX_KEEP; }

/* Prints t; with mark, the subterm at path (plen levels down) is wrapped in
 * "mark ...)". Iterative: frames hold the nodes still open. Past the byte
 * bound, one "..." stands for all the operands not written. */
static void print_term(const eg_egraph *g, const tn *t, tl_buf *b, const uint32_t *path, int plen, const char *mark) {
  typedef struct pframe {
    const tn *t;
    uint32_t k; /* next child */
    int pd;     /* depth on the path to the mark, -1 off it */
  } pframe;
  size_t start = b->len, sp = 0, cap = 16;
  pframe *st = tl_xmalloc(sizeof *st * cap);
  EG_ASSERT(st);
  const tn *cur = t;
  bool over = false; /* past the byte bound: what is off the path is cut */
  int pd = mark ? 0 : -1;
  if (!mark) plen = -2; /* no level is the marked one */
  for (;;) {
    /* open cur */
    bool hid = hidden_level(pd, plen);
    if (hid && pd == EX_KEEP) sputs(b, "... ");
    if (pd < 0 && b->len - start > EG_EXPL_TERM_BYTES) {
      sputs(b, "...");
      over = true;
    } else {
      if (pd == plen) {
        sputs(b, mark);
        sputs(b, " ");
      }
      if (!hid) {
        char head[600];
        int k = eg_print_head(g, (int)cur->op, cur->attr, head, sizeof head);
        if (k < 0) k = 0;
        if (k >= (int)sizeof head) k = (int)sizeof head - 1;
        if (cur->n) sputs(b, "(");
        tl_buf_putn(b, head, (size_t)k);
      }
      if (cur->n) {
        if (sp == cap) {
          st = tl_xrealloc(st, sizeof *st * (cap *= 2));
          EG_ASSERT(st);
        }
        st[sp++] = (pframe){cur, 0, pd};
      } else if (pd == plen) {
        sputs(b, ")");
      }
    }
    /* the next child to open, closing the finished frames */
    cur = NULL;
    while (sp && !cur) {
      pframe *f = &st[sp - 1];
      bool fh = hidden_level(f->pd, plen);
      if (f->k < f->t->n) {
        uint32_t i = f->k++;
        bool on = f->pd >= 0 && f->pd < plen && path[f->pd] == i;
        if ((fh || over) && !on) continue;
        if (!fh) sputs(b, " ");
        cur = f->t->kids[i];
        pd = on ? f->pd + 1 : -1;
        continue;
      }
      if (!fh) sputs(b, ")");
      if (f->pd == plen) sputs(b, ")");
      if (fh && f->pd == EX_KEEP) sputs(b, " ...");
      sp--;
    }
    if (!cur) break;
  }
  tl_free(st);
}

static char *term_str(const eg_egraph *g, const tn *t) {
  tl_buf b = {0};
  print_term(g, t, &b, NULL, -1, NULL);
  return b.s;
}

/* ---- explanations -------------------------------------------------------- */

typedef struct rstep {
  uint32_t *path;
  int plen;
  uint32_t name;
  bool backward;
  tn *before, *after;
} rstep;

struct eg_expl {
  eg_expl_step *steps;
  size_t n, cap;
  char *start, *text;
  char **strs;
  size_t nstrs, capstrs;
  bool truncated;
};

/* Work is bounded too: a flat explanation of a DAG can have exponentially
 * many steps (a shared subterm's proof repeats at each of its uses), and
 * each step costs its path's length. Expanding the proof costs one unit per
 * task and a step's path length per step (the paths kept are 4 bytes per
 * unit), and stops past EX_WORK units or EX_STEPS steps; writing the steps
 * stops once their text passes EX_TEXT bytes. Either way the explanation is
 * truncated: its steps are the proof's beginning. A one-step proof under a
 * 10^6-level path takes about 5 million units. */
#define EX_WORK ((size_t)1 << 25)
#define EX_STEPS ((size_t)1 << 17)
#define EX_TEXT ((size_t)1 << 24)

typedef struct xctx {
  eg_egraph *g;
  struct eg_explain *ex;
  arena a;
  tn **memo;
  rstep *st;
  size_t n, cap;
  uint32_t *path; /* current context path */
  int plen, pcap;
  size_t work;
  bool truncated;
} xctx;

static void push_step(xctx *x, uint32_t name, bool backward, tn *before, tn *after) {
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 16;
    x->st = tl_xrealloc(x->st, sizeof *x->st * x->cap);
    EG_ASSERT(x->st);
  }
  rstep *s = &x->st[x->n++];
  s->path = amalloc(&x->a, sizeof *s->path * (size_t)x->plen);
  if (x->plen) memcpy(s->path, x->path, sizeof *s->path * (size_t)x->plen);
  s->plen = x->plen;
  s->name = name;
  s->backward = backward;
  s->before = before;
  s->after = after;
  x->work += (size_t)x->plen;
}

static uint32_t depth_of(const struct eg_explain *ex, uint32_t x) {
  uint32_t d = 0;
  for (; ex->parent[x] != EG_NONE; x = ex->parent[x]) d++;
  return d;
}

/* The proof is expanded from an explicit stack of tasks (a congruence edge
 * of a chain nests one level per link): explain ids a = b; walk the forest
 * edge u -> v justified by just[j]; enter child i of the context path;
 * leave it. Tasks run in the order the recursive formulation would. */
enum { T_IDS, T_EDGE, T_ENTER, T_LEAVE };
typedef struct task { uint32_t kind, a, b, j; } task;
typedef struct tstack { task *a; size_t n, cap; } tstack;

static void tpush(tstack *s, task t) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->a = tl_xrealloc(s->a, sizeof *s->a * s->cap);
    EG_ASSERT(s->a);
  }
  s->a[s->n++] = t;
}

/* Pushes the edges of the forest path from a to b (through their lowest
 * common ancestor), last first, so that they pop in path order. */
static void push_path(const struct eg_explain *ex, tstack *s, uint32_t a, uint32_t b) {
  uint32_t da = depth_of(ex, a), db = depth_of(ex, b), p = a, q = b;
  while (da > db) { p = ex->parent[p]; da--; }
  while (db > da) { q = ex->parent[q]; db--; }
  while (p != q) { p = ex->parent[p]; q = ex->parent[q]; }
  EG_ASSERT(p != EG_NONE);
  uint32_t lca = p;
  /* from lca down to b, pushed first: b's upward path in its own order */
  for (uint32_t u = b; u != lca; u = ex->parent[u]) tpush(s, (task){T_EDGE, ex->parent[u], u, u});
  /* from a up to lca, to pop first: pushed in reverse */
  size_t mark = s->n;
  for (uint32_t u = a; u != lca; u = ex->parent[u]) tpush(s, (task){T_EDGE, u, ex->parent[u], u});
  for (size_t i = mark, j = s->n; i + 1 < j; i++, j--) {
    task t = s->a[i];
    s->a[i] = s->a[j - 1];
    s->a[j - 1] = t;
  }
}

static void explain_ids(xctx *x, uint32_t a, uint32_t b) {
  tstack s = {0};
  tpush(&s, (task){T_IDS, a, b, 0});
  while (s.n) {
    task t = s.a[--s.n];
    if (++x->work > EX_WORK || x->n >= EX_STEPS) {
      x->truncated = true;
      break;
    }
    switch (t.kind) {
    case T_IDS:
      if (t.a != t.b) push_path(x->ex, &s, t.a, t.b);
      break;
    case T_ENTER:
      if (x->plen == x->pcap) {
        x->pcap = x->pcap ? x->pcap * 2 : 16;
        x->path = tl_xrealloc(x->path, sizeof *x->path * (size_t)x->pcap);
        EG_ASSERT(x->path);
      }
      x->path[x->plen++] = t.a;
      break;
    case T_LEAVE:
      x->plen--;
      break;
    default: { /* T_EDGE: u = a, v = b, justified by just[j] */
      const ex_just *j = &x->ex->just[t.j];
      if (j->kind == EG_WHY_CONGRUENCE) {
        /* the children's proofs, child 0 first (congruence edges only use
         * older edges, so this terminates) */
        const uint32_t *wu = exnode(x->ex, t.a), *wv = exnode(x->ex, t.b);
        EG_ASSERT(wu[0] == wv[0] && wu[2] == wv[2]);
        for (uint32_t i = wu[2]; i-- > 0;) {
          if (wu[3 + i] == wv[3 + i]) continue;
          tpush(&s, (task){T_LEAVE, 0, 0, 0});
          tpush(&s, (task){T_IDS, wu[3 + i], wv[3 + i], 0});
          tpush(&s, (task){T_ENTER, i, 0, 0});
        }
        break;
      }
      bool forward = j->from == t.a;
      push_step(x, j->name, forward ? (bool)j->backward : !j->backward, term_of(x->ex, &x->a, x->memo, t.a),
                term_of(x->ex, &x->a, x->memo, t.b));
    }
    }
  }
  tl_free(s.a);
}

/* t with the subterm at path replaced by with (the nodes on the path are
 * copied; the rest is shared). */
static tn *replace_at(arena *a, const tn *t, const uint32_t *path, int plen, tn *with) {
  if (plen == 0) return with;
  tn *root = amalloc(a, sizeof *root), *c = root;
  *root = *t;
  for (int d = 0; d < plen; d++) {
    tn **kids = amalloc(a, sizeof *kids * c->n);
    memcpy(kids, c->kids, sizeof *kids * c->n);
    c->kids = kids;
    if (d + 1 == plen) {
      kids[path[d]] = with;
      break;
    }
    tn *k = amalloc(a, sizeof *k);
    *k = *kids[path[d]];
    kids[path[d]] = k;
    c = k;
  }
  return root;
}

static char *keep(eg_expl *e, char *s) {
  if (e->nstrs == e->capstrs) {
    e->capstrs = e->capstrs ? e->capstrs * 2 : 32;
    e->strs = tl_xrealloc(e->strs, sizeof *e->strs * e->capstrs);
    EG_ASSERT(e->strs);
  }
  e->strs[e->nstrs++] = s;
  return s;
}

eg_expl *eg_explain(eg_egraph *g, eg_id a, eg_id b) {
  if (!g->ex || a >= g->nids || b >= g->nids || eg_find(g, a) != eg_find(g, b)) return NULL;
  xctx x = {.g = g, .ex = g->ex, .memo = tl_xcalloc(g->ex->nids, sizeof(tn *))};
  EG_ASSERT(x.memo);
  explain_ids(&x, a, b);
  eg_expl *e = tl_xcalloc(1, sizeof *e);
  EG_ASSERT(e);
  e->truncated = x.truncated;
  tn *cur = term_of(g->ex, &x.a, x.memo, a);
  e->start = keep(e, term_str(g, cur));
  tl_buf text = {0};
  sputs(&text, e->start);
  sputs(&text, "\n");
  e->steps = tl_xcalloc(x.n ? x.n : 1, sizeof *e->steps);
  EG_ASSERT(e->steps);
  size_t bytes = 0;
  for (size_t i = 0; i < x.n; i++) {
    if (bytes > EX_TEXT) {
      e->truncated = true;
      break;
    }
    rstep *s = &x.st[i];
    eg_expl_step *o = &e->steps[e->n++];
    o->rule = g->ex->names[s->name];
    o->backward = s->backward;
    /* the subterm the step rewrites is its edge's start (each proof of
     * u = v at a path turns term(u) there into term(v)) */
    o->before = keep(e, term_str(g, s->before));
    o->after = keep(e, term_str(g, s->after));
    cur = replace_at(&x.a, cur, s->path, s->plen, s->after);
    char mark[300];
    snprintf(mark, sizeof mark, "(Rewrite%s %s", s->backward ? "<=" : "=>", o->rule);
    tl_buf b2 = {0};
    print_term(g, cur, &b2, s->path, s->plen, mark);
    o->term = keep(e, b2.s);
    o->plain = keep(e, term_str(g, cur));
    sputs(&text, o->term);
    sputs(&text, "\n");
    bytes += strlen(o->before) + strlen(o->after) + 2 * strlen(o->term);
  }
  if (e->truncated) {
    char note[160];
    snprintf(note, sizeof note, "... (explanation cut after %zu steps: longer than tlaloc prints)\n", e->n);
    sputs(&text, note);
  }
  e->text = keep(e, text.s ? text.s : tl_xstrdup(""));
  afree(&x.a);
  tl_free(x.memo);
  tl_free(x.st);
  tl_free(x.path);
  return e;
}

void eg_expl_free(eg_expl *e) {
  if (!e) return;
  for (size_t i = 0; i < e->nstrs; i++) tl_free(e->strs[i]);
  tl_free(e->strs);
  tl_free(e->steps);
  tl_free(e);
}

size_t eg_expl_nsteps(const eg_expl *e) { return e->n; }
bool eg_expl_truncated(const eg_expl *e) { return e->truncated; }
const eg_expl_step *eg_expl_step_at(const eg_expl *e, size_t i) { return i < e->n ? &e->steps[i] : NULL; }
const char *eg_expl_start(const eg_expl *e) { return e->start; }
const char *eg_expl_text(const eg_expl *e) { return e->text; }

char *eg_id_term(eg_egraph *g, eg_id id) {
  if (!g->ex || id >= g->ex->nids) return NULL;
  arena a = {0};
  tn **memo = tl_xcalloc(g->ex->nids, sizeof *memo);
  EG_ASSERT(memo);
  char *s = term_str(g, term_of(g->ex, &a, memo, id));
  afree(&a);
  tl_free(memo);
  return s;
}
