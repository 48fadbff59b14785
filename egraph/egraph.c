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
#include "util/alloc.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static const eg_reason why_user = {EG_WHY_USER, "user", false};
static const eg_reason why_congr = {EG_WHY_CONGRUENCE, "congruence", false};

/* ---- hashing and the memo ---------------------------------------------- */

/* A 64x64->128 multiply folded to 64 bits: the mixing step of wyhash-style
 * hashes, enough to spread two 32-bit ids over the memo's 32-bit tags. */
static inline uint64_t mix64(uint64_t a, uint64_t b) {
  __uint128_t m = (__uint128_t)a * b;
  return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* Nodes of up to two children (all of egg's math language, most tensor ops)
 * are hashed inline: an XXH3 call was a twentieth of the apply phase, which
 * hashes one node per right-hand-side node of every match. */
static inline uint64_t node_seed(const eg_egraph *g, uint32_t op, uint32_t attr, uint32_t n) {
  return g->p.seed ^ ((((uint64_t)op << 48) ^ ((uint64_t)n << 32) ^ attr) * 0x9E3779B97F4A7C15ull);
}

/* n <= 2 children as k = kid0 | kid1 << 32 (0 where absent). Callers that
 * have just computed the children pass them from registers: reading two
 * 4-byte stores back as one 8-byte load defeats store forwarding, and the
 * hash feeds the memo probe's address. */
static inline uint64_t node_hash_small(const eg_egraph *g, uint32_t op, uint32_t attr, uint32_t n, uint64_t k) {
  return mix64(node_seed(g, op, attr, n) ^ 0xA0761D6478BD642Full, k ^ 0xE7037ED1A0B428DBull);
}

static inline uint64_t node_hash(const eg_egraph *g, uint32_t op, uint32_t attr, const uint32_t *kids, uint32_t n) {
  if (n <= 2)
    return node_hash_small(g, op, attr, n, n == 0 ? 0 : n == 1 ? kids[0] : (uint64_t)kids[0] | (uint64_t)kids[1] << 32);
  return XXH3_64bits_withSeed(kids, (size_t)n * 4, node_seed(g, op, attr, n));
}

/* Canonicalises kids[0..n) into out (may be kids) and returns their hash. */
static inline uint64_t canon_hash(const eg_egraph *g, uint32_t op, uint32_t attr, const uint32_t *kids, uint32_t *out,
                                  uint32_t n) {
  if (n <= 2) {
    uint32_t c0 = n ? eg_uf_find(g->uf, kids[0]) : 0, c1 = n == 2 ? eg_uf_find(g->uf, kids[1]) : 0;
    if (n) out[0] = c0;
    if (n == 2) out[1] = c1;
    return node_hash_small(g, op, attr, n, (uint64_t)c0 | (uint64_t)c1 << 32);
  }
  for (uint32_t i = 0; i < n; i++) out[i] = eg_uf_find(g->uf, kids[i]);
  return XXH3_64bits_withSeed(out, (size_t)n * 4, node_seed(g, op, attr, n));
}

static inline bool node_is(const eg_egraph *g, const eg_node *nd, uint32_t op, uint32_t attr, const uint32_t *kids,
                           uint32_t n) {
  if (nd->op != op || nd->n != n || nd->attr != attr) return false;
  const uint32_t *k = eg_kids_(g, nd);
  switch (n) {
  case 0: return true;
  case 1: return k[0] == kids[0];
  case 2: return k[0] == kids[0] && k[1] == kids[1];
  default: return memcmp(k, kids, (size_t)n * 4) == 0;
  }
}

static inline bool is_dead(const eg_egraph *g, uint32_t nid) { return eg_nd_(g, nid)->cls == EG_NONE; }

/* The memo's size is not a power of two: a tag's home slot is
 * (tag * cap) >> 32 (Lemire's multiply-shift range reduction), so the table
 * can grow by 1.5x. It grows at load 0.8 to load 0.53, i.e. 10 to 15 bytes
 * per entry, where doubling at 5/8 spent 13 to 26. Linear probing at 0.8
 * costs about 3 probes for a hit and 13 for a miss, all in one or two cache
 * lines since an entry carries its 32-bit hash tag. */
static inline uint32_t memo_home(uint32_t tag, uint32_t cap) { return (uint32_t)(((uint64_t)tag * cap) >> 32); }

static inline uint32_t memo_next(uint32_t i, uint32_t cap) { return i + 1 == cap ? 0 : i + 1; }

/* always inlined: its call cost a tenth of the add it serves */
static inline __attribute__((always_inline)) uint32_t memo_find(const eg_egraph *g, uint64_t h, uint32_t op,
                                                                uint32_t attr, const uint32_t *kids, uint32_t n) {
  uint32_t cap = g->memocap, tag = (uint32_t)h, i = memo_home(tag, cap);
  for (;;) {
    uint64_t e = g->memo[i];
    if (!e) return EG_NONE;
    if ((uint32_t)(e >> 32) == tag) {
      uint32_t nid = (uint32_t)e - 1;
      if (node_is(g, eg_nd_(g, nid), op, attr, kids, n)) return nid;
    }
    i = memo_next(i, cap);
  }
}

static void memo_put(uint64_t *t, uint32_t cap, uint64_t e) {
  uint32_t i = memo_home((uint32_t)(e >> 32), cap);
  while (t[i]) i = memo_next(i, cap);
  t[i] = e;
}

static void memo_insert(eg_egraph *g, uint64_t h, uint32_t nid) {
  if ((uint64_t)(g->memon + 1) * 5 > (uint64_t)g->memocap * 4) {
    uint64_t want = (uint64_t)g->memocap + g->memocap / 2;
    EG_ASSERT(want <= UINT32_MAX);
    uint32_t nc = (uint32_t)want;
    uint64_t *t = tl_xcalloc_pages(nc, sizeof *t);
    EG_ASSERT(t != NULL);
    for (uint32_t i = 0; i < g->memocap; i++)
      if (g->memo[i]) memo_put(t, nc, g->memo[i]);
    tl_free(g->memo);
    g->bytes += (size_t)(nc - g->memocap) * sizeof *t;
    if (g->bytes > g->peak) g->peak = g->bytes;
    g->memo = t;
    g->memocap = nc;
  }
  memo_put(g->memo, g->memocap, ((uint64_t)(uint32_t)h << 32) | (nid + 1));
  g->memon++;
}

/* Removes the entry of node nid (if it is the holder of its form), closing
 * the gap by backward shifting so no tombstones accumulate. */
static void memo_remove(eg_egraph *g, uint64_t h, uint32_t nid) {
  uint32_t cap = g->memocap, i = memo_home((uint32_t)h, cap);
  for (;;) {
    uint64_t e = g->memo[i];
    if (!e) return;
    if ((uint32_t)e == nid + 1) break;
    i = memo_next(i, cap);
  }
  g->memo[i] = 0;
  g->memon--;
  for (uint32_t j = memo_next(i, cap); g->memo[j]; j = memo_next(j, cap)) {
    uint32_t k = memo_home((uint32_t)(g->memo[j] >> 32), cap);
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      g->memo[i] = g->memo[j];
      g->memo[j] = 0;
      i = j;
    }
  }
}

/* ---- the list pool (see eg_class in internal.h) ------------------------- */

/* Size class of a block holding need words: payload caps 2, 3, 4, 6, 8, 12,
 * ..., i.e. 2^k and 1.5 * 2^k. */
static inline uint32_t cap_idx(uint32_t need) {
  if (need <= 2) return 0;
  uint32_t b = 32u - (uint32_t)__builtin_clz(need - 1); /* 2^(b-1) < need <= 2^b */
  return need <= 3u << (b - 2) ? 2 * (b - 2) + 1 : 2 * (b - 1);
}

/* Grows a big arena by 1.25x rather than eg_grow_'s 1.5x: the node arena
 * and the list pool hold most of the bytes, and their slack at the peak is
 * what this factor sets (realloc of a large block is cheap; copying 4x the
 * final size in all is still a few ms at 10^6 nodes). */
static void grow_words(eg_egraph *g, uint32_t **p, uint32_t *cap, uint64_t need) {
  if (need <= *cap) return;
  uint64_t nc = (uint64_t)*cap + *cap / 4 + 64;
  if (nc < need) nc = need;
  EG_ASSERT(nc <= UINT32_MAX);
  uint32_t *q = tl_xrealloc(*p, (size_t)nc * sizeof *q);
  EG_ASSERT(q != NULL);
  g->bytes += (size_t)(nc - *cap) * sizeof *q;
  if (g->bytes > g->peak) g->peak = g->bytes;
  *p = q;
  *cap = (uint32_t)nc;
}

/* Slides every live block down over the free ones, in address order, and
 * trims each to the smallest size class holding its entries. Why: free
 * lists only recycle blocks of the same size class, and classes that merge
 * and grow leave blocks of every size behind (on the 10^5-node chain two
 * thirds of the pool ended up free). Run when the pool is full and at least
 * a quarter of it is free blocks, so its O(pool) cost is paid for by the
 * words it frees. Every block offset changes: callers re-read g->cls[].blk.
 * During the walk a live block's w0 holds its owner's id (its w0 parked in
 * the owner's blk), which is how the walk tells whose block it moves. */
static void pool_compact(eg_egraph *g) {
  for (uint32_t c = 0; c < g->nids; c++) {
    uint32_t b = g->cls[c].blk;
    if (!b) continue;
    EG_ASSERT(c < EG_BLK_FREE);
    g->cls[c].blk = g->lp[b];
    g->lp[b] = c;
  }
  uint32_t q = EG_LP_HDR;
  for (uint32_t p = EG_LP_HDR; p < g->nlp;) {
    uint32_t w = g->lp[p];
    if (w & EG_BLK_FREE) {
      p += EG_LP_HDR + eg_blk_cap(w);
      continue;
    }
    uint32_t c = w, w0 = g->cls[c].blk, cap = eg_blk_cap(w0);
    uint32_t nn = w0 & EG_NN_MASK, np = g->lp[p + 1];
    uint32_t ni = cap_idx(nn + np), ncap = eg_cap_at(ni);
    /* nodes first: their target ends before the parents' source starts */
    memmove(g->lp + q + EG_LP_HDR, g->lp + p + EG_LP_HDR, (size_t)nn * 4);
    memmove(g->lp + q + EG_LP_HDR + ncap - np, g->lp + p + EG_LP_HDR + cap - np, (size_t)np * 4);
    g->lp[q] = ni << EG_NN_BITS | nn;
    g->lp[q + 1] = np;
    g->cls[c].blk = q;
    q += EG_LP_HDR + ncap;
    p += EG_LP_HDR + cap;
  }
  g->nlp = q;
  memset(g->lfree, 0, sizeof g->lfree);
  g->lfree_words = 0;
  g->ncompact++;
}

/* A block with room for need entries: from its size class's free list, else
 * from the top of the pool. Its lists are empty. May move every block. */
static uint32_t blk_alloc(eg_egraph *g, uint32_t need) {
  uint32_t i = cap_idx(need), b = g->lfree[i], cap = eg_cap_at(i);
  EG_ASSERT(i < EG_NCAPS && cap < (1u << 30));
  if (b) {
    g->lfree[i] = g->lp[b + 1];
    g->lfree_words -= EG_LP_HDR + cap;
  } else {
    if ((uint64_t)g->nlp + EG_LP_HDR + cap > g->caplp && g->lfree_words >= g->caplp / 4) pool_compact(g);
    grow_words(g, &g->lp, &g->caplp, (uint64_t)g->nlp + EG_LP_HDR + cap);
    b = g->nlp;
    g->nlp += EG_LP_HDR + cap;
  }
  g->lp[b] = i << EG_NN_BITS;
  g->lp[b + 1] = 0;
  return b;
}

static void blk_free(eg_egraph *g, uint32_t b) {
  uint32_t i = (g->lp[b] >> EG_NN_BITS) & 63;
  g->lfree_words += EG_LP_HDR + eg_cap_at(i);
  g->lp[b] = EG_BLK_FREE | i << EG_NN_BITS;
  g->lp[b + 1] = g->lfree[i];
  g->lfree[i] = b;
}

/* Makes room for extra more entries (nodes or parents) in class c's block,
 * moving it to a block of a larger size class if needed. */
static void cls_reserve(eg_egraph *g, uint32_t c, uint32_t extra) {
  uint32_t b = g->cls[c].blk;
  uint32_t nn = g->lp[b] & EG_NN_MASK, np = g->lp[b + 1];
  if (b && (uint64_t)nn + np + extra <= eg_blk_cap(g->lp[b])) return;
  EG_ASSERT((uint64_t)nn + np + extra < (1u << 30));
  uint32_t nb = blk_alloc(g, nn + np + extra); /* may move every block */
  b = g->cls[c].blk;
  uint32_t *h = g->lp + b, *H = g->lp + nb, cap = eg_blk_cap(h[0]), ncap = eg_blk_cap(H[0]);
  memcpy(H + EG_LP_HDR, h + EG_LP_HDR, (size_t)nn * 4);
  memcpy(H + EG_LP_HDR + ncap - np, h + EG_LP_HDR + cap - np, (size_t)np * 4);
  H[0] |= nn;
  H[1] = np;
  if (b) blk_free(g, b);
  g->cls[c].blk = nb;
}

static void cls_push_parent(eg_egraph *g, uint32_t c, uint32_t nid) {
  cls_reserve(g, c, 1);
  uint32_t *h = g->lp + g->cls[c].blk;
  h[EG_LP_HDR + eg_blk_cap(h[0]) - 1 - h[1]] = nid;
  h[1]++;
}

static void cls_set_nn(eg_egraph *g, uint32_t c, uint32_t nn) {
  EG_ASSERT(nn <= EG_NN_MASK);
  uint32_t *h = g->lp + g->cls[c].blk;
  h[0] = (h[0] & ~EG_NN_MASK) | nn;
}

/* Appends b's nodes and parents to a's (parents keep their order: a's, then
 * b's) and releases b's block. */
static void cls_absorb(eg_egraph *g, uint32_t a, uint32_t b) {
  uint32_t nb = eg_cls_nn(g, b), pb = eg_cls_np(g, b);
  if (nb + pb) {
    cls_reserve(g, a, nb + pb);
    uint32_t *A = g->lp + g->cls[a].blk, *B = g->lp + g->cls[b].blk;
    uint32_t na = A[0] & EG_NN_MASK, capa = eg_blk_cap(A[0]), capb = eg_blk_cap(B[0]);
    memcpy(A + EG_LP_HDR + na, B + EG_LP_HDR, (size_t)nb * 4);
    memcpy(A + EG_LP_HDR + capa - A[1] - pb, B + EG_LP_HDR + capb - pb, (size_t)pb * 4);
    cls_set_nn(g, a, na + nb);
    A[1] += pb;
  }
  if (g->cls[b].blk) blk_free(g, g->cls[b].blk);
  g->cls[b].blk = 0;
}

/* ---- analysis values ------------------------------------------------------ */

/* Analysis data are lattice values that repeat across classes (a type, a
 * constant, a few sign facts), so each distinct blob is stored once and a
 * class holds a 4-byte handle. A class's value only moves up its lattice
 * (merge joins), so the values ever interned number at most the lattice's
 * height per class; they live until the e-graph is freed. */
static uint64_t value_hash(const eg_egraph *g, const void *b) {
  return XXH3_64bits_withSeed(b, g->asize, g->p.seed ^ 0xDA7Au);
}

static void dvtab_put(uint32_t *t, uint32_t mask, uint64_t h, uint32_t id) {
  uint32_t i = (uint32_t)h & mask;
  while (t[i]) i = (i + 1) & mask;
  t[i] = id + 1;
}

static uint32_t value_intern(eg_egraph *g, const void *blob) {
  uint64_t h = value_hash(g, blob);
  uint32_t mask = g->dvtabcap - 1;
  for (uint32_t i = (uint32_t)h & mask; g->dvtab[i]; i = (i + 1) & mask) {
    uint32_t id = g->dvtab[i] - 1;
    if (!memcmp(eg_value_(g, id), blob, g->asize)) return id;
  }
  uint32_t id = g->ndv;
  /* grow the blobs by hand: EG_GROW counts whole elements, these are asize */
  if (id == g->capdv) {
    uint32_t nc = g->capdv ? g->capdv + g->capdv / 2 : 16;
    uint8_t *d = tl_xrealloc(g->dv, (size_t)nc * g->asize);
    EG_ASSERT(d != NULL);
    g->bytes += (size_t)(nc - g->capdv) * g->asize;
    g->dv = d;
    g->capdv = nc;
  }
  memcpy(g->dv + (size_t)id * g->asize, blob, g->asize);
  g->ndv++;
  if ((uint64_t)g->ndv * 2 > g->dvtabcap) {
    uint32_t nc = g->dvtabcap * 2;
    uint32_t *t = tl_xcalloc_pages(nc, sizeof *t);
    EG_ASSERT(t != NULL);
    for (uint32_t v = 0; v < g->ndv; v++) dvtab_put(t, nc - 1, value_hash(g, eg_value_(g, v)), v);
    tl_free(g->dvtab);
    g->bytes += (size_t)(nc - g->dvtabcap) * sizeof *t;
    g->dvtab = t;
    g->dvtabcap = nc;
  } else {
    dvtab_put(g->dvtab, g->dvtabcap - 1, h, id);
  }
  if (g->bytes > g->peak) g->peak = g->bytes;
  return id;
}

/* make() of a node into the scratch blob (zeroed first, so padding bytes are
 * equal and equal values intern to one handle). */
static void *make_value(eg_egraph *g, int op, uint32_t attr, const uint32_t *kids, uint32_t n) {
  memset(g->dtmp, 0, g->asize);
  g->an.make(g, op, attr, kids, n, g->dtmp, g->an.ctx);
  return g->dtmp;
}

/* Joins value `from` into root r's data; returns merge()'s flags. */
static unsigned merge_into(eg_egraph *g, uint32_t r, const void *from) {
  uint32_t *hd = eg_handles_(g);
  memcpy(g->dtmp2, eg_value_(g, hd[r]), g->asize);
  unsigned m = g->an.merge(g, g->dtmp2, from, g->an.ctx);
  if (m & EG_MERGE_TO) hd[r] = value_intern(g, g->dtmp2);
  return m;
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
    if (len == n && (n == 0 || !memcmp(g->ablob + g->aoff[id], bytes, n))) return id;
  }
  uint32_t id = g->nattrs++;
  EG_GROW(g, g->aoff, g->capattrs, (uint64_t)g->nattrs + 1);
  EG_GROW(g, g->ablob, g->capablob, (uint64_t)g->nablob + n);
  if (n) memcpy(g->ablob + g->nablob, bytes, n);
  g->nablob += (uint32_t)n;
  g->aoff[id + 1] = g->nablob;
  if ((uint64_t)g->nattrs * 2 > g->atabcap) {
    uint32_t nc = g->atabcap * 2;
    uint32_t *t = tl_xcalloc_pages(nc, sizeof *t);
    EG_ASSERT(t != NULL);
    for (uint32_t a = 0; a < g->nattrs; a++)
      atab_put(t, nc - 1, attr_hash(g, g->ablob + g->aoff[a], g->aoff[a + 1] - g->aoff[a]), a);
    tl_free(g->atab);
    g->bytes += (size_t)(nc - g->atabcap) * sizeof *t;
    if (g->bytes > g->peak) g->peak = g->bytes;
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
  eg_egraph *g = tl_xcalloc(1, sizeof *g);
  if (!g) return NULL;
  g->p = p;
  g->lang = *p.lang;
  if (p.analysis) {
    g->an = *p.analysis;
    g->has_an = true;
    g->asize = p.analysis->data_size ? p.analysis->data_size : 1;
    g->dsize = sizeof(uint32_t);
    g->dvtabcap = 64;
    g->dvtab = tl_xcalloc_pages(g->dvtabcap, sizeof *g->dvtab);
    g->dtmp = tl_xcalloc(2, g->asize);
    g->dtmp2 = (uint8_t *)g->dtmp + g->asize;
  }
  g->memocap = 1024;
  g->memo = tl_xcalloc_pages(g->memocap, sizeof *g->memo);
  g->atabcap = 64;
  g->atab = tl_xcalloc_pages(g->atabcap, sizeof *g->atab);
  g->byop = tl_xcalloc((size_t)g->lang.nops, sizeof *g->byop);
  if (!g->memo || !g->atab || !g->byop || (p.analysis && (!g->dvtab || !g->dtmp))) {
    eg_free(g);
    return NULL;
  }
  g->bytes = sizeof *g + g->memocap * sizeof *g->memo + g->atabcap * sizeof *g->atab +
             (size_t)g->lang.nops * sizeof *g->byop + (size_t)g->dvtabcap * sizeof *g->dvtab + 2 * g->asize;
  g->peak = g->bytes;
  g->clean = true;
  g->byop_stale = g->roots_stale = true;
  /* pool words 0..1: the zero header that blk 0 (no block) reads as */
  grow_words(g, &g->lp, &g->caplp, EG_LP_HDR);
  g->lp[0] = g->lp[1] = 0;
  g->nlp = EG_LP_HDR;
  EG_GROW(g, g->aoff, g->capattrs, 2);
  g->aoff[0] = 0;
  (void)eg_attr_intern(g, "", 0); /* id 0 = EG_ATTR_NONE */
  if (p.explain) g->ex = eg_ex_new();
  return g;
}

void eg_free(eg_egraph *g) {
  if (!g) return;
  if (g->byop)
    for (int i = 0; i < g->lang.nops; i++) tl_free(g->byop[i].a);
  tl_free(g->byop);
  tl_free(g->uf);
  tl_free(g->flags);
  tl_free(g->cls);
  tl_free(g->data);
  tl_free(g->nstamp);
  tl_free(g->na);
  tl_free(g->memo);
  tl_free(g->lp);
  tl_free(g->dv);
  tl_free(g->dvtab);
  tl_free(g->dtmp);
  tl_free(g->ablob);
  tl_free(g->aoff);
  tl_free(g->atab);
  tl_free(g->pending.a);
  tl_free(g->apending.a);
  tl_free(g->dirty.a);
  tl_free(g->kbuf.a);
  tl_free(g->roots.a);
  tl_free(g->sortbuf.a);
  tl_free(g->refusals);
  eg_ex_free(g->ex);
  tl_free(g);
}

const eg_lang *eg_lang_of(const eg_egraph *g) { return &g->lang; }

/* ---- small helpers -------------------------------------------------------- */

eg_id eg_find(eg_egraph *g, eg_id id) {
  EG_ASSERT(id < g->nids);
  return eg_uf_find(g->uf, id);
}

/* The op index and the root list are rebuilt when next asked for. */
static inline void index_stale(eg_egraph *g) { g->byop_stale = g->roots_stale = true; }

static inline void mark_dirty(eg_egraph *g, uint32_t r) {
  if (!(g->flags[r] & EG_F_DIRTY)) {
    g->flags[r] |= EG_F_DIRTY;
    eg_vec_push(g, &g->dirty, r);
  }
  index_stale(g);
}

const void *eg_data(eg_egraph *g, eg_id id) {
  if (!g->has_an) return NULL;
  return eg_value_(g, eg_handles_(g)[eg_uf_find(g->uf, id)]);
}

/* ---- add ------------------------------------------------------------------ */

static eg_id add_new(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n, uint64_t h);

/* Checks op(kids), writes its canonical children to g->kbuf and looks the
 * form up: the memo's holder node or EG_NONE; *h: the form's hash. */
static inline __attribute__((always_inline)) uint32_t find_form(eg_egraph *g, int op, uint32_t attr, const eg_id *kids,
                                                                uint32_t n, uint64_t *h) {
  EG_ASSERT(op >= 0 && op < g->lang.nops && attr < g->nattrs);
  int ar = g->lang.arity[op];
  EG_ASSERT(ar < 0 ? n >= 1 : (uint32_t)ar == n);
  EG_ASSERT(n <= UINT16_MAX);
  EG_GROW(g, g->kbuf.a, g->kbuf.cap, n);
  uint32_t *ck = g->kbuf.a;
  for (uint32_t i = 0; i < n; i++) EG_ASSERT(kids[i] < g->nids);
  *h = canon_hash(g, (uint32_t)op, attr, kids, ck, n);
  return memo_find(g, *h, (uint32_t)op, attr, ck, n);
}

eg_id eg_lookup(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n) {
  uint64_t h;
  uint32_t holder = find_form(g, op, attr, kids, n, &h);
  return holder == EG_NONE ? EG_NONE : eg_uf_find(g->uf, eg_nd_(g, holder)->cls);
}

/* Most adds find their node (96% while saturating the math suite: every
 * match instantiates its right-hand side), so the lookup is kept small and
 * the new-node path is a separate function. */
eg_id eg_add(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n) {
  uint64_t h;
  uint32_t holder = find_form(g, op, attr, kids, n, &h);
  if (holder != EG_NONE) {
    if (g->ex) return eg_ex_add_existing(g, op, attr, kids, n, holder);
    return eg_uf_find(g->uf, eg_nd_(g, holder)->cls);
  }
  return add_new(g, op, attr, kids, n, h);
}

/* Stores a node whose canonical children are in g->kbuf as a member of
 * class cls (written in the node, not yet in the class's list); returns its
 * index in the node arena. */
static uint32_t store_node(eg_egraph *g, int op, uint32_t attr, uint32_t n, uint32_t cls) {
  /* the caller's kids may alias the pool: the canonical copies in kbuf are
   * what is stored */
  grow_words(g, &g->na, &g->capna, (uint64_t)g->nna + EG_NODE_WORDS + n);
  uint32_t nid = g->nna;
  *eg_nd_(g, nid) = (eg_node){(uint16_t)op, (uint16_t)n, attr, cls};
  if (n) memcpy(eg_nkids_(g, nid), g->kbuf.a, (size_t)n * 4);
  g->nna += EG_NODE_WORDS + n;
  if (nid / EG_NODE_WORDS >= g->capns) EG_GROW(g, g->nstamp, g->capns, (uint64_t)g->capna / EG_NODE_WORDS + 1);
  g->nstamp[nid / EG_NODE_WORDS] = g->epoch;
  g->nstored++;
  g->nkids += n;
  return nid;
}

/* Enters a stored node in its children's parent lists and the memo (h: its
 * hash), and counts it. */
static void link_node(eg_egraph *g, uint32_t nid, uint32_t n, uint64_t h) {
  /* one parent entry per child occurrence, as egg does: (+ x x) is twice a
   * parent of x. Parent-list lengths decide which class stays the root, and
   * with it which parents are re-canonicalised, so keeping egg's counts
   * keeps the hash-cons growth (and so NodeLimit stops) comparable. */
  for (uint32_t i = 0; i < n; i++) cls_push_parent(g, eg_nkids_(g, nid)[i], nid);
  memo_insert(g, h, nid);
  g->memo_total++;
  g->nenodes++;
  index_stale(g);
}

/* The canonical children are in g->kbuf; h is their node's hash. */
static eg_id __attribute__((noinline)) add_new(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n,
                                               uint64_t h) {
  eg_id id = eg_uf_make(g);
  if (g->ex) eg_ex_new_id(g, id, op, attr, kids, n);
  uint32_t nid = store_node(g, op, attr, n, id);
  /* a new class: one node, room for one parent; a one-node class is
   * sorted already (link_node marks only the op index stale) */
  uint32_t b = blk_alloc(g, 2);
  g->cls[id].blk = b;
  eg_cls_nodes(g, id)[0] = nid;
  cls_set_nn(g, id, 1);
  link_node(g, nid, n, h);
  g->nclasses++;
  if (g->has_an) {
    eg_handles_(g)[id] = value_intern(g, make_value(g, op, attr, eg_nkids_(g, nid), n));
    if (g->an.modify) g->an.modify(g, id, g->an.ctx);
  }
  return id;
}

static void push_parents(eg_egraph *g, eg_vec *v, uint32_t c, bool live_only);

/* What eg_add followed by eg_union(into, ...) leaves, without the new
 * node's one-node class: when the node is new it joins into's class
 * directly. Half of a node-limit row's kept matches add their right-hand
 * side's top node, and its own class (an id, a list block, then a union
 * that moves the node out and frees the block) cost the golden-ratio
 * Simple row a twelfth of its time (224 -> 206 ms).
 * The class's data merge, the analysis's modify and the rebuild's re-sort
 * are the union's. Not with explanations: the proof forest needs the
 * node's own id. */
eg_id eg_add_into(eg_egraph *g, int op, uint32_t attr, const eg_id *kids, uint32_t n, eg_id into, bool *added) {
  *added = false;
  if (g->ex) return eg_add(g, op, attr, kids, n);
  EG_ASSERT(into < g->nids);
  uint64_t h;
  uint32_t holder = find_form(g, op, attr, kids, n, &h);
  if (holder != EG_NONE) return eg_uf_find(g->uf, eg_nd_(g, holder)->cls);
  uint32_t r = eg_uf_find(g->uf, into);
  /* the node's data, made once (g->dtmp: nothing below writes it before
   * the merge) */
  const void *val = g->has_an ? make_value(g, op, attr, g->kbuf.a, n) : NULL;
  if (g->has_an && g->an.refuse) {
    /* refused: the node gets its own class and the union is refused (and
     * logged) as eg_union would */
    char msg[256];
    msg[0] = '\0';
    if (g->an.refuse(g, eg_value_(g, eg_handles_(g)[r]), val, msg, sizeof msg, g->an.ctx))
      return add_new(g, op, attr, kids, n, h);
  }
  uint32_t nid = store_node(g, op, attr, n, r);
  cls_reserve(g, r, 1);
  uint32_t nn = eg_cls_nn(g, r);
  eg_cls_nodes(g, r)[nn] = nid;
  cls_set_nn(g, r, nn + 1);
  link_node(g, nid, n, h);
  g->clean = false;
  mark_dirty(g, r);
  *added = true;
  if (g->has_an) {
    unsigned m = merge_into(g, r, val);
    if (m & EG_MERGE_TO) push_parents(g, &g->apending, r, false);
    if (g->an.modify) g->an.modify(g, r, g->an.ctx);
  }
  if (g->p.immediate_rebuild && !g->in_rebuild && !g->union_depth) eg_rebuild(g);
  return r;
}

/* ---- union ---------------------------------------------------------------- */

static void log_refusal(eg_egraph *g, const eg_reason *why, const char *msg) {
  g->nrefused++;
  if (g->nref > 4000) return;
  char line[640];
  int k = snprintf(line, sizeof line, "union refused (rule %s): %s\n", why && why->name ? why->name : "?", msg);
  if (k < 0) return;
  size_t len = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
  if (g->nref + len + 1 > g->capref) {
    size_t nc = (g->nref + len + 1) * 2;
    char *r = tl_xrealloc(g->refusals, nc);
    if (!r) return;
    g->refusals = r;
    g->capref = nc;
  }
  memcpy(g->refusals + g->nref, line, len + 1);
  g->nref += len;
}

static void push_parents(eg_egraph *g, eg_vec *v, uint32_t c, bool live_only) {
  uint32_t np = eg_cls_np(g, c);
  for (uint32_t i = 0; i < np; i++) {
    uint32_t p = eg_cls_parent(g, c, i);
    if (!live_only || !is_dead(g, p)) eg_vec_push(g, v, p);
  }
}

static bool union_impl(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why) {
  uint32_t ra = eg_find(g, a), rb = eg_find(g, b);
  if (ra == rb) return false;
  if (g->has_an && g->an.refuse) {
    char msg[512] = "";
    if (g->an.refuse(g, eg_data(g, ra), eg_data(g, rb), msg, sizeof msg, g->an.ctx)) {
      log_refusal(g, why, msg);
      return false;
    }
  }
  if (g->ex) eg_ex_union(g, a, b, why);
  if (eg_cls_np(g, ra) < eg_cls_np(g, rb)) {
    uint32_t t = ra;
    ra = rb;
    rb = t;
  }
  g->union_depth++;
  g->uf[rb] = ra;
  g->clean = false;
  g->nclasses--;
  push_parents(g, &g->pending, rb, true);
  /* rb's nodes join ra: new members for the matches through ra */
  uint32_t nb = eg_cls_nn(g, rb);
  const uint32_t *bn = eg_cls_nodes(g, rb);
  for (uint32_t i = 0; i < nb; i++) g->nstamp[bn[i] / EG_NODE_WORDS] = g->epoch;
  if (g->has_an) {
    unsigned m = merge_into(g, ra, eg_value_(g, eg_handles_(g)[rb]));
    if (m & EG_MERGE_TO) push_parents(g, &g->apending, ra, false);
    if (m & EG_MERGE_FROM) push_parents(g, &g->apending, rb, false);
  }
  cls_absorb(g, ra, rb);
  mark_dirty(g, ra);
  if (g->has_an && g->an.modify) g->an.modify(g, ra, g->an.ctx);
  g->union_depth--;
  return true;
}

bool eg_union_why(eg_egraph *g, eg_id a, eg_id b, const eg_reason *why) {
  bool r = union_impl(g, a, b, why ? why : &why_user);
  if (r && g->p.immediate_rebuild && !g->in_rebuild && !g->union_depth) eg_rebuild(g);
  return r;
}

bool eg_union(eg_egraph *g, eg_id a, eg_id b) { return eg_union_why(g, a, b, NULL); }

/* ---- rebuild -------------------------------------------------------------- */

int eg_node_cmp(const eg_egraph *g, uint32_t a, uint32_t b) {
  const eg_node *x = eg_nd_(g, a), *y = eg_nd_(g, b);
  if (x->op != y->op) return x->op < y->op ? -1 : 1;
  if (x->attr != y->attr) return x->attr < y->attr ? -1 : 1;
  if (x->n != y->n) return x->n < y->n ? -1 : 1;
  const uint32_t *p = eg_kids_(g, x), *q = eg_kids_(g, y);
  for (uint32_t i = 0; i < x->n; i++)
    if (p[i] != q[i]) return p[i] < q[i] ? -1 : 1;
  return 0;
}

/* A 64-bit prefix of eg_node_cmp's order: op (16 bits), attr (16), arity
 * (8), first child (24). A field too large for its bits takes the field's
 * maximum and zeroes the fields after it, so a smaller key is a smaller
 * node and equal keys leave the order to eg_node_cmp. */
static inline uint64_t sort_key(const eg_node *x) {
  uint64_t k = (uint64_t)x->op << 48;
  if (x->attr >= 0xFFFF) return k | 0xFFFFull << 32;
  k |= (uint64_t)x->attr << 32;
  if (x->n >= 0xFF) return k | 0xFFull << 24;
  k |= (uint64_t)x->n << 24;
  uint32_t k0 = x->n ? ((const uint32_t *)(const void *)(x + 1))[0] : 0;
  return k | (k0 >= 0xFFFFFF ? 0xFFFFFFu : k0);
}

typedef struct keyed {
  uint64_t key;
  uint32_t nid;
} keyed;

static inline bool keyed_before(const eg_egraph *g, const keyed *x, const keyed *y) {
  return x->key != y->key ? x->key < y->key : eg_node_cmp(g, x->nid, y->nid) < 0;
}

/* Stable merge sort of keyed nodes (t: scratch of n) */
static void sort_keyed(const eg_egraph *g, keyed *a, keyed *t, uint32_t n) {
  if (n <= 16) {
    for (uint32_t i = 1; i < n; i++) {
      keyed x = a[i];
      uint32_t j = i;
      while (j > 0 && keyed_before(g, &x, &a[j - 1])) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = x;
    }
    return;
  }
  uint32_t h = n / 2;
  sort_keyed(g, a, t, h);
  sort_keyed(g, a + h, t, n - h);
  if (!keyed_before(g, &a[h], &a[h - 1])) return;
  uint32_t i = 0, j = h, k = 0;
  while (i < h && j < n) t[k++] = keyed_before(g, &a[j], &a[i]) ? a[j++] : a[i++];
  while (i < h) t[k++] = a[i++];
  while (j < n) t[k++] = a[j++];
  memcpy(a, t, (size_t)n * sizeof *a);
}

/* Stable sort by content (equal nodes keep their order: deterministic).
 * Up to 16 nodes by insertion; more as keyed pairs, so that each node is
 * read from the arena once (a comparison reads two nodes, and the merges
 * of a large class compare each node again). */
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
  EG_GROW(g, g->sortbuf.a, g->sortbuf.cap, (uint64_t)n * 2 * sizeof(keyed) / 4);
  keyed *k = (keyed *)(void *)g->sortbuf.a, *t = k + n;
  for (uint32_t i = 0; i < n; i++) k[i] = (keyed){sort_key(eg_nd_(g, a[i])), a[i]};
  sort_keyed(g, k, t, n);
  for (uint32_t i = 0; i < n; i++) a[i] = k[i].nid;
}

/* Sorts and deduplicates the node lists of the classes touched since the
 * last rebuild (egg re-sorts every class; only touched ones can change). */
static void fix_dirty(eg_egraph *g) {
  for (uint32_t d = 0; d < g->dirty.n; d++) {
    uint32_t c = g->dirty.a[d];
    g->flags[c] &= (uint8_t)~EG_F_DIRTY;
    if (g->uf[c] != c) continue;
    uint32_t nn = eg_cls_nn(g, c);
    if (nn < 2) continue;
    uint32_t *ns = eg_cls_nodes(g, c); /* sorting touches no pool */
    sort_nodes(g, ns, nn);
    uint32_t w = 0;
    for (uint32_t i = 0; i < nn;) {
      uint32_t j = i + 1;
      while (j < nn && eg_node_cmp(g, ns[i], ns[j]) == 0) j++;
      uint32_t keep = ns[i];
      if (j > i + 1) {
        /* keep the memo holder of the form; the rest are dead duplicates */
        const eg_node *nd = eg_nd_(g, keep);
        const uint32_t *kk = eg_kids_(g, nd);
        uint32_t hd = memo_find(g, node_hash(g, nd->op, nd->attr, kk, nd->n), nd->op, nd->attr, kk, nd->n);
        for (uint32_t k = i; k < j; k++)
          if (ns[k] == hd) keep = hd;
        for (uint32_t k = i; k < j; k++)
          if (ns[k] != keep) eg_nd_(g, ns[k])->cls = EG_NONE;
        g->nenodes -= j - i - 1;
      }
      ns[w++] = keep;
      i = j;
    }
    cls_set_nn(g, c, w);
  }
  g->dirty.n = 0;
}

/* The worklist is taken from the top; the parents 16 below it are fetched
 * from the arena now, and for those 8 below, the memo slot of their current
 * form (which the rebuild removes) and their children's union-find entries:
 * on a large rebuild each of those is a cache miss that would otherwise
 * stall the loop (golden-ratio Simple row: rebuild 62.7 -> 56.3 ms, the
 * minima of six runs). */
static inline void prefetch_pending(const eg_egraph *g) {
  uint32_t n = g->pending.n;
  if (n < 16) return;
  __builtin_prefetch(eg_nd_(g, g->pending.a[n - 16]));
  const eg_node *f = eg_nd_(g, g->pending.a[n - 8]);
  if (f->cls == EG_NONE) return;
  const uint32_t *fk = eg_kids_(g, f);
  __builtin_prefetch(g->memo + memo_home((uint32_t)node_hash(g, f->op, f->attr, fk, f->n), g->memocap));
  for (uint32_t i = 0; i < f->n && i < 2; i++) __builtin_prefetch(g->uf + fk[i]);
}

size_t eg_rebuild(eg_egraph *g) {
  if (g->in_rebuild) return 0;
  g->in_rebuild++;
  size_t unions = 0;
  while (g->pending.n || g->apending.n) {
    while (g->pending.n) {
      uint32_t nid = g->pending.a[--g->pending.n];
      prefetch_pending(g);
      if (is_dead(g, nid)) continue;
      eg_node nd = *eg_nd_(g, nid);
      uint32_t *k = eg_nkids_(g, nid);
      bool changed = false;
      for (uint32_t i = 0; i < nd.n && !changed; i++) changed = g->uf[k[i]] != k[i];
      if (!changed) continue;
      memo_remove(g, node_hash(g, nd.op, nd.attr, k, nd.n), nid);
      uint64_t h = canon_hash(g, nd.op, nd.attr, k, k, nd.n);
      g->nstamp[nid / EG_NODE_WORDS] = g->epoch;
      uint32_t holder = memo_find(g, h, nd.op, nd.attr, k, nd.n);
      if (holder != EG_NONE) {
        unions += union_impl(g, eg_nd_(g, holder)->cls, nd.cls, &why_congr);
      } else {
        memo_insert(g, h, nid);
        g->memo_total++;
      }
      mark_dirty(g, eg_uf_find(g->uf, nd.cls));
    }
    while (g->apending.n) {
      uint32_t nid = g->apending.a[--g->apending.n];
      if (is_dead(g, nid)) continue;
      eg_node nd = *eg_nd_(g, nid);
      uint32_t c = eg_uf_find(g->uf, nd.cls);
      unsigned m = merge_into(g, c, make_value(g, nd.op, nd.attr, eg_nkids_(g, nid), nd.n));
      if (m & EG_MERGE_TO) {
        push_parents(g, &g->apending, c, false);
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

uint32_t eg_next_epoch(eg_egraph *g) { return ++g->epoch; }

/* ---- queries -------------------------------------------------------------- */

size_t eg_nclasses(const eg_egraph *g) { return g->nclasses; }
size_t eg_nenodes(const eg_egraph *g) { return g->nenodes; }
size_t eg_nodes_stored(const eg_egraph *g) { return g->nstored; }
size_t eg_memo_size(const eg_egraph *g) { return g->memon; }
size_t eg_total_size(const eg_egraph *g) { return (size_t)g->memo_total; }
size_t eg_bytes(const eg_egraph *g) { return g->bytes + eg_ex_bytes(g->ex); }
size_t eg_peak_bytes(const eg_egraph *g) { return g->peak + eg_ex_bytes(g->ex); }
size_t eg_nids(const eg_egraph *g) { return g->nids; }
size_t eg_nrefused(const eg_egraph *g) { return g->nrefused; }
const char *eg_refusals(const eg_egraph *g) { return g->refusals ? g->refusals : ""; }

size_t eg_analysis_bytes(const eg_egraph *g) {
  if (!g->has_an) return 0;
  return (size_t)g->capids * g->dsize + (size_t)g->capdv * g->asize + (size_t)g->dvtabcap * sizeof *g->dvtab +
         2 * g->asize;
}

size_t eg_analysis_values(const eg_egraph *g) { return g->ndv; }

void eg_mem_usage(const eg_egraph *g, eg_mem *m) {
  memset(m, 0, sizeof *m);
  m->kids = g->nkids * sizeof *g->na;
  m->nodes = (size_t)g->capna * sizeof *g->na - m->kids + (size_t)g->capns * sizeof *g->nstamp;
  m->memo = (size_t)g->memocap * sizeof *g->memo;
  m->ids = (size_t)g->capids * (sizeof *g->uf + sizeof *g->flags + sizeof *g->cls);
  m->lists = (size_t)g->caplp * sizeof *g->lp;
  m->lists_free = g->lfree_words * sizeof *g->lp + (size_t)(g->caplp - g->nlp) * sizeof *g->lp;
  m->index = (size_t)g->lang.nops * sizeof *g->byop + (size_t)g->roots.cap * sizeof *g->roots.a;
  for (int o = 0; o < g->lang.nops; o++) m->index += (size_t)g->byop[o].cap * sizeof *g->byop[o].a;
  m->work = ((size_t)g->pending.cap + g->apending.cap + g->dirty.cap + g->kbuf.cap + g->sortbuf.cap) * sizeof(uint32_t);
  m->attrs = (size_t)g->capablob + (size_t)g->capattrs * sizeof *g->aoff + (size_t)g->atabcap * sizeof *g->atab;
  m->analysis = eg_analysis_bytes(g);
  m->explain = eg_ex_bytes(g->ex);
  m->fixed = sizeof *g;
  m->total = eg_bytes(g);
  m->compactions = g->ncompact;
}

const eg_node *eg_get_node(const eg_egraph *g, uint32_t nid) {
  EG_ASSERT((uint64_t)nid + EG_NODE_WORDS <= g->nna);
  return eg_nd_(g, nid);
}
const eg_id *eg_node_kids(const eg_egraph *g, const eg_node *nd) { return eg_kids_(g, nd); }

const uint32_t *eg_class_nodes(const eg_egraph *g, eg_id cls, uint32_t *n) {
  EG_ASSERT(cls < g->nids);
  *n = eg_cls_nn(g, cls);
  return eg_cls_nodes(g, cls);
}

void eg_class_retain(eg_egraph *g, eg_id cls, bool (*keep)(const eg_egraph *, const eg_node *, void *), void *ctx) {
  uint32_t r = eg_find(g, cls);
  uint32_t nn = eg_cls_nn(g, r), *ns = eg_cls_nodes(g, r), w = 0;
  for (uint32_t i = 0; i < nn; i++)
    if (keep(g, eg_nd_(g, ns[i]), ctx)) ns[w++] = ns[i];
  g->nenodes -= nn - w;
  if (w != nn) index_stale(g);
  cls_set_nn(g, r, w);
}

/* The op index (egg's classes_by_op), rebuilt from the class lists when any
 * class changed since the last query: O(e-nodes), once per iteration. */
static void build_byop(eg_egraph *g) {
  fix_dirty(g);
  for (int o = 0; o < g->lang.nops; o++) g->byop[o].n = 0;
  for (uint32_t c = 0; c < g->nids; c++) {
    if (g->uf[c] != c) continue;
    uint32_t nn = eg_cls_nn(g, c);
    int prev = -1;
    for (uint32_t i = 0; i < nn; i++) {
      int op = eg_nd_(g, eg_cls_nodes(g, c)[i])->op;
      if (op != prev) eg_vec_push(g, &g->byop[op], c);
      prev = op;
    }
  }
  g->byop_stale = false;
}

/* Every class with a node (emptied ones have nothing to match). Only
 * patterns rooted at a variable and the reference matcher ask, so it is
 * built apart from the op index, on demand. */
static void build_roots(eg_egraph *g) {
  fix_dirty(g);
  g->roots.n = 0;
  for (uint32_t c = 0; c < g->nids; c++)
    if (g->uf[c] == c && eg_cls_nn(g, c)) eg_vec_push(g, &g->roots, c);
  g->roots_stale = false;
}

const eg_id *eg_classes_with_op(eg_egraph *g, int op, uint32_t *n) {
  if (op < 0) {
    if (g->roots_stale || g->dirty.n) build_roots(g);
    *n = g->roots.n;
    return g->roots.a;
  }
  if (g->byop_stale || g->dirty.n) build_byop(g);
  EG_ASSERT(op < g->lang.nops);
  *n = g->byop[op].n;
  return g->byop[op].a;
}

/* ---- the invariant checker ------------------------------------------------ */

static int cmp_pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return *x < *y ? -1 : *x > *y;
}

#define FAIL(...)                                                                                                      \
  do {                                                                                                                 \
    snprintf(err, errsz, __VA_ARGS__);                                                                                 \
    ok = false;                                                                                                        \
    goto out;                                                                                                          \
  } while (0)

/* The list pool adds up: the zero header, every root's block, and the free
 * blocks on their lists cover the used words exactly. */
static bool check_pool(const eg_egraph *g, char *err, size_t errsz) {
  bool ok = true;
  uint64_t words = EG_LP_HDR, freew = 0;
  if (g->lp[0] || g->lp[1]) FAIL("list pool header overwritten");
  for (uint32_t c = 0; c < g->nids; c++) {
    uint32_t b = g->cls[c].blk;
    if (!b) continue;
    const uint32_t *h = g->lp + b;
    uint32_t cap = eg_blk_cap(h[0]);
    if ((h[0] & EG_BLK_FREE) || b + EG_LP_HDR + (uint64_t)cap > g->nlp) FAIL("class %u has a bad block at %u", c, b);
    if ((uint64_t)(h[0] & EG_NN_MASK) + h[1] > cap) FAIL("class %u overflows its block", c);
    words += EG_LP_HDR + (uint64_t)cap;
  }
  for (uint32_t i = 0; i < EG_NCAPS; i++)
    for (uint32_t b = g->lfree[i]; b; b = g->lp[b + 1]) {
      uint32_t w = g->lp[b];
      if (!(w & EG_BLK_FREE) || ((w >> EG_NN_BITS) & 63) != i || b + EG_LP_HDR + (uint64_t)eg_cap_at(i) > g->nlp)
        FAIL("bad free block %u in size class %u", b, i);
      freew += EG_LP_HDR + (uint64_t)eg_cap_at(i);
    }
  if (freew != g->lfree_words) FAIL("free list words %zu, counted %llu", g->lfree_words, (unsigned long long)freew);
  if (words + freew != g->nlp)
    FAIL("list pool: %llu words in blocks, %u used", (unsigned long long)(words + freew), g->nlp);
out:
  return ok;
}

bool eg_check(eg_egraph *g, char *err, size_t errsz) {
  bool ok = true;
  uint64_t *have = NULL, *want = NULL;
  size_t nh = 0, nw = 0, ch = 0, cw = 0, classes = 0, enodes = 0;
  void *tmp = g->has_an ? tl_xmalloc(2 * g->asize) : NULL;
  if (!g->clean || g->pending.n || g->apending.n) FAIL("e-graph not rebuilt");
  if (!check_pool(g, err, errsz)) {
    ok = false;
    goto out;
  }
  for (uint32_t c = 0; c < g->nids; c++) {
    if (g->uf[c] != c) {
      if (g->cls[c].blk) FAIL("non-root %u owns lists", c);
      continue;
    }
    classes++;
    uint32_t nn = eg_cls_nn(g, c), np = eg_cls_np(g, c);
    const uint32_t *ns = eg_cls_nodes(g, c);
    enodes += nn;
    if (g->has_an && eg_handles_(g)[c] >= g->ndv) FAIL("class %u has no analysis value", c);
    for (uint32_t i = 0; i < nn; i++) {
      uint32_t nid = ns[i];
      const eg_node *nd = eg_nd_(g, nid);
      if (is_dead(g, nid)) FAIL("dead node %u in class %u", nid, c);
      if (eg_uf_find(g->uf, nd->cls) != c)
        FAIL("node %u listed in class %u but belongs to %u", nid, c, eg_uf_find(g->uf, nd->cls));
      if (i && eg_node_cmp(g, ns[i - 1], nid) >= 0) FAIL("class %u nodes unsorted or duplicated", c);
      const uint32_t *k = eg_kids_(g, nd);
      for (uint32_t j = 0; j < nd->n; j++) {
        if (g->uf[k[j]] != k[j]) FAIL("node %u has non-canonical child %u", nid, k[j]);
        if (nw == cw) {
          cw = cw ? cw * 2 : 256;
          want = tl_xrealloc(want, cw * sizeof *want);
          EG_ASSERT(want);
        }
        want[nw++] = ((uint64_t)k[j] << 32) | nid;
      }
      uint32_t hd = memo_find(g, node_hash(g, nd->op, nd->attr, k, nd->n), nd->op, nd->attr, k, nd->n);
      if (hd == EG_NONE) FAIL("node %u of class %u missing from the hash-cons", nid, c);
      if (eg_uf_find(g->uf, eg_nd_(g, hd)->cls) != c)
        FAIL("congruence: node %u (class %u) and node %u (class %u) are equal", nid, c, hd,
             eg_uf_find(g->uf, eg_nd_(g, hd)->cls));
      if (g->has_an) {
        /* merge(data, make(node)) must change nothing; on copies, so the
         * check leaves the e-graph as it was */
        uint8_t *made = tmp, *cur = made + g->asize;
        memset(made, 0, g->asize);
        g->an.make(g, nd->op, nd->attr, k, nd->n, made, g->an.ctx);
        memcpy(cur, eg_data(g, c), g->asize);
        unsigned m = g->an.merge(g, cur, made, g->an.ctx);
        if (m & EG_MERGE_TO) FAIL("analysis of class %u is not up to date with node %u", c, nid);
      }
    }
    for (uint32_t i = 0; i < np; i++) {
      uint32_t p = eg_cls_parent(g, c, i);
      if (is_dead(g, p)) continue;
      if (nh == ch) {
        ch = ch ? ch * 2 : 256;
        have = tl_xrealloc(have, ch * sizeof *have);
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
    const eg_node *nd = eg_nd_(g, nid);
    if (is_dead(g, nid)) FAIL("dead node %u in the hash-cons", nid);
    const uint32_t *k = eg_kids_(g, nd);
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
      FAIL("node %u missing from the parent list of class %u", (uint32_t)want[i], (uint32_t)(want[i] >> 32));
  }
out:
  tl_free(have);
  tl_free(want);
  tl_free(tmp);
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
