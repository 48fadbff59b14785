/* plan.c - kernel formation: which nodes get a buffer, which are computed
 * inline inside a consumer's loop, and the ordered list of kernels.
 *
 * Nodes are visited in id order (topological). A node is
 *   MAT    it has a buffer: inputs, constants, reductions, softmax, matmul,
 *          concat, and inline nodes that are expensive and shared;
 *   ALIAS  reshape of a materialised value: the same contiguous memory seen
 *          with another shape;
 *   INLINE computed at each use inside the consumer's loop nest:
 *          elementwise ops, literals/fills, and the index-map shape ops
 *          (transpose, broadcast_to, expand_dims, squeeze, slice, take).
 * An inline node with more than one consumer that does arithmetic is
 * materialised, so a shared producer is never recomputed (fusion never
 * duplicates work); cheap index maps and literals are duplicated freely.
 * Invariant: a kernel only reads buffers written by earlier kernels. */
#include "backend/be_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_buf(be_plan *p, int kind, int32_t node, int index) {
  if (p->nbufs == p->capbufs) {
    p->capbufs = p->capbufs ? 2 * p->capbufs : 16;
    p->bufs = tl_xrealloc(p->bufs, (size_t)p->capbufs * sizeof *p->bufs);
  }
  be_buf *b = &p->bufs[p->nbufs];
  memset(b, 0, sizeof *b);
  const tl_type *t = &p->g->nodes[node].type;
  b->kind = kind;
  b->index = index;
  b->node = node;
  b->dtype = t->dtype;
  b->rank = t->rank;
  memcpy(b->dims, t->dims, sizeof b->dims);
  return p->nbufs++;
}

/* Buffers an inline expression rooted at id reads. */
static void collect(const be_plan *p, int32_t id, be_kern *k) {
  const tl_node *n = &p->g->nodes[id];
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) {
    int32_t b = p->buf_of[id];
    for (int i = 0; i < k->nreads; i++)
      if (k->reads[i] == b) return;
    k->reads = tl_xrealloc(k->reads, (size_t)(k->nreads + 1) * sizeof *k->reads);
    k->reads[k->nreads++] = b;
    return;
  }
  for (int i = 0; i < n->ninputs; i++) collect(p, tl_node_inputs(p->g, n)[i], k);
}

static be_kern *add_kern(be_plan *p, int kind, int32_t node, int32_t out) {
  if (p->nks == p->capks) {
    p->capks = p->capks ? 2 * p->capks : 16;
    p->ks = tl_xrealloc(p->ks, (size_t)p->capks * sizeof *p->ks);
  }
  be_kern *k = &p->ks[p->nks++];
  memset(k, 0, sizeof *k);
  k->kind = kind;
  k->node = node;
  k->out = out;
  k->place = -1;
  const tl_node *n = &p->g->nodes[node];
  if (kind == BE_K_EW) collect(p, node, k);
  else
    for (int i = 0; i < n->ninputs; i++) collect(p, tl_node_inputs(p->g, n)[i], k);
  return k;
}

/* Gives an inline node its own buffer, computed by an elementwise kernel. */
static void materialise(be_plan *p, int32_t id) {
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) return;
  int b = add_buf(p, BE_BUF_TEMP, id, -1);
  add_kern(p, BE_K_EW, id, b);
  p->state[id] = BE_S_MAT;
  p->buf_of[id] = b;
}

static bool computes(const be_plan *p, int32_t id) {
  const tl_node *n = &p->g->nodes[id];
  if (p->state[id] != BE_S_INLINE) return false;
  if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return true;
  for (int i = 0; i < n->ninputs; i++)
    if (computes(p, tl_node_inputs(p->g, n)[i])) return true;
  return false;
}

static int unsupported(const tl_graph *g, int32_t id, char *err, size_t n) {
  const tl_node *x = &g->nodes[id];
  snprintf(err, n, "backend: op %s on dtype %s is not supported", tl_ops[x->op].name,
           tl_dtype_name((tl_dtype)x->type.dtype));
  return -1;
}

int be_plan_build(be_plan *p, const tl_graph *g, char *err, size_t n) {
  memset(p, 0, sizeof *p);
  p->g = g;
  int32_t nn = g->nnodes;
  p->state = tl_xcalloc((size_t)nn + 1, 1);
  p->buf_of = tl_xcalloc((size_t)nn + 1, sizeof *p->buf_of);
  p->uses = tl_xcalloc((size_t)nn + 1, sizeof *p->uses);
  p->out_buf = tl_xcalloc((size_t)g->noutputs + 1, sizeof *p->out_buf);
  bool *live = tl_xcalloc((size_t)nn + 1, 1);
  for (int i = 0; i < g->noutputs; i++) {
    live[g->outputs[i].node] = true;
    p->uses[g->outputs[i].node]++;
  }
  for (int32_t id = nn - 1; id >= 0; id--) {
    if (!live[id]) continue;
    const tl_node *x = &g->nodes[id];
    for (int k = 0; k < x->ninputs; k++) {
      live[tl_node_inputs(g, x)[k]] = true;
      p->uses[tl_node_inputs(g, x)[k]]++;
    }
  }
  for (int i = 0; i < g->ninputs; i++) {
    int32_t id = g->inputs[i];
    p->state[id] = BE_S_MAT;
    p->buf_of[id] = add_buf(p, BE_BUF_INPUT, id, i);
  }
  for (int32_t id = 0; id < nn; id++) {
    const tl_node *x = &g->nodes[id];
    if (!live[id] || x->op == TL_OP_INPUT) continue;
    if (x->type.dtype >= TL_DTYPE_COUNT) return unsupported(g, id, err, n);
    const int32_t *in = tl_node_inputs(g, x);
    switch (x->op) {
    case TL_OP_CONST:
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = add_buf(p, BE_BUF_CONST, id, -1);
      break;
    case TL_OP_RESHAPE:
      materialise(p, in[0]);
      p->state[id] = BE_S_ALIAS;
      p->buf_of[id] = p->buf_of[in[0]];
      break;
    case TL_OP_CONCAT: {
      int b = add_buf(p, BE_BUF_TEMP, id, -1);
      for (int k = 0; k < x->ninputs; k++) {
        be_kern *kk = add_kern(p, BE_K_EW, in[k], b);
        kk->place = id;
        kk->part = k;
      }
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = b;
      break;
    }
    case TL_OP_TAKE:
      materialise(p, in[1]);
      if (!(x->attrs.present & TL_A_AXIS)) materialise(p, in[0]);
      add_kern(p, BE_K_TAKECHECK, id, -1);
      p->state[id] = BE_S_INLINE;
      break;
    case TL_OP_MATMUL: {
      /* BLAS needs contiguous operands of the result dtype */
      int32_t ob[2];
      for (int k = 0; k < 2; k++) {
        const tl_node *o = &g->nodes[in[k]];
        if (o->type.dtype != x->type.dtype) {
          ob[k] = add_buf(p, BE_BUF_TEMP, in[k], -1);
          p->bufs[ob[k]].dtype = x->type.dtype;
          add_kern(p, BE_K_EW, in[k], ob[k]);
        } else {
          materialise(p, in[k]);
          ob[k] = p->buf_of[in[k]];
        }
      }
      int b = add_buf(p, BE_BUF_TEMP, id, -1);
      be_kern *kk = add_kern(p, BE_K_MATMUL, id, b);
      kk->opbuf[0] = ob[0];
      kk->opbuf[1] = ob[1];
      free(kk->reads);
      kk->reads = tl_xmalloc(2 * sizeof *kk->reads);
      kk->reads[0] = ob[0];
      kk->reads[1] = ob[1];
      kk->nreads = 2;
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = b;
      break;
    }
    default:
      switch (tl_ops[x->op].kind) {
      case TL_KIND_REDUCTION: {
        int b = add_buf(p, BE_BUF_TEMP, id, -1);
        add_kern(p, x->op == TL_OP_SOFTMAX || x->op == TL_OP_LOG_SOFTMAX ? BE_K_SOFTMAX : BE_K_RED,
                 id, b);
        p->state[id] = BE_S_MAT;
        p->buf_of[id] = b;
        break;
      }
      case TL_KIND_ELEMWISE: case TL_KIND_SHAPE: case TL_KIND_CONSTANT:
        p->state[id] = BE_S_INLINE;
        if (p->uses[id] > 1 && computes(p, id)) materialise(p, id);
        break;
      default:
        free(live);
        return unsupported(g, id, err, n);
      }
    }
  }
  free(live);
  /* outputs: a kernel writes straight into the caller's tensor when it can */
  bool *claimed = tl_xcalloc((size_t)p->nbufs + 1, 1);
  for (int i = 0; i < g->noutputs; i++) {
    int32_t x = g->outputs[i].node;
    int32_t b = p->state[x] == BE_S_MAT ? p->buf_of[x] : -1;
    if (b >= 0 && p->bufs[b].kind == BE_BUF_TEMP && p->bufs[b].node == x && !claimed[b] &&
        p->bufs[b].dtype == g->nodes[x].type.dtype) {
      p->bufs[b].kind = BE_BUF_OUTPUT;
      p->bufs[b].index = i;
      claimed[b] = true;
      p->out_buf[i] = b;
    } else {
      int nb = add_buf(p, BE_BUF_OUTPUT, x, i);
      add_kern(p, BE_K_EW, x, nb);
      p->out_buf[i] = nb;
      claimed = tl_xrealloc(claimed, (size_t)p->nbufs + 1);
      claimed[nb] = true;
    }
  }
  free(claimed);
  return 0;
}

void be_plan_free(be_plan *p) {
  for (int i = 0; i < p->nks; i++) free(p->ks[i].reads);
  free(p->state);
  free(p->buf_of);
  free(p->uses);
  free(p->bufs);
  free(p->ks);
  free(p->out_buf);
  memset(p, 0, sizeof *p);
}
