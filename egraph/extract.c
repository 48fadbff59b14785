/* extract.c - greedy bottom-up extraction.
 *
 * Costs are computed by a fixpoint over all classes: a class's cost is the
 * minimum over its nodes of weight + children's costs, taken only when all
 * children are finite; repeat until nothing improves. Ties keep the first
 * node in the class's (content-sorted) order, so results are reproducible. */
#include "egraph/extract.h"
#include "util/alloc.h"
#include "util/util.h"
#include "egraph/internal.h"

#include <math.h>

static int greedy(const eg_extractor *x, eg_egraph *g, eg_id root, eg_choice *ch) {
  const double *w = x->ctx;
  if (!eg_is_clean(g)) eg_rebuild(g);
  size_t n = eg_nids(g);
  ch->n = n;
  ch->node = tl_xmalloc(sizeof *ch->node * (n ? n : 1));
  ch->cost = tl_xmalloc(sizeof *ch->cost * (n ? n : 1));
  EG_ASSERT(ch->node && ch->cost);
  for (size_t i = 0; i < n; i++) {
    ch->node[i] = EG_NONE;
    ch->cost[i] = INFINITY;
  }
  uint32_t nr;
  const eg_id *roots = eg_classes_with_op(g, -1, &nr);
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < nr; r++) {
      eg_id c = roots[r];
      uint32_t nn;
      const uint32_t *ns = eg_class_nodes(g, c, &nn);
      double best = ch->cost[c];
      uint32_t bn = ch->node[c];
      for (uint32_t i = 0; i < nn; i++) {
        const eg_node *nd = eg_get_node(g, ns[i]);
        const eg_id *k = eg_node_kids(g, nd);
        double s = w ? w[nd->op] : 1.0;
        for (uint32_t j = 0; j < nd->n && s < INFINITY; j++) s += ch->cost[k[j]];
        if (s < best) {
          best = s;
          bn = ns[i];
        }
      }
      if (bn != ch->node[c] && best < ch->cost[c]) {
        ch->cost[c] = best;
        ch->node[c] = bn;
        changed = true;
      }
    }
  }
  root = eg_find(g, root);
  return ch->node[root] == EG_NONE ? -1 : 0;
}

eg_extractor eg_greedy_extractor(const double *weights) {
  return (eg_extractor){greedy, (void *)weights};
}

void eg_choice_free(eg_choice *ch) {
  tl_free(ch->node);
  tl_free(ch->cost);
  memset(ch, 0, sizeof *ch);
}

/* Writes one node's head ("(op" with its payload, or a leaf's token). */
static void put_head(eg_egraph *g, const eg_node *nd, tl_buf *b) {
  char head[600];
  int k = eg_print_head(g, nd->op, nd->attr, head, sizeof head);
  if (k < 0) k = 0;
  if (k >= (int)sizeof head) k = (int)sizeof head - 1;
  if (nd->n) tl_buf_putn(b, "(", 1);
  tl_buf_putn(b, head, (size_t)k);
}

/* The chosen term of c, written with an explicit stack of the nodes still
 * open (a chosen term is as deep as the program: a 10^6-long chain). The
 * text is the term as a tree, so a class the choice shares is written at
 * each use. */
static void print(eg_egraph *g, const eg_choice *ch, eg_id c, tl_buf *b) {
  typedef struct frame { uint32_t nid, k; } frame; /* node, its next child */
  size_t sp = 0, cap = 16;
  frame *st = tl_xmalloc(cap * sizeof *st);
  EG_ASSERT(st);
  for (;;) {
    uint32_t nid = ch->node[eg_find(g, c)];
    EG_ASSERT(nid != EG_NONE);
    const eg_node *nd = eg_get_node(g, nid);
    put_head(g, nd, b);
    if (nd->n) {
      if (sp == cap) {
        st = tl_xrealloc(st, (cap *= 2) * sizeof *st);
        EG_ASSERT(st);
      }
      st[sp++] = (frame){nid, 0};
    }
    /* close the finished nodes; descend into the next child */
    while (sp) {
      frame *f = &st[sp - 1];
      const eg_node *fn = eg_get_node(g, f->nid);
      if (f->k < fn->n) {
        tl_buf_putn(b, " ", 1);
        c = eg_node_kids(g, fn)[f->k++];
        break;
      }
      tl_buf_putn(b, ")", 1);
      sp--;
    }
    if (!sp) break;
  }
  tl_free(st);
}

char *eg_choice_term(eg_egraph *g, const eg_choice *ch, eg_id root) {
  if (ch->node[eg_find(g, root)] == EG_NONE) return NULL;
  tl_buf b = {0};
  print(g, ch, root, &b);
  return b.s;
}

char *eg_extract_best(eg_egraph *g, eg_id root, double *cost) {
  eg_extractor x = eg_greedy_extractor(NULL);
  eg_choice ch = {0};
  char *s = NULL;
  if (x.extract(&x, g, root, &ch) == 0) {
    s = eg_choice_term(g, &ch, root);
    if (cost) *cost = ch.cost[eg_find(g, root)];
  }
  eg_choice_free(&ch);
  return s;
}
