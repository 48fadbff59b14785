/* unionfind.c - the union-find over e-class ids.
 *
 * Ids are dense u32 handed out in creation order; every per-id array (parent,
 * flags, class list block offset, analysis value handle) grows together here so an id is valid in
 * all of them at once. find is inline in internal.h (path halving).
 *
 * Union is by size of the parent lists (see union_impl in egraph.c), not by
 * rank or id: the work of a union is pushing the absorbed class's parents
 * onto the rebuild worklist and concatenating its lists, so keeping the class
 * with more parents as the root minimises exactly that work, and still bounds
 * the depth of the forest by O(log n) as union by size does. */
#include "egraph/internal.h"
#include "util/alloc.h"

void eg_grow_(eg_egraph *g, void **p, uint32_t *cap, size_t elem, uint64_t need) {
  if (need <= *cap) return;
  /* start at 2: most classes hold one or two nodes and parents */
  uint64_t nc = *cap ? (uint64_t)*cap + *cap / 2 + 2 : 2; /* 1.5x: less slack */
  if (nc < need) nc = need;
  EG_ASSERT(nc <= UINT32_MAX);
  void *q = tl_xrealloc(*p, (size_t)nc * elem);
  EG_ASSERT(q != NULL); /* out of memory: no recovery path inside the core */
  g->bytes += (size_t)(nc - *cap) * elem;
  if (g->bytes > g->peak) g->peak = g->bytes;
  *p = q;
  *cap = (uint32_t)nc;
}

uint32_t eg_uf_make(eg_egraph *g) {
  if (g->nids == g->capids) {
    uint32_t old = g->capids, nc = old ? old + old / 2 : 64;
    uint32_t *uf = tl_xrealloc(g->uf, (size_t)nc * sizeof *uf);
    uint8_t *fl = tl_xrealloc(g->flags, nc);
    eg_class *cl = tl_xrealloc(g->cls, (size_t)nc * sizeof *cl);
    uint8_t *d = g->dsize ? tl_xrealloc(g->data, (size_t)nc * g->dsize) : NULL;
    EG_ASSERT(uf && fl && cl && (d || !g->dsize));
    g->uf = uf; g->flags = fl; g->cls = cl; g->data = d;
    memset(cl + old, 0, (size_t)(nc - old) * sizeof *cl);
    memset(fl + old, 0, nc - old);
    g->bytes += (size_t)(nc - old) * (sizeof *uf + 1 + sizeof *cl + g->dsize);
    if (g->bytes > g->peak) g->peak = g->bytes;
    g->capids = nc;
  }
  uint32_t id = g->nids++;
  g->uf[id] = id;
  return id;
}
