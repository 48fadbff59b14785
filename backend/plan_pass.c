/* plan_pass.c - one pass over a matrix for a product and its transpose's.
 *
 * A gradient step of a linear model reads its data matrix X [n d] twice:
 * z = X w (forward), then g = X^T r (the weights' gradient) with r an
 * elementwise function of z, row by row (logistic regression: r = (sigmoid(z)
 * - y) / n). Both products stream X from memory; run over blocks of rows,
 * each block's z, r and its share of g are computed while the block is still
 * in cache, so X is read from memory once (measured in docs/backend.md,
 * "One pass over a matrix").
 *
 * Such a group is kernels ks[lo..hi] of the plan: ks[lo] the product
 * X @ w (one column, X not transposed), ks[hi] the product X^T r (or r^T X)
 * over the same buffer X, and between them elementwise kernels over rows
 * of n (each output [n] or [n 1 ..]) that read what the group writes only
 * at their own row (elementwise ops, expand_dims, squeeze). A kernel between
 * the two products that is none of these (a reduction of z, say) is moved
 * after the group when nothing in the group reads what it writes and it
 * reads nothing that a later member writes, so the kernels in their new
 * order are still a valid sequential schedule: a consumer of the plan that
 * ignores the grouping (the C peer of bench/backend) stays correct. An
 * index check, a scatter or a control kernel in between keeps the group
 * from forming (each must run where it is). The
 * emitter (lower_pass.c) runs the group as BE_PASS_PARTS parts of rows,
 * each summing its share of g into a row of a partial buffer, and adds
 * those rows in part order after all parts ran: the same sums, in the same
 * order, however many threads took the parts. */
#include "backend/be_internal.h"
#include "util/util.h"

#include <string.h>

/* t is [n] or [n 1 ..]: one element per row of X */
static bool row_typed(const tl_type *t, int64_t n) {
  if (t->rank < 1 || t->dims[0] != n) return false;
  for (int i = 1; i < t->rank; i++)
    if (t->dims[i] != 1) return false;
  return true;
}

static bool in_set(const int32_t *s, int ns, int32_t b) {
  for (int i = 0; i < ns; i++)
    if (s[i] == b) return true;
  return false;
}

/* Does every load of a buffer in `written` under node id happen at the
 * row being computed? aligned: the path from the kernel's root to id keeps
 * the row (row-typed values through elementwise ops and row-preserving
 * shape ops). def: id is the kernel's root, computed rather than loaded. */
static bool reads_at_row(const be_plan *p, int32_t id, bool def, bool aligned, int64_t n, const int32_t *written,
                         int nw, int depth) {
  const tl_graph *g = p->g;
  const tl_node *x = &g->nodes[id];
  aligned = aligned && row_typed(&x->type, n);
  if (!def && (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS))
    return aligned || !in_set(written, nw, p->buf_of[id]);
  if (p->state[id] != BE_S_INLINE && !def) return false;
  if (depth > BE_FUSE_MAX_OPS + 1) return false;
  bool keeps = tl_ops[x->op].kind == TL_KIND_ELEMWISE || x->op == TL_OP_EXPAND_DIMS || x->op == TL_OP_SQUEEZE;
  for (int i = 0; i < x->ninputs; i++)
    if (!reads_at_row(p, tl_node_inputs(g, x)[i], false, aligned && keeps, n, written, nw, depth + 1)) return false;
  return true;
}

static bool reads_buf(const be_kern *k, int32_t b) {
  for (int i = 0; i < k->nreads; i++)
    if (k->reads[i] == b) return true;
  return false;
}

static bool float_product(const be_plan *p, const be_kern *k) {
  int dt = p->g->nodes[k->node].type.dtype;
  return k->kind == BE_K_MATMUL && (dt == TL_F32 || dt == TL_F64) && !k->uniform[0] && !k->uniform[1];
}

/* ks[a] is z = X @ w: X [n d] read as stored, w [d] or [d 1], z one per row.
 * Sets *X and *n. */
static bool head_product(const be_plan *p, const be_kern *k, int32_t *X, int64_t *n) {
  if (!float_product(p, k) || k->trans[0] || k->trans[1]) return false;
  const tl_graph *g = p->g;
  const int32_t *in = tl_node_inputs(g, &g->nodes[k->node]);
  const tl_type *at = &g->nodes[in[0]].type, *bt = &g->nodes[in[1]].type;
  if (at->rank != 2 || !(bt->rank == 1 || (bt->rank == 2 && bt->dims[1] == 1))) return false;
  if (!row_typed(&g->nodes[k->node].type, at->dims[0])) return false;
  *X = k->opbuf[0];
  *n = at->dims[0];
  return k->out != k->opbuf[0] && k->out != k->opbuf[1];
}

/* ks[b] is g = X^T r (X's buffer read transposed, r [n] or [n 1]) or
 * r^T X (r [n] or [1 n], X read as stored), over the head's X. */
static bool tail_product(const be_plan *p, const be_kern *k, int32_t X, int64_t n) {
  if (!float_product(p, k)) return false;
  const tl_graph *g = p->g;
  const int32_t *in = tl_node_inputs(g, &g->nodes[k->node]);
  const tl_type *at = &g->nodes[in[0]].type, *bt = &g->nodes[in[1]].type;
  if (k->trans[0] && !k->trans[1] && k->opbuf[0] == X)
    return at->rank == 2 && at->dims[1] == n && (bt->rank == 1 || (bt->rank == 2 && bt->dims[1] == 1)) &&
           bt->dims[0] == n && k->out != X;
  if (!k->trans[0] && !k->trans[1] && k->opbuf[1] == X)
    return bt->rank == 2 && bt->dims[0] == n &&
           ((at->rank == 1 && at->dims[0] == n) || (at->rank == 2 && at->dims[0] == 1 && at->dims[1] == n)) &&
           k->out != X;
  return false;
}

/* Tries ks[a] as a group's head; on success reorders ks[a..] and marks the
 * group. Returns the group's last index, or -1. */
static int try_group(be_plan *p, int a) {
  int32_t X;
  int64_t n;
  if (!head_product(p, &p->ks[a], &X, &n)) return -1;
  int32_t wbuf = p->ks[a].opbuf[1];
  int b = a + 1;
  for (; b < p->nks; b++) {
    const be_kern *k = &p->ks[b];
    /* an index check stays before the kernels that gather with its
     * indices: it cannot be moved after the group */
    if (k->kind == BE_K_CONTROL || k->kind == BE_K_SCATTER || k->kind == BE_K_TAKECHECK) return -1;
    if (tail_product(p, k, X, n)) break;
  }
  if (b >= p->nks) return -1;
  int m = b - a + 1;
  bool *member = tl_xcalloc((size_t)m, 1);
  int32_t *written = tl_xmalloc((size_t)m * sizeof *written), *moved_out = tl_xmalloc((size_t)m * sizeof *moved_out);
  int nw = 0, nmo = 0;
  member[0] = member[m - 1] = true;
  written[nw++] = p->ks[a].out;
  bool ok = true;
  for (int j = a + 1; j < b; j++) {
    const be_kern *k = &p->ks[j];
    bool mem = k->kind == BE_K_EW && k->place < 0 && row_typed(&p->g->nodes[k->node].type, n) &&
               p->bufs[k->out].rank == p->g->nodes[k->node].type.rank && k->out != X && k->out != wbuf;
    for (int q = 0; mem && q < nmo; q++) mem = !reads_buf(k, moved_out[q]) && k->out != moved_out[q];
    if (mem) {
      bool own = p->buf_of[k->node] == k->out && p->state[k->node] == BE_S_MAT;
      mem = reads_at_row(p, k->node, own, true, n, written, nw, 0);
    }
    /* what it writes is read by no earlier member (it would overwrite rows
     * of the next block before they were read) */
    for (int i = a; mem && i < j; i++)
      if (member[i - a] && reads_buf(&p->ks[i], k->out)) mem = false;
    member[j - a] = mem;
    if (mem) written[nw++] = k->out;
    else if (k->out >= 0) moved_out[nmo++] = k->out;
  }
  /* the tail reads nothing a moved kernel writes; a moved kernel's
   * buffers are untouched by the members after it */
  const be_kern *t = &p->ks[b];
  for (int q = 0; ok && q < nmo; q++) ok = !reads_buf(t, moved_out[q]) && t->out != moved_out[q];
  for (int j = a + 1; ok && j < b; j++) {
    if (member[j - a]) continue;
    const be_kern *k = &p->ks[j];
    for (int i = j + 1; ok && i <= b; i++) {
      if (!member[i - a]) continue;
      const be_kern *l = &p->ks[i];
      if (k->out >= 0 && (l->out == k->out || reads_buf(l, k->out))) ok = false;
      for (int r = 0; ok && r < k->nreads; r++)
        if (k->reads[r] == l->out) ok = false;
    }
  }
  int last = -1;
  if (ok) {
    be_kern *tmp = tl_xmalloc((size_t)m * sizeof *tmp);
    int nm = 0;
    for (int j = 0; j < m; j++)
      if (member[j]) tmp[nm++] = p->ks[a + j];
    last = a + nm - 1;
    for (int j = 0, q = nm; j < m; j++)
      if (!member[j]) tmp[q++] = p->ks[a + j];
    memcpy(&p->ks[a], tmp, (size_t)m * sizeof *tmp);
    tl_free(tmp);
    /* the parts' sums of the tail's product: [parts d] */
    const tl_type *xt = &p->g->nodes[tl_node_inputs(p->g, &p->g->nodes[p->ks[a].node])[0]].type;
    /* two rows per part: room for each part's row padded to lines
     * (lower_pass.c) */
    tl_type pt = {.dtype = p->g->nodes[p->ks[last].node].type.dtype, .rank = 2,
                  .dims = {2 * BE_PASS_PARTS, xt->dims[1]}};
    int32_t pb = be_plan_add_buf(p, BE_BUF_TEMP, p->ks[last].node, -1, &pt);
    for (int j = a; j <= last; j++) {
      p->ks[j].pass_lo = a;
      p->ks[j].pass_hi = last;
    }
    p->ks[a].pass_part = pb;
  }
  tl_free(member);
  tl_free(written);
  tl_free(moved_out);
  return last;
}

void be_plan_passes(be_plan *p) {
  for (int a = 0; a < p->nks; a++) {
    int last = try_group(p, a);
    if (last > a) a = last;
  }
}
