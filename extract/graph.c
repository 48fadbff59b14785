/* graph.c - the generic e-graph the extractors read, its builder, and the
 * functions every extractor's result is judged by: ex_check (validity and
 * acyclicity), ex_dag_cost and ex_tree_cost.
 *
 * The frozen form is compressed-row: nodes grouped by class so a class's
 * nodes are one index range, children stored as class ids (not node ids)
 * because a choice is per class. Builders append in any order; finish sorts
 * once with a counting sort, so building is linear. */
#include "extract/ex_internal.h"
#include "util/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct ex_graph_build {
  uint32_t n_classes, cap_classes;
  uint32_t *class_name;
  uint32_t n_nodes, cap_nodes;
  uint32_t *nclass, *nname, *nchild_off; /* per input node */
  double *ncost;
  uint32_t n_child, cap_child;
  uint32_t *child;
  uint32_t n_roots, cap_roots;
  uint32_t *roots;
  size_t n_names, cap_names;
};

double ex_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

ex_status ex_fail(tl_error *d, ex_status st, const char *fmt, ...) {
  if (d) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    d->status = st == EX_ERR_NOMEM ? TL_OUT_OF_MEMORY : st == EX_ERR_SOLVER ? TL_BACKEND_FAILED : TL_BAD_INPUT;
  }
  return st;
}

/* Grows *p (elements of size sz) so that it holds at least need; false on OOM. */
static bool grow(void *p, uint32_t *cap, size_t need, size_t sz) {
  if (need <= *cap) return true;
  if (need > UINT32_MAX - 1) return false;
  size_t nc = *cap ? (size_t)*cap * 2 : 16;
  while (nc < need) nc *= 2;
  if (nc > UINT32_MAX - 1) nc = UINT32_MAX - 1;
  void *q = tl_xrealloc(*(void **)p, nc * sz);
  if (!q) return false;
  *(void **)p = q;
  *cap = (uint32_t)nc;
  return true;
}

ex_graph *ex_graph_new(void) {
  ex_graph *g = tl_xcalloc(1, sizeof *g);
  if (!g) return NULL;
  g->b = tl_xcalloc(1, sizeof *g->b);
  if (!g->b) {
    tl_free(g);
    return NULL;
  }
  return g;
}

/* Copies name into the arena; returns its offset, EX_NONE for NULL, and
 * EX_NONE - 1 on OOM. */
static uint32_t intern(ex_graph *g, const char *name) {
  if (!name) return EX_NONE;
  struct ex_graph_build *b = g->b;
  size_t len = strlen(name) + 1;
  if (b->n_names + len >= EX_NONE - 1) return EX_NONE - 1;
  if (b->n_names + len > b->cap_names) {
    size_t nc = b->cap_names ? b->cap_names * 2 : 4096;
    while (nc < b->n_names + len) nc *= 2;
    char *q = tl_xrealloc(g->names, nc);
    if (!q) return EX_NONE - 1;
    g->names = q;
    b->cap_names = nc;
  }
  memcpy(g->names + b->n_names, name, len);
  uint32_t off = (uint32_t)b->n_names;
  b->n_names += len;
  return off;
}

uint32_t ex_graph_add_class(ex_graph *g, const char *name) {
  struct ex_graph_build *b = g->b;
  if (!b || !grow(&b->class_name, &b->cap_classes, (size_t)b->n_classes + 1, sizeof(uint32_t))) return EX_NONE;
  uint32_t off = intern(g, name);
  if (off == EX_NONE - 1) return EX_NONE;
  b->class_name[b->n_classes] = off;
  return b->n_classes++;
}

uint32_t ex_graph_add_node(ex_graph *g, uint32_t cls, double cost, const uint32_t *children, uint32_t n,
                           const char *name) {
  struct ex_graph_build *b = g->b;
  if (!b || cls >= b->n_classes) return EX_NONE;
  if (b->n_nodes + 1 >= b->cap_nodes) {
    /* The per-node arrays share one capacity; nchild_off needs one extra slot. */
    if (b->cap_nodes > UINT32_MAX / 4) return EX_NONE;
    uint32_t nc = b->cap_nodes ? b->cap_nodes * 2 : 64;
    uint32_t *a1 = tl_xrealloc(b->nclass, (size_t)nc * sizeof *a1);
    if (a1) b->nclass = a1;
    uint32_t *a2 = tl_xrealloc(b->nname, (size_t)nc * sizeof *a2);
    if (a2) b->nname = a2;
    uint32_t *a3 = tl_xrealloc(b->nchild_off, (size_t)nc * sizeof *a3);
    if (a3) b->nchild_off = a3;
    double *a4 = tl_xrealloc(b->ncost, (size_t)nc * sizeof *a4);
    if (a4) b->ncost = a4;
    if (!a1 || !a2 || !a3 || !a4) return EX_NONE;
    b->cap_nodes = nc;
  }
  if (!grow(&b->child, &b->cap_child, (size_t)b->n_child + n, sizeof(uint32_t))) return EX_NONE;
  uint32_t off = intern(g, name);
  if (off == EX_NONE - 1) return EX_NONE;
  uint32_t id = b->n_nodes;
  b->nclass[id] = cls;
  b->ncost[id] = cost;
  b->nname[id] = off;
  b->nchild_off[id] = b->n_child;
  for (uint32_t i = 0; i < n; i++) {
    if (children[i] >= b->n_classes) return EX_NONE;
    b->child[b->n_child + i] = children[i];
  }
  b->n_child += n;
  b->nchild_off[id + 1] = b->n_child;
  b->n_nodes++;
  return id;
}

ex_status ex_graph_add_root(ex_graph *g, uint32_t cls) {
  struct ex_graph_build *b = g->b;
  if (!b || cls >= b->n_classes) return EX_ERR_SCHEMA;
  for (uint32_t i = 0; i < b->n_roots; i++)
    if (b->roots[i] == cls) return EX_OK;
  if (!grow(&b->roots, &b->cap_roots, (size_t)b->n_roots + 1, sizeof(uint32_t))) return EX_ERR_NOMEM;
  b->roots[b->n_roots++] = cls;
  return EX_OK;
}

static void build_free(struct ex_graph_build *b) {
  if (!b) return;
  tl_free(b->class_name);
  tl_free(b->nclass);
  tl_free(b->nname);
  tl_free(b->nchild_off);
  tl_free(b->ncost);
  tl_free(b->child);
  tl_free(b->roots);
  tl_free(b);
}

ex_status ex_graph_finish(ex_graph *g, tl_error *d) {
  struct ex_graph_build *b = g->b;
  if (!b) return EX_OK;
  uint32_t nc = b->n_classes, nn = b->n_nodes, ne = b->n_child;
  g->class_start = tl_xcalloc((size_t)nc + 1, sizeof(uint32_t));
  g->node_class = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  g->node_cost = tl_xmalloc(((size_t)nn + 1) * sizeof(double));
  g->child_start = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  g->child = tl_xmalloc(((size_t)ne + 1) * sizeof(uint32_t));
  g->node_name = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  g->node_input = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  if (!g->class_start || !g->node_class || !g->node_cost || !g->child_start || !g->child || !g->node_name ||
      !g->node_input)
    return ex_fail(d, EX_ERR_NOMEM, "out of memory building the e-graph");
  /* Counting sort of nodes by class, stable so input order survives inside a class. */
  for (uint32_t i = 0; i < nn; i++) g->class_start[b->nclass[i] + 1]++;
  for (uint32_t c = 0; c < nc; c++) g->class_start[c + 1] += g->class_start[c];
  uint32_t *fill = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  if (!fill) return ex_fail(d, EX_ERR_NOMEM, "out of memory building the e-graph");
  memcpy(fill, g->class_start, ((size_t)nc + 1) * sizeof(uint32_t));
  for (uint32_t i = 0; i < nn; i++) g->node_input[fill[b->nclass[i]]++] = i;
  tl_free(fill);
  uint32_t e = 0;
  g->has_negative = false;
  for (uint32_t n = 0; n < nn; n++) {
    uint32_t i = g->node_input[n];
    g->node_class[n] = b->nclass[i];
    g->node_cost[n] = b->ncost[i];
    g->node_name[n] = b->nname[i];
    if (b->ncost[i] < 0) g->has_negative = true;
    g->child_start[n] = e;
    for (uint32_t k = b->nchild_off[i]; k < b->nchild_off[i + 1]; k++) g->child[e++] = b->child[k];
  }
  g->child_start[nn] = e;
  g->n_classes = nc;
  g->n_nodes = nn;
  g->class_name = b->class_name;
  b->class_name = NULL;
  g->roots = b->roots;
  g->n_roots = b->n_roots;
  b->roots = NULL;
  build_free(b);
  g->b = NULL;

  char buf[32];
  if (g->n_roots == 0) return ex_fail(d, EX_ERR_SCHEMA, "the e-graph has no root e-class");
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (g->class_start[g->roots[r]] == g->class_start[g->roots[r] + 1])
      return ex_fail(d, EX_ERR_SCHEMA, "root e-class '%s' has no e-node",
                     ex_graph_class_name(g, g->roots[r], buf, sizeof buf));
  for (uint32_t k = 0; k < e; k++)
    if (g->class_start[g->child[k]] == g->class_start[g->child[k] + 1])
      return ex_fail(d, EX_ERR_SCHEMA, "a child e-class '%s' has no e-node",
                     ex_graph_class_name(g, g->child[k], buf, sizeof buf));
  return EX_OK;
}

void ex_graph_free(ex_graph *g) {
  if (!g) return;
  build_free(g->b);
  tl_free(g->class_start);
  tl_free(g->node_class);
  tl_free(g->node_cost);
  tl_free(g->child_start);
  tl_free(g->child);
  tl_free(g->roots);
  tl_free(g->names);
  tl_free(g->class_name);
  tl_free(g->node_name);
  tl_free(g->node_input);
  tl_free(g);
}

const char *ex_graph_class_name(const ex_graph *g, uint32_t c, char *buf, size_t len) {
  if (g->class_name && c < (g->b ? g->b->n_classes : g->n_classes) && g->class_name[c] != EX_NONE)
    return g->names + g->class_name[c];
  if (g->b && g->b->class_name && c < g->b->n_classes && g->b->class_name[c] != EX_NONE)
    return g->names + g->b->class_name[c];
  snprintf(buf, len, "%u", c);
  return buf;
}

const char *ex_graph_node_name(const ex_graph *g, uint32_t n, char *buf, size_t len) {
  if (g->node_name && n < g->n_nodes && g->node_name[n] != EX_NONE) return g->names + g->node_name[n];
  snprintf(buf, len, "%u", n);
  return buf;
}

/* ---- choices ---------------------------------------------------------------
 * All walks are iterative (explicit stacks): e-graphs from saturation can be
 * deep chains (constructed.json is a 4000-class chain), too deep for the C
 * stack under ASan. */

ex_status ex_check(const ex_graph *g, const uint32_t *choice, tl_error *d) {
  /* Colour DFS: 0 unseen, 1 on the stack, 2 done. A grey child is a cycle. */
  uint8_t *col = tl_xcalloc((size_t)g->n_classes + 1, 1);
  uint32_t *stk = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  uint32_t *pos = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  if (!col || !stk || !pos) {
    tl_free(col), tl_free(stk), tl_free(pos);
    return ex_fail(d, EX_ERR_NOMEM, "out of memory checking a choice");
  }
  char b1[32], b2[32];
  ex_status st = EX_OK;
  for (uint32_t r = 0; r < g->n_roots && st == EX_OK; r++) {
    uint32_t root = g->roots[r];
    if (col[root]) continue;
    uint32_t sp = 0;
    stk[sp++] = root;
    while (sp && st == EX_OK) {
      uint32_t c = stk[sp - 1];
      if (!col[c]) {
        uint32_t n = choice[c];
        if (n == EX_NONE) {
          st = ex_fail(d, EX_ERR_INVALID, "reachable e-class '%s' has no chosen e-node",
                       ex_graph_class_name(g, c, b1, sizeof b1));
          break;
        }
        if (n >= g->n_nodes || g->node_class[n] != c) {
          st = ex_fail(d, EX_ERR_INVALID, "e-class '%s' chose e-node %u of another e-class",
                       ex_graph_class_name(g, c, b1, sizeof b1), n);
          break;
        }
        col[c] = 1;
        pos[c] = g->child_start[n];
      }
      uint32_t n = choice[c];
      if (pos[c] < g->child_start[n + 1]) {
        uint32_t k = g->child[pos[c]++];
        if (col[k] == 1)
          st = ex_fail(d, EX_ERR_INVALID, "the choice has a cycle through e-class '%s' (from '%s')",
                       ex_graph_class_name(g, k, b1, sizeof b1), ex_graph_class_name(g, c, b2, sizeof b2));
        else if (col[k] == 0)
          stk[sp++] = k;
      } else {
        col[c] = 2;
        sp--;
      }
    }
  }
  tl_free(col), tl_free(stk), tl_free(pos);
  return st;
}

void ex_trim(const ex_graph *g, uint32_t *choice) {
  uint8_t *seen = tl_xcalloc((size_t)g->n_classes + 1, 1);
  uint32_t *stk = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  if (!seen || !stk) {
    /* Trimming is cosmetic (unreachable choices cost nothing): skip on OOM. */
    tl_free(seen), tl_free(stk);
    return;
  }
  uint32_t sp = 0;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (!seen[g->roots[r]]) seen[g->roots[r]] = 1, stk[sp++] = g->roots[r];
  while (sp) {
    uint32_t c = stk[--sp], n = choice[c];
    if (n == EX_NONE) continue;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
      if (!seen[g->child[k]]) seen[g->child[k]] = 1, stk[sp++] = g->child[k];
  }
  for (uint32_t c = 0; c < g->n_classes; c++)
    if (!seen[c]) choice[c] = EX_NONE;
  tl_free(seen), tl_free(stk);
}

double ex_dag_cost(const ex_graph *g, const uint32_t *choice) {
  uint8_t *seen = tl_xcalloc((size_t)g->n_classes + 1, 1);
  uint32_t *stk = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  double sum = 0;
  if (!seen || !stk) {
    tl_free(seen), tl_free(stk);
    return NAN;
  }
  uint32_t sp = 0;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (!seen[g->roots[r]]) seen[g->roots[r]] = 1, stk[sp++] = g->roots[r];
  while (sp) {
    uint32_t c = stk[--sp], n = choice[c];
    sum += g->node_cost[n];
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
      if (!seen[g->child[k]]) seen[g->child[k]] = 1, stk[sp++] = g->child[k];
  }
  tl_free(seen), tl_free(stk);
  return sum;
}

double ex_tree_cost(const ex_graph *g, const uint32_t *choice) {
  /* Post-order memo: tc[c] = cost(choice[c]) + sum of tc over its children,
   * counting a repeated child once per occurrence. */
  double *tc = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(double));
  uint8_t *st = tl_xcalloc((size_t)g->n_classes + 1, 1);
  /* A class may be pushed once per parent edge before it is expanded. */
  uint32_t *stk = tl_xmalloc(((size_t)g->child_start[g->n_nodes] + 2) * sizeof(uint32_t));
  double sum = 0;
  if (!tc || !st || !stk) {
    tl_free(tc), tl_free(st), tl_free(stk);
    return NAN;
  }
  for (uint32_t r = 0; r < g->n_roots; r++) {
    uint32_t sp = 0;
    if (!st[g->roots[r]]) stk[sp++] = g->roots[r];
    while (sp) {
      uint32_t c = stk[sp - 1], n = choice[c];
      if (st[c] == 0) {
        st[c] = 1;
        for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
          if (!st[g->child[k]]) stk[sp++] = g->child[k];
        continue;
      }
      sp--;
      if (st[c] == 2) continue;
      double s = g->node_cost[n];
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) s += tc[g->child[k]];
      tc[c] = s;
      st[c] = 2;
    }
    sum += tc[g->roots[r]];
  }
  tl_free(tc), tl_free(st), tl_free(stk);
  return sum;
}

/* ---- heap ------------------------------------------------------------------ */

bool ex_heap_push(ex_heap *h, double key, uint32_t id) {
  if (h->n == h->cap) {
    uint32_t nc = h->cap ? h->cap * 2 : 64;
    double *k = tl_xrealloc(h->key, (size_t)nc * sizeof *k);
    if (!k) return false;
    h->key = k;
    uint32_t *i = tl_xrealloc(h->id, (size_t)nc * sizeof *i);
    if (!i) return false;
    h->id = i;
    h->cap = nc;
  }
  uint32_t j = h->n++;
  while (j) {
    uint32_t p = (j - 1) / 2;
    if (h->key[p] <= key) break;
    h->key[j] = h->key[p], h->id[j] = h->id[p];
    j = p;
  }
  h->key[j] = key, h->id[j] = id;
  return true;
}

bool ex_heap_pop(ex_heap *h, double *key, uint32_t *id) {
  if (!h->n) return false;
  *key = h->key[0], *id = h->id[0];
  double k = h->key[--h->n];
  uint32_t v = h->id[h->n], j = 0;
  for (;;) {
    uint32_t l = 2 * j + 1;
    if (l >= h->n) break;
    if (l + 1 < h->n && h->key[l + 1] < h->key[l]) l++;
    if (k <= h->key[l]) break;
    h->key[j] = h->key[l], h->id[j] = h->id[l];
    j = l;
  }
  h->key[j] = k, h->id[j] = v;
  return true;
}

void ex_heap_free(ex_heap *h) {
  tl_free(h->key);
  tl_free(h->id);
  h->key = NULL, h->id = NULL, h->n = h->cap = 0;
}
