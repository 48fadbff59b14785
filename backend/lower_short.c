/* lower_short.c - softmax and log_softmax over the last axis when a row
 * is at most four vectors (VW lanes: 16 f32 or 8 f64 with AVX-512): rows
 * held in vector registers or in blocks on the stack.
 *
 * Why: the row passes of lower_rows.c vectorise along a row. A symbolic
 * length of 8 ran them scalar (log_softmax over [2048 8]: 0.13x the
 * per-element speed of rows of 1024); a known one, unrolled and
 * vectorised across rows (an interleaved load group per pass), 0.57x;
 * rows of 16, 0.36-0.40x; rows of 10, 0.37-0.40x.
 *
 * A known length d (2 to VW) takes blocks of VW rows: d vectors of memory
 * are transposed in registers into d columns (lane r: row r's element j),
 * so that a row's max and sums are d - 1 elementwise ops across columns
 * and the log runs once per row; the transposes are all that is added
 * (a power of two: log2(d) stages of d two-input shuffles each way; other
 * lengths: a chain of shuffles per vector over the vectors it draws
 * from; log_softmax transposes only in, and writes each output vector as
 * its input vector less its lanes' rows' shift and log: rows_write). Rows
 * shorter than 8 take two blocks at a time, their steps interleaved
 * (blocks_n). With AVX-512, a length that is not a power of two above
 * VW / 2 is padded instead: each row is a masked load of d lanes and the
 * block a VW x VW transpose (padded()). A known length from VW + 1 to 4 VW takes
 * flat blocks (flat_block): the block's d vectors as they lie in memory
 * for the exponentials, each row's vectors for its max and sum, the rows'
 * results gathered by a halving tree (rows_across). Either kind of block
 * is one copy of code with plain loads and stores; the last rows (fewer
 * than VW) are copied into a block on the stack and back (staged_blocks).
 *
 * A symbolic length takes, behind a run-time test, with AVX2 or AVX-512
 * padded blocks (3 to VW / 2: rows padded to a power of two P, transposed
 * as a known length P, loops over the columns: sym_block), flat blocks
 * (the other lengths up to 4 VW, each row's vectors by a loop, the
 * images' indices computed once a call) or chunks (1 and 2); without
 * AVX2, chunks (powers of two up to VW). Other lengths take the row
 * passes. In a chunk, one
 * vector holds VW/d whole rows, each reduced by a segmented butterfly
 * (steps of "combine with the lane whose index differs in bit s", the
 * partner always in the same row, each step selected by whether it is
 * inside the row), every lane then holding its row's max or sum. Each
 * way one copy of code serves many lengths, where the transposed blocks
 * would need one per length.
 *
 * Sums and means over short rows are lower_sums.c's; lower_short.h holds
 * what both share (the block of rows, vector helpers, the halving tree,
 * groups and staged blocks).
 *
 * Either way each element is read and written once. The numbers are the
 * row passes': the shift (the max when finite), the terms equal to it
 * counted apart, lw_sumexp_log's log1p form, NaN and inf rows; only the
 * order of the additions differs. The input is read from its buffer when
 * it is one (the same shape and dtype); an input that computes anything,
 * converts or reads another layout is first written into the output by a
 * loop over the thread's rows, and the blocks work in place there. */
#include "backend/lower_short.h"

#include <math.h>
#include <string.h>

static LLVMValueRef cmask(em *e, const int *m, int n) {
  LLVMValueRef a[64];
  for (int i = 0; i < n; i++) a[i] = m[i] < 0 ? LLVMGetPoison(e->i32) : LLVMConstInt(e->i32, (unsigned)m[i], 0);
  return LLVMConstVector(a, (unsigned)n);
}

LLVMValueRef sr_splat_n(em *e, LLVMValueRef c, int n) {
  LLVMValueRef a[64];
  for (int i = 0; i < n; i++) a[i] = c;
  return LLVMConstVector(a, (unsigned)n);
}

/* ---- chunks with segmented butterflies (a symbolic length) ----------------- */

/* v reduced within each row (its d lanes), the result in every lane */
static LLVMValueRef butterfly(em *e, const srow *s, LLVMValueRef v, bool max) {
  int m[64];
  for (int i = 0, st = 1; st < s->W; st <<= 1, i++) {
    for (int l = 0; l < s->W; l++) m[l] = l ^ st;
    LLVMValueRef u = LLVMBuildShuffleVector(e->b, v, LLVMGetPoison(s->vt), cmask(e, m, s->W), "");
    LLVMValueRef r = max ? lw_intr2(e, "llvm.maxnum", v, u) : LLVMBuildFAdd(e->b, v, u, "");
    v = sel(e, s->step[i], r, v);
  }
  return v;
}

static LLVMValueRef masked(em *e, bool load, LLVMTypeRef vt, LLVMValueRef ptr, LLVMValueRef val, LLVMValueRef mask,
                           unsigned align) {
  const char *name = load ? "llvm.masked.load" : "llvm.masked.store";
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef tys[2] = {vt, e->ptr};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, tys, 2);
  LLVMTypeRef ft = LLVMIntrinsicGetType(e->cx, id, tys, 2);
  LLVMValueRef al = LLVMConstInt(e->i32, align, 0);
  if (load) return LLVMBuildCall2(e->b, ft, f, (LLVMValueRef[]){ptr, al, mask, val}, 4, "");
  return LLVMBuildCall2(e->b, ft, f, (LLVMValueRef[]){val, ptr, al, mask}, 4, "");
}

/* A vector load at p: masked (masked-off lanes 0) when mask, else plain. */
LLVMValueRef sr_vload(em *e, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef mask, unsigned al) {
  if (mask) return masked(e, true, vt, p, LLVMConstNull(vt), mask, al);
  LLVMValueRef x = LLVMBuildLoad2(e->b, vt, p, "");
  LLVMSetAlignment(x, al);
  return x;
}

/* A vector store of v at p: masked when mask, else plain. */
void sr_vstore(em *e, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef v, LLVMValueRef mask, unsigned al) {
  if (mask) {
    masked(e, false, vt, p, v, mask, al);
    return;
  }
  LLVMValueRef st = LLVMBuildStore(e->b, v, p);
  LLVMSetAlignment(st, al);
}

/* the value v in all n lanes */
LLVMValueRef sr_splat_v(em *e, LLVMValueRef v, int n) {
  int z[64] = {0};
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), (unsigned)n);
  LLVMValueRef sp = LLVMBuildInsertElement(e->b, LLVMGetPoison(vt), v, LLVMConstInt(e->i32, 0, 0), "");
  return LLVMBuildShuffleVector(e->b, sp, LLVMGetPoison(vt), cmask(e, z, n), "");
}

/* lanes [0, n) of W (n: i64) */
LLVMValueRef sr_lanes_below(em *e, int W, LLVMValueRef n) {
  int m[64];
  for (int i = 0; i < W; i++) m[i] = i;
  return icmp(e, LLVMIntULT, cmask(e, m, W), sr_splat_v(e, LLVMBuildTrunc(e->b, n, e->i32, ""), W));
}

/* The lanes of the vector starting at element start (i64) that hold one
 * of the first n elements (i64). */
LLVMValueRef sr_lanes_from(em *e, int W, LLVMValueRef n, LLVMValueRef start) {
  LLVMValueRef k = LLVMBuildSub(e->b, n, start, "");
  return sr_lanes_below(e, W, sel(e, icmp(e, LLVMIntSLT, k, ci(e, 0)), ci(e, 0), k));
}

/* The chunk of rows at element offset off, n of its elements (i64; NULL:
 * all W) */
static void chunk(em *e, const srow *s, LLVMValueRef off, LLVMValueRef n) {
  int dt = s->dt, W = s->W;
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)dt);
  LLVMValueRef pin = LLVMBuildInBoundsGEP2(e->b, s->et, s->src, &off, 1, "");
  LLVMValueRef pout = LLVMBuildInBoundsGEP2(e->b, s->et, s->dst, &off, 1, "");
  LLVMValueRef zero = sr_splat_n(e, cf(e, dt, 0), W), one = sr_splat_n(e, cf(e, dt, 1), W);
  LLVMValueRef mask = n ? sr_lanes_below(e, W, n) : NULL;
  LLVMValueRef x = sr_vload(e, s->vt, pin, mask, al);
  /* the row passes' shift: the max when finite (or NaN: a NaN row stays
   * NaN), else 0. maxnum skips a NaN, whose exp then makes the row's sum
   * NaN; a row of NaNs has a NaN max. */
  LLVMValueRef mx = butterfly(e, s, x, true);
  LLVMValueRef nan = fcmp(e, LLVMRealUNO, mx, mx);
  LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", mx), sr_splat_n(e, cf(e, dt, INFINITY), W));
  LLVMValueRef sh = sel(e, LLVMBuildOr(e->b, fin, nan, ""), mx, zero);
  LLVMValueRef v = LLVMBuildFSub(e->b, x, sh, "");
  LLVMValueRef eq = fcmp(e, LLVMRealOEQ, x, sh);
  LLVMValueRef t = lw_m1(e, "exp", dt, v);
  LLVMValueRef ties = butterfly(e, s, sel(e, eq, one, zero), false);
  LLVMValueRef sum = butterfly(e, s, sel(e, eq, zero, t), false);
  LLVMValueRef y;
  if (s->soft)
    y = LLVMBuildFMul(e->b, t, LLVMBuildFDiv(e->b, one, LLVMBuildFAdd(e->b, sum, ties, ""), ""), "");
  else
    y = LLVMBuildFSub(e->b, v, lw_sumexp_log(e, dt, fin, sum, ties), "");
  sr_vstore(e, s->vt, pout, y, mask, al);
}

/* Rows [r0, r1) in groups of per rows (i64), dv the row length: fn(off,
 * n) for each group at element offset off, n its elements when the group
 * may be partial (NULL: whole). With AVX-512 every group is masked (a
 * masked load or store costs what a plain one does there, and the kernel
 * holds one copy of the group's code) unless whole; else, or when whole,
 * whole groups, then one partial group. */
void sr_groups(em *e, const srow *s, LLVMValueRef r0, LLVMValueRef r1, LLVMValueRef per, LLVMValueRef dv, group_fn *fn,
               bool whole) {
  LLVMValueRef n = LLVMBuildSub(e->b, r1, r0, "");
  bool all = e->avx512 && !whole;
  LLVMValueRef ng =
      LLVMBuildUDiv(e->b, all ? LLVMBuildAdd(e->b, n, LLVMBuildSub(e->b, per, ci(e, 1), ""), "") : n, per, "");
  loop l;
  LLVMValueRef g = lw_loop_open(e, &l, ci(e, 0), ng, 0, NULL);
  l.ic = -1; /* whole vectors already */
  LLVMValueRef first = LLVMBuildMul(e->b, g, per, ""), left = LLVMBuildSub(e->b, n, first, "");
  left = sel(e, icmp(e, LLVMIntSLT, left, per), left, per);
  fn(e, s, LLVMBuildMul(e->b, LLVMBuildAdd(e->b, r0, first, ""), dv, ""),
     all ? LLVMBuildMul(e->b, left, dv, "") : NULL);
  lw_loop_close(e, &l, NULL);
  if (all) return;
  LLVMValueRef done = LLVMBuildMul(e->b, ng, per, ""), rest = LLVMBuildSub(e->b, n, done, "");
  LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(e->cx, e->fn, "srtail");
  LLVMBasicBlockRef out = LLVMAppendBasicBlockInContext(e->cx, e->fn, "srdone");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGT, rest, ci(e, 0)), tail, out);
  LLVMPositionBuilderAtEnd(e->b, tail);
  fn(e, s, LLVMBuildMul(e->b, LLVMBuildAdd(e->b, r0, done, ""), dv, ""), LLVMBuildMul(e->b, rest, dv, ""));
  LLVMBuildBr(e->b, out);
  LLVMPositionBuilderAtEnd(e->b, out);
}

/* ---- blocks of rows transposed (a known length) --------------------------- */

/* Rearranges n = 2^k vectors of VW lanes (at: the element id in each
 * lane) so that each element goes to vector tv[id], lane tl[id]: stage s
 * merges vectors v and v ^ 2^s, each keeping the elements whose wanted
 * vector agrees with it in bit s, so that after the last stage every
 * vector holds its own. The stages are simulated on the ids first; false
 * (nothing emitted) if some stage does not split evenly. */
static bool regroup(em *e, LLVMValueRef *val, int n, int VW, int at[MAXV][MAXV], const int *tv, const int *tl) {
  int cur[MAXV][MAXV], nxt[MAXV][MAXV], mask[MAXV][2 * MAXV];
  int stages = 0;
  while ((1 << stages) < n) stages++;
  memcpy(cur, at, sizeof cur);
  int(*plan)[MAXV][MAXV] = tl_xcalloc((size_t)(stages ? stages : 1), sizeof *plan);
  bool ok = true;
  for (int st = 0; st < stages && ok; st++) {
    bool last = st == stages - 1;
    for (int v = 0; v < n && ok; v++) {
      int u = v ^ (1 << st), cnt = 0, a = v < u ? v : u, b = v < u ? u : v;
      for (int l = 0; l < VW; l++) nxt[v][l] = -1;
      for (int side = 0; side < 2; side++)
        for (int l = 0; l < VW; l++) {
          int id = cur[side ? b : a][l];
          if (((tv[id] >> st) & 1) != ((v >> st) & 1)) continue;
          int to = last ? tl[id] : cnt;
          if (cnt >= VW || to < 0 || to >= VW || nxt[v][to] >= 0 || (last && tv[id] != v)) {
            ok = false;
            break;
          }
          cnt++;
          nxt[v][to] = id;
          plan[st][v][to] = side * VW + l;
        }
      ok = ok && cnt == VW;
    }
    memcpy(cur, nxt, sizeof cur);
  }
  if (ok)
    for (int st = 0; st < stages; st++) {
      LLVMValueRef out[MAXV];
      for (int v = 0; v < n; v++) {
        int u = v ^ (1 << st), a = v < u ? v : u, b = v < u ? u : v;
        for (int l = 0; l < VW; l++) mask[v][l] = plan[st][v][l];
        out[v] = LLVMBuildShuffleVector(e->b, val[a], val[b], cmask(e, mask[v], VW), "");
      }
      memcpy(val, out, (size_t)n * sizeof *val);
    }
  tl_free(plan);
  return ok;
}

/* Each of n outputs built lane by lane from the vectors val[] (output o's
 * lane l: vector sv[o][l], lane sl[o][l]): a chain of two-input shuffles
 * over the vectors it draws from, in order of first use. */
static void gather_tree(em *e, LLVMValueRef *val, int n, int VW, int sv[MAXV][MAXV], int sl[MAXV][MAXV]) {
  LLVMValueRef out[MAXV];
  int m[2 * MAXV];
  for (int o = 0; o < n; o++) {
    int src[MAXV], ns = 0;
    for (int l = 0; l < VW; l++) {
      int k = 0;
      while (k < ns && src[k] != sv[o][l]) k++;
      if (k == ns) src[ns++] = sv[o][l];
    }
    LLVMValueRef acc = NULL;
    for (int k = 0; k < ns; k++) {
      if (k == 1) continue; /* taken with the first */
      for (int l = 0; l < VW; l++) {
        int from = sv[o][l];
        m[l] = -1;
        if (k == 0 && from == src[0])
          m[l] = sl[o][l];
        else if (k == 0 && ns > 1 && from == src[1])
          m[l] = VW + sl[o][l];
        else if (k > 0 && from == src[k])
          m[l] = VW + sl[o][l];
        else if (k > 0) { /* filled by an earlier source: keep */
          for (int q = 0; q < k; q++)
            if (from == src[q]) m[l] = l;
        }
      }
      LLVMValueRef a = k ? acc : val[src[0]];
      LLVMValueRef b = k ? val[src[k]] : ns > 1 ? val[src[1]] : LLVMGetPoison(LLVMTypeOf(a));
      acc = LLVMBuildShuffleVector(e->b, a, b, cmask(e, m, VW), "");
    }
    out[o] = acc;
  }
  memcpy(val, out, (size_t)n * sizeof *val);
}

/* Memory vectors to columns (back: columns to memory vectors): a power of
 * two by regroup's stages (log2(d) shuffles per vector), other lengths by
 * gather_tree (up to d - 1 per vector: rows of 10, 9). AVX-512 gathers
 * of each column were the way in for lengths 3, 5, 6, 7 once: the
 * shuffles ran log_softmax over [4000 3] in 7.7 instead of 11.5 us, [3200
 * 5] 10.4 instead of 14.2, [2300 7] 11.0 instead of 14.3 (AOT object, min
 * of 300 x 20 calls, Zen 5), and compiled as fast. */
static void transpose(em *e, LLVMValueRef *val, int d, int VW, bool back) {
  if (!(d & (d - 1))) {
    int at[MAXV][MAXV], tv[MAXV * MAXV], tl[MAXV * MAXV];
    for (int v = 0; v < d; v++)
      for (int l = 0; l < VW; l++) at[v][l] = back ? l * d + v : v * VW + l; /* the element's offset in the block */
    for (int id = 0; id < d * VW; id++) {
      tv[id] = back ? id / VW : id % d;
      tl[id] = back ? id % VW : id / d;
    }
    if (regroup(e, val, d, VW, at, tv, tl)) return;
  }
  int sv[MAXV][MAXV], sl[MAXV][MAXV];
  for (int o = 0; o < d; o++)
    for (int l = 0; l < VW; l++) {
      int p = back ? o * VW + l : l * d + o; /* the element's offset in the block */
      sv[o][l] = back ? p % d : p / VW;
      sl[o][l] = back ? p / d : p % VW;
    }
  gather_tree(e, val, d, VW, sv, sl);
}

/* Rows of a length d that is not a power of two, above VW / 2, with
 * AVX-512: each row a masked load of d lanes, the block a VW x VW
 * transpose (regroup's stages), and back the same way to masked stores.
 * Against gathers of each column, log_softmax over [1600 10] (f32: VW 16)
 * ran in 0.012-0.013 instead of 0.016 ms (0.61-0.69x the per-element speed
 * of rows of 1000 instead of 0.45-0.53x; bench-backend --shapes --reps
 * 100, alternating, Zen 5), the kernel's compile unchanged (21.3-21.8 ms,
 * min of 7). Shorter rows would waste most of each row's vector: they
 * take transpose()'s shuffles. */
static bool padded(int d, int VW, bool avx512) { return avx512 && (d & (d - 1)) && 2 * d > VW && d <= VW; }

/* v[0..n) combined by maxnum (max) or fadd as a balanced tree (v is
 * overwritten): log2(n) dependent steps instead of n - 1 */
static LLVMValueRef pairwise(em *e, LLVMValueRef *v, int n, bool max) {
  for (; n > 1; n = (n + 1) / 2)
    for (int i = 0; i < n / 2; i++) {
      LLVMValueRef a = v[2 * i], b = v[2 * i + 1];
      v[i] = max ? lw_intr2(e, "llvm.maxnum", a, b) : LLVMBuildFAdd(e->b, a, b, "");
      if (n % 2 && i == n / 2 - 1) v[i + 1] = v[n - 1];
    }
  return v[0];
}

/* log_softmax's block written as its rows lie: each output vector is its
 * input vector (read again) minus the shift and the log of the row of each
 * lane, the same two subtractions as in the columns (so the same values)
 * without the transpose back (log2(d) stages of d two-input shuffles for
 * a power of two d, a VW x VW transpose for padded rows). Vectors of whole
 * rows (rd NULL: vector i at element off + i VW) take the lanes' shifts
 * and logs out of sh and post (lane r: row r) by one single-source shuffle
 * each; a row in a vector of its own (rd[r]: its offset, mask: its lanes)
 * takes them broadcast from a stack copy of sh and post, a load where a
 * shuffle of the register would compete with the block's others. */
static void rows_write(em *e, const srow *s, LLVMValueRef off, LLVMValueRef sh, LLVMValueRef post,
                       const LLVMValueRef *rd, LLVMValueRef mask) {
  int VW = s->W;
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)s->dt);
  LLVMTypeRef vt = LLVMVectorType(s->et, (unsigned)VW);
  LLVMValueRef stack = NULL;
  if (rd) {
    stack = LLVMBuildAlloca(e->pre, LLVMArrayType2(s->et, (uint64_t)(2 * VW)), "rowpost");
    LLVMSetAlignment(stack, 64);
    sr_vstore(e, vt, stack, sh, NULL, 64);
    sr_vstore(e, vt, LLVMBuildInBoundsGEP2(e->b, s->et, stack, (LLVMValueRef[]){ci(e, VW)}, 1, ""), post, NULL, 64);
  }
  int m[64];
  for (int i = 0; i < (rd ? VW : (int)s->d); i++) {
    LLVMValueRef ps, pp, o = rd ? rd[i] : LLVMBuildAdd(e->b, off, ci(e, (int64_t)i * VW), "");
    if (rd) {
      LLVMValueRef a =
          LLVMBuildLoad2(e->b, s->et, LLVMBuildInBoundsGEP2(e->b, s->et, stack, (LLVMValueRef[]){ci(e, i)}, 1, ""), "");
      LLVMValueRef b = LLVMBuildLoad2(
          e->b, s->et, LLVMBuildInBoundsGEP2(e->b, s->et, stack, (LLVMValueRef[]){ci(e, VW + i)}, 1, ""), "");
      ps = sr_splat_v(e, a, VW);
      pp = sr_splat_v(e, b, VW);
    } else {
      for (int l = 0; l < VW; l++) m[l] = (i * VW + l) / (int)s->d; /* the row of lane l */
      LLVMValueRef im = cmask(e, m, VW);
      ps = LLVMBuildShuffleVector(e->b, sh, LLVMGetPoison(vt), im, "");
      pp = LLVMBuildShuffleVector(e->b, post, LLVMGetPoison(vt), im, "");
    }
    /* not inbounds for a row of its own: its masked-off lanes may lie past the buffer */
    LLVMValueRef sp = LLVMBuildGEP2(e->b, s->et, s->src, &o, 1, ""), dp = LLVMBuildGEP2(e->b, s->et, s->dst, &o, 1, "");
    LLVMValueRef x = sr_vload(e, vt, sp, rd ? mask : NULL, al);
    sr_vstore(e, vt, dp, LLVMBuildFSub(e->b, LLVMBuildFSub(e->b, x, ps, ""), pp, ""), rd ? mask : NULL, al);
  }
}

/* nb blocks of VW whole rows, block b at element offset off + b VW d
 * (staged_blocks stages a partial last group). The blocks' steps are
 * interleaved, the exp calls of all blocks' columns side by side and then
 * their logs: one block is a chain of dependent steps (transpose, max,
 * exps, sum, log, write) that the core ran one block after another, the
 * next block's loads waiting behind the calls of this one's; two chains
 * side by side overlap. In C (rows of 3, one thread, libmvec) two blocks
 * ran 1.37x faster than one. */
enum { NBLK = 2 };
static void blocks_n(em *e, const srow *s, LLVMValueRef off0, int nb) {
  int dt = s->dt, d = (int)s->d, VW = s->W;
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)dt);
  LLVMTypeRef vt = LLVMVectorType(s->et, (unsigned)VW);
  LLVMValueRef c[NBLK][MAXV], y[NBLK][MAXV], off[NBLK], eq[NBLK][MAXV], tv[MAXV];
  LLVMValueRef sh[NBLK], fin[NBLK], ties[NBLK], sum[NBLK], post[NBLK];
  bool pad = padded(d, VW, e->avx512);
  LLVMValueRef rmask = pad ? sr_lanes_below(e, VW, ci(e, d)) : NULL; /* padded: a row's lanes */
  LLVMValueRef zero = sr_splat_n(e, cf(e, dt, 0), VW), one = sr_splat_n(e, cf(e, dt, 1), VW);
  for (int b = 0; b < nb; b++) {
    off[b] = b ? LLVMBuildAdd(e->b, off0, ci(e, (int64_t)b * VW * d), "") : off0;
    if (pad) { /* row r in vector r's first d lanes, then a VW x VW transpose */
      LLVMValueRef rv[MAXV];
      for (int r = 0; r < VW; r++) {
        LLVMValueRef o = LLVMBuildAdd(e->b, off[b], ci(e, (int64_t)r * d), "");
        /* not inbounds: the last row's masked-off lanes may lie past the buffer */
        rv[r] = sr_vload(e, vt, LLVMBuildGEP2(e->b, s->et, s->src, &o, 1, ""), rmask, al);
      }
      transpose(e, rv, VW, VW, false);
      for (int j = 0; j < d; j++) c[b][j] = rv[j];
      continue;
    }
    for (int i = 0; i < d; i++) {
      LLVMValueRef o = LLVMBuildAdd(e->b, off[b], ci(e, (int64_t)i * VW), "");
      c[b][i] = sr_vload(e, vt, LLVMBuildInBoundsGEP2(e->b, s->et, s->src, &o, 1, ""), NULL, al);
    }
    transpose(e, c[b], d, VW, false);
  }
  for (int b = 0; b < nb; b++) {
    memcpy(tv, c[b], (size_t)d * sizeof *tv);
    LLVMValueRef mx = pairwise(e, tv, d, true);
    /* maxnum skips a NaN, whose exp then makes the row's sum NaN: the row
     * is NaN as with the row passes' NaN flag; a row of NaNs has a NaN max */
    LLVMValueRef nan = fcmp(e, LLVMRealUNO, mx, mx);
    fin[b] = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", mx), sr_splat_n(e, cf(e, dt, INFINITY), VW));
    sh[b] = sel(e, LLVMBuildOr(e->b, fin[b], nan, ""), mx, zero);
    /* the ties counted before the exp calls and both sums as pairwise
     * trees: a chain through every call (the running sums spilled and
     * reloaded around each) was the block's critical path */
    for (int j = 0; j < d; j++) {
      eq[b][j] = fcmp(e, LLVMRealOEQ, c[b][j], sh[b]);
      tv[j] = sel(e, eq[b][j], one, zero);
    }
    ties[b] = pairwise(e, tv, d, false);
  }
  for (int j = 0; j < d; j++)
    for (int b = 0; b < nb; b++) {
      LLVMValueRef t = lw_m1(e, "exp", dt, LLVMBuildFSub(e->b, c[b][j], sh[b], ""));
      c[b][j] = sel(e, eq[b][j], zero, t); /* the term, the column no longer needed */
      if (s->soft) y[b][j] = t;
    }
  for (int b = 0; b < nb; b++) {
    memcpy(tv, c[b], (size_t)d * sizeof *tv);
    sum[b] = pairwise(e, tv, d, false);
  }
  for (int b = 0; b < nb; b++)
    post[b] = s->soft ? LLVMBuildFDiv(e->b, one, LLVMBuildFAdd(e->b, sum[b], ties[b], ""), "")
                      : lw_sumexp_log(e, dt, fin[b], sum[b], ties[b]);
  for (int b = 0; b < nb; b++) {
    if (!s->soft) { /* log_softmax: written in the rows' own layout */
      LLVMValueRef rd[MAXV];
      for (int r = 0; pad && r < VW; r++) rd[r] = LLVMBuildAdd(e->b, off[b], ci(e, (int64_t)r * d), "");
      rows_write(e, s, off[b], sh[b], post[b], pad ? rd : NULL, rmask);
      continue;
    }
    for (int j = 0; j < d; j++) y[b][j] = LLVMBuildFMul(e->b, y[b][j], post[b], "");
    if (pad) {
      for (int j = d; j < VW; j++) y[b][j] = zero;
      transpose(e, y[b], VW, VW, true);
      for (int r = 0; r < VW; r++) {
        LLVMValueRef o = LLVMBuildAdd(e->b, off[b], ci(e, (int64_t)r * d), "");
        sr_vstore(e, vt, LLVMBuildGEP2(e->b, s->et, s->dst, &o, 1, ""), y[b][r], rmask, al);
      }
      continue;
    }
    transpose(e, y[b], d, VW, true);
    for (int i = 0; i < d; i++) {
      LLVMValueRef o = LLVMBuildAdd(e->b, off[b], ci(e, (int64_t)i * VW), "");
      sr_vstore(e, vt, LLVMBuildInBoundsGEP2(e->b, s->et, s->dst, &o, 1, ""), y[b][i], NULL, al);
    }
  }
}

/* one block of VW rows at element offset off, or NBLK of them
 * (staged_blocks stages a partial group, so that one copy of the code
 * serves every group) */
static void block(em *e, const srow *s, LLVMValueRef off, LLVMValueRef row) {
  (void)row;
  blocks_n(e, s, off, 1);
}
static void block_group(em *e, const srow *s, LLVMValueRef off, LLVMValueRef row) {
  (void)row;
  blocks_n(e, s, off, NBLK);
}

/* Rows shorter than this take their blocks NBLK at a time. AOT objects, f32
 * log_softmax, one thread, before and after in one harness (Emerald
 * Rapids): rows of 3 / 4 / 5 / 6 / 7 1.18 / 1.18-1.19 / 1.12 / 1.17-1.19 /
 * 1.07-1.09x, the kernel's cold compile 3-7 ms longer; rows of 8 1.09x
 * but 20 ms longer (23 -> 43 ms, that measurement's object), 10
 * 1.05-1.12x for 15, 16 1.01x for 36: those kept one block. Rows of 8 now
 * take two: JIT through tlaloc_program_run into a buffer, one thread, min
 * of 5 x 2000 calls, alternated in one process (Emerald Rapids):
 * log_softmax [2048 8] f32 9.8-10.1 -> 9.0-9.3 us, f64 23.0-23.6 ->
 * 21.5-21.6, softmax f32 8.8 -> 8.5, f64 18.9 -> 18.6; the kernel's
 * compile (libmvec exps, after a warm-up compile) 12.3-13.3 -> 17.2-19.6
 * ms. That took f32 log_softmax over rows of 8 from 0.77-0.79x to
 * 0.85-0.88x of rows of 1024 per element (bench-backend --shapes). */
enum { GROUP_BELOW = 9 };

/* Do rows of a known length d take blocks? */
static bool blockable(int64_t d, int VW) { return d >= 2 && d <= VW && VW <= MAXV; }

/* The input as the blocks and chunks read it: the input's own buffer, or (an input
 * that computes, converts or reads another layout) the output after a
 * loop over rows [lo, hi) of dim 0 has written it there. */
static LLVMValueRef chunk_source(em *e, const be_kern *k, int32_t xid, int nk, const int64_t *kd, LLVMValueRef lo,
                                 LLVMValueRef hi) {
  const be_plan *p = e->p;
  const tl_node *n = &e->g->nodes[k->node], *xn = &e->g->nodes[xid];
  if ((p->state[xid] == BE_S_MAT || p->state[xid] == BE_S_ALIAS) && xn->type.dtype == n->type.dtype)
    return lw_bufptr(e, p->buf_of[xid]);
  int R = n->type.rank, ax = R - 1;
  loop ls[TL_MAX_RANK], l;
  LLVMValueRef idx[TL_MAX_RANK], st[TL_MAX_RANK];
  lw_contig_strides(e, R, n->type.dims, st);
  lw_nest_open(e, ls, nk, kd, NULL, lo, hi, idx);
  int64_t d = n->type.dims[ax];
  bool unroll = d >= 0; /* known rows unrolled: the loop over rows is then the one vectorised */
  if (unroll) {
    for (int64_t j = 0; j < d; j++) {
      idx[ax] = ci(e, j);
      lw_store_at(e, k->out, n->type.dtype, lw_offset(e, R, st, idx),
                  lw_conv(e, lw_ex(e, xid, idx), xn->type.dtype, n->type.dtype));
    }
  } else {
    idx[ax] = lw_loop_open(e, &l, ci(e, 0), lw_dimv(e, d), 0, NULL);
    lw_store_at(e, k->out, n->type.dtype, lw_offset(e, R, st, idx),
                lw_conv(e, lw_ex(e, xid, idx), xn->type.dtype, n->type.dtype));
    lw_loop_close(e, &l, NULL);
  }
  lw_nest_close(e, ls, nk);
  return lw_bufptr(e, k->out);
}

/* The first nel elements of the block at element offset off copied into
 * the stage (in; the rest of the stage zeros) or back into the output:
 * a loop over the block's d vectors, the source's or output's side
 * masked (a partial block may end anywhere in a vector). */
static void stage_copy(em *e, const srow *s, int nblk, LLVMValueRef stage, LLVMValueRef off, LLVMValueRef nel,
                       bool in) {
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)s->dt);
  loop l;
  LLVMValueRef nv = nblk > 1 ? LLVMBuildMul(e->b, s->dv, ci(e, nblk), "") : s->dv;
  LLVMValueRef i = lw_loop_open(e, &l, ci(e, 0), nv, 0, NULL);
  l.ic = -1;
  l.nounroll = 1;
  LLVMValueRef so = LLVMBuildMul(e->b, i, ci(e, s->W), ""), o = LLVMBuildAdd(e->b, off, so, "");
  LLVMValueRef mask = sr_lanes_from(e, s->W, nel, so);
  LLVMValueRef sp = LLVMBuildInBoundsGEP2(e->b, s->et, stage, &so, 1, "");
  /* not inbounds: a masked-off vector may lie past the buffer */
  LLVMValueRef mp = LLVMBuildGEP2(e->b, s->et, in ? s->src : s->dst, &o, 1, "");
  if (in)
    sr_vstore(e, s->vt, sp, sr_vload(e, s->vt, mp, mask, al), NULL, al);
  else
    sr_vstore(e, s->vt, mp, sr_vload(e, s->vt, sp, NULL, al), mask, al);
  lw_loop_close(e, &l, NULL);
}

/* Rows [r0, r1) in blocks of VW rows, nblk blocks a call of fn (the
 * transposed blocks take two at a time, block_group), every call through
 * one copy of fn's code with plain loads and stores: the last, partial
 * group is
 * copied into blocks on the stack (its missing rows zeros), done there,
 * and its results copied back: its rows (fn writes the blocks' elements)
 * or, per_row (a sum, nblk 1: fn writes one vector of VW values, the
 * block's rows'), its rows' values. fn gets the group's element offset
 * and first row, both 0 on the stack. Every block masked (the kernel's only copy
 * until then) ran log_softmax over [2048 8] in 8.6-8.8 us, whole blocks
 * and a masked last one 8.0-8.1 but compiled 5-17 ms slower (rows of 8
 * and 16: two copies of the block); this runs as fast as the latter and
 * compiles as the former (AOT object, min of 300 x 20 calls, Zen 5). */
void sr_staged_blocks(em *e, const srow *s, LLVMValueRef r0, LLVMValueRef r1, block_fn *fn, int nblk, bool per_row) {
  int VW = s->W * nblk; /* rows a call of fn takes */
  /* symbolic: the longest row (flat blocks, sums) */
  int64_t d = s->d ? s->d : per_row ? SUMMAX : MAXM * VW;
  LLVMValueRef stage = LLVMBuildAlloca(e->pre, LLVMArrayType2(s->et, (uint64_t)(VW * d)), "sstage");
  LLVMSetAlignment(stage, 64);
  LLVMTypeRef ovt = per_row ? LLVMVectorType(vty(e, s->odt), (unsigned)VW) : NULL; /* per_row: nblk 1 */
  LLVMValueRef ostage = per_row ? LLVMBuildAlloca(e->pre, ovt, "sout") : stage;
  LLVMValueRef n = LLVMBuildSub(e->b, r1, r0, "");
  LLVMValueRef ng = LLVMBuildUDiv(e->b, LLVMBuildAdd(e->b, n, ci(e, VW - 1), ""), ci(e, VW), "");
  loop l;
  LLVMValueRef g = lw_loop_open(e, &l, ci(e, 0), ng, 0, NULL);
  l.ic = -1; /* whole vectors already */
  LLVMValueRef first = LLVMBuildMul(e->b, g, ci(e, VW), "");
  LLVMValueRef left = LLVMBuildSub(e->b, n, first, "");
  LLVMValueRef part = icmp(e, LLVMIntSLT, left, ci(e, VW));
  LLVMValueRef row = LLVMBuildAdd(e->b, r0, first, ""), off = LLVMBuildMul(e->b, row, s->dv, "");
  LLVMValueRef nel = LLVMBuildMul(e->b, left, s->dv, "");
  LLVMBasicBlockRef from = LLVMGetInsertBlock(e->b);
  LLVMBasicBlockRef in = LLVMAppendBasicBlockInContext(e->cx, e->fn, "stagein");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "sblock");
  LLVMBasicBlockRef out = LLVMAppendBasicBlockInContext(e->cx, e->fn, "stageout");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->cx, e->fn, "snext");
  LLVMBuildCondBr(e->b, part, in, body);
  LLVMPositionBuilderAtEnd(e->b, in);
  stage_copy(e, s, nblk, stage, off, nel, true);
  LLVMBasicBlockRef copied = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, body);
  LLVMPositionBuilderAtEnd(e->b, body);
  srow t = *s;
  LLVMValueRef boff = LLVMBuildPhi(e->b, e->i64, ""), brow = LLVMBuildPhi(e->b, e->i64, "");
  t.src = LLVMBuildPhi(e->b, e->ptr, "");
  t.dst = LLVMBuildPhi(e->b, e->ptr, "");
  LLVMBasicBlockRef ins[2] = {from, copied};
  LLVMAddIncoming(boff, (LLVMValueRef[]){off, ci(e, 0)}, ins, 2);
  LLVMAddIncoming(brow, (LLVMValueRef[]){row, ci(e, 0)}, ins, 2);
  LLVMAddIncoming(t.src, (LLVMValueRef[]){s->src, stage}, ins, 2);
  LLVMAddIncoming(t.dst, (LLVMValueRef[]){s->dst, ostage}, ins, 2);
  fn(e, &t, boff, brow);
  LLVMBuildCondBr(e->b, part, out, next);
  LLVMPositionBuilderAtEnd(e->b, out);
  if (per_row) {
    unsigned oal = (unsigned)tl_dtype_size((tl_dtype)s->odt);
    LLVMValueRef to = LLVMBuildGEP2(e->b, vty(e, s->odt), s->dst, &row, 1, "");
    sr_vstore(e, ovt, to, sr_vload(e, ovt, ostage, NULL, oal), sr_lanes_below(e, VW, left), oal);
  } else {
    stage_copy(e, s, nblk, stage, off, nel, false);
  }
  LLVMBuildBr(e->b, next);
  LLVMPositionBuilderAtEnd(e->b, next);
  lw_loop_close(e, &l, NULL);
}

/* ---- rows of one to four vectors: flat blocks ------------------------------ */

/* element j of the stack array a (of et) */
static LLVMValueRef slot(em *e, const srow *s, LLVMValueRef a, LLVMValueRef j) {
  return LLVMBuildInBoundsGEP2(e->b, s->et, a, &j, 1, "");
}

/* Row r's m vectors at element offset off, the last masked by lm */
static void row_load(em *e, const srow *s, LLVMValueRef p, LLVMValueRef off, int m, LLVMValueRef lm, LLVMValueRef *x) {
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)s->dt);
  for (int k = 0; k < m; k++) {
    LLVMValueRef o = LLVMBuildAdd(e->b, off, ci(e, (int64_t)k * s->W), "");
    x[k] = sr_vload(e, s->vt, LLVMBuildInBoundsGEP2(e->b, s->et, p, &o, 1, ""), k == m - 1 ? lm : NULL, al);
  }
}

/* The blend of a and b that bl describes (lane i: a's when bl[i] == i, b's
 * when L + i) as a select on a mask register whose value LLVM cannot see.
 * Given a constant mask, LLVM's x86 lowering turns a blend of 256-bit
 * halves into vshuff64x2 and one of alternate lanes into vshufpd, and on
 * Zen 5 those share the shuffle pipes with the halvings' other shuffle and
 * with the sums' f32 -> f64 conversions, where a masked vblendmpd runs on
 * any vector pipe. The mask passes through an empty asm statement that
 * reads and writes no memory, so it is loaded into a mask register once
 * outside the loop. Without AVX-512 a constant blend is vblendpd, which
 * any port runs, and is kept. Measured in docs/backend.md ("Blends in
 * mask registers"). */
static LLVMValueRef masked_blend(em *e, LLVMValueRef a, LLVMValueRef b, const int *bl, int L) {
  uint64_t bits = 0;
  for (int i = 0; i < L; i++)
    if (bl[i] >= L) bits |= 1ull << i;
  LLVMTypeRef it = LLVMIntTypeInContext(e->cx, (unsigned)L);
  LLVMTypeRef fty = LLVMFunctionType(it, &it, 1, 0);
  LLVMValueRef opaque = LLVMGetInlineAsm(fty, "", 0, "=r,0", 4, 0, 0, LLVMInlineAsmDialectATT, 0);
  LLVMValueRef m = LLVMBuildCall2(e->b, fty, opaque, (LLVMValueRef[]){LLVMConstInt(it, bits, 0)}, 1, "");
  unsigned mem = LLVMGetEnumAttributeKindForName("memory", 6),
           nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
  LLVMAddCallSiteAttribute(m, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->cx, mem, 0));
  LLVMAddCallSiteAttribute(m, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->cx, nounwind, 0));
  LLVMValueRef k = LLVMBuildBitCast(e->b, m, LLVMVectorType(e->i1, (unsigned)L), "");
  return LLVMBuildSelect(e->b, k, b, a, "");
}

/* The rows of a halving's result, segment by segment: a's row k, then
 * b's row k (n rows each) */
static void halved_rows(const int *a, const int *b, int n, int *c) {
  for (int k = 0; k < n; k++) {
    c[2 * k] = a[k];
    c[2 * k + 1] = b[k];
  }
}

/* Two such vectors of the same g combined into one of 2L/g rows of g/2
 * partials: in segment k of g lanes, the first half a[i] + a[i + g/2]
 * (a's row k) and the second b[i] + b[i - g/2] (b's row k), or maxnum.
 * That is one two-input shuffle (the other half of each segment) and a
 * blend (a's first halves, b's second), where picking each row's halves
 * into place took two shuffles: shuffles of two vectors run on one port
 * of Intel's cores (and the f32 -> f64 conversions of the sums on it
 * too), blends on two. */
rowvec sr_halve(em *e, const rowvec *a, const rowvec *b, int L, bool max) {
  int g = a->g, sh[64], bl[64];
  for (int i = 0; i < L; i++) {
    bool first = i % g < g / 2;
    sh[i] = first ? i + g / 2 : L + i - g / 2;
    bl[i] = first ? i : L + i;
  }
  LLVMValueRef x = e->avx512 && (L == 8 || L == 16) ? masked_blend(e, a->v, b->v, bl, L)
                                                    : LLVMBuildShuffleVector(e->b, a->v, b->v, cmask(e, bl, L), "");
  LLVMValueRef y = LLVMBuildShuffleVector(e->b, a->v, b->v, cmask(e, sh, L), "");
  rowvec c = {max ? lw_intr2(e, "llvm.maxnum", x, y) : LLVMBuildFAdd(e->b, x, y, ""), g / 2, {0}};
  halved_rows(a->rows, b->rows, L / g, c.rows);
  return c;
}

/* A vector of L rows of one value each (g 1) with lane r row r's: one
 * shuffle unless the rows are in order already */
LLVMValueRef sr_rows_in_order(em *e, const rowvec *c, int L) {
  int m[64];
  bool same = true;
  for (int i = 0; i < L; i++) {
    m[c->rows[i]] = i;
    same = same && c->rows[i] == i;
  }
  return same ? c->v : LLVMBuildShuffleVector(e->b, c->v, LLVMGetPoison(LLVMTypeOf(c->v)), cmask(e, m, L), "");
}

/* The order in which to give a halving tree its L leaves of one row each
 * so that its result holds row r in lane r: leaf i is row order[i]. Each
 * halving interleaves its two vectors' rows (sr_halve), so leaves in row
 * order come out in bit-reversed order and would need a last shuffle;
 * the tree is simulated on leaf ids and the order inverted. */
void sr_leaf_order(int L, int *order) {
  int rows[MAXV][MAXV];
  for (int i = 0; i < L; i++) rows[i][0] = i;
  for (int nv = L, per = 1; nv > 1; nv /= 2, per *= 2)
    for (int i = 0; i < nv / 2; i++) {
      int c[MAXV];
      halved_rows(rows[2 * i], rows[2 * i + 1], per, c);
      memcpy(rows[i], c, sizeof(int) * (size_t)(2 * per));
    }
  for (int j = 0; j < L; j++) order[rows[0][j]] = j;
}

/* L vectors of L lanes (vector r: row r's partials) reduced to one whose
 * lane r is row r's sum or max: L - 1 halvings, log2(L) deep, the leaves
 * taken in sr_leaf_order so that no shuffle puts the rows in order. */
LLVMValueRef sr_halving_tree(em *e, LLVMValueRef *v, int L, bool max) {
  rowvec t[MAXV];
  int order[MAXV];
  sr_leaf_order(L, order);
  for (int i = 0; i < L; i++) t[i] = (rowvec){v[order[i]], L, {order[i]}};
  for (int nv = L; nv > 1; nv /= 2)
    for (int i = 0; i < nv / 2; i++) t[i] = sr_halve(e, &t[2 * i], &t[2 * i + 1], L, max);
  return sr_rows_in_order(e, &t[0], L);
}

/* Row r's lanewise max or sum v kept for rows_across: row r of the
 * stack matrix a. */
static void row_result(em *e, const srow *s, LLVMValueRef a, LLVMValueRef r, LLVMValueRef v) {
  sr_vstore(e, s->vt, slot(e, s, a, LLVMBuildMul(e->b, r, ci(e, s->W), "")), v, NULL, 64);
}

/* The VW vectors of the stack matrix a (row r: vector r) reduced across
 * lanes, row r's result in lane r, by a halving tree: VW - 1 halvings of
 * two shuffles and an op, where a VW x VW transpose and a tree over the
 * columns took log2(VW) stages of VW shuffles and then VW - 1 ops, and
 * reducing each row across its lanes in the row loop took log2(VW)
 * shuffle steps a row. log_softmax f32, AVX-512, Sapphire Rapids (AOT
 * objects, min of 300 x 20 calls): symbolic rows of 8 / 16 / 24, 25.0 /
 * 17.3 / 16.0 us (across lanes a row) -> 17.8 / 13.3 / 13.2; known rows of
 * 17 / 24, 11.8 / 10.2 us (transposes) -> 11.0 / 9.7, and their kernel
 * compiles in 20 ms instead of 30 (cold `run --stats`, min of 7); the
 * symbolic kernel in 46 instead of 44. */
static LLVMValueRef rows_across(em *e, const srow *s, LLVMValueRef a, bool max) {
  LLVMValueRef v[MAXV];
  for (int r = 0; r < s->W; r++) v[r] = sr_vload(e, s->vt, slot(e, s, a, ci(e, (int64_t)r * s->W)), NULL, 64);
  return sr_halving_tree(e, v, s->W, max);
}

/* A loop over the rows of a block (VW rows of d elements at element
 * offset off): the row's index and its element offset */
static LLVMValueRef rows_open(em *e, const srow *s, loop *l, LLVMValueRef off, LLVMValueRef *roff, int nc,
                              const LLVMValueRef *init) {
  LLVMValueRef r = lw_loop_open(e, l, ci(e, 0), ci(e, s->W), nc, init);
  l->ic = -1;
  l->nounroll = 1;
  *roff = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, r, s->dv, ""), "");
  return r;
}

/* A loop over a block's d vectors of VW elements: the vector's element
 * offset in the block */
static LLVMValueRef flat_open(em *e, const srow *s, loop *l) {
  LLVMValueRef i = lw_loop_open(e, l, ci(e, 0), s->dv, 0, NULL);
  l->ic = -1;
  l->nounroll = 1;
  return LLVMBuildMul(e->b, i, ci(e, s->W), "");
}

/* The image im of v over the block: lane r of v (row r's value) at each
 * of row r's elements, d vectors, each one constant shuffle of v and an
 * aligned store. A loop over rows storing each row's value as m whole
 * vectors (overlapping the next row's) ran log_softmax over rows of 17
 * and 24 in 13.3-13.5 and 10.8-11.0 us against 11.5-11.8 and 9.9 (rows of
 * 32, whose stores do not overlap: 9.4 against 9.9): the flat loop's
 * loads of the image wait for overlapping stores. */
static void block_image(em *e, const srow *s, LLVMValueRef im, LLVMValueRef v) {
  int m[64];
  for (int j = 0; j < s->d; j++) {
    for (int l = 0; l < s->W; l++) m[l] = (int)((j * s->W + l) / s->d);
    LLVMValueRef x = LLVMBuildShuffleVector(e->b, v, LLVMGetPoison(s->vt), cmask(e, m, s->W), "");
    sr_vstore(e, s->vt, slot(e, s, im, ci(e, (int64_t)j * s->W)), x, NULL, 64);
  }
}

/* A row's value spread over its elements in the block's flat layout (an
 * image): vector j (element offset jo) has in lane l the value of row
 * (jo + l) / d. With AVX2 or AVX-512 a variable permute of the rows'
 * vector by an index vector from a constant table (vpermps; f64 lanes as
 * two f32 lanes each): code that does not grow with d. Otherwise (SSE)
 * the image is stored on the stack, each vector one constant shuffle. */
typedef struct image {
  LLVMValueRef v;   /* the rows' values, lane r: row r */
  LLVMValueRef tbl; /* a known length's permute indices (image_table) */
  LLVMValueRef mem; /* SSE: the stored image */
} image;

static bool permutes(em *e) { return e->avx512 || e->avx2; }

/* the table of permute indices (i32 lanes, per vector of the block), one
 * per kernel */
static LLVMValueRef image_table(em *e, const srow *s) {
  int per = s->W * (int)tl_dtype_size((tl_dtype)s->dt) / 4; /* i32 lanes a vector */
  int64_t cnt = s->d * per;
  LLVMValueRef *ix = tl_xcalloc((size_t)cnt, sizeof *ix);
  for (int64_t i = 0; i < cnt; i++) {
    int64_t el = i / (per / s->W), half = i % (per / s->W); /* the element, and which f32 of it */
    ix[i] = LLVMConstInt(e->i32, (unsigned long long)(el / s->d * (per / s->W) + half), 0);
  }
  LLVMValueRef init = LLVMConstArray2(e->i32, ix, (uint64_t)cnt);
  tl_free(ix);
  LLVMValueRef gv = LLVMAddGlobal(e->m, LLVMTypeOf(init), "rowidx");
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetAlignment(gv, 64);
  return gv;
}

static image image_of(em *e, const srow *s, LLVMValueRef v, LLVMValueRef tbl, LLVMValueRef mem) {
  image im = {v, tbl, mem};
  if (!permutes(e)) block_image(e, s, mem, v);
  return im;
}

/* v's lanes permuted by idx (i32 lanes; an f64 lane as two f32 lanes):
 * vpermps, AVX2 or AVX-512 */
static LLVMValueRef permute(em *e, const srow *s, LLVMValueRef v, LLVMValueRef idx) {
  int per = s->W * (int)tl_dtype_size((tl_dtype)s->dt) / 4;
  LLVMTypeRef ft = LLVMVectorType(e->f32, (unsigned)per);
  const char *name = per == 16 ? "llvm.x86.avx512.permvar.sf.512" : "llvm.x86.avx2.permps";
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, NULL, 0);
  LLVMTypeRef fty = LLVMIntrinsicGetType(e->cx, id, NULL, 0);
  LLVMValueRef r = LLVMBuildCall2(e->b, fty, f, (LLVMValueRef[]){LLVMBuildBitCast(e->b, v, ft, ""), idx}, 2, "");
  return LLVMBuildBitCast(e->b, r, s->vt, "");
}

/* lane r (i64) of v in every lane: a variable permute with AVX2 or
 * AVX-512 (f64 lanes as two f32 lanes each), else through memory */
static LLVMValueRef lane_splat(em *e, const srow *s, LLVMValueRef v, LLVMValueRef r) {
  LLVMValueRef r32 = LLVMBuildTrunc(e->b, r, e->i32, "");
  if (!permutes(e)) return sr_splat_v(e, LLVMBuildExtractElement(e->b, v, r32, ""), s->W);
  int per = s->W * (int)tl_dtype_size((tl_dtype)s->dt) / 4, half[64];
  for (int l = 0; l < per; l++) half[l] = l % (per / s->W);
  LLVMValueRef idx = sr_splat_v(e, LLVMBuildMul(e->b, r32, LLVMConstInt(e->i32, (unsigned)(per / s->W), 0), ""), per);
  idx = LLVMBuildAdd(e->b, idx, cmask(e, half, per), "");
  return permute(e, s, v, idx);
}

/* A symbolic length: the permute indices of vector j (element offset jo
 * in the block) of an image: row (jo + l) / d as floor((jo + l + 0.5) /
 * d) in f32, exact below 2^13 elements (the error, under 2^-10, is far
 * from the nearest multiple of 1/d away, at least 1 / (2 d)); f64 lanes
 * as two f32 lanes each */
static LLVMValueRef sym_index(em *e, const srow *s, LLVMValueRef jo) {
  int per = s->W * (int)tl_dtype_size((tl_dtype)s->dt) / 4;
  int io[64], pair[64], half[64];
  for (int l = 0; l < per; l++) {
    io[l] = l;
    pair[l] = l / (per / s->W);
    half[l] = l % (per / s->W);
  }
  LLVMTypeRef wt = LLVMVectorType(e->i32, (unsigned)s->W), wf = LLVMVectorType(e->f32, (unsigned)s->W);
  LLVMValueRef el =
      LLVMBuildAdd(e->b, sr_splat_v(e, LLVMBuildTrunc(e->b, jo, e->i32, ""), s->W), cmask(e, io, s->W), "");
  LLVMValueRef q = LLVMBuildFMul(
      e->b, LLVMBuildFAdd(e->b, LLVMBuildSIToFP(e->b, el, wf, ""), sr_splat_n(e, LLVMConstReal(e->f32, 0.5), s->W), ""),
      s->invd, "");
  LLVMValueRef idx = LLVMBuildFPToSI(e->b, q, wt, "");
  if (per != s->W) {
    idx = LLVMBuildShuffleVector(e->b, idx, LLVMGetPoison(wt), cmask(e, pair, per), "");
    idx = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, idx, sr_splat_n(e, LLVMConstInt(e->i32, 2, 0), per), ""),
                       cmask(e, half, per), "");
  }
  return idx;
}

/* A symbolic length: the images' permute indices of a block's d vectors,
 * computed once a call into a stack table that every block reads as a
 * known length reads its constant one. Computed in each image, they cost
 * six instructions a vector three times a vector. */
static LLVMValueRef sym_table(em *e, const srow *s) {
  int per = s->W * (int)tl_dtype_size((tl_dtype)s->dt) / 4;
  LLVMValueRef t = LLVMBuildAlloca(e->pre, LLVMArrayType2(e->i32, (uint64_t)(MAXM * s->W * per)), "rowidx");
  LLVMSetAlignment(t, 64);
  loop l;
  LLVMValueRef j = lw_loop_open(e, &l, ci(e, 0), s->dv, 0, NULL);
  l.ic = -1;
  l.nounroll = 1;
  LLVMValueRef io = LLVMBuildMul(e->b, j, ci(e, per), "");
  sr_vstore(e, LLVMVectorType(e->i32, (unsigned)per), LLVMBuildInBoundsGEP2(e->b, e->i32, t, &io, 1, ""),
            sym_index(e, s, LLVMBuildMul(e->b, j, ci(e, s->W), "")), NULL, 64);
  lw_loop_close(e, &l, NULL);
  return t;
}

/* vector j (element offset jo in the block) of the image */
static LLVMValueRef image_at(em *e, const srow *s, const image *im, LLVMValueRef jo) {
  if (!permutes(e)) return sr_vload(e, s->vt, slot(e, s, im->mem, jo), NULL, 64);
  int per = s->W * (int)tl_dtype_size((tl_dtype)s->dt) / 4;
  LLVMTypeRef it = LLVMVectorType(e->i32, (unsigned)per);
  LLVMValueRef io = LLVMBuildMul(e->b, jo, ci(e, per / s->W), "");
  return permute(e, s, im->v, sr_vload(e, it, LLVMBuildInBoundsGEP2(e->b, e->i32, im->tbl, &io, 1, ""), NULL, 64));
}

/* A symbolic length: the lanes of a row's vector k (i64) that hold its
 * elements */
static LLVMValueRef sym_lanes(em *e, const srow *s, LLVMValueRef k) {
  return sr_lanes_from(e, s->W, s->dv, LLVMBuildMul(e->b, k, ci(e, s->W), ""));
}

/* A symbolic length: row vector k (at element offset ro of p), masked */
static LLVMValueRef sym_load(em *e, const srow *s, LLVMValueRef p, LLVMValueRef ro, LLVMValueRef k, LLVMValueRef mask) {
  LLVMValueRef o = LLVMBuildAdd(e->b, ro, LLVMBuildMul(e->b, k, ci(e, s->W), ""), "");
  /* not inbounds: a masked-off vector may lie past the buffer */
  return sr_vload(e, s->vt, LLVMBuildGEP2(e->b, s->et, p, &o, 1, ""), mask, (unsigned)tl_dtype_size((tl_dtype)s->dt));
}

/* A symbolic length: the row at ro's lanewise max: its last vector
 * (mv - 1, masked by tail; lanes past the row take its first element,
 * lane 0 of that vector, so that a row of NaNs stays NaN), then a loop
 * over its whole vectors with plain loads. */
static LLVMValueRef sym_row_max(em *e, const srow *s, LLVMValueRef ro, LLVMValueRef mv, LLVMValueRef tail) {
  LLVMValueRef last = LLVMBuildSub(e->b, mv, ci(e, 1), ""), xl = sym_load(e, s, s->src, ro, last, tail);
  LLVMValueRef acc =
      sel(e, tail, xl, sr_splat_v(e, LLVMBuildExtractElement(e->b, xl, LLVMConstInt(e->i32, 0, 0), ""), s->W));
  loop l;
  LLVMValueRef k = lw_loop_open(e, &l, ci(e, 0), last, 1, &acc);
  l.ic = -1;
  l.nounroll = 1;
  LLVMValueRef next = lw_intr2(e, "llvm.maxnum", l.phis[0], sym_load(e, s, s->src, ro, k, NULL));
  lw_loop_close(e, &l, &next);
  return l.phis[0];
}

/* A block of VW rows of length d, VW < d <= 4 VW when known (m = ceil(d /
 * VW) vectors a row, the last a masked load of the rest), 1 to 4 VW when
 * symbolic (a row's vectors by a loop), held in memory as the d whole
 * vectors it is. The exponentials run on those d vectors (loops over the
 * block's vectors: "flat"), so that every lane is an element; what a row
 * needs alone, its max and its sum, comes from loops over its vectors,
 * combined lanewise and reduced across lanes for all VW rows at once
 * (rows_across). A row's shift and log reach the flat loops as images
 * (image_at). In order: the rows' maxes; the block's shifts; the flat
 * exp(x - shift) into a stack copy of the block (the output may be the
 * input); the rows' sums and ties; the logs (or reciprocals); the flat
 * write. A row at a time, the exp of a row's last vector ran every lane
 * past d too (log_softmax over rows of 17 at 0.54x of rows of 1024, 24 at
 * 0.68x: the time is the exp calls'). */
static void flat_block(em *e, const srow *s, LLVMValueRef off, LLVMValueRef row) {
  int dt = s->dt, VW = s->W, d = (int)s->d, m = d ? (d + VW - 1) / VW : 1;
  int64_t dmax = d ? d : MAXM * VW; /* symbolic: the longest row */
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)dt);
  LLVMTypeRef mt = LLVMArrayType2(s->et, (uint64_t)(VW * VW));
  LLVMTypeRef it = LLVMArrayType2(s->et, (uint64_t)(VW * dmax + VW)); /* + VW: a row's last vector read whole */
  LLVMValueRef amat = LLVMBuildAlloca(e->pre, mt, "wmat");
  LLVMValueRef ter = LLVMBuildAlloca(e->pre, it, "wterms"), shi = NULL, poi = NULL, tbl = NULL;
  if (permutes(e)) {
    tbl = d ? image_table(e, s) : s->itbl;
  } else {
    shi = LLVMBuildAlloca(e->pre, it, "wshift");
    poi = LLVMBuildAlloca(e->pre, it, "wpost");
    LLVMSetAlignment(shi, 64);
    LLVMSetAlignment(poi, 64);
  }
  LLVMSetAlignment(amat, 64);
  LLVMSetAlignment(ter, 64);
  int iota[64];
  for (int i = 0; i < VW; i++) iota[i] = i;
  LLVMValueRef zero = sr_splat_n(e, cf(e, dt, 0), VW), one = sr_splat_n(e, cf(e, dt, 1), VW);
  LLVMValueRef lm = d ? sr_lanes_below(e, VW, ci(e, d - (int64_t)(m - 1) * VW)) : NULL;
  /* symbolic: the vectors of a row, the lanes of its last that hold elements */
  LLVMValueRef mv = d ? NULL : LLVMBuildUDiv(e->b, LLVMBuildAdd(e->b, s->dv, ci(e, VW - 1), ""), ci(e, VW), "");
  LLVMValueRef tail = d ? NULL : sym_lanes(e, s, LLVMBuildSub(e->b, mv, ci(e, 1), ""));
  LLVMValueRef x[MAXM], tv[MAXM], ro, r, j;
  loop l;
  /* the rows' lanewise maxes, then the block's shifts */
  r = rows_open(e, s, &l, off, &ro, 0, NULL);
  LLVMValueRef rmax;
  if (d) {
    row_load(e, s, s->src, ro, m, lm, x);
    for (int k = 0; k < m; k++) tv[k] = k == m - 1 ? sel(e, lm, x[k], x[0]) : x[k];
    rmax = pairwise(e, tv, m, true);
  } else {
    rmax = sym_row_max(e, s, ro, mv, tail);
  }
  row_result(e, s, amat, r, rmax);
  lw_loop_close(e, &l, NULL);
  LLVMValueRef MX = rows_across(e, s, amat, true);
  LLVMValueRef nan = fcmp(e, LLVMRealUNO, MX, MX);
  LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", MX), sr_splat_n(e, cf(e, dt, INFINITY), VW));
  LLVMValueRef SH = sel(e, LLVMBuildOr(e->b, fin, nan, ""), MX, zero);
  image ish = image_of(e, s, SH, tbl, shi);
  /* exp(x - shift) over the block's vectors, into the stack */
  j = flat_open(e, s, &l);
  LLVMValueRef xo = LLVMBuildAdd(e->b, off, j, "");
  LLVMValueRef xv = sr_vload(e, s->vt, LLVMBuildInBoundsGEP2(e->b, s->et, s->src, &xo, 1, ""), NULL, al);
  LLVMValueRef shv = image_at(e, s, &ish, j);
  LLVMValueRef t = lw_m1(e, "exp", dt, LLVMBuildFSub(e->b, xv, shv, ""));
  sr_vstore(e, s->vt, slot(e, s, ter, j), t, NULL, 64);
  lw_loop_close(e, &l, NULL);
  /* the rows' lanewise sums without the terms equal to the shift, and
   * those counted */
  r = rows_open(e, s, &l, off, &ro, 1, &zero);
  LLVMValueRef to = LLVMBuildSub(e->b, ro, off, ""), nt = ci(e, 0), rsum;
  LLVMValueRef shr = lane_splat(e, s, SH, r);
  LLVMTypeRef bits = LLVMIntTypeInContext(e->cx, (unsigned)VW);
  if (d) {
    row_load(e, s, ter, to, m, NULL, tv);
    row_load(e, s, s->src, ro, m, lm, x);
    for (int k = 0; k < m; k++) {
      LLVMValueRef eq = fcmp(e, LLVMRealOEQ, x[k], shr);
      if (k == m - 1) eq = LLVMBuildAnd(e->b, eq, lm, "");
      LLVMValueRef c = lw_intr1(e, "llvm.ctpop", LLVMBuildBitCast(e->b, eq, bits, ""));
      nt = LLVMBuildAdd(e->b, nt, LLVMBuildZExt(e->b, c, e->i64, ""), "");
      tv[k] = sel(e, eq, zero, tv[k]);
    }
    tv[m - 1] = sel(e, lm, tv[m - 1], zero); /* the next row's terms */
    rsum = pairwise(e, tv, m, false);
  } else { /* the row's last vector (masked), then a loop over its whole ones */
    LLVMValueRef last = LLVMBuildSub(e->b, mv, ci(e, 1), "");
    LLVMValueRef xl = sym_load(e, s, s->src, ro, last, tail), tl = sym_load(e, s, ter, to, last, NULL);
    LLVMValueRef eql = LLVMBuildAnd(e->b, fcmp(e, LLVMRealOEQ, xl, shr), tail, "");
    LLVMValueRef cl = lw_intr1(e, "llvm.ctpop", LLVMBuildBitCast(e->b, eql, bits, ""));
    LLVMValueRef init[2] = {sel(e, eql, zero, sel(e, tail, tl, zero)), LLVMBuildZExt(e->b, cl, e->i64, "")};
    loop lk;
    LLVMValueRef k = lw_loop_open(e, &lk, ci(e, 0), last, 2, init);
    lk.ic = -1;
    lk.nounroll = 1;
    LLVMValueRef xk = sym_load(e, s, s->src, ro, k, NULL), tk = sym_load(e, s, ter, to, k, NULL);
    LLVMValueRef eq = fcmp(e, LLVMRealOEQ, xk, shr);
    LLVMValueRef c = lw_intr1(e, "llvm.ctpop", LLVMBuildBitCast(e->b, eq, bits, ""));
    LLVMValueRef next[2] = {LLVMBuildFAdd(e->b, lk.phis[0], sel(e, eq, zero, tk), ""),
                            LLVMBuildAdd(e->b, lk.phis[1], LLVMBuildZExt(e->b, c, e->i64, ""), "")};
    lw_loop_close(e, &lk, next);
    rsum = lk.phis[0];
    nt = lk.phis[1];
  }
  row_result(e, s, amat, r, rsum);
  /* the ties' count into lane r of a vector in registers: stored a lane
   * at a time and read back whole, the read waited for every store */
  LLVMValueRef onehot = icmp(e, LLVMIntEQ, cmask(e, iota, VW), sr_splat_v(e, LLVMBuildTrunc(e->b, r, e->i32, ""), VW));
  LLVMValueRef tnext = sel(e, onehot, sr_splat_v(e, LLVMBuildUIToFP(e->b, nt, s->et, ""), VW), l.phis[0]);
  lw_loop_close(e, &l, &tnext);
  LLVMValueRef S = rows_across(e, s, amat, false), T = l.phis[0];
  image ipo = image_of(
      e, s, s->soft ? LLVMBuildFDiv(e->b, one, LLVMBuildFAdd(e->b, S, T, ""), "") : lw_sumexp_log(e, dt, fin, S, T),
      tbl, poi);
  /* the block written */
  j = flat_open(e, s, &l);
  xo = LLVMBuildAdd(e->b, off, j, "");
  LLVMValueRef po = image_at(e, s, &ipo, j), y;
  if (s->soft) {
    y = LLVMBuildFMul(e->b, sr_vload(e, s->vt, slot(e, s, ter, j), NULL, 64), po, "");
  } else {
    xv = sr_vload(e, s->vt, LLVMBuildInBoundsGEP2(e->b, s->et, s->src, &xo, 1, ""), NULL, al);
    y = LLVMBuildFSub(e->b, LLVMBuildFSub(e->b, xv, image_at(e, s, &ish, j), ""), po, "");
  }
  sr_vstore(e, s->vt, LLVMBuildInBoundsGEP2(e->b, s->et, s->dst, &xo, 1, ""), y, NULL, al);
  lw_loop_close(e, &l, NULL);
}

/* A loop over columns [lo, d) of a symbolic block, not unrolled */
static LLVMValueRef cols_open(em *e, const srow *s, loop *l, int64_t lo, int nc, const LLVMValueRef *init) {
  LLVMValueRef j = lw_loop_open(e, l, ci(e, lo), s->dv, nc, init);
  l->ic = -1;
  l->nounroll = 1;
  return LLVMBuildMul(e->b, j, ci(e, s->W), "");
}

/* Lanes [s P, s P + d) of W (d: i64): row s of a vector of rows padded
 * to P lanes */
static LLVMValueRef segment(em *e, int W, int P, int seg, LLVMValueRef d) {
  int m[64];
  for (int i = 0; i < W; i++) m[i] = i < seg * P ? W : i - seg * P; /* W: past any row (cmask takes < 0 as poison) */
  return icmp(e, LLVMIntULT, cmask(e, m, W), sr_splat_v(e, LLVMBuildTrunc(e->b, d, e->i32, ""), W));
}

/* A symbolic length d from 3 to VW / 2, with AVX2 or AVX-512 (padded
 * blocks): block()'s transposes with each row padded to P lanes (P the
 * power of two from d up, 4 to VW / 2: one copy of the transposes per P)
 * and loops over the columns. Vector v of the block holds rows v VW/P to
 * v VW/P + VW/P - 1, row s of them in lanes [s P, s P + d) by a masked
 * load merged into the vector (its address the row's less s P elements),
 * so that the VW rows are the P vectors of a block of rows of P, and
 * transpose() turns them into P columns (column j: element j of every
 * row) as for a known length P. The maxes, exps, sums and logs are loops
 * over the first d columns, elementwise across rows, on the stack (the
 * exp calls clobber every vector register anyway; the sums and ties are
 * a loop of their own, without calls), the same code for every P, and
 * the columns go back the same way to masked stores. Rows of exactly P
 * (a power of two) are the block's P vectors as they lie, plain loads and
 * stores: [4096 4] 12.4-12.8 -> 10.2-10.6 us, [2048 8] 9.8-10.2 -> 9.1-9.4
 * (the same compile time).
 *
 * Flat blocks did a row at a time what this does a column at a time (a
 * row's max, sum and ties; the reductions across lanes). log_softmax f32,
 * AVX-512 (AOT objects, min of 200 x 20 calls, Sapphire Rapids): [4000 3]
 * 22.3 -> 11.2 us, [4096 4] 19.7 (chunks) -> 13.5, [2300 7] 16.0 -> 11.2,
 * [2048 8] 14.1 -> 10.9; AVX2: [4000 3] 27.7 -> 17.1, [4096 4] 31.0 ->
 * 20.3. Rows padded to VW (9 to VW) ran as flat blocks do, within 5%
 * either way ([1024 16] 9.4 against 9.1, [1600 10] 10.6 against 11.3),
 * and cost 10 ms more compile; rows of 1 and 2 ran faster as chunks. The
 * symbolic log_softmax kernel compiles in 51-53 ms instead of 38 (cold
 * `run --stats`, min of 7). */
/* sym_block's rows to columns (back: columns to rows) for each P from VW
 * / 2 down to 4, chosen by d: the P vectors of the block (rows of exactly
 * P: as they lie, plain loads or stores; else each row masked in its
 * segment), transposed, and the P columns on the stack at col. rd: row r's
 * element offset. */
static void pad_tiers(em *e, const srow *s, LLVMValueRef off, const LLVMValueRef *rd, LLVMValueRef col, bool back) {
  int dt = s->dt, VW = s->W;
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)dt);
  LLVMValueRef base = back ? s->dst : s->src;
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->cx, e->fn, back ? "padout" : "padcols");
  for (int P = VW / 2; P >= 4; P /= 2) {
    int per = VW / P;
    LLVMBasicBlockRef tier = LLVMAppendBasicBlockInContext(e->cx, e->fn, "padtier");
    LLVMBasicBlockRef nt = P > 4 ? LLVMAppendBasicBlockInContext(e->cx, e->fn, "padnext") : NULL;
    if (nt)
      LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGT, s->dv, ci(e, P / 2)), tier, nt);
    else
      LLVMBuildBr(e->b, tier);
    LLVMPositionBuilderAtEnd(e->b, tier);
    /* row r less its segment's start: its masked vector's address */
    LLVMValueRef seg[MAXV], v[MAXV], ro[MAXV], w[2][MAXV];
    for (int g = 0; g < per; g++) seg[g] = segment(e, VW, P, g, s->dv);
    for (int r = 0; r < VW; r++) ro[r] = LLVMBuildSub(e->b, rd[r], ci(e, (int64_t)(r % per) * P), "");
    if (back) {
      for (int j = 0; j < P; j++) v[j] = sr_vload(e, s->vt, slot(e, s, col, ci(e, (int64_t)j * VW)), NULL, 64);
      transpose(e, v, P, VW, true);
    }
    LLVMBasicBlockRef from[2] = {LLVMAppendBasicBlockInContext(e->cx, e->fn, "padfull"),
                                 LLVMAppendBasicBlockInContext(e->cx, e->fn, "padpart")};
    LLVMBasicBlockRef both = LLVMAppendBasicBlockInContext(e->cx, e->fn, "padboth");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, s->dv, ci(e, P)), from[0], from[1]);
    for (int k = 0; k < 2; k++) {
      LLVMPositionBuilderAtEnd(e->b, from[k]);
      for (int i = 0; i < P; i++) {
        if (!k) {
          LLVMValueRef o = LLVMBuildAdd(e->b, off, ci(e, (int64_t)i * VW), "");
          LLVMValueRef ptr = LLVMBuildInBoundsGEP2(e->b, s->et, base, &o, 1, "");
          if (back)
            sr_vstore(e, s->vt, ptr, v[i], NULL, al);
          else
            w[k][i] = sr_vload(e, s->vt, ptr, NULL, al);
          continue;
        }
        if (!back) w[k][i] = sr_splat_n(e, cf(e, dt, 0), VW);
        for (int g = 0; g < per; g++) {
          /* not inbounds: the masked-off lanes may lie outside the buffer */
          LLVMValueRef ptr = LLVMBuildGEP2(e->b, s->et, base, &ro[i * per + g], 1, "");
          if (back)
            sr_vstore(e, s->vt, ptr, v[i], seg[g], al);
          else
            w[k][i] = masked(e, true, s->vt, ptr, w[k][i], seg[g], al);
        }
      }
      from[k] = LLVMGetInsertBlock(e->b);
      LLVMBuildBr(e->b, both);
    }
    LLVMPositionBuilderAtEnd(e->b, both);
    if (!back) {
      for (int i = 0; i < P; i++) {
        v[i] = LLVMBuildPhi(e->b, s->vt, "");
        LLVMAddIncoming(v[i], (LLVMValueRef[]){w[0][i], w[1][i]}, from, 2);
      }
      transpose(e, v, P, VW, false);
      for (int j = 0; j < P; j++) sr_vstore(e, s->vt, slot(e, s, col, ci(e, (int64_t)j * VW)), v[j], NULL, 64);
    }
    LLVMBuildBr(e->b, done);
    if (nt) LLVMPositionBuilderAtEnd(e->b, nt);
  }
  LLVMPositionBuilderAtEnd(e->b, done);
}

static void sym_block(em *e, const srow *s, LLVMValueRef off, LLVMValueRef row) {
  (void)row;
  int dt = s->dt, VW = s->W;
  LLVMTypeRef ct = LLVMArrayType2(s->et, (uint64_t)(VW * VW / 2)); /* P columns, P <= VW / 2 */
  LLVMValueRef col = LLVMBuildAlloca(e->pre, ct, "pcols"), ter = LLVMBuildAlloca(e->pre, ct, "pterms");
  LLVMSetAlignment(col, 64);
  LLVMSetAlignment(ter, 64);
  LLVMValueRef rd[MAXV]; /* row r's element offset */
  for (int r = 0; r < VW; r++) rd[r] = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, ci(e, r), s->dv, ""), "");
  pad_tiers(e, s, off, rd, col, false);
  /* the columns, whatever P */
  LLVMValueRef zero = sr_splat_n(e, cf(e, dt, 0), VW), one = sr_splat_n(e, cf(e, dt, 1), VW);
  /* the rows' maxes (maxnum skips a NaN, whose exp then makes the row's
     * sum NaN, as in block()) */
  loop l;
  LLVMValueRef c0 = sr_vload(e, s->vt, col, NULL, 64);
  LLVMValueRef jo = cols_open(e, s, &l, 1, 1, &c0);
  LLVMValueRef mnext = lw_intr2(e, "llvm.maxnum", l.phis[0], sr_vload(e, s->vt, slot(e, s, col, jo), NULL, 64));
  lw_loop_close(e, &l, &mnext);
  LLVMValueRef mx = l.phis[0];
  LLVMValueRef nan = fcmp(e, LLVMRealUNO, mx, mx);
  LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", mx), sr_splat_n(e, cf(e, dt, INFINITY), VW));
  LLVMValueRef sh = sel(e, LLVMBuildOr(e->b, fin, nan, ""), mx, zero);
  /* the exps */
  jo = cols_open(e, s, &l, 0, 0, NULL);
  LLVMValueRef c = sr_vload(e, s->vt, slot(e, s, col, jo), NULL, 64);
  sr_vstore(e, s->vt, slot(e, s, ter, jo), lw_m1(e, "exp", dt, LLVMBuildFSub(e->b, c, sh, "")), NULL, 64);
  lw_loop_close(e, &l, NULL);
  /* the sums without the terms equal to the shift, and those counted */
  LLVMValueRef acc[2] = {zero, zero};
  jo = cols_open(e, s, &l, 0, 2, acc);
  c = sr_vload(e, s->vt, slot(e, s, col, jo), NULL, 64);
  LLVMValueRef t = sr_vload(e, s->vt, slot(e, s, ter, jo), NULL, 64), eq = fcmp(e, LLVMRealOEQ, c, sh);
  LLVMValueRef next[2] = {LLVMBuildFAdd(e->b, l.phis[0], sel(e, eq, zero, t), ""),
                          LLVMBuildFAdd(e->b, l.phis[1], sel(e, eq, one, zero), "")};
  lw_loop_close(e, &l, next);
  LLVMValueRef sum = l.phis[0], ties = l.phis[1];
  LLVMValueRef post =
      s->soft ? LLVMBuildFDiv(e->b, one, LLVMBuildFAdd(e->b, sum, ties, ""), "") : lw_sumexp_log(e, dt, fin, sum, ties);
  /* the results, over the columns */
  jo = cols_open(e, s, &l, 0, 0, NULL);
  LLVMValueRef y;
  if (s->soft) {
    y = LLVMBuildFMul(e->b, sr_vload(e, s->vt, slot(e, s, ter, jo), NULL, 64), post, "");
  } else {
    c = sr_vload(e, s->vt, slot(e, s, col, jo), NULL, 64);
    y = LLVMBuildFSub(e->b, LLVMBuildFSub(e->b, c, sh, ""), post, "");
  }
  sr_vstore(e, s->vt, slot(e, s, col, jo), y, NULL, 64);
  lw_loop_close(e, &l, NULL);
  pad_tiers(e, s, off, rd, col, true);
}

/* A symbolic length's paths in functions of their own, void f(src, dst,
 * r0, r1, d) over rows [r0, r1): the chunks, and the padded and flat
 * blocks. In the kernel they made one function with the row passes, which
 * LLVM's codegen took whole on one compile thread; as functions, the
 * module's two halves (jit.c) can put them on the other thread. The
 * compile's CPU time is the same (one compile thread: symbolic softmax f32
 * 62-63 ms either way); its wall time with two, Emerald Rapids, in one
 * process after a warm-up compile: softmax 64-67 -> 39-45 ms, log_softmax
 * 101-105 -> 65-70 ms (the blocks alone moved). */
void sr_call_outlined(em *e, const srow *s0, const char *suffix, outlined_body *body, LLVMValueRef r0,
                      LLVMValueRef r1) {
  LLVMTypeRef ft = LLVMFunctionType(e->vd, (LLVMTypeRef[]){e->ptr, e->ptr, e->i64, e->i64, e->i64}, 5, 0);
  char name[160];
  size_t len;
  snprintf(name, sizeof name, "%s.%s", LLVMGetValueName2(e->fn, &len), suffix);
  LLVMValueRef f = LLVMAddFunction(e->m, name, ft), fn = e->fn;
  lw_kernel_fn(e, f);
  /* the builders' places in the kernel: e->pre sits before the entry's branch */
  LLVMBasicBlockRef at = LLVMGetInsertBlock(e->b), pre_at = LLVMGetInsertBlock(e->pre);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->cx, f, "entry");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(e->cx, f, "body");
  LLVMPositionBuilderAtEnd(e->pre, entry);
  LLVMPositionBuilderBefore(e->pre, LLVMBuildBr(e->pre, start));
  LLVMPositionBuilderAtEnd(e->b, start);
  e->fn = f;
  srow s = *s0;
  s.src = LLVMGetParam(f, 0);
  s.dst = LLVMGetParam(f, 1);
  s.dv = LLVMGetParam(f, 4);
  body(e, &s, LLVMGetParam(f, 2), LLVMGetParam(f, 3));
  LLVMBuildRetVoid(e->b);
  e->fn = fn;
  LLVMPositionBuilderAtEnd(e->b, at);
  LLVMPositionBuilderBefore(e->pre, LLVMGetBasicBlockTerminator(pre_at));
  LLVMBuildCall2(e->b, ft, f, (LLVMValueRef[]){s0->src, s0->dst, r0, r1, s0->dv}, 5, "");
}

/* chunks: VW / d rows a vector, reduced by segmented butterflies */
static void chunks_body(em *e, srow *s, LLVMValueRef r0, LLVMValueRef r1) {
  for (int i = 0, st = 1; st < s->W; st <<= 1, i++) s->step[i] = icmp(e, LLVMIntSGT, s->dv, ci(e, st));
  sr_groups(e, s, r0, r1, LLVMBuildUDiv(e->b, ci(e, s->W), s->dv, ""), s->dv, chunk, false);
}

/* A symbolic length of exactly VW / 2 (8 f32, 4 f64 with AVX-512) takes
 * the known length's transposed blocks, two at a time, in a function of
 * its own: the padded blocks ran symbolic rows of 8 at 0.69-0.72x of rows
 * of 1024 on Emerald Rapids (bench-backend --shapes), these at 0.92-0.94x.
 * Into a buffer, one thread, min of 5 x 3000 calls: log_softmax f32
 * [2048 8] 12.0-12.4 -> 9.3-9.6 us (one block at a time: 10.1-10.4),
 * softmax 11.0-11.1 -> 8.5, log_softmax f64 [4096 4] 31.3 -> 24.8. The
 * cost is compile time: cold `tlaloc run examples/attention.tg --stats`
 * with one compile thread 84-85 -> 99-100 ms (one block at a time: 93). */
static void half_body(em *e, srow *s, LLVMValueRef r0, LLVMValueRef r1) {
  srow h = *s;
  h.d = s->W / 2;
  h.dv = ci(e, h.d);
  bool group = h.d < GROUP_BELOW;
  sr_staged_blocks(e, &h, r0, r1, group ? block_group : block, group ? NBLK : 1, false);
}

/* rows of 3 to VW / 2: padded blocks (P 4 to VW / 2); longer, flat blocks */
static void blocks_body(em *e, srow *s, LLVMValueRef r0, LLVMValueRef r1) {
  int VW = s->W;
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->cx, e->fn, "blocksdone");
  if (VW / 2 >= 4) {
    LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "padrows");
    LLVMBasicBlockRef wb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "widerows");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLE, s->dv, ci(e, VW / 2)), pb, wb);
    LLVMPositionBuilderAtEnd(e->b, pb);
    sr_staged_blocks(e, s, r0, r1, sym_block, 1, false);
    LLVMBuildBr(e->b, done);
    LLVMPositionBuilderAtEnd(e->b, wb);
  }
  s->invd =
      sr_splat_v(e, LLVMBuildFDiv(e->b, LLVMConstReal(e->f32, 1), LLVMBuildSIToFP(e->b, s->dv, e->f32, ""), ""), VW);
  s->itbl = sym_table(e, s);
  sr_staged_blocks(e, s, r0, r1, flat_block, 1, false);
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
}

bool lw_short_softmax(em *e, const be_kern *k, LLVMBasicBlockRef *join) {
  *join = NULL;
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  int R = n->type.rank, dt = n->type.dtype;
  int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
  if (ax < 0) ax += R;
  if (R < 2 || ax != R - 1 || !isf(dt)) return false;
  int64_t d = n->type.dims[R - 1];
  int VW = (e->avx512 ? 64 : e->avx2 ? 32 : 16) / (int)tl_dtype_size((tl_dtype)dt);
  bool wide = d > VW && d <= MAXM * VW;
  if (d >= 0 && !blockable(d, VW) && !wide) return false;
  srow s = {.dt = dt, .d = d >= 0 ? d : 0, .W = VW, .soft = n->op == TL_OP_SOFTMAX, .et = vty(e, dt)};
  s.vt = LLVMVectorType(s.et, (unsigned)VW);
  LLVMValueRef dv = lw_dimv(e, d);
  s.dv = dv;
  bool flat = d < 0 && permutes(e); /* a symbolic length: flat blocks up to MAXM vectors, else chunks */
  LLVMBasicBlockRef fblock = NULL;
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMBasicBlockRef no = NULL;
  if (d >= 0) { /* a block of its own, named as the symbolic length's (the tests look for it) */
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "shortrows");
    LLVMBuildBr(e->b, yes);
    LLVMPositionBuilderAtEnd(e->b, yes);
  } else { /* the run-time test; the builder continues in the other lengths' block */
    LLVMValueRef pow2 = icmp(e, LLVMIntEQ, LLVMBuildAnd(e->b, dv, LLVMBuildSub(e->b, dv, ci(e, 1), ""), ""), ci(e, 0));
    LLVMValueRef ok = LLVMBuildAnd(
        e->b, pow2, LLVMBuildAnd(e->b, icmp(e, LLVMIntSGE, dv, ci(e, 1)), icmp(e, LLVMIntSLE, dv, ci(e, VW)), ""), "");
    LLVMValueRef in =
        LLVMBuildAnd(e->b, icmp(e, LLVMIntSGE, dv, ci(e, 1)), icmp(e, LLVMIntSLE, dv, ci(e, MAXM * VW)), "");
    /* padded or flat blocks (when they can) except for 1 and 2 (powers of
     * two up to VW / 4), where chunks ran faster: log_softmax f32 [8192 2]
     * 15.6 us against 18.5 padded, [16384 1] 14.2 against 27.0; [4096 4]
     * 17.9 against 12.4 padded (AOT objects, min of 200 x 20 calls,
     * Sapphire Rapids). Flat blocks against chunks on Zen 5: [8192 2] 51.5
     * against 16.6, [2048 8] 15.9 against 20.8. */
    if (flat) {
      LLVMValueRef chunks = LLVMBuildAnd(e->b, ok, icmp(e, LLVMIntSLE, dv, ci(e, VW / 4 < 2 ? VW / 4 : 2)), "");
      LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "flatrows");
      LLVMBasicBlockRef nf = LLVMAppendBasicBlockInContext(e->cx, e->fn, "notflat");
      LLVMBuildCondBr(e->b, LLVMBuildAnd(e->b, in, LLVMBuildNot(e->b, chunks, ""), ""), fb, nf);
      fblock = fb;
      LLVMPositionBuilderAtEnd(e->b, nf);
      ok = chunks;
    }
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "shortrows");
    no = LLVMAppendBasicBlockInContext(e->cx, e->fn, "rowpasses");
    *join = LLVMAppendBasicBlockInContext(e->cx, e->fn, "softmaxdone");
    LLVMBuildCondBr(e->b, ok, yes, no);
    LLVMPositionBuilderAtEnd(e->b, yes);
  }
  int nk = R - 1;
  int64_t kd[TL_MAX_RANK];
  for (int i = 0; i < nk; i++) kd[i] = n->type.dims[i];
  LLVMValueRef inner = ci(e, 1); /* rows per index of dim 0 */
  for (int i = 1; i < nk; i++) inner = LLVMBuildMul(e->b, inner, lw_dimv(e, kd[i]), "");
  s.src = chunk_source(e, k, tl_node_inputs(g, n)[0], nk, kd, lo, hi);
  s.dst = lw_bufptr(e, k->out);
  LLVMValueRef r0 = LLVMBuildMul(e->b, lo, inner, ""), r1 = LLVMBuildMul(e->b, hi, inner, "");
  if (d >= 0) {
    bool group = !wide && d < GROUP_BELOW;
    block_fn *fn = wide ? flat_block : group ? block_group : block;
    sr_staged_blocks(e, &s, r0, r1, fn, group ? NBLK : 1, false);
    return true;
  }
  sr_call_outlined(e, &s, "chunks", chunks_body, r0, r1);
  LLVMBuildBr(e->b, *join);
  if (fblock) { /* the input as the flat blocks read it, on their own path */
    LLVMPositionBuilderAtEnd(e->b, fblock);
    inner = ci(e, 1);
    for (int i = 1; i < nk; i++) inner = LLVMBuildMul(e->b, inner, lw_dimv(e, kd[i]), "");
    r0 = LLVMBuildMul(e->b, lo, inner, "");
    r1 = LLVMBuildMul(e->b, hi, inner, "");
    s.src = chunk_source(e, k, tl_node_inputs(g, n)[0], nk, kd, lo, hi);
    if (VW / 2 >= 4) {
      LLVMBasicBlockRef hb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "halfrows");
      LLVMBasicBlockRef ob = LLVMAppendBasicBlockInContext(e->cx, e->fn, "otherrows");
      LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, dv, ci(e, VW / 2)), hb, ob);
      LLVMPositionBuilderAtEnd(e->b, hb);
      sr_call_outlined(e, &s, "half", half_body, r0, r1);
      LLVMBuildBr(e->b, *join);
      LLVMPositionBuilderAtEnd(e->b, ob);
    }
    sr_call_outlined(e, &s, "blocks", blocks_body, r0, r1);
    LLVMBuildBr(e->b, *join);
  }
  LLVMPositionBuilderAtEnd(e->b, no);
  return false;
}
