/* egraph.c - add, union, deferred rebuild, attribute interning, checker.
 *
 * The invariants (egg, POPL 2021, section 3):
 *   congruence  two e-nodes with the same canonical form are in one class;
 *   hash-cons   the memo maps each canonical form to one stored node whose
 *               class is the class of that form;
 *   analysis    each class's data is the merge of make() over its nodes.
 * eg_union breaks them cheaply (one union-find link, a worklist push);
 * eg_rebuild restores them once for a whole batch of unions. Deferring is
 * what makes equality saturation fast: a batch of k unions touching the same
 * parents re-canonicalises each parent once instead of k times (egg 3.1).
 *
 * Nodes are stored once and canonicalised in place: when a child class is
 * absorbed, each parent node's memo entry is removed, its children rewritten
 * to roots, and it is re-inserted; if its new form is already present, the
 * two classes are congruent and are merged (a union that may cascade). */
#include "egraph/internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static const eg_reason why_user = {EG_WHY_USER, "user", false};
static const eg_reason why_congr = {EG_WHY_CONGRUENCE, "congruence", false};

/* ---- hashing and the memo ---------------------------------------------- */

static inline uint64_t node_hash(const eg_egraph *g, uint32_t op, uint32_t attr,
                                 const uint32_t *kids, uint32_t n) {
  uint64_t s = g->p.seed ^
               ((((uint64_t)op << 48) ^ ((uint64_t)n << 32) ^ attr) *
                0x9E3779B97F4A7C15ull);
  return XXH3_64bits_withSeed(n ? (const void *)kids : "", (size_t)n * 4, s);
}

static inline bool node_is(const eg_egraph *g, const eg_node *nd, uint32_t op,
                           uint32_t attr, const uint32_t *kids, uint32_t n) {
  return nd->op == op && nd->n == n && nd->attr == attr &&
         (n == 0 || memcmp(g->pool + nd->kids, kids, (size_t)n * 4) == 0);
}

static inline bool is_dead(const eg_egraph *g, uint32_t nid) {
  return g->nodes[nid].cls == EG_NONE;
}

static uint32_t memo_find(const eg_egraph *g, uint64_t h, uint32_t op,
                          uint32_t attr, const uint32_t *kids, uint32_t n) {
  uint32_t mask = g->memocap - 1, tag = (uint32_t)h, i = tag & mask;
  for (;;) {
    uint64_t e = g->memo[i];
    if (!e) return EG_NONE;
    if ((uint32_t)(e >> 32) == tag) {
      uint32_t nid = (uint32_t)e - 1;
      if (node_is(g, &g->nodes[nid], op, attr, kids, n)) return nid;
    }
    i = (i + 1) & mask;
  }
}

static void memo_put(uint64_t *t, uint32_t mask, uint64_t e) {
  uint32_t i = (uint32_t)(e >> 32) & mask;
  while (t[i]) i = (i + 1) & mask;
  t[i] = e;
}

/* Load factor at most 5/8: linear probing stays short (about 1.8 probes for
 * a hit) while an entry costs 8 bytes, i.e. 13-26 bytes per node stored. */
static void memo_insert(eg_egraph *g, uint64_t h, uint32_t nid) {
  if ((uint64_t)(g->memon + 1) * 8 > (uint64_t)g->memocap * 5) {
    uint32_t nc = g->memocap * 2;
    uint64_t *t = calloc(nc, sizeof *t);
    EG_ASSERT(t != NULL);
    for (uint32_t i = 0; i < g->memocap; i++)
      if (g->memo[i]) memo_put(t, nc - 1, g->memo[i]);
    free(g->memo);
    g->bytes += (size_t)(nc - g->memocap) * sizeof *t;
    if (g->bytes > g->peak) g->peak = g->bytes;
    g->memo = t;
    g->memocap = nc;
  }
  memo_put(g->memo, g->memocap - 1, ((uint64_t)(uint32_t)h << 32) | (nid + 1));
  g->memon++;
}

/* Removes the entry of node nid (if it is the holder of its form), closing
 * the gap by backward shifting so no tombstones accumulate. */
static void memo_remove(eg_egraph *g, uint64_t h, uint32_t nid) {
  uint32_t mask = g->memocap - 1, i = (uint32_t)h & mask;
  for (;;) {
    uint64_t e = g->memo[i];
    if (!e) return;
    if ((uint32_t)e == nid + 1) break;
    i = (i + 1) & mask;
  }
  g->memo[i] = 0;
  g->memon--;
  for (uint32_t j = (i + 1) & mask; g->memo[j]; j = (j + 1) & mask) {
    uint32_t k = (uint32_t)(g->memo[j] >> 32) & mask;
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      g->memo[i] = g->memo[j];
      g->memo[j] = 0;
      i = j;
    }
  }
}

/* ---- attributes ----------------------------------------------------------- */

static uint64_t attr_hash(const eg_egraph *g, const void *b, size_t n) {
  return XXH3_64bits_withSeed(n ? b : "", n, g->p.seed ^ 0xA77Bu);
}

static void atab_put(uint32_t *t, uint32_t mask, uint64_t h, uint32_t id) {
  uint32_t i = (uint32_t)h & mask;
  while (t[i]) i = (i + 1) & mask;
  t[i] = id + 1;
}

uint32_t eg_attr_intern(eg_egraph *g, const void *bytes, size_t n) {
  EG_ASSERT(n <= EG_ATTR_MAX);
  uint64_t h = attr_hash(g, bytes, n);
  uint32_t mask = g->atabcap - 1;
  for (uint32_t i = (uint32_t)h & mask; g->atab[i]; i = (i + 1) & mask) {
    uint32_t id = g->atab[i] - 1;
    uint32_t len = g->aoff[id + 1] - g->aoff[id];
    if (len == n && (n == 0 || !memcmp(g->ablob + g->aoff[id], bytes, n)))
      return id;
  }
  uint32_t id = g->nattrs++;
  EG_GROW(g, g->aoff, g->capattrs, (uint64_t)g->nattrs + 1);
  EG_GROW(g, g->ablob, g->capablob, (uint64_t)g->nablob + n);
  if (n) memcpy(g->ablob + g->nablob, bytes, n);
  g->nablob += (uint32_t)n;
  g->aoff[id + 1] = g->nablob;
  if ((uint64_t)g->nattrs * 2 > g->atabcap) {
    uint32_t nc = g->atabcap * 2;
    uint32_t *t = calloc(nc, sizeof *t);
    EG_ASSERT(t != NULL);
    for (uint32_t a = 0; a < g->nattrs; a++)
      atab_put(t, nc - 1,
               attr_hash(g, g->ablob + g->aoff[a], g->aoff[a + 1] - g->aoff[a]), a);
    free(g->atab);
    g->bytes += (size_t)(nc - g->atabcap) * sizeof *t;
    g->atab = t;
    g->atabcap = nc;
  } else {
    atab_put(g->atab, g->atabcap - 1, h, id);
  }
  return id;
}

const uint8_t *eg_attr_bytes(const eg_egraph *g, uint32_t id, size_t *n) {
  EG_ASSERT(id < g->nattrs);
  if (n) *n = g->aoff[id + 1] - g->aoff[id];
  return g->ablob + g->aoff[id];
}

/* ---- lifetime ------------------------------------------------------------- */

eg_egraph *eg_new(eg_params p) {
  if (!p.lang) return NULL;
  eg_egraph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->p = p;
  g->lang = *p.lang;
  if (p.analysis) {
    g->an = *p.analysis;
    g->has_an = true;
    g->dsize = p.analysis->data_size;
  }
  g->memocap = 1024;
  g->memo = calloc(g->memocap, sizeof *g->memo);
  g->atabcap = 64;
  g->atab = calloc(g->atabcap, sizeof *g->atab);
  g->byop = calloc((size_t)g->lang.nops, sizeof *g->byop);
  if (!g->memo || !g->atab || !g->byop) {
    eg_free(g);
    return NULL;
  }
  g->bytes = sizeof *g + g->memocap * sizeof *g->memo +
             g->atabcap * sizeof *g->atab + (size_t)g->lang.nops * sizeof *g->byop;
  g->peak = g->bytes;
  g->clean = true;
  g->byop_stale = true;
  EG_GROW(g, g->aoff, g->capattrs, 2);
  g->aoff[0] = 0;
  (void)eg_attr_intern(g, "", 0); /* id 0 = EG_ATTR_NONE */
  if (p.explain) g->ex = eg_ex_new();
  return g;
}

void eg_free(eg_egraph *g) {
  if (!g) return;
  for (uint32_t i = 0; i < g->nids; i++) {
    free(g->cls[i].nodes);
    free(g->cls[i].parents);
  }
  if (g->byop)
    for (int i = 0; i < g->lang.nops; i++) free(g->byop[i].a);
  free(g->byop);
  free(g->uf); free(g->flags); free(g->cls); free(g->data);
  free(g->nodes); free(g->pool); free(g->memo);
  free(g->ablob); free(g->aoff); free(g->atab);
  free(g->pending.a); free(g->apending.a); free(g->dirty.a); free(g->kbuf.a);
  free(g->roots.a); free(g->sortbuf.a); free(g->dtmp);
  free(g->refusals);
  eg_ex_free(g->ex);
  free(g);
}

const eg_lang *eg_lang_of(const eg_egraph *g) { return &g->lang; }

/* ---- small helpers -------------------------------------------------------- */

eg_id eg_find(eg_egraph *g, eg_id id) {
  EG_ASSERT(id < g->nids);
  return eg_uf_find(g->uf, id);
}

static inline void mark_dirty(eg_egraph *g, uint32_t r) {
  if (!(g->flags[r] & EG_F_DIRTY)) {
    g->flags[r] |= EG_F_DIRTY;
    eg_vec_push(g, &g->dirty, r);
  }
  g->byop_stale = true;
}

void *eg_data(eg_egraph *g, eg_id id) {
  return g->data + (size_t)eg_uf_find(g->uf, id) * g->dsize;
}

static void list_push(eg_egraph *g, uint32_t **a, uint32_t *n, uint32_t *cap,
                      uint32_t x) {
  if (*n == *cap) eg_grow_(g, (void **)a, cap, sizeof **a, (uint64_t)*n + 1);
  (*a)[(*n)++] = x;
}

static void list_free(eg_egraph *g, uint32_t **a, uint32_t *n, uint32_t *cap) {
  free(*a);
  g->bytes -= (size_t)*cap * sizeof **a;
  *a = NULL;
  *n = *cap = 0;
}

/* ---- add ------------------------------------------------------------------ */

eg_id eg_lookup(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n) {
  EG_GROW(g, g->kbuf.a, g->kbuf.cap, n);
  uint32_t *ck = g->kbuf.a;
  for (uint32_t i = 0; i < n; i++) ck[i] = eg_find(g, kids[i]);
  uint32_t h = memo_find(g, node_hash(g, (uint32_t)op, attr, ck, n),
                         (uint32_t)op, attr, ck, n);
  return h == EG_NONE ? EG_NONE : eg_uf_find(g->uf, g->nodes[h].cls);
}

eg_id eg_add(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n) {
  EG_ASSERT(op >= 0 && op < g->lang.nops && attr < g->nattrs);
  int ar = g->lang.arity[op];
  EG_ASSERT(ar < 0 ? n >= 1 : (uint32_t)ar == n);
  EG_ASSERT(n <= UINT16_MAX);
  EG_GROW(g, g->kbuf.a, g->kbuf.cap, n);
  uint32_t *ck = g->kbuf.a;
  for (uint32_t i = 0; i < n; i++) ck[i] = eg_find(g, kids[i]);
  uint64_t h = node_hash(g, (uint32_t)op, attr, ck, n);
  uint32_t holder = memo_find(g, h, (uint32_t)op, attr, ck, n);
  if (holder != EG_NONE) {
    if (g->ex) return eg_ex_add_existing(g, op, attr, kids, n, holder);
    return eg_uf_find(g->uf, g->nodes[holder].cls);
  }
  eg_id id = eg_uf_make(g);
  if (g->ex) eg_ex_new_id(g, id, op, attr, kids, n);
  /* kids may alias the pool: canonical copies are in kbuf from here on */
  EG_GROW(g, g->nodes, g->capnodes, (uint64_t)g->nnodes + 1);
  EG_GROW(g, g->pool, g->cappool, (uint64_t)g->npool + n);
  uint32_t nid = g->nnodes++;
  g->nodes[nid] = (eg_node){(uint16_t)op, (uint16_t)n, attr, g->npool, id};
  if (n) memcpy(g->pool + g->npool, ck, (size_t)n * 4);
  g->npool += n;
  eg_class *c = &g->cls[id];
  list_push(g, &c->nodes, &c->nn, &c->cn, nid);
  /* one parent entry per child occurrence, as egg does: (+ x x) is twice a
   * parent of x. Parent-list lengths decide which class stays the root, and
   * with it which parents are re-canonicalised, so keeping egg's counts
   * keeps the hash-cons growth (and so NodeLimit stops) comparable. */
  for (uint32_t i = 0; i < n; i++) {
    eg_class *kc = &g->cls[g->pool[g->nodes[nid].kids + i]];
    list_push(g, &kc->parents, &kc->np, &kc->cp, nid);
  }
  memo_insert(g, h, nid);
  g->memo_total++;
  g->nclasses++;
  g->nenodes++;
  mark_dirty(g, id);
  if (g->has_an) {
    g->an.make(g, op, attr, g->pool + g->nodes[nid].kids, n,
               g->data + (size_t)id * g->dsize, g->an.ctx);
    if (g->an.modify) g->an.modify(g, id, g->an.ctx);
  }
  return id;
}

/* ---- union ---------------------------------------------------------------- */

static void log_refusal(eg_egraph *g, const eg_reason *why, const char *msg) {
  g->nrefused++;
  if (g->nref > 4000) return;
  char line[640];
  int k = snprintf(line, sizeof line, "union refused (rule %s): %s\n",
                   why && why->name ? why->name : "?", msg);
  if (k < 0) return;
  size_t len = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
  if (g->nref + len + 1 > g->capref) {
    size_t nc = (g->nref + len + 1) * 2;
    char *r = realloc(g->refusals, nc);
    if (!r) return;
    g->refusals = r;
    g->capref = nc;
  }
  memcpy(g->refusals + g->nref, line, len + 1);
  g->nref += len;
}

static bool union_impl(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why) {
  uint32_t ra = eg_find(g, a), rb = eg_find(g, b);
  if (ra == rb) return false;
  if (g->has_an && g->an.refuse) {
    char msg[512] = "";
    if (g->an.refuse(g, g->data + (size_t)ra * g->dsize,
                     g->data + (size_t)rb * g->dsize, msg, sizeof msg, g->an.ctx)) {
      log_refusal(g, why, msg);
      return false;
    }
  }
  if (g->ex) eg_ex_union(g, a, b, why);
  if (g->cls[ra].np < g->cls[rb].np) {
    uint32_t t = ra;
    ra = rb;
    rb = t;
  }
  g->union_depth++;
  g->uf[rb] = ra;
  g->clean = false;
  g->nclasses--;
  eg_class *A = &g->cls[ra], *B = &g->cls[rb];
  for (uint32_t i = 0; i < B->np; i++)
    if (!is_dead(g, B->parents[i])) eg_vec_push(g, &g->pending, B->parents[i]);
  if (g->has_an) {
    unsigned m = g->an.merge(g, g->data + (size_t)ra * g->dsize,
                             g->data + (size_t)rb * g->dsize, g->an.ctx);
    if (m & EG_MERGE_TO)
      for (uint32_t i = 0; i < A->np; i++) eg_vec_push(g, &g->apending, A->parents[i]);
    if (m & EG_MERGE_FROM)
      for (uint32_t i = 0; i < B->np; i++) eg_vec_push(g, &g->apending, B->parents[i]);
  }
  /* concatenate into the larger buffer so appends stay amortised */
  if (A->cn < B->cn) {
    uint32_t *ta = A->nodes, tn = A->nn, tc = A->cn;
    A->nodes = B->nodes; A->nn = B->nn; A->cn = B->cn;
    B->nodes = ta; B->nn = tn; B->cn = tc;
  }
  EG_GROW(g, A->nodes, A->cn, (uint64_t)A->nn + B->nn);
  if (B->nn) memcpy(A->nodes + A->nn, B->nodes, (size_t)B->nn * 4);
  A->nn += B->nn;
  list_free(g, &B->nodes, &B->nn, &B->cn);
  if (A->cp < B->cp) {
    uint32_t *ta = A->parents, tn = A->np, tc = A->cp;
    A->parents = B->parents; A->np = B->np; A->cp = B->cp;
    B->parents = ta; B->np = tn; B->cp = tc;
  }
  EG_GROW(g, A->parents, A->cp, (uint64_t)A->np + B->np);
  if (B->np) memcpy(A->parents + A->np, B->parents, (size_t)B->np * 4);
  A->np += B->np;
  list_free(g, &B->parents, &B->np, &B->cp);
  mark_dirty(g, ra);
  if (g->has_an && g->an.modify) g->an.modify(g, ra, g->an.ctx);
  g->union_depth--;
  return true;
}

bool eg_union_why(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why) {
  bool r = union_impl(g, a, b, why ? why : &why_user);
  if (r && g->p.immediate_rebuild && !g->in_rebuild && !g->union_depth)
    eg_rebuild(g);
  return r;
}

bool eg_union(eg_egraph *g, eg_id a, eg_id b) { return eg_union_why(g, a, b, NULL); }

/* ---- rebuild -------------------------------------------------------------- */

int eg_node_cmp(const eg_egraph *g, uint32_t a, uint32_t b) {
  const eg_node *x = &g->nodes[a], *y = &g->nodes[b];
  if (x->op != y->op) return x->op < y->op ? -1 : 1;
  if (x->attr != y->attr) return x->attr < y->attr ? -1 : 1;
  if (x->n != y->n) return x->n < y->n ? -1 : 1;
  const uint32_t *p = g->pool + x->kids, *q = g->pool + y->kids;
  for (uint32_t i = 0; i < x->n; i++)
    if (p[i] != q[i]) return p[i] < q[i] ? -1 : 1;
  return 0;
}

/* Stable merge sort by content (ties keep node-id order: deterministic). */
static void sort_nodes(eg_egraph *g, uint32_t *a, uint32_t n) {
  if (n <= 16) {
    for (uint32_t i = 1; i < n; i++) {
      uint32_t x = a[i], j = i;
      while (j > 0 && eg_node_cmp(g, a[j - 1], x) > 0) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = x;
    }
    return;
  }
  uint32_t h = n / 2;
  sort_nodes(g, a, h);
  sort_nodes(g, a + h, n - h);
  if (eg_node_cmp(g, a[h - 1], a[h]) <= 0) return;
  EG_GROW(g, g->sortbuf.a, g->sortbuf.cap, n);
  uint32_t *t = g->sortbuf.a, i = 0, j = h, k = 0;
  while (i < h && j < n) t[k++] = eg_node_cmp(g, a[j], a[i]) < 0 ? a[j++] : a[i++];
  while (i < h) t[k++] = a[i++];
  while (j < n) t[k++] = a[j++];
  memcpy(a, t, (size_t)n * 4);
}

/* Sorts and deduplicates the node lists of the classes touched since the
 * last rebuild (egg re-sorts every class; only touched ones can change). */
static void fix_dirty(eg_egraph *g) {
  for (uint32_t d = 0; d < g->dirty.n; d++) {
    uint32_t c = g->dirty.a[d];
    g->flags[c] &= (uint8_t)~EG_F_DIRTY;
    if (g->uf[c] != c) continue;
    eg_class *C = &g->cls[c];
    if (C->nn < 2) continue;
    sort_nodes(g, C->nodes, C->nn);
    uint32_t w = 0;
    for (uint32_t i = 0; i < C->nn;) {
      uint32_t j = i + 1;
      while (j < C->nn && eg_node_cmp(g, C->nodes[i], C->nodes[j]) == 0) j++;
      uint32_t keep = C->nodes[i];
      if (j > i + 1) {
        /* keep the memo holder of the form; the rest are dead duplicates */
        const eg_node *nd = &g->nodes[keep];
        uint32_t hd = memo_find(g, node_hash(g, nd->op, nd->attr, g->pool + nd->kids, nd->n),
                                nd->op, nd->attr, g->pool + nd->kids, nd->n);
        for (uint32_t k = i; k < j; k++)
          if (C->nodes[k] == hd) keep = hd;
        for (uint32_t k = i; k < j; k++)
          if (C->nodes[k] != keep) g->nodes[C->nodes[k]].cls = EG_NONE;
        g->nenodes -= j - i - 1;
      }
      C->nodes[w++] = keep;
      i = j;
    }
    C->nn = w;
  }
  g->dirty.n = 0;
}

size_t eg_rebuild(eg_egraph *g) {
  if (g->in_rebuild) return 0;
  g->in_rebuild++;
  size_t unions = 0;
  if (g->dsize && !g->dtmp) {
    g->dtmp = malloc(g->dsize);
    EG_ASSERT(g->dtmp != NULL);
  }
  while (g->pending.n || g->apending.n) {
    while (g->pending.n) {
      uint32_t nid = g->pending.a[--g->pending.n];
      if (is_dead(g, nid)) continue;
      eg_node nd = g->nodes[nid];
      uint32_t *k = g->pool + nd.kids;
      bool changed = false;
      for (uint32_t i = 0; i < nd.n && !changed; i++) changed = g->uf[k[i]] != k[i];
      if (!changed) continue;
      memo_remove(g, node_hash(g, nd.op, nd.attr, k, nd.n), nid);
      for (uint32_t i = 0; i < nd.n; i++) k[i] = eg_uf_find(g->uf, k[i]);
      uint64_t h = node_hash(g, nd.op, nd.attr, k, nd.n);
      uint32_t holder = memo_find(g, h, nd.op, nd.attr, k, nd.n);
      if (holder != EG_NONE) {
        unions += union_impl(g, g->nodes[holder].cls, nd.cls, &why_congr);
      } else {
        memo_insert(g, h, nid);
        g->memo_total++;
      }
      mark_dirty(g, eg_uf_find(g->uf, nd.cls));
    }
    while (g->apending.n) {
      uint32_t nid = g->apending.a[--g->apending.n];
      if (is_dead(g, nid)) continue;
      eg_node nd = g->nodes[nid];
      uint32_t c = eg_uf_find(g->uf, nd.cls);
      g->an.make(g, nd.op, nd.attr, g->pool + nd.kids, nd.n, g->dtmp, g->an.ctx);
      unsigned m = g->an.merge(g, g->data + (size_t)c * g->dsize, g->dtmp, g->an.ctx);
      if (m & EG_MERGE_TO) {
        for (uint32_t i = 0; i < g->cls[c].np; i++)
          eg_vec_push(g, &g->apending, g->cls[c].parents[i]);
        if (g->an.modify) g->an.modify(g, c, g->an.ctx);
      }
    }
  }
  fix_dirty(g);
  g->clean = true;
  g->in_rebuild--;
  if (g->p.check) {
    char err[512];
    if (!eg_check(g, err, sizeof err)) {
      fprintf(stderr, "eg_check after rebuild: %s\n", err);
      abort();
    }
  }
  return unions;
}

bool eg_is_clean(const eg_egraph *g) { return g->clean && !g->pending.n; }

/* ---- queries -------------------------------------------------------------- */

size_t eg_nclasses(const eg_egraph *g) { return g->nclasses; }
size_t eg_nenodes(const eg_egraph *g) { return g->nenodes; }
size_t eg_memo_size(const eg_egraph *g) { return g->memon; }
size_t eg_total_size(const eg_egraph *g) { return (size_t)g->memo_total; }
size_t eg_bytes(const eg_egraph *g) { return g->bytes + eg_ex_bytes(g->ex); }
size_t eg_peak_bytes(const eg_egraph *g) { return g->peak + eg_ex_bytes(g->ex); }
size_t eg_nids(const eg_egraph *g) { return g->nids; }
size_t eg_analysis_bytes(const eg_egraph *g) { return (size_t)g->capids * g->dsize; }
size_t eg_nrefused(const eg_egraph *g) { return g->nrefused; }
const char *eg_refusals(const eg_egraph *g) { return g->refusals ? g->refusals : ""; }

const eg_node *eg_get_node(const eg_egraph *g, uint32_t nid) {
  EG_ASSERT(nid < g->nnodes);
  return &g->nodes[nid];
}
const eg_id *eg_node_kids(const eg_egraph *g, const eg_node *nd) { return g->pool + nd->kids; }

const uint32_t *eg_class_nodes(const eg_egraph *g, eg_id cls, uint32_t *n) {
  EG_ASSERT(cls < g->nids);
  *n = g->cls[cls].nn;
  return g->cls[cls].nodes;
}

void eg_class_retain(eg_egraph *g, eg_id cls,
                     bool (*keep)(const eg_egraph *, const eg_node *, void *), void *ctx) {
  uint32_t r = eg_find(g, cls);
  eg_class *C = &g->cls[r];
  uint32_t w = 0;
  for (uint32_t i = 0; i < C->nn; i++)
    if (keep(g, &g->nodes[C->nodes[i]], ctx)) C->nodes[w++] = C->nodes[i];
  g->nenodes -= C->nn - w;
  if (w != C->nn) g->byop_stale = true;
  C->nn = w;
}

/* The op index (egg's classes_by_op), rebuilt from the class lists when any
 * class changed since the last query: O(e-nodes), once per iteration. */
static void build_byop(eg_egraph *g) {
  fix_dirty(g);
  for (int o = 0; o < g->lang.nops; o++) g->byop[o].n = 0;
  g->roots.n = 0;
  for (uint32_t c = 0; c < g->nids; c++) {
    if (g->uf[c] != c) continue;
    const eg_class *C = &g->cls[c];
    if (!C->nn) continue; /* emptied by retain: nothing to match */
    eg_vec_push(g, &g->roots, c);
    int prev = -1;
    for (uint32_t i = 0; i < C->nn; i++) {
      int op = g->nodes[C->nodes[i]].op;
      if (op != prev) eg_vec_push(g, &g->byop[op], c);
      prev = op;
    }
  }
  g->byop_stale = false;
}

const eg_id *eg_classes_with_op(eg_egraph *g, int op, uint32_t *n) {
  if (g->byop_stale || g->dirty.n) build_byop(g);
  if (op < 0) {
    *n = g->roots.n;
    return g->roots.a;
  }
  EG_ASSERT(op < g->lang.nops);
  *n = g->byop[op].n;
  return g->byop[op].a;
}

/* ---- the invariant checker ------------------------------------------------ */

static int cmp_pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return *x < *y ? -1 : *x > *y;
}

#define FAIL(...)                          \
  do {                                     \
    snprintf(err, errsz, __VA_ARGS__);     \
    ok = false;                            \
    goto out;                              \
  } while (0)

bool eg_check(eg_egraph *g, char *err, size_t errsz) {
  bool ok = true;
  uint64_t *have = NULL, *want = NULL;
  size_t nh = 0, nw = 0, ch = 0, cw = 0, classes = 0, enodes = 0;
  void *tmp = g->dsize ? malloc(g->dsize) : NULL;
  if (!g->clean || g->pending.n || g->apending.n) FAIL("e-graph not rebuilt");
  for (uint32_t c = 0; c < g->nids; c++) {
    if (g->uf[c] != c) {
      if (g->cls[c].nn || g->cls[c].np) FAIL("non-root %u owns lists", c);
      continue;
    }
    classes++;
    const eg_class *C = &g->cls[c];
    enodes += C->nn;
    for (uint32_t i = 0; i < C->nn; i++) {
      uint32_t nid = C->nodes[i];
      const eg_node *nd = &g->nodes[nid];
      if (is_dead(g, nid)) FAIL("dead node %u in class %u", nid, c);
      if (eg_uf_find(g->uf, nd->cls) != c) FAIL("node %u listed in class %u but belongs to %u", nid, c, eg_uf_find(g->uf, nd->cls));
      if (i && eg_node_cmp(g, C->nodes[i - 1], nid) >= 0) FAIL("class %u nodes unsorted or duplicated", c);
      const uint32_t *k = g->pool + nd->kids;
      for (uint32_t j = 0; j < nd->n; j++) {
        if (g->uf[k[j]] != k[j]) FAIL("node %u has non-canonical child %u", nid, k[j]);
        if (nw == cw) {
          cw = cw ? cw * 2 : 256;
          want = realloc(want, cw * sizeof *want);
          EG_ASSERT(want);
        }
        want[nw++] = ((uint64_t)k[j] << 32) | nid;
      }
      uint32_t hd = memo_find(g, node_hash(g, nd->op, nd->attr, k, nd->n), nd->op, nd->attr, k, nd->n);
      if (hd == EG_NONE) FAIL("node %u of class %u missing from the hash-cons", nid, c);
      if (eg_uf_find(g->uf, g->nodes[hd].cls) != c)
        FAIL("congruence: node %u (class %u) and node %u (class %u) are equal",
             nid, c, hd, eg_uf_find(g->uf, g->nodes[hd].cls));
      if (g->has_an) {
        g->an.make(g, nd->op, nd->attr, k, nd->n, tmp, g->an.ctx);
        unsigned char *d = g->data + (size_t)c * g->dsize;
        unsigned char *save = malloc(g->dsize);
        EG_ASSERT(save);
        memcpy(save, d, g->dsize);
        unsigned m = g->an.merge(g, d, tmp, g->an.ctx);
        memcpy(d, save, g->dsize);
        free(save);
        if (m & EG_MERGE_TO) FAIL("analysis of class %u is not up to date with node %u", c, nid);
      }
    }
    for (uint32_t i = 0; i < C->np; i++) {
      uint32_t p = C->parents[i];
      if (is_dead(g, p)) continue;
      if (nh == ch) {
        ch = ch ? ch * 2 : 256;
        have = realloc(have, ch * sizeof *have);
        EG_ASSERT(have);
      }
      have[nh++] = ((uint64_t)c << 32) | p;
    }
  }
  if (classes != g->nclasses) FAIL("class count %zu, counted %zu", g->nclasses, classes);
  if (enodes != g->nenodes) FAIL("e-node count %zu, counted %zu", g->nenodes, enodes);
  size_t live = 0;
  for (uint32_t i = 0; i < g->memocap; i++) {
    uint64_t e = g->memo[i];
    if (!e) continue;
    live++;
    uint32_t nid = (uint32_t)e - 1;
    const eg_node *nd = &g->nodes[nid];
    if (is_dead(g, nid)) FAIL("dead node %u in the hash-cons", nid);
    const uint32_t *k = g->pool + nd->kids;
    for (uint32_t j = 0; j < nd->n; j++)
      if (g->uf[k[j]] != k[j]) FAIL("hash-cons key of node %u not canonical", nid);
    uint64_t h = node_hash(g, nd->op, nd->attr, k, nd->n);
    if ((uint32_t)(e >> 32) != (uint32_t)h) FAIL("hash-cons entry of node %u has a stale hash", nid);
    if (memo_find(g, h, nd->op, nd->attr, k, nd->n) != nid) FAIL("two hash-cons entries for the form of node %u", nid);
  }
  if (live != g->memon) FAIL("memo count %u, counted %zu", g->memon, live);
  if (nw) qsort(want, nw, sizeof *want, cmp_pair);
  if (nh) qsort(have, nh, sizeof *have, cmp_pair);
  for (size_t i = 0, j = 0; i < nw; i++) {
    while (j < nh && have[j] < want[i]) j++;
    if (j == nh || have[j] != want[i])
      FAIL("node %u missing from the parent list of class %u",
           (uint32_t)want[i], (uint32_t)(want[i] >> 32));
  }
out:
  free(have);
  free(want);
  free(tmp);
  return ok;
}

int eg_print_head(const eg_egraph *g, int op, uint32_t attr, char *buf, size_t size) {
  if (g->lang.print_head) {
    size_t n;
    const uint8_t *b = eg_attr_bytes(g, attr, &n);
    return g->lang.print_head(&g->lang, op, b, n, buf, size);
  }
  return snprintf(buf, size, "%s", g->lang.op_names[op]);
}
