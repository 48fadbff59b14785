/* gk_matmul.c - the project's own matmul kernel (gb.h): C = A B over
 * broadcast batch dims, for every dtype. The runtime calls cuBLAS instead
 * for f32 and f64 where libcublas is there (gpurt.c); this kernel is what
 * the emulator runs, what an AOT launcher runs without cuBLAS, and the
 * only one for integers and bools.
 *
 * Classic shared-memory tiling: a block of 16 x 16 threads computes one
 * 16 x 16 tile of C; for each 16-wide slice of K every thread loads one
 * element of A's and of B's tile into shared memory, a barrier, 16
 * multiply-adds from shared memory, a barrier. Loads past the matrix edge
 * read a clamped index and are replaced by 0, so no thread branches
 * around a barrier. Tiles (batch x rows x columns) are distributed
 * block-stride. The operands' buffers are in the result dtype (the plan
 * converts them); trans[q] says operand q's buffer holds it with its last
 * two dims swapped (be_kern.trans). f32 and f64 accumulate in their own
 * dtype with fused multiply-adds (as BLAS does), integers and bools in i64. */
#include "gpu/gb.h"


enum { T = 16 };

int gb_k_matmul(gb *b, const be_kern *kk) {
  gk_kernel *k = b->k;
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[kk->node];
  int dt = n->type.dtype;
  be_matmul_shape m;
  be_matmul_shape_of(g, n, &m);
  const int64_t *ad = m.ad, *bd = m.bd, *bdims = m.bdims;
  int ar = m.ar, br = m.br, nbr = m.nbr;
  int32_t M = gb_dim(b, ad[ar - 2]), K = gb_dim(b, ad[ar - 1]), N = gb_dim(b, bd[br - 1]);
  int32_t bdv[TL_MAX_RANK], ast[TL_MAX_RANK], bst[TL_MAX_RANK], ost[TL_MAX_RANK];
  for (int i = 0; i < nbr; i++) bdv[i] = gb_dim(b, bdims[i]);
  int32_t s = gk_i64(k, 1); /* each operand's batch stride (in matrices) */
  for (int i = nbr - 1; i >= 0; i--) {
    ast[i] = m.abat[i] < 0 ? gk_i64(k, 0) : s;
    if (m.abat[i] >= 0) s = gk_mul(k, s, gb_dim(b, ad[m.abat[i]]));
  }
  s = gk_i64(k, 1);
  for (int i = nbr - 1; i >= 0; i--) {
    bst[i] = m.bbat[i] < 0 ? gk_i64(k, 0) : s;
    if (m.bbat[i] >= 0) s = gk_mul(k, s, gb_dim(b, bd[m.bbat[i]]));
  }
  gb_strides(b, nbr, bdims, ost);
  int32_t MK = gk_mul(k, M, K), KN = gk_mul(k, K, N), MN = gk_mul(k, M, N);
  /* launch: one block per tile */
  gk_launch *l = &k->launch;
  l->nwork = 2 + nbr;
  l->work[0] = ad[ar - 2];
  l->wdiv[0] = T;
  l->work[1] = bd[br - 1];
  l->wdiv[1] = T;
  for (int i = 0; i < nbr; i++) l->work[2 + i] = bdims[i];
  l->per_block = 1;
  int32_t one = gk_i64(k, 1), t16 = gk_i64(k, T);
  int32_t tm = gk_bin_v(k, GK_SDIV, gk_add(k, M, gk_i64(k, T - 1)), t16);
  int32_t tn = gk_bin_v(k, GK_SDIV, gk_add(k, N, gk_i64(k, T - 1)), t16);
  int32_t ntiles = gk_mul(k, tm, tn), total = ntiles;
  for (int i = 0; i < nbr; i++) total = gk_mul(k, total, bdv[i]);
  bool ints = dt != TL_F32 && dt != TL_F64;
  gk_ty acc_t = ints ? GK_I64 : gk_ty_of_dtype(dt);
  int32_t As = gk_shm(k, acc_t, T * T), Bs = gk_shm(k, acc_t, T * T);
  int32_t tid = gk_sreg_v(k, GK_TID);
  int32_t tx = gk_bin_v(k, GK_AND, tid, gk_i64(k, T - 1)), ty = gk_bin_v(k, GK_ASHR, tid, gk_i64(k, 4));
  int32_t tv = gk_var(k, GK_I64), kv = gk_var(k, GK_I64), qv = gk_var(k, GK_I64), acc = gk_var(k, acc_t);
  gk_loop(k, tv, gk_sreg_v(k, GK_CTAID), total, gk_sreg_v(k, GK_NCTAID));
  int32_t t = gk_get(k, tv);
  int32_t bt_ = gk_bin_v(k, GK_SDIV, t, ntiles), rem = gk_bin_v(k, GK_SREM, t, ntiles);
  int32_t ti = gk_bin_v(k, GK_SDIV, rem, tn), tj = gk_bin_v(k, GK_SREM, rem, tn);
  int32_t biv[TL_MAX_RANK];
  gb_decompose(b, bt_, nbr, bdv, biv);
  int32_t ao = gk_mul(k, gb_offset(b, nbr, ast, biv), MK);
  int32_t bo = gk_mul(k, gb_offset(b, nbr, bst, biv), KN);
  int32_t co = gk_mul(k, gb_offset(b, nbr, ost, biv), MN);
  int32_t row = gk_add(k, gk_mul(k, ti, t16), ty), col = gk_add(k, gk_mul(k, tj, t16), tx);
  int32_t zero = ints ? gk_i64(k, 0) : gk_cf(k, acc_t, 0);
  gk_set(k, acc, zero);
  int32_t Mm1 = gk_bin_v(k, GK_SUB, M, one), Km1 = gk_bin_v(k, GK_SUB, K, one), Nm1 = gk_bin_v(k, GK_SUB, N, one);
  int32_t rowc = gk_select(k, gk_icmp_v(k, GK_ISLT, row, M), row, Mm1);
  int32_t colc = gk_select(k, gk_icmp_v(k, GK_ISLT, col, N), col, Nm1);
  gk_loop(k, kv, gk_i64(k, 0), K, t16);
  int32_t k0 = gk_get(k, kv);
  int32_t ka = gk_add(k, k0, tx), kb = gk_add(k, k0, ty);
  int32_t okA = gk_bin_v(k, GK_AND, gk_icmp_v(k, GK_ISLT, row, M), gk_icmp_v(k, GK_ISLT, ka, K));
  int32_t okB = gk_bin_v(k, GK_AND, gk_icmp_v(k, GK_ISLT, kb, K), gk_icmp_v(k, GK_ISLT, col, N));
  int32_t kac = gk_select(k, gk_icmp_v(k, GK_ISLT, ka, K), ka, Km1);
  int32_t kbc = gk_select(k, gk_icmp_v(k, GK_ISLT, kb, K), kb, Km1);
  int32_t aoff = gk_add(k, ao, kk->trans[0] ? gk_add(k, gk_mul(k, kac, M), rowc) : gk_add(k, gk_mul(k, rowc, K), kac));
  int32_t boff = gk_add(k, bo, kk->trans[1] ? gk_add(k, gk_mul(k, colc, K), kbc) : gk_add(k, gk_mul(k, kbc, N), colc));
  int32_t av = gb_conv(b, gk_load(k, kk->opbuf[0], dt, aoff), dt, ints ? TL_I64 : dt);
  int32_t bv = gb_conv(b, gk_load(k, kk->opbuf[1], dt, boff), dt, ints ? TL_I64 : dt);
  int32_t slot = gk_add(k, gk_mul(k, ty, t16), tx);
  gk_shstore(k, As, slot, gk_select(k, okA, av, zero));
  gk_shstore(k, Bs, slot, gk_select(k, okB, bv, zero));
  gk_barrier(k);
  gk_loop(k, qv, gk_i64(k, 0), t16, one);
  int32_t q = gk_get(k, qv);
  int32_t x = gk_shload(k, As, gk_add(k, gk_mul(k, ty, t16), q));
  int32_t y = gk_shload(k, Bs, gk_add(k, gk_mul(k, q, t16), tx));
  int32_t a = gk_get(k, acc);
  gk_set(k, acc, ints ? gk_add(k, a, gk_mul(k, x, y)) : gk_intr_v(k, GK_FMA, x, y, a));
  gk_end(k);
  gk_barrier(k);
  gk_end(k);
  gk_if(k, gk_bin_v(k, GK_AND, gk_icmp_v(k, GK_ISLT, row, M), gk_icmp_v(k, GK_ISLT, col, N)));
  int32_t r = gk_get(k, acc);
  r = dt == TL_BOOL ? gk_icmp_v(k, GK_INE, r, gk_i64(k, 0)) : gb_conv(b, r, ints ? TL_I64 : dt, dt);
  gk_store(k, kk->out, dt, gk_add(k, co, gk_add(k, gk_mul(k, row, N), col)), r);
  gk_end(k);
  gk_end(k);
  return b->failed ? -1 : 0;
}
