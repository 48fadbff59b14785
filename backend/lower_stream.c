/* lower_stream.c - loops that stream memory. lw_prefetched_loop runs a
 * loop in blocks of one output line, each block first prefetching the
 * inputs read in step with the output (lw_stream_bufs) a distance ahead,
 * and can store each line of a large output with a streaming store
 * (lw_nt_wanted says when). Elementwise kernels that call vector math
 * (lower.c, lw_calls_math) prefetch PF_AHEAD lines ahead; a softmax's
 * write pass over its last axis (lower_rows.c) prefetches the next row
 * (log_softmax's, run one row behind inside a sum pass, the row after). */
#include "backend/lower_internal.h"

/* ---- streaming prefetch ---------------------------------------------------
 * A kernel that calls vector math functions (exp, tanh, ...) on every
 * element issues its loads too slowly for the hardware prefetcher to keep
 * memory busy: one thread ran the exp/tanh chain of bench-backend at the
 * sum of its compute time and the triad's memory time (1.11 ns per element
 * against 0.56 in L1 and 0.66 for the triad). Prefetching each streamed
 * input a fixed distance ahead, one line per vector, overlaps the two (the
 * same loop in C: 10.1 -> 7.3 ms, the triad 7.4 ms). Prefetching a block's
 * lines in a burst at its start did not help (10.4 ms): the misses must be
 * spread over the loop. So the loop runs in blocks of one cache line of
 * the output, each block first prefetching the lines PF_AHEAD blocks ahead
 * and then running the body over the block (one vector). */

/* An inline expression (or the kernel's own definition, own) that calls a
 * vector math function. Recursion depth: the fused expression's, at most
 * BE_FUSE_MAX_OPS. */
bool lw_calls_math(const be_plan *p, int32_t id, bool own) {
  if (!own && p->state[id] != BE_S_INLINE) return false;
  const tl_node *n = &p->g->nodes[id];
  if (tl_ops[n->op].vmath && tl_ops[n->op].kind == TL_KIND_ELEMWISE && isf(n->type.dtype)) return true;
  for (int i = 0; i < n->ninputs; i++)
    if (lw_calls_math(p, tl_node_inputs(p->g, n)[i], false)) return true;
  return false;
}

/* The buffers kernel k reads in step with its output: as many elements
 * (the same dims once dims of size 1 are dropped). In a kernel whose
 * loops merge into one, such a buffer is read at the loop's index. */
int lw_stream_bufs(const be_plan *p, const be_kern *k, int32_t *out, int max) {
  return lw_bufs_like(p, k, &p->g->nodes[k->node].type, out, max);
}

/* The buffers kernel k reads that have t's dims (dims of size 1 dropped) */
int lw_bufs_like(const be_plan *p, const be_kern *k, const tl_type *t, int32_t *out, int max) {
  int64_t od[TL_MAX_RANK];
  int nod = 0;
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] != 1) od[nod++] = t->dims[i];
  int ns = 0;
  for (int r = 0; r < k->nreads && ns < max; r++) {
    const be_buf *b = &p->bufs[k->reads[r]];
    int nb = 0;
    bool same = true;
    for (int i = 0; i < b->rank && same; i++)
      if (b->dims[i] != 1) same = nb < nod && b->dims[i] == od[nb++];
    if (!same || nb != nod || b->dtype == TL_BOOL) continue;
    bool dup = false;
    for (int q = 0; q < ns; q++) dup |= out[q] == k->reads[r];
    if (!dup) out[ns++] = k->reads[r];
  }
  return ns;
}

void lw_prefetch(em *e, LLVMValueRef base, LLVMValueRef byte_off) {
  LLVMValueRef a = LLVMBuildGEP2(e->b, e->i8, base, &byte_off, 1, "");
  LLVMValueRef args[4] = {a, LLVMConstInt(e->i32, 0, 0), LLVMConstInt(e->i32, 3, 0), LLVMConstInt(e->i32, 1, 0)};
  lw_intr(e, "llvm.prefetch", e->ptr, args, 4);
}

/* ---- streaming stores -----------------------------------------------------
 * A large output is written with streaming (non-temporal) stores: an
 * ordinary store first reads the line it writes (read for ownership), so
 * writing 40 MB moves 80 MB; a streaming store moves 40. log_softmax over
 * 1000 x 10000 f32 in C, one thread: 12.3-12.6 -> 9.2-9.3 ms. An output
 * smaller than NT_MIN_BYTES may be read again from cache by the next
 * kernel and keeps ordinary stores. A streaming store writes a whole
 * aligned line, so the block's body stores its line into a scratch line
 * (vectorised like any other store), and the block then stores the line:
 * streaming when the output is large and the line aligned, else ordinary.
 * The extra store and load stay in L1. */
enum { NT_MIN_BYTES = 8 << 20 };

/* on (i1): stream k's output, NULL: never. Streaming pays when nothing
 * reads the output again soon: the output holds at least NT_MIN_BYTES, no
 * later kernel reads it, and its pages are not fresh. A page the process
 * has just faulted in was zeroed through the cache, and a streaming store
 * to a cached line costs more than an ordinary one (log_softmax 1000 x
 * 10000 into a fresh output: 15.7-16.1 ms ordinary, 18.4-18.6 ms
 * streaming); be_run, which allocates its outputs for each call, says so
 * in the frame's fresh flag. */
LLVMValueRef lw_nt_wanted(em *e, const be_kern *k) {
  const tl_node *n = &e->g->nodes[k->node];
  int dt = e->p->bufs[k->out].dtype;
  if (!e->x86 || dt == TL_BOOL || k->place >= 0) return NULL;
  for (const be_kern *q = k + 1; q < e->p->ks + e->p->nks; q++)
    for (int r = 0; r < q->nreads; r++)
      if (q->reads[r] == k->out) return NULL;
  LLVMValueRef bytes = ci(e, tl_dtype_size((tl_dtype)dt));
  for (int i = 0; i < n->type.rank; i++) bytes = LLVMBuildMul(e->pre, bytes, lw_dimv(e, n->type.dims[i]), "");
  LLVMValueRef on = LLVMBuildICmp(e->pre, LLVMIntSGE, bytes, ci(e, NT_MIN_BYTES), "");
  if (LLVMIsAConstantInt(on) && !LLVMConstIntGetZExtValue(on)) return NULL; /* known small: no scratch line */
  LLVMValueRef fa = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 20)}, 1, "");
  LLVMValueRef fresh = LLVMBuildLoad2(e->pre, e->i32, fa, "fresh");
  return LLVMBuildAnd(e->pre, on, LLVMBuildICmp(e->pre, LLVMIntEQ, fresh, LLVMConstInt(e->i32, 0, 0), ""), "");
}

static void store_line(em *e, const nt_lines *nt, LLVMValueRef scratch, LLVMValueRef i0, void *ctx);

/* How many elements of [lo, hi) come before the first aligned line of
 * nt's output (all of them where none is aligned). */
LLVMValueRef lw_line_head(em *e, const nt_lines *nt, LLVMValueRef lo, LLVMValueRef hi, void *ctx) {
  LLVMValueRef off = nt->off(e, lo, ctx);
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, mty(e, nt->dt), lw_bufptr(e, nt->buf), &off, 1, "");
  LLVMValueRef mis = LLVMBuildAnd(e->b, LLVMBuildPtrToInt(e->b, a, e->i64, ""), ci(e, PF_LINE - 1), "");
  LLVMValueRef h =
      LLVMBuildUDiv(e->b, LLVMBuildAnd(e->b, LLVMBuildSub(e->b, ci(e, PF_LINE), mis, ""), ci(e, PF_LINE - 1), ""),
                    ci(e, tl_dtype_size((tl_dtype)nt->dt)), "");
  LLVMValueRef len = LLVMBuildSub(e->b, hi, lo, "");
  return sel(e, icmp(e, LLVMIntSGT, h, len), len, h);
}

/* for (i = lo; i < hi; i++) body(i), in blocks of bl elements (one output
 * line): each block [i0, i0 + bl) first prefetches, for each buffer of st,
 * the line(s) at element i0 + ahead, then runs the body from 0 to the
 * constant bl (the vectoriser sees the trip count: one vector); the
 * remainder, fewer than bl elements, runs after without vectorisation
 * (less code: attention's cold JIT 10.0-10.6 -> 9.5-10.1 ms). With nt,
 * the elements before the first line boundary of the output run first,
 * so that the blocks write whole aligned lines, each stored by store_line
 * (streaming stores). */
void lw_prefetched_loop(em *e, int64_t bl, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef ahead,
                        const int32_t *st, int ns, pf_body *body, void *ctx, const nt_lines *nt) {
  e->scratch_j = NULL;
  if (nt) { /* the elements before the first aligned output line, one by one */
    LLVMValueRef start = LLVMBuildNSWAdd(e->b, lo, lw_line_head(e, nt, lo, hi, ctx), "");
    loop hb;
    LLVMValueRef i = lw_loop_open(e, &hb, lo, start, 0, NULL);
    hb.ic = -1;
    hb.nounroll = 1;
    body(e, i, ctx);
    lw_loop_close(e, &hb, NULL);
    lo = start;
  }
  LLVMValueRef nblk = LLVMBuildUDiv(e->b, LLVMBuildSub(e->b, hi, lo, ""), ci(e, bl), "");
  loop ob, ib, tb;
  LLVMValueRef b = lw_loop_open(e, &ob, ci(e, 0), nblk, 0, NULL);
  ob.nounroll = 1; /* one vector a block already; unrolled, cheap bodies (softmax's scaling) doubled the code */
  LLVMValueRef i0 = LLVMBuildNSWAdd(e->b, lo, LLVMBuildNSWMul(e->b, b, ci(e, bl), ""), "");
  LLVMValueRef at = LLVMBuildAdd(e->b, i0, ahead, "");
  for (int s = 0; s < ns; s++) {
    int64_t sz = tl_dtype_size((tl_dtype)e->p->bufs[st[s]].dtype);
    LLVMValueRef byte = LLVMBuildMul(e->b, at, ci(e, sz), "");
    for (int64_t c = 0; c < bl * sz; c += PF_LINE) lw_prefetch(e, lw_bufptr(e, st[s]), LLVMBuildAdd(e->b, byte, ci(e, c), ""));
  }
  LLVMTypeRef lty = nt ? LLVMArrayType2(mty(e, nt->dt), (uint64_t)bl) : NULL;
  if (nt) {
    e->scratch = LLVMBuildAlloca(e->pre, lty, "line");
    LLVMSetAlignment(e->scratch, PF_LINE);
    e->scratch_buf = nt->buf;
  }
  LLVMValueRef j = lw_loop_open(e, &ib, ci(e, 0), ci(e, bl), 0, NULL);
  ib.ic = 1;
  ib.vectorize = 1; /* bl elements: one vector */
  e->scratch_j = j;
  body(e, LLVMBuildNSWAdd(e->b, i0, j, ""), ctx);
  lw_loop_close(e, &ib, NULL);
  if (nt) store_line(e, nt, e->scratch, i0, ctx);
  e->scratch = e->scratch_j = NULL;
  lw_loop_close(e, &ob, NULL);
  LLVMValueRef rest = LLVMBuildNSWAdd(e->b, lo, LLVMBuildNSWMul(e->b, nblk, ci(e, bl), ""), "");
  LLVMValueRef i = lw_loop_open(e, &tb, rest, hi, 0, NULL);
  tb.ic = -1;
  tb.nounroll = 1;
  body(e, i, ctx);
  lw_loop_close(e, &tb, NULL);
}

/* the scratch line to the output line of element i0: one vector store,
 * streaming when nt->on and the line is aligned */
static void store_line(em *e, const nt_lines *nt, LLVMValueRef scratch, LLVMValueRef i0, void *ctx) {
  LLVMTypeRef ety = mty(e, nt->dt);
  LLVMTypeRef vt = LLVMVectorType(ety, (unsigned)(PF_LINE / tl_dtype_size((tl_dtype)nt->dt)));
  LLVMValueRef v = LLVMBuildLoad2(e->b, vt, scratch, "line");
  LLVMSetAlignment(v, PF_LINE);
  LLVMValueRef off = nt->off(e, i0, ctx);
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, ety, lw_bufptr(e, nt->buf), &off, 1, "");
  LLVMValueRef low = LLVMBuildAnd(e->b, LLVMBuildPtrToInt(e->b, a, e->i64, ""), ci(e, PF_LINE - 1), "");
  LLVMValueRef go = LLVMBuildAnd(e->b, nt->on, LLVMBuildICmp(e->b, LLVMIntEQ, low, ci(e, 0), ""), "");
  LLVMBasicBlockRef sb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "stream");
  LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "plain");
  LLVMBasicBlockRef jb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "stored");
  LLVMBuildCondBr(e->b, go, sb, pb);
  LLVMPositionBuilderAtEnd(e->b, sb);
  LLVMValueRef s1 = LLVMBuildStore(e->b, v, a);
  LLVMSetAlignment(s1, PF_LINE);
  LLVMMetadataRef one = LLVMValueAsMetadata(LLVMConstInt(e->i32, 1, 0));
  LLVMSetMetadata(s1, LLVMGetMDKindIDInContext(e->cx, "nontemporal", 11),
                  LLVMMetadataAsValue(e->cx, LLVMMDNodeInContext2(e->cx, &one, 1)));
  LLVMBuildBr(e->b, jb);
  LLVMPositionBuilderAtEnd(e->b, pb);
  LLVMValueRef s2 = LLVMBuildStore(e->b, v, a);
  LLVMSetAlignment(s2, (unsigned)tl_dtype_size((tl_dtype)nt->dt));
  LLVMBuildBr(e->b, jb);
  LLVMPositionBuilderAtEnd(e->b, jb);
  e->nt_used = 1;
}
