/* internal.h - private layout of the e-graph, shared by egraph/ only.
 *
 * Storage (all arenas grow by realloc, everything is an index):
 *   nodes[]   every e-node ever stored, 16 bytes; kids in a flat u32 pool.
 *   memo      open addressing, linear probing, u64 entries (hash tag << 32 |
 *             node id + 1); the key is the node's content in nodes[], so a
 *             node's children are rewritten in place only after its memo
 *             entry is removed (rebuild does that).
 *   uf[]      union-find parent per id; cls[] node list + parent list per id
 *             (non-empty only at roots); data[] analysis blob per id.
 */
#ifndef TL_EGRAPH_INTERNAL_H
#define TL_EGRAPH_INTERNAL_H

#include "egraph/egraph.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Always-on invariant check (STYLE: broken invariants are asserts). */
#define EG_ASSERT(c)                                                        \
  do {                                                                      \
    if (!(c)) {                                                             \
      fprintf(stderr, "%s:%d: egraph invariant failed: %s\n", __FILE__,     \
              __LINE__, #c);                                                \
      abort();                                                              \
    }                                                                       \
  } while (0)

typedef struct eg_vec { uint32_t *a; uint32_t n, cap; } eg_vec;

typedef struct eg_class {
  uint32_t *nodes; uint32_t nn, cn;   /* node ids, sorted by content at rest */
  uint32_t *parents; uint32_t np, cp; /* node ids having this class as a child */
} eg_class;

enum { EG_F_DIRTY = 1 };          /* per-id flag: node list to sort/dedup */
/* A node whose cls is EG_NONE is dead: a duplicate dropped from its class
 * list by rebuild, in no list and not in the memo. */

struct eg_explain;

struct eg_egraph {
  eg_params p;
  eg_lang lang;
  eg_analysis an;
  bool has_an;
  size_t dsize;

  uint32_t *uf; uint8_t *flags; eg_class *cls; uint8_t *data;
  uint32_t nids, capids;

  eg_node *nodes; uint32_t nnodes, capnodes;
  uint32_t *pool; uint32_t npool, cappool;

  uint64_t *memo; uint32_t memocap, memon;
  uint64_t memo_total;

  /* attribute interning: byte blob + offsets, open-addressed id table */
  uint8_t *ablob; uint32_t nablob, capablob;
  uint32_t *aoff; uint32_t nattrs, capattrs;
  uint32_t *atab; uint32_t atabcap;

  eg_vec pending, apending, dirty, kbuf;
  eg_vec *byop; bool byop_stale;
  eg_vec roots;    /* root classes with nodes, built with the op index */
  eg_vec sortbuf;  /* merge-sort scratch */
  void *dtmp;      /* one analysis blob of scratch */

  size_t nclasses, nenodes;
  size_t bytes, peak;
  bool clean;
  int in_rebuild, union_depth;

  size_t nrefused;
  char *refusals; size_t nref, capref;

  struct eg_explain *ex;
};

/* Grows *p (elem bytes each) to hold need items; accounts bytes. */
void eg_grow_(eg_egraph *g, void **p, uint32_t *cap, size_t elem, uint64_t need);
#define EG_GROW(g, arr, cap, need) \
  eg_grow_((g), (void **)&(arr), &(cap), sizeof *(arr), (need))

static inline void eg_vec_push(eg_egraph *g, eg_vec *v, uint32_t x) {
  if (v->n == v->cap) EG_GROW(g, v->a, v->cap, (uint64_t)v->n + 1);
  v->a[v->n++] = x;
}

/* Union-find (unionfind.c). Path halving: every other node on the path is
 * pointed at its grandparent, which gives the same amortised bound as full
 * compression (Tarjan & van Leeuwen 1984) in one pass and no recursion. */
static inline uint32_t eg_uf_find(uint32_t *uf, uint32_t x) {
  while (uf[x] != x) {
    uf[x] = uf[uf[x]];
    x = uf[x];
  }
  return x;
}
uint32_t eg_uf_make(eg_egraph *g); /* new singleton id (grows per-id arrays) */

static inline const uint32_t *eg_kids_(const eg_egraph *g, const eg_node *n) {
  return g->pool + n->kids;
}

/* explanations (explain.c); all no-ops unless g->ex */
struct eg_explain *eg_ex_new(void);
void eg_ex_free(struct eg_explain *ex);
void eg_ex_new_id(eg_egraph *g, eg_id id, int op, uint32_t attr,
                  const eg_id *kids, uint32_t n);
void eg_ex_union(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why);
/* With explanations, an add of an existing class by a not-yet-seen original
 * term makes a fresh id merged into it by congruence (as egg does). */
eg_id eg_ex_add_existing(eg_egraph *g, int op, uint32_t attr, const eg_id *kids,
                         uint32_t n, uint32_t holder);
size_t eg_ex_bytes(const struct eg_explain *ex);

/* sorting of a class's node ids by node content (egraph.c) */
int eg_node_cmp(const eg_egraph *g, uint32_t a, uint32_t b);

#endif
