/* gk_rows.c - row kernels: reductions (sum, prod, mean, max, min,
 * logsumexp) and softmax / log_softmax (gb.h).
 *
 * A row is what one output element of a reduction reads (or one softmax
 * row along its axis). Three ways to map rows onto threads, chosen when
 * the kernel is built:
 *   THREAD  a thread per row, the row read serially: for rows that keep
 *           the input's last dim (a sum over axis 0, a softmax over a
 *           leading axis), where neighbouring threads then read
 *           neighbouring columns (coalesced);
 *   WARP    a warp per row, lanes striding along it, combined by five
 *           xor shuffles: rows of a known length up to WARP_ROW;
 *   BLOCK   a block per row: each warp combines by shuffles, lane 0 of
 *           each warp writes shared memory, a barrier, every warp reads
 *           the block's per-warp partial results and combines them again by
 *           shuffles (so every thread holds the row's result without a
 *           second round through shared memory), and a barrier before the
 *           shared array is written again.
 * Rows are distributed grid-stride (block-stride in BLOCK mode, so the
 * barriers stay in block-uniform control flow; warp-stride in WARP mode,
 * so the shuffles see whole warps).
 *
 * The arithmetic follows backend/lower_rows.c: float reductions accumulate
 * in f64 and integer ones in i64 (softmax in its own dtype); max and min
 * propagate NaN; logsumexp and softmax shift by the row's max (by 0 when it
 * is infinite) and count the terms equal to the shift apart, so that the
 * log is taken as log1p of the rest. A producer fused into the kernel is
 * computed again in each pass (on the GPU every pass computes it with the
 * same code, so the passes agree). Softmax rows of a known length up to
 * CACHE_ROW are read once into registers instead (softmax_cached). */
#include "gpu/gb.h"

#include <math.h>
#include <string.h>

enum { M_THREAD, M_WARP, M_BLOCK };
enum { WARP_ROW = 1024 };
/* Softmax rows of a known length up to CACHE_ROW are held in registers,
 * at most CACHE_PER values per thread: blocks of GB_THREADS threads for
 * rows up to CACHE_SMALL, of CACHE_THREADS above (fewer, bigger blocks:
 * a 1024-thread block may use 64 registers per thread). */
enum { CACHE_PER = 32, CACHE_THREADS = 1024, CACHE_ROW = CACHE_PER * CACHE_THREADS, CACHE_SMALL = CACHE_PER * GB_THREADS };

void gb_reduce_axes(const tl_node *n, int rank, bool *red) {
  for (int i = 0; i < rank; i++) red[i] = !(n->attrs.present & TL_A_AXIS);
  for (int i = 0; i < n->attrs.naxes; i++) {
    int a = n->attrs.axes[i];
    red[a < 0 ? a + rank : a] = true;
  }
}

static bool isf(int dt) { return dt == TL_F32 || dt == TL_F64; }

/* How partial results combine. */
typedef enum { C_ADD, C_MUL, C_MAX, C_MIN } comb;

static int32_t combine(gb *b, comb c, int32_t x, int32_t y) {
  gk_kernel *k = b->k;
  gk_ty t = gk_type(k, x);
  bool fl = t == GK_F32 || t == GK_F64;
  switch (c) {
  case C_ADD: return gk_bin_v(k, fl ? GK_FADD : GK_ADD, x, y);
  case C_MUL: return gk_bin_v(k, fl ? GK_FMUL : GK_MUL, x, y);
  case C_MAX:
    if (fl) return gk_intr_v(k, GK_MAXIMUM, x, y, -1);
    return gk_select(k, gk_icmp_v(k, GK_ISGT, y, x), y, x);
  default:
    if (fl) return gk_intr_v(k, GK_MINIMUM, x, y, -1);
    return gk_select(k, gk_icmp_v(k, GK_ISLT, y, x), y, x);
  }
}

/* The row loop and lane loop of a mode. */
typedef struct rows {
  int mode;
  int32_t shm[3]; /* BLOCK: one shared array per combined value */
  int32_t lane0;  /* i1: this thread writes the row's result */
  int32_t first, step; /* the lane loop: first element and stride */
} rows;

static void rows_open(gb *b, rows *r, int32_t nrows, int32_t rv) {
  gk_kernel *k = b->k;
  int32_t tid = gk_sreg_v(k, GK_TID);
  int32_t lane = gk_bin_v(k, GK_AND, tid, gk_i64(k, 31)), warp = gk_bin_v(k, GK_ASHR, tid, gk_i64(k, 5));
  int32_t w = gk_i64(k, GB_WARPS);
  switch (r->mode) {
  case M_THREAD:
    gk_loop(k, rv, gb_gtid(b), nrows, gb_gstride(b));
    r->lane0 = gk_ci(k, GK_I1, 1);
    r->first = gk_i64(k, 0);
    r->step = gk_i64(k, 1);
    break;
  case M_WARP:
    gk_loop(k, rv, gk_add(k, gk_mul(k, gk_sreg_v(k, GK_CTAID), w), warp), nrows, gk_mul(k, gk_sreg_v(k, GK_NCTAID), w));
    r->lane0 = gk_icmp_v(k, GK_IEQ, lane, gk_i64(k, 0));
    r->first = lane;
    r->step = gk_i64(k, 32);
    break;
  default:
    gk_loop(k, rv, gk_sreg_v(k, GK_CTAID), nrows, gk_sreg_v(k, GK_NCTAID));
    r->lane0 = gk_icmp_v(k, GK_IEQ, tid, gk_i64(k, 0));
    r->first = tid;
    r->step = gk_sreg_v(k, GK_NTID);
    break;
  }
}

/* Combines n values (each with its own combine) across the threads that
 * share a row; every such thread gets the result. id: the identity of
 * each combine (BLOCK mode pads the shared reads with it). */
static void rows_combine(gb *b, rows *r, int n, int32_t *v, const comb *c, const int32_t *id) {
  gk_kernel *k = b->k;
  if (r->mode == M_THREAD) return;
  for (int off = 16; off >= 1; off /= 2)
    for (int i = 0; i < n; i++) v[i] = combine(b, c[i], v[i], gk_shfl_xor(k, v[i], off));
  if (r->mode == M_WARP) return;
  int32_t tid = gk_sreg_v(k, GK_TID);
  int32_t lane = gk_bin_v(k, GK_AND, tid, gk_i64(k, 31)), warp = gk_bin_v(k, GK_ASHR, tid, gk_i64(k, 5));
  int nw = k->launch.threads / 32; /* a power of two, at most 32 */
  gk_if(k, gk_icmp_v(k, GK_IEQ, lane, gk_i64(k, 0)));
  for (int i = 0; i < n; i++) gk_shstore(k, r->shm[i], warp, v[i]);
  gk_end(k);
  gk_barrier(k);
  int32_t in = gk_icmp_v(k, GK_ISLT, lane, gk_i64(k, nw));
  int32_t at = gk_bin_v(k, GK_AND, lane, gk_i64(k, nw - 1));
  for (int i = 0; i < n; i++) v[i] = gk_select(k, in, gk_shload(k, r->shm[i], at), id[i]);
  for (int off = 16; off >= 1; off /= 2)
    for (int i = 0; i < n; i++) v[i] = combine(b, c[i], v[i], gk_shfl_xor(k, v[i], off));
  gk_barrier(k); /* the shared arrays are written again by the next pass or row */
}

/* The mode for rows of length len (a tl dim product: known when every dim
 * is concrete) that keep (THREAD-friendly) or read along the last dim. */
static int choose_mode(bool along_last, int64_t len_known) {
  if (!along_last) return M_THREAD;
  if (len_known >= 0 && len_known <= WARP_ROW) return M_WARP;
  return M_BLOCK;
}

static void set_launch(gb *b, int mode, int nk, const int64_t *kd) {
  gk_launch *l = &b->k->launch;
  l->nwork = nk;
  for (int i = 0; i < nk; i++) l->work[i] = kd[i];
  l->per_block = mode == M_THREAD ? GB_THREADS : mode == M_WARP ? GB_WARPS : 1;
}

/* log of a sum of exponentials shifted by the max, from s (the terms other
 * than those equal to the shift) and ties (how many equal it): see
 * backend/lower_rows.c, sumexp_log */
static int32_t sumexp_log(gb *b, int dt, int32_t fin, int32_t s, int32_t ties) {
  gk_kernel *k = b->k;
  gk_ty t = gk_ty_of_dtype(dt);
  int32_t one = gk_cf(k, t, 1);
  int32_t rest = gk_bin_v(k, GK_FADD, s, gk_bin_v(k, GK_FSUB, ties, one));
  int32_t all = gk_bin_v(k, GK_FSUB, gk_bin_v(k, GK_FADD, s, ties), one);
  int32_t x = gk_select(k, fin, rest, all), u = gk_bin_v(k, GK_FADD, x, one);
  int32_t um1 = gk_bin_v(k, GK_FSUB, u, one);
  int32_t q = gk_bin_v(k, GK_FMUL, gb_math(b, GK_LOG, dt, u, -1), gk_bin_v(k, GK_FDIV, x, um1));
  int32_t r = gk_select(k, gk_fcmp_v(k, GK_FOEQ, u, gk_cf(k, t, INFINITY)), u, q);
  return gk_select(k, gk_fcmp_v(k, GK_FOEQ, um1, gk_cf(k, t, 0)), x, r);
}

/* |m| < inf */
static int32_t is_finite(gb *b, int32_t m) {
  gk_ty t = gk_type(b->k, m);
  return gk_fcmp_v(b->k, GK_FOLT, gk_intr_v(b->k, GK_FABS, m, -1, -1), gk_cf(b->k, t, INFINITY));
}

/* ---- reductions ---------------------------------------------------------------- */

typedef struct red {
  int32_t xid;
  const tl_node *xn;
  int nk, nr, kept[TL_MAX_RANK], rd[TL_MAX_RANK];
  int32_t kdim[TL_MAX_RANK], rdim[TL_MAX_RANK];
  int32_t kidx[TL_MAX_RANK];
  int adt;
} red;

/* The input at the row's kept indices and reduced element j, in adt. */
static int32_t red_elem(gb *b, const red *R, int32_t j) {
  int32_t ridx[TL_MAX_RANK], idx[TL_MAX_RANK];
  gb_decompose(b, j, R->nr, R->rdim, ridx);
  for (int i = 0; i < R->nk; i++) idx[R->kept[i]] = R->kidx[i];
  for (int i = 0; i < R->nr; i++) idx[R->rd[i]] = ridx[i];
  return gb_conv(b, gb_ex(b, R->xid, idx), R->xn->type.dtype, R->adt);
}

/* What a reduction kernel reads and how it combines: the rows and their
 * elements (R), the combine, its identity and the accumulator's dtype. */
typedef struct redk {
  red R;
  int op, odt, rank;
  bool ints, redm[TL_MAX_RANK];
  int64_t kd[TL_MAX_RANK], len_known, rows_known; /* -1: symbolic */
  comb c;
} redk;

static void red_shape(const tl_graph *g, const be_kern *kk, redk *q) {
  const tl_node *n = &g->nodes[kk->node];
  memset(q, 0, sizeof *q);
  q->R.xid = tl_node_inputs(g, n)[0];
  q->R.xn = &g->nodes[q->R.xid];
  q->rank = q->R.xn->type.rank;
  q->op = n->op;
  q->odt = n->type.dtype;
  gb_reduce_axes(n, q->rank, q->redm);
  q->len_known = q->rows_known = 1;
  for (int i = 0; i < q->rank; i++) {
    int64_t d = q->R.xn->type.dims[i];
    int64_t *known = q->redm[i] ? &q->len_known : &q->rows_known;
    *known = d < 0 || *known < 0 ? -1 : *known * d;
    if (q->redm[i])
      q->R.nr++;
    else
      q->kd[q->R.nk++] = d;
  }
  q->ints = !isf(q->odt) && q->op != TL_OP_MEAN && q->op != TL_OP_LOGSUMEXP;
  q->R.adt = q->ints ? TL_I64 : TL_F64;
  q->c = q->op == TL_OP_PROD                              ? C_MUL
         : q->op == TL_OP_MAX || q->op == TL_OP_LOGSUMEXP ? C_MAX
         : q->op == TL_OP_MIN                             ? C_MIN
                                                          : C_ADD;
}

/* The row mode of a reduction: rows along the last dim, or keeping it. */
static int red_mode(const redk *q) {
  bool along_last = !(q->rank >= 2 && q->R.nr > 0 && !q->redm[q->rank - 1]);
  return choose_mode(along_last, q->len_known);
}

/* The rows' and elements' dims as kernel values; count and nrows. */
static void red_dims(gb *b, redk *q, int32_t *count, int32_t *nrows) {
  gk_kernel *k = b->k;
  q->R.nk = q->R.nr = 0;
  for (int i = 0; i < q->rank; i++) {
    int64_t d = q->R.xn->type.dims[i];
    if (q->redm[i]) {
      q->R.rd[q->R.nr] = i;
      q->R.rdim[q->R.nr++] = gb_dim(b, d);
    } else {
      q->R.kept[q->R.nk] = i;
      q->R.kdim[q->R.nk++] = gb_dim(b, d);
    }
  }
  *count = gk_i64(k, 1);
  *nrows = gk_i64(k, 1);
  for (int i = 0; i < q->R.nr; i++) *count = gk_mul(k, *count, q->R.rdim[i]);
  for (int i = 0; i < q->R.nk; i++) *nrows = gk_mul(k, *nrows, q->R.kdim[i]);
}

static int32_t red_init(gb *b, const redk *q) {
  gk_kernel *k = b->k;
  gk_ty at = gk_ty_of_dtype(q->R.adt);
  comb c = q->c;
  if (c == C_ADD) return q->ints ? gk_i64(k, 0) : gk_cf(k, at, 0);
  if (c == C_MUL) return q->ints ? gk_i64(k, 1) : gk_cf(k, at, 1);
  if (q->ints) return gk_i64(k, c == C_MAX ? INT64_MIN : INT64_MAX);
  return gk_cf(k, at, c == C_MAX ? -INFINITY : INFINITY);
}

/* max and min of nothing: the program's error */
static void red_empty_check(gb *b, const redk *q, int32_t count) {
  if (q->op != TL_OP_MAX && q->op != TL_OP_MIN) return;
  gk_if(b->k, gk_icmp_v(b->k, GK_IEQ, count, gk_i64(b->k, 0)));
  gb_set_err(b, BE_ERR_EMPTY);
  gk_end(b->k);
}

/* The row's result r (adt) as the op's: mean divides by the count. */
static int32_t red_finish(gb *b, const redk *q, int32_t r, int32_t count) {
  if (q->op == TL_OP_MEAN) r = gk_bin_v(b->k, GK_FDIV, r, gk_conv_v(b->k, GK_SITOFP, count, GK_F64));
  return gb_conv(b, r, q->R.adt, q->odt);
}

int gb_k_red(gb *b, const be_kern *kk) {
  gk_kernel *k = b->k;
  redk q;
  red_shape(b->g, kk, &q);
  red *R = &q.R;
  int op = q.op;
  gk_ty at = gk_ty_of_dtype(R->adt);
  rows rw = {.mode = red_mode(&q)};
  set_launch(b, rw.mode, R->nk, q.kd);
  int32_t count, nrows;
  red_dims(b, &q, &count, &nrows);
  red_empty_check(b, &q, count);
  comb c = q.c;
  int32_t init = red_init(b, &q);
  if (rw.mode == M_BLOCK) {
    rw.shm[0] = gk_shm(k, at, GB_WARPS);
    if (op == TL_OP_LOGSUMEXP) rw.shm[1] = gk_shm(k, at, GB_WARPS);
  }
  int32_t rv = gk_var(k, GK_I64), acc = gk_var(k, at), jv = gk_var(k, GK_I64);
  rows_open(b, &rw, nrows, rv);
  int32_t row = gk_get(k, rv);
  gb_decompose(b, row, R->nk, R->kdim, R->kidx);
  gk_set(k, acc, init);
  gk_loop(k, jv, rw.first, count, rw.step);
  gk_set(k, acc, combine(b, c, gk_get(k, acc), red_elem(b, R, gk_get(k, jv))));
  gk_end(k);
  int32_t r = gk_get(k, acc);
  rows_combine(b, &rw, 1, &r, &c, &init);
  if (op == TL_OP_LOGSUMEXP) {
    int32_t m = r, fin = is_finite(b, m);
    int32_t sh = gk_select(k, fin, m, gk_cf(k, at, 0));
    int32_t s = gk_var(k, at), ties = gk_var(k, at);
    gk_set(k, s, gk_cf(k, at, 0));
    gk_set(k, ties, gk_cf(k, at, 0));
    gk_loop(k, jv, rw.first, count, rw.step);
    int32_t v = red_elem(b, R, gk_get(k, jv));
    int32_t eq = gk_fcmp_v(k, GK_FOEQ, v, sh);
    int32_t t = gb_math(b, GK_EXP, R->adt, gk_bin_v(k, GK_FSUB, v, sh), -1);
    gk_set(k, ties, gk_bin_v(k, GK_FADD, gk_get(k, ties), gk_select(k, eq, gk_cf(k, at, 1), gk_cf(k, at, 0))));
    gk_set(k, s, gk_bin_v(k, GK_FADD, gk_get(k, s), gk_select(k, eq, gk_cf(k, at, 0), t)));
    gk_end(k);
    int32_t pair[2] = {gk_get(k, s), gk_get(k, ties)}, zero = gk_cf(k, at, 0);
    comb cc[2] = {C_ADD, C_ADD};
    int32_t ids[2] = {zero, zero};
    rows_combine(b, &rw, 2, pair, cc, ids);
    r = gk_select(k, fin, gk_bin_v(k, GK_FADD, m, sumexp_log(b, R->adt, fin, pair[0], pair[1])), m);
  }
  gk_if(k, rw.lane0);
  gk_store(k, kk->out, q.odt, row, red_finish(b, &q, r, count));
  gk_end(k);
  gk_end(k);
  return b->failed ? -1 : 0;
}

/* ---- split reductions ----------------------------------------------------------
 * A reduction to a few rows (a loss: the sum or mean of everything) took
 * a block per row, so one block of the whole GPU read all of a long row;
 * one over a leading axis to few columns (a bias's gradient: the sum over
 * the batch of [b f]) took a thread per column, f threads for all of it.
 * Such a reduction runs as two kernels instead: the first computes up to
 * `slots` partial results per row into a scratch buffer (the
 * accumulator's dtype), the second reduces each row's partial results and
 * writes the row.
 *   BLOCK  each partial result a block's, over every (slots x threads)-th
 *          run of the row's elements; scratch rows x slots; the second
 *          kernel a block per row. A row uses ceil(count / SPLIT_PER_SLOT)
 *          slots.
 *   THREAD each partial result a thread's, over a run of ceil(count /
 *          used) consecutive elements of its row (neighbouring threads
 *          take neighbouring rows: the columns, coalesced); scratch slots x
 *          rows, so that the second kernel's thread per row reads it
 *          coalesced too. A row uses ceil(count / SPLIT_PER_THREAD) slots.
 * The slots used (at least 1, at most `slots`) are computed alike by both
 * kernels, so a short row costs little and the order in which elements
 * combine depends only on the count: the result is the same for any grid
 * (the interpreter's order is fixed too, though not the same; floats
 * accumulate in f64). Logsumexp keeps one kernel (its two passes would
 * need two scratch rounds). */
enum {
  SPLIT_ROWS = 64,
  SPLIT_SLOTS = 1024,
  SPLIT_PER_SLOT = 16 * GB_THREADS,
  SPLIT_MIN_LEN = 65536,
  /* THREAD: up to 2^18 threads in the first kernel (an H100 or H200
   * holds about 2^18 resident), for outputs of fewer than 2^15 columns */
  SPLIT_COLS = 32768,
  SPLIT_THREADS = 1 << 18,
  SPLIT_PER_THREAD = 16,
  SPLIT_MIN_COL = 1024
};

bool gb_red_split(const tl_graph *g, const be_kern *kk, tl_type *scratch, int *slots) {
  if (kk->kind != BE_K_RED) return false;
  redk q;
  red_shape(g, kk, &q);
  if (q.op == TL_OP_LOGSUMEXP || q.R.nk + 1 > TL_MAX_RANK || q.rows_known < 0) return false;
  int mode = red_mode(&q), s = SPLIT_SLOTS;
  if (mode == M_BLOCK) {
    if (q.rows_known > SPLIT_ROWS || (q.len_known >= 0 && q.len_known < SPLIT_MIN_LEN)) return false;
    while (s > 1 && s * q.rows_known > SPLIT_SLOTS) s /= 2;
  } else if (mode == M_THREAD) {
    if (q.rows_known > SPLIT_COLS || (q.len_known >= 0 && q.len_known < SPLIT_MIN_COL)) return false;
    while (s > 1 && s * q.rows_known > SPLIT_THREADS) s /= 2;
  } else {
    return false;
  }
  *slots = s;
  memset(scratch, 0, sizeof *scratch);
  scratch->dtype = (uint8_t)q.R.adt;
  scratch->rank = (uint8_t)(q.R.nk + 1);
  int lead = mode == M_THREAD; /* slots x rows, else rows x slots */
  for (int i = 0; i < q.R.nk; i++) scratch->dims[i + lead] = q.kd[i];
  scratch->dims[lead ? 0 : q.R.nk] = s;
  return true;
}

/* the slots a row of count elements uses: ceil(count / per), in [1,
 * slots], per the mode's; both kernels of a split reduction ask here */
static int32_t used_slots(gb *b, int mode, int32_t count, int slots) {
  gk_kernel *k = b->k;
  int per = mode == M_THREAD ? SPLIT_PER_THREAD : SPLIT_PER_SLOT;
  int32_t u = gk_bin_v(k, GK_SDIV, gk_add(k, count, gk_i64(k, per - 1)), gk_i64(k, per));
  u = gk_select(k, gk_icmp_v(k, GK_ISLT, u, gk_i64(k, 1)), gk_i64(k, 1), u);
  return gk_select(k, gk_icmp_v(k, GK_ISGT, u, gk_i64(k, slots)), gk_i64(k, slots), u);
}

/* the scratch element of row and slot */
static int32_t scratch_at(gb *b, int mode, int32_t row, int32_t slot, int32_t nrows, int slots) {
  gk_kernel *k = b->k;
  if (mode == M_THREAD) return gk_add(k, gk_mul(k, slot, nrows), row);
  return gk_add(k, gk_mul(k, row, gk_i64(k, slots)), slot);
}

int gb_k_red_part(gb *b, const be_kern *kk, int32_t scratch, int slots) {
  gk_kernel *k = b->k;
  redk q;
  red_shape(b->g, kk, &q);
  red *R = &q.R;
  int mode = red_mode(&q);
  gk_ty at = gk_ty_of_dtype(R->adt);
  gk_launch *l = &k->launch;
  l->nwork = R->nk + 1;
  int lead = mode == M_THREAD;
  for (int i = 0; i < R->nk; i++) l->work[i + lead] = q.kd[i];
  l->work[lead ? 0 : R->nk] = slots;
  l->per_block = mode == M_THREAD ? GB_THREADS : 1;
  int32_t count, nrows;
  red_dims(b, &q, &count, &nrows);
  comb c = q.c;
  int32_t init = red_init(b, &q);
  int32_t sv = gk_var(k, GK_I64), acc = gk_var(k, at), jv = gk_var(k, GK_I64);
  int32_t used = used_slots(b, mode, count, slots);
  if (mode == M_THREAD) {
    /* thread t: row t % nrows, slot t / nrows, over a run of the row */
    int32_t per = gk_bin_v(k, GK_SDIV, gk_add(k, count, gk_add(k, used, gk_i64(k, -1))), used);
    gk_loop(k, sv, gb_gtid(b), gk_mul(k, nrows, used), gb_gstride(b));
    int32_t t = gk_get(k, sv);
    int32_t slot = gk_bin_v(k, GK_SDIV, t, nrows), row = gk_bin_v(k, GK_SREM, t, nrows);
    gb_decompose(b, row, R->nk, R->kdim, R->kidx);
    int32_t lo = gk_mul(k, slot, per), hi = gk_add(k, lo, per);
    hi = gk_select(k, gk_icmp_v(k, GK_ISGT, hi, count), count, hi);
    gk_set(k, acc, init);
    gk_loop(k, jv, lo, hi, gk_i64(k, 1));
    gk_set(k, acc, combine(b, c, gk_get(k, acc), red_elem(b, R, gk_get(k, jv))));
    gk_end(k);
    gk_store(k, scratch, R->adt, scratch_at(b, mode, row, slot, nrows, slots), gk_get(k, acc));
    gk_end(k);
    return b->failed ? -1 : 0;
  }
  rows rw = {.mode = M_BLOCK};
  rw.shm[0] = gk_shm(k, at, GB_WARPS);
  int32_t tid = gk_sreg_v(k, GK_TID), ntid = gk_sreg_v(k, GK_NTID);
  /* slot s of the used ones: row s / used, part s % used (block-uniform) */
  gk_loop(k, sv, gk_sreg_v(k, GK_CTAID), gk_mul(k, nrows, used), gk_sreg_v(k, GK_NCTAID));
  int32_t s = gk_get(k, sv);
  int32_t row = gk_bin_v(k, GK_SDIV, s, used), part = gk_bin_v(k, GK_SREM, s, used);
  gb_decompose(b, row, R->nk, R->kdim, R->kidx);
  gk_set(k, acc, init);
  gk_loop(k, jv, gk_add(k, gk_mul(k, part, ntid), tid), count, gk_mul(k, used, ntid));
  gk_set(k, acc, combine(b, c, gk_get(k, acc), red_elem(b, R, gk_get(k, jv))));
  gk_end(k);
  int32_t r = gk_get(k, acc);
  rows_combine(b, &rw, 1, &r, &c, &init);
  gk_if(k, gk_icmp_v(k, GK_IEQ, tid, gk_i64(k, 0)));
  gk_store(k, scratch, R->adt, scratch_at(b, mode, row, part, nrows, slots), r);
  gk_end(k);
  gk_end(k);
  return b->failed ? -1 : 0;
}

int gb_k_red_final(gb *b, const be_kern *kk, int32_t scratch, int slots) {
  gk_kernel *k = b->k;
  redk q;
  red_shape(b->g, kk, &q);
  red *R = &q.R;
  int mode = red_mode(&q);
  gk_ty at = gk_ty_of_dtype(R->adt);
  set_launch(b, mode, R->nk, q.kd);
  int32_t count, nrows;
  red_dims(b, &q, &count, &nrows);
  red_empty_check(b, &q, count);
  rows rw = {.mode = mode};
  if (mode == M_BLOCK) rw.shm[0] = gk_shm(k, at, GB_WARPS);
  comb c = q.c;
  int32_t init = red_init(b, &q);
  int32_t used = used_slots(b, mode, count, slots);
  int32_t rv = gk_var(k, GK_I64), acc = gk_var(k, at), jv = gk_var(k, GK_I64);
  rows_open(b, &rw, nrows, rv);
  int32_t row = gk_get(k, rv);
  gk_set(k, acc, init);
  gk_loop(k, jv, rw.first, used, rw.step);
  int32_t at_j = scratch_at(b, mode, row, gk_get(k, jv), nrows, slots);
  gk_set(k, acc, combine(b, c, gk_get(k, acc), gk_load(k, scratch, R->adt, at_j)));
  gk_end(k);
  int32_t r = gk_get(k, acc);
  rows_combine(b, &rw, 1, &r, &c, &init);
  gk_if(k, rw.lane0);
  gk_store(k, kk->out, q.odt, row, red_finish(b, &q, r, count));
  gk_end(k);
  gk_end(k);
  return b->failed ? -1 : 0;
}

/* ---- softmax and log_softmax: the max and the sum in one read -----------------
 * A row not held in registers is read twice, not three times: the first
 * pass keeps, per thread, the running max m, the sum s of the terms
 * exp(v - shift(m)) other than those equal to the shift, and their count
 * t (the ties, which log_softmax takes apart: log1p of the rest). Where
 * the shift moves from sh to sh2, the terms so far all scale by exp(sh -
 * sh2): s becomes (s + t) exp(sh - sh2), t becomes 0 (0 stays 0: with no
 * term yet, the factor may be infinite). Threads' states merge the same
 * way, each scaled to the larger max's shift. The shift is as the three
 * passes had it (the max, 0 when infinite, NaN when NaN), so the terms are
 * the same numbers, each scaled once per move of its thread's max, a
 * rounding or two more. The price is a second exp per element (the
 * factor, taken whether or not the max moved: a branch would diverge
 * within the warp), against a third read of the row; not yet timed. */

/* shift(m): m when finite or NaN, else 0 */
static int32_t shift_of(gb *b, int32_t m) {
  gk_kernel *k = b->k;
  int32_t fin = is_finite(b, m);
  return gk_select(k, gk_bin_v(k, GK_OR, fin, gk_fcmp_v(k, GK_FUNO, m, m)), m, gk_cf(k, gk_type(k, m), 0));
}

/* (s, t) of a state whose max had shift sh, scaled to shift sh2 */
static void online_scale(gb *b, int dt, int32_t sh, int32_t sh2, int32_t *s, int32_t *t) {
  gk_kernel *k = b->k;
  gk_ty ty = gk_ty_of_dtype(dt);
  int32_t zero = gk_cf(k, ty, 0), st = gk_bin_v(k, GK_FADD, *s, *t);
  int32_t f = gb_math(b, GK_EXP, dt, gk_bin_v(k, GK_FSUB, sh, sh2), -1);
  int32_t scaled = gk_select(k, gk_fcmp_v(k, GK_FOEQ, st, zero), zero, gk_bin_v(k, GK_FMUL, st, f));
  int32_t moved = gk_fcmp_v(k, GK_FUNE, sh, sh2);
  *s = gk_select(k, moved, scaled, *s);
  *t = gk_select(k, moved, zero, *t);
}

/* Merges the (m, s, t) states of the threads that share a row (as
 * rows_combine: xor shuffles, then in BLOCK mode one shared slot per warp
 * and shuffles again); every such thread gets the row's state. */
static void online_combine(gb *b, rows *r, int dt, int32_t *m, int32_t *s, int32_t *t) {
  gk_kernel *k = b->k;
  gk_ty ty = gk_ty_of_dtype(dt);
  if (r->mode == M_THREAD) return;
  for (int round = 0; round < 2; round++) {
    for (int off = 16; off >= 1; off /= 2) {
      int32_t m2 = gk_shfl_xor(k, *m, off), s2 = gk_shfl_xor(k, *s, off), t2 = gk_shfl_xor(k, *t, off);
      int32_t mm = combine(b, C_MAX, *m, m2), sh = shift_of(b, mm);
      online_scale(b, dt, shift_of(b, *m), sh, s, t);
      online_scale(b, dt, shift_of(b, m2), sh, &s2, &t2);
      *m = mm;
      *s = gk_bin_v(k, GK_FADD, *s, s2);
      *t = gk_bin_v(k, GK_FADD, *t, t2);
    }
    if (r->mode == M_WARP || round == 1) break;
    int32_t tid = gk_sreg_v(k, GK_TID);
    int32_t lane = gk_bin_v(k, GK_AND, tid, gk_i64(k, 31)), warp = gk_bin_v(k, GK_ASHR, tid, gk_i64(k, 5));
    int nw = k->launch.threads / 32;
    gk_if(k, gk_icmp_v(k, GK_IEQ, lane, gk_i64(k, 0)));
    gk_shstore(k, r->shm[0], warp, *m);
    gk_shstore(k, r->shm[1], warp, *s);
    gk_shstore(k, r->shm[2], warp, *t);
    gk_end(k);
    gk_barrier(k);
    int32_t in = gk_icmp_v(k, GK_ISLT, lane, gk_i64(k, nw));
    int32_t at = gk_bin_v(k, GK_AND, lane, gk_i64(k, nw - 1)), zero = gk_cf(k, ty, 0);
    *m = gk_select(k, in, gk_shload(k, r->shm[0], at), gk_cf(k, ty, -INFINITY));
    *s = gk_select(k, in, gk_shload(k, r->shm[1], at), zero);
    *t = gk_select(k, in, gk_shload(k, r->shm[2], at), zero);
  }
  if (r->mode == M_BLOCK) gk_barrier(k); /* the shared arrays are written again by the next row */
}

/* ---- softmax and log_softmax ------------------------------------------------------ */

/* Softmax or log_softmax of the row at idx (its axis ax of known length
 * d) with the row held in registers: `per` elements per thread, in runs
 * of `vec` (4 when d is a multiple of 4, else 1): run q of a thread starts
 * at element (tid + q * threads) * vec, so a warp's accesses are
 * contiguous, and a run's first element is marked aligned to the run
 * (every buffer is 256-byte aligned and the row starts at a multiple of
 * vec), which lets LLVM load and store a run as one vector. One read of
 * the input, one write; the exponentials of softmax are computed once.
 * Runs past the row's end (only in the last, when threads * vec does not
 * divide d) are skipped and read as -inf, which adds nothing to the max,
 * the sum or the ties whatever the shift (finite, 0, or NaN). */
/* Marks the next loads or stores at run q's first element (idx with the
 * axis at base) aligned to the run, or clears the mark (vec 1). */
static void align_run(gb *b, int vec, int rank, const int32_t *ost, int32_t *idx, int ax, int32_t base) {
  gk_kernel *k = b->k;
  k->align_base = -1;
  if (vec == 1) return;
  idx[ax] = base;
  k->align_base = gb_offset(b, rank, ost, idx);
  k->align_vec = vec;
}

static void softmax_cached(gb *b, const be_kern *kk, rows *rw, int64_t d, int32_t *idx, int ax, const int32_t *ost) {
  gk_kernel *k = b->k;
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[kk->node];
  int32_t xid = tl_node_inputs(g, n)[0];
  int xdt = g->nodes[xid].type.dtype, dt = n->type.dtype, rank = n->type.rank, T = k->launch.threads;
  int vec = d % 4 == 0 ? 4 : 1, nrun = (int)((d + (int64_t)T * vec - 1) / ((int64_t)T * vec));
  gk_ty t = gk_ty_of_dtype(dt);
  bool soft = n->op == TL_OP_SOFTMAX, ragged = d % ((int64_t)T * vec) != 0;
  int32_t tid = gk_sreg_v(k, GK_TID), len = gk_i64(k, d), ninf = gk_cf(k, t, -INFINITY);
  int32_t vals[CACHE_PER], at[CACHE_PER];
  int32_t m = ninf;
  for (int q = 0; q < nrun; q++) {
    int32_t base = gk_mul(k, gk_add(k, tid, gk_i64(k, (int64_t)q * T)), gk_i64(k, vec));
    bool guard = ragged && q == nrun - 1;
    for (int e = 0; e < vec; e++) {
      at[q * vec + e] = gk_add(k, base, gk_i64(k, e));
      vals[q * vec + e] = gk_var(k, t);
      if (guard) gk_set(k, vals[q * vec + e], ninf);
    }
    if (guard) gk_if(k, gk_icmp_v(k, GK_ISLT, base, len));
    align_run(b, vec, rank, ost, idx, ax, base);
    for (int e = 0; e < vec; e++) {
      idx[ax] = at[q * vec + e];
      gk_set(k, vals[q * vec + e], gb_conv(b, gb_ex(b, xid, idx), xdt, dt));
    }
    align_run(b, 1, rank, ost, idx, ax, base);
    if (guard) gk_end(k);
    for (int e = 0; e < vec; e++) m = combine(b, C_MAX, m, gk_get(k, vals[q * vec + e]));
  }
  int per = nrun * vec;
  comb cmax = C_MAX;
  rows_combine(b, rw, 1, &m, &cmax, &ninf);
  int32_t fin = is_finite(b, m);
  int32_t sh = gk_select(k, gk_bin_v(k, GK_OR, fin, gk_fcmp_v(k, GK_FUNO, m, m)), m, gk_cf(k, t, 0));
  int32_t zero = gk_cf(k, t, 0), one = gk_cf(k, t, 1), s = zero, ties = zero;
  for (int c = 0; c < per; c++) {
    int32_t v = gk_get(k, vals[c]), eq = gk_fcmp_v(k, GK_FOEQ, v, sh);
    int32_t e = gb_math(b, GK_EXP, dt, gk_bin_v(k, GK_FSUB, v, sh), -1);
    ties = gk_bin_v(k, GK_FADD, ties, gk_select(k, eq, one, zero));
    s = gk_bin_v(k, GK_FADD, s, gk_select(k, eq, zero, e));
    if (soft) gk_set(k, vals[c], e);
  }
  int32_t pair[2] = {s, ties};
  comb cc[2] = {C_ADD, C_ADD};
  int32_t ids[2] = {zero, zero};
  rows_combine(b, rw, 2, pair, cc, ids);
  int32_t post = soft ? gk_bin_v(k, GK_FDIV, one, gk_bin_v(k, GK_FADD, pair[0], pair[1]))
                      : sumexp_log(b, dt, fin, pair[0], pair[1]);
  for (int q = 0; q < nrun; q++) {
    bool guard = ragged && q == nrun - 1;
    int32_t base = at[q * vec];
    if (guard) gk_if(k, gk_icmp_v(k, GK_ISLT, base, len));
    int32_t y[4];
    for (int e = 0; e < vec; e++) {
      int32_t v = gk_get(k, vals[q * vec + e]);
      y[e] = soft ? gk_bin_v(k, GK_FMUL, v, post) : gk_bin_v(k, GK_FSUB, gk_bin_v(k, GK_FSUB, v, sh), post);
    }
    align_run(b, vec, rank, ost, idx, ax, base);
    for (int e = 0; e < vec; e++) {
      idx[ax] = at[q * vec + e];
      gk_store(k, kk->out, dt, gb_offset(b, rank, ost, idx), y[e]);
    }
    align_run(b, 1, rank, ost, idx, ax, base);
    if (guard) gk_end(k);
  }
}

int gb_k_softmax(gb *b, const be_kern *kk) {
  gk_kernel *k = b->k;
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[kk->node];
  int32_t xid = tl_node_inputs(g, n)[0];
  const tl_node *xn = &g->nodes[xid];
  int rank = n->type.rank, dt = n->type.dtype;
  gk_ty t = gk_ty_of_dtype(dt);
  bool soft = n->op == TL_OP_SOFTMAX;
  int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
  if (ax < 0) ax += rank;
  int kept[TL_MAX_RANK], nk = 0;
  int64_t kd[TL_MAX_RANK];
  int32_t kdim[TL_MAX_RANK], kidx[TL_MAX_RANK], idx[TL_MAX_RANK], ost[TL_MAX_RANK];
  for (int i = 0; i < rank; i++)
    if (i != ax) {
      kd[nk] = n->type.dims[i];
      kdim[nk] = gb_dim(b, kd[nk]);
      kept[nk++] = i;
    }
  int64_t d = n->type.dims[ax];
  rows rw = {.mode = choose_mode(ax == rank - 1, d)};
  /* a row of known length up to CACHE_ROW is read once into registers */
  bool cached = rw.mode == M_BLOCK && d > 0 && d <= CACHE_ROW;
  if (cached) k->launch.threads = d <= CACHE_SMALL ? GB_THREADS : CACHE_THREADS;
  set_launch(b, rw.mode, nk, kd);
  int32_t len = gb_dim(b, d), nrows = gk_i64(k, 1);
  for (int i = 0; i < nk; i++) nrows = gk_mul(k, nrows, kdim[i]);
  gb_strides(b, rank, n->type.dims, ost);
  if (rw.mode == M_BLOCK) {
    rw.shm[0] = gk_shm(k, t, k->launch.threads / 32);
    rw.shm[1] = gk_shm(k, t, k->launch.threads / 32);
    if (!cached) rw.shm[2] = gk_shm(k, t, k->launch.threads / 32);
  }
  int32_t rv = gk_var(k, GK_I64), jv = gk_var(k, GK_I64), mx = gk_var(k, t), s = gk_var(k, t), ties = gk_var(k, t);
  rows_open(b, &rw, nrows, rv);
  gb_decompose(b, gk_get(k, rv), nk, kdim, kidx);
  for (int i = 0; i < nk; i++) idx[kept[i]] = kidx[i];
  if (cached) {
    softmax_cached(b, kk, &rw, d, idx, ax, ost);
    gk_end(k);
    return b->failed ? -1 : 0;
  }
  /* pass 1: the max, the sum of exponentials and the ties, online */
  int32_t zero = gk_cf(k, t, 0);
  gk_set(k, mx, gk_cf(k, t, -INFINITY));
  gk_set(k, s, zero);
  gk_set(k, ties, zero);
  gk_loop(k, jv, rw.first, len, rw.step);
  idx[ax] = gk_get(k, jv);
  int32_t v = gb_conv(b, gb_ex(b, xid, idx), xn->type.dtype, dt);
  int32_t m0 = gk_get(k, mx), m2 = combine(b, C_MAX, m0, v), sh2 = shift_of(b, m2);
  int32_t sv = gk_get(k, s), tv = gk_get(k, ties);
  online_scale(b, dt, shift_of(b, m0), sh2, &sv, &tv);
  int32_t eq = gk_fcmp_v(k, GK_FOEQ, v, sh2);
  int32_t e = gb_math(b, GK_EXP, dt, gk_bin_v(k, GK_FSUB, v, sh2), -1);
  gk_set(k, ties, gk_bin_v(k, GK_FADD, tv, gk_select(k, eq, gk_cf(k, t, 1), zero)));
  gk_set(k, s, gk_bin_v(k, GK_FADD, sv, gk_select(k, eq, zero, e)));
  gk_set(k, mx, m2);
  gk_end(k);
  int32_t m = gk_get(k, mx), sum = gk_get(k, s), tie = gk_get(k, ties);
  online_combine(b, &rw, dt, &m, &sum, &tie);
  int32_t fin = is_finite(b, m), sh = shift_of(b, m);
  int32_t post =
      soft ? gk_bin_v(k, GK_FDIV, gk_cf(k, t, 1), gk_bin_v(k, GK_FADD, sum, tie)) : sumexp_log(b, dt, fin, sum, tie);
  /* pass 2: write */
  gk_loop(k, jv, rw.first, len, rw.step);
  idx[ax] = gk_get(k, jv);
  v = gk_bin_v(k, GK_FSUB, gb_conv(b, gb_ex(b, xid, idx), xn->type.dtype, dt), sh);
  int32_t y = soft ? gk_bin_v(k, GK_FMUL, gb_math(b, GK_EXP, dt, v, -1), post) : gk_bin_v(k, GK_FSUB, v, post);
  gk_store(k, kk->out, dt, gb_offset(b, rank, ost, idx), y);
  gk_end(k);
  gk_end(k);
  return b->failed ? -1 : 0;
}
