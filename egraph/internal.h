/* internal.h - private layout of the e-graph, shared by egraph/ only.
 *
 * Storage (all arenas grow by realloc, everything is an index; capacities
 * never shrink, so the bytes held now are also the high-water mark):
 *   na        the node arena: every e-node ever stored, as a 12-byte eg_node
 *             followed by its child ids; a node's id is its word offset.
 *   memo      open addressing, linear probing, u64 entries (hash tag << 32 |
 *             node id + 1), load 0.53..0.8; the key is the node's content in
 *             the arena, so a node's children are rewritten in place only
 *             after its memo entry is removed (rebuild does that).
 *   per id    (grown together by eg_uf_make in unionfind.c) the union-find
 *             parent, a flag byte, the offset of the class's list block
 *             (eg_class, 4 bytes; 0 at non-roots) and, with an analysis, a
 *             4-byte handle of the class's data.
 *   lp        the list pool: one block per class holding its node list and
 *             its parent list (below).
 *   values    the distinct analysis blobs, interned: classes share them.
 */
#ifndef TL_EGRAPH_INTERNAL_H
#define TL_EGRAPH_INTERNAL_H

#include "egraph/egraph.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Always-on invariant check (STYLE: broken invariants are asserts). */
#define EG_ASSERT(c)                                                                                                   \
  do {                                                                                                                 \
    if (!(c)) {                                                                                                        \
      fprintf(stderr, "%s:%d: egraph invariant failed: %s\n", __FILE__, __LINE__, #c);                                 \
      abort();                                                                                                         \
    }                                                                                                                  \
  } while (0)

typedef struct eg_vec {
  uint32_t *a;
  uint32_t n, cap;
} eg_vec;

/* Per id: the word offset of its class's block in the list pool (0: none;
 * only roots own a block). A block is two header words and cap payload words:
 *     w0 = idx << 25 | nn    (idx: the size class, cap = (2 + idx%2) << idx/2;
 *                             a class holds fewer than 2^25 nodes)
 *     w1 = np
 *     nodes   payload[0 .. nn)             node ids, sorted by content at rest
 *     parents payload[cap-np .. cap)       parent i at payload[cap - 1 - i]
 * so both lists grow toward each other in one allocation with one header,
 * and appending a class's parents to another's is a single memcpy. Why not a
 * malloc'd vector per list: two headers and two slacks per class, plus the
 * allocator's own 16-byte chunk header that no byte count sees; a
 * singleton class here costs 4 words (1 node, room for 1 parent).
 * Size classes step by 1.33x/1.5x (2, 3, 4, 6, 8, 12, ...); a freed block goes
 * to its size class's free list (w0 |= EG_BLK_FREE, w1 = next free block),
 * and when the pool is full and a quarter of it is free the live blocks are
 * slid together (pool_compact in egraph.c). Words 0..1 of the pool are a zero
 * header, so offset 0 reads as an empty class without a branch. */
typedef struct eg_class {
  uint32_t blk;
} eg_class;

enum { EG_F_DIRTY = 1 }; /* per-id flag: node list to sort/dedup */
enum { EG_NCAPS = 64 };  /* block size classes */
#define EG_LP_HDR 2u
#define EG_NN_BITS 25u
#define EG_NN_MASK ((1u << EG_NN_BITS) - 1)
#define EG_BLK_FREE 0x80000000u
static inline uint32_t eg_cap_at(uint32_t idx) { return (2u + (idx & 1)) << (idx >> 1); }
static inline uint32_t eg_blk_cap(uint32_t w0) { return eg_cap_at((w0 >> EG_NN_BITS) & 63); }
/* A node whose cls is EG_NONE is dead: a duplicate dropped from its class
 * list by rebuild, in no list and not in the memo. */

struct eg_explain;

struct eg_egraph {
  eg_params p;
  eg_lang lang;
  eg_analysis an;
  bool has_an;
  /* Per-id analysis bytes for eg_uf_make: 4 (a value handle) or 0. */
  size_t dsize;

  uint32_t *uf;
  uint8_t *flags;
  eg_class *cls;
  uint8_t *data;
  uint32_t nids, capids;
  /* Per node (at nid / EG_NODE_WORDS): the epoch in which it was added,
   * joined its class (its old class merged into another) or was
   * re-canonicalised; epoch: the current one (eg_next_epoch). The runner
   * skips the matches of a rule that bind no node stamped since the rule's
   * last search whose matches it applied all began: the same match was
   * found and applied then (eg_prog_skip_applied). */
  uint32_t *nstamp;
  uint32_t capns;
  uint32_t epoch;

  uint32_t *na;
  uint32_t nna, capna; /* the node arena (word offsets) */
  uint32_t nstored;    /* node records in it */
  size_t nkids;        /* child-id words in it */

  uint64_t *memo;
  uint32_t memocap, memon;
  uint64_t memo_total;

  /* the list pool (see eg_class) */
  uint32_t *lp;
  uint32_t nlp, caplp;
  uint32_t lfree[EG_NCAPS];
  size_t lfree_words, ncompact;

  /* interned analysis values: asize bytes each, and their hash table */
  size_t asize;
  uint8_t *dv;
  uint32_t ndv, capdv;
  uint32_t *dvtab;
  uint32_t dvtabcap;
  void *dtmp, *dtmp2; /* two blobs of scratch */

  /* attribute interning: byte blob + offsets, open-addressed id table */
  uint8_t *ablob;
  uint32_t nablob, capablob;
  uint32_t *aoff;
  uint32_t nattrs, capattrs;
  uint32_t *atab;
  uint32_t atabcap;

  eg_vec pending, apending, dirty, kbuf;
  eg_vec *byop;
  bool byop_stale;
  eg_vec roots; /* root classes with nodes, built when asked for */
  bool roots_stale;
  eg_vec sortbuf; /* merge-sort scratch */

  size_t nclasses, nenodes;
  size_t bytes, peak;
  bool clean;
  int in_rebuild, union_depth;

  size_t nrefused;
  char *refusals;
  size_t nref, capref;

  struct eg_explain *ex;
};

/* Grows *p (elem bytes each) to hold need items; accounts bytes. */
void eg_grow_(eg_egraph *g, void **p, uint32_t *cap, size_t elem, uint64_t need);
/* the bound is checked inline: most calls find room (a call cost as much as
 * the lookup it guarded in eg_add) */
#define EG_GROW(g, arr, cap, need)                                                                                     \
  do {                                                                                                                 \
    uint64_t eg_need_ = (need);                                                                                        \
    if (eg_need_ > (cap)) eg_grow_((g), (void **)&(arr), &(cap), sizeof *(arr), eg_need_);                             \
  } while (0)

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

/* Nodes: node id nid is the arena word offset of its eg_node; its child ids
 * follow it. Valid until the next add (which may grow the arena). */
#define EG_NODE_WORDS 3u
static inline eg_node *eg_nd_(const eg_egraph *g, uint32_t nid) { return (eg_node *)(void *)(g->na + nid); }
static inline uint32_t *eg_nkids_(const eg_egraph *g, uint32_t nid) { return g->na + nid + EG_NODE_WORDS; }
static inline const uint32_t *eg_kids_(const eg_egraph *g, const eg_node *n) {
  (void)g;
  return (const uint32_t *)(const void *)(n + 1);
}

/* Class lists (see eg_class). Pointers into the pool are valid until the
 * next add or union (which may grow or compact it). */
static inline uint32_t eg_cls_nn(const eg_egraph *g, uint32_t c) { return g->lp[g->cls[c].blk] & EG_NN_MASK; }
static inline uint32_t eg_cls_np(const eg_egraph *g, uint32_t c) { return g->lp[g->cls[c].blk + 1]; }
static inline uint32_t *eg_cls_nodes(const eg_egraph *g, uint32_t c) { return g->lp + g->cls[c].blk + EG_LP_HDR; }
/* Parent i of class c, in the order they were added. */
static inline uint32_t eg_cls_parent(const eg_egraph *g, uint32_t c, uint32_t i) {
  const uint32_t *h = g->lp + g->cls[c].blk;
  return h[EG_LP_HDR + eg_blk_cap(h[0]) - 1 - i];
}

/* Analysis data: handle per id (valid at roots) into the interned values. */
static inline uint32_t *eg_handles_(const eg_egraph *g) { return (uint32_t *)(void *)g->data; }
static inline const void *eg_value_(const eg_egraph *g, uint32_t h) { return g->dv + (size_t)h * g->asize; }

/* explanations (explain.c); all no-ops unless g->ex */
struct eg_explain *eg_ex_new(void);
void eg_ex_free(struct eg_explain *ex);
void eg_ex_new_id(eg_egraph *g, eg_id id, int op, uint32_t attr, const eg_id *kids, uint32_t n);
void eg_ex_union(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why);
/* With explanations, an add of an existing class by a not-yet-seen original
 * term makes a fresh id merged into it by congruence (as egg does). */
eg_id eg_ex_add_existing(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n, uint32_t holder);
size_t eg_ex_bytes(const struct eg_explain *ex);

/* sorting of a class's node ids by node content (egraph.c) */
int eg_node_cmp(const eg_egraph *g, uint32_t a, uint32_t b);

#endif
