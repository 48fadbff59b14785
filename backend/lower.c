/* lower.c - the plan as LLVM IR: one function per kernel plus an entry
 * that runs them in order (ABI in be_internal.h).
 *
 * The emitter is eight files along its seams, sharing the state em and the
 * functions of lower_internal.h:
 *   lower.c         kernel scaffolding (a kernel's function, the values of
 *                   its entry block, loops, error codes); elementwise
 *                   kernels (their loop structure and body); the take index
 *                   check; the module (each function's plan as an entry of
 *                   its own, callees first, then the graph's: constants,
 *                   kernels, the entry);
 *   lower_expr.c    values: intrinsics and libm calls, conversions, scalar
 *                   ops, tlaloc's own f32 exp and tanh, expressions (lw_ex);
 *   lower_stream.c  streaming prefetch and streaming stores: the blocked
 *                   loop that elementwise and softmax kernels share;
 *   lower_rows.c    reductions, softmax and log_softmax: row passes and
 *                   column mode;
 *   lower_short.c   softmax and log_softmax over rows of at most four
 *                   vectors, in blocks held in vector registers;
 *   lower_sums.c    sums and means over rows of at most 32 elements;
 *   lower_matmul.c  matmul: CBLAS calls, integer loops;
 *   lower_control.c call, cond, loop and scan in the entry;
 *   lower_pass.c    one-pass groups over a matrix (plan_pass.c).
 *
 * Loop shapes (each measured in docs/backend.md): an elementwise kernel
 * runs one loop per group of adjacent dims that its accesses see as one
 * contiguous run ("loop structure"); a reduction or softmax that keeps the
 * last dim works on chunks of columns ("column mode"); short rows get an
 * innermost loop vectorised without interleaving (SHORT_ROW); matmul
 * calls cblas ?gemm, or ?gemv for one row or one column, with the trans
 * flags for operands the plan reads transposed (be_kern.trans). */
#include "backend/lower_internal.h"
#include "util/util.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kernel scaffolding ------------------------------------------------ */

LLVMValueRef lw_dimv(em *e, int64_t d) {
  if (d >= 0) return ci(e, d);
  int s = tl_dim_sym_id(d);
  if (s >= MAXSYM) return ci(e, 0);
  if (!e->symv[s]) {
    LLVMValueRef a = LLVMBuildGEP2(e->pre, e->i64, e->syms, (LLVMValueRef[]){ci(e, s)}, 1, "");
    e->symv[s] = LLVMBuildLoad2(e->pre, e->i64, a, "sym");
  }
  return e->symv[s];
}

LLVMValueRef lw_bufptr(em *e, int32_t bi) {
  if (e->p->bufs[bi].kind == BE_BUF_CONST) return e->consts[bi];
  if (!e->bufp[bi]) {
    LLVMValueRef a = LLVMBuildGEP2(e->pre, e->ptr, e->bufs, (LLVMValueRef[]){ci(e, bi)}, 1, "");
    e->bufp[bi] = LLVMBuildLoad2(e->pre, e->ptr, a, "buf");
  }
  return e->bufp[bi];
}

void lw_mark_access(em *e, int32_t bi, LLVMValueRef inst) {
  if (!e->ascope || !e->ascope[bi]) return;
  LLVMSetMetadata(inst, LLVMGetMDKindIDInContext(e->cx, "alias.scope", 11), e->ascope[bi]);
  LLVMSetMetadata(inst, LLVMGetMDKindIDInContext(e->cx, "noalias", 7), e->anoalias[bi]);
}

/* Scoped no-alias metadata for kernel k's loads and stores (lw_load_at,
 * lw_store_at): one scope per buffer it reads or writes, each access
 * declared not to alias the kernel's other buffers. Without it the loop
 * vectoriser guards every loop that writes one buffer and reads another
 * with run-time overlap checks and keeps a scalar copy of the loop (46
 * checks in the MLP training step's 22 kernels; with the metadata none,
 * and its compile 43.5-46.9 -> 41.8-43.3 ms: docs/backend.md).
 *
 * Why the buffers are distinct memory, for the root plan's kernels only:
 * a kernel's buffers are all live while it runs, and the arena gives
 * temporaries live at the same kernel disjoint bytes (plan_memory's live
 * ranges include both ends); a reshape is the same buffer as its source,
 * and an in-place kernel writes the buffer it reads (one scope); outputs
 * overlap neither inputs nor each other (be_run_into refuses, and the AOT
 * header says so); inputs may be one array passed twice, but only reads
 * meet there. Not used where those do not hold: a kernel writing over an
 * input (destroy_inputs: the input may be passed twice), and the functions
 * of call/cond/loop/scan, whose inputs and outputs the calling kernel
 * binds. */
static void kernel_scopes(em *e, const be_kern *k) {
  enum { MAXB = 64 };
  if (k->nreads >= MAXB || (k->out >= 0 && e->p->bufs[k->out].kind == BE_BUF_INPUT)) return;
  int32_t set[MAXB];
  int n = 0;
  if (k->out >= 0) set[n++] = k->out;
  for (int r = 0; r < k->nreads; r++) {
    bool dup = false;
    for (int j = 0; j < n; j++) dup |= set[j] == k->reads[r];
    if (!dup) set[n++] = k->reads[r];
  }
  if (n < 2) return;
  LLVMMetadataRef dom = LLVMMDNodeInContext2(e->cx, (LLVMMetadataRef[]){LLVMMDStringInContext2(e->cx, "tlaloc", 6)}, 1);
  LLVMMetadataRef sc[MAXB];
  for (int i = 0; i < n; i++) {
    char nm[48];
    int len = snprintf(nm, sizeof nm, "tlaloc buf %d", set[i]);
    LLVMMetadataRef ops[2] = {LLVMMDStringInContext2(e->cx, nm, (size_t)len), dom};
    sc[i] = LLVMMDNodeInContext2(e->cx, ops, 2);
  }
  for (int i = 0; i < n; i++) {
    LLVMMetadataRef others[MAXB];
    int m = 0;
    for (int j = 0; j < n; j++)
      if (j != i) others[m++] = sc[j];
    e->ascope[set[i]] = LLVMMetadataAsValue(e->cx, LLVMMDNodeInContext2(e->cx, &sc[i], 1));
    e->anoalias[set[i]] = LLVMMetadataAsValue(e->cx, LLVMMDNodeInContext2(e->cx, others, (size_t)m));
  }
}

/* Does kernel k cover fewer than BE_FAST_CG_ELEMS elements, all known? */
static bool small_kernel(const be_plan *p, const be_kern *k) {
  const tl_type *t = &p->g->nodes[k->node].type;
  double n = 1;
  for (int d = 0; d < t->rank; d++) {
    if (tl_dim_is_sym(t->dims[d])) return false;
    n *= (double)t->dims[d];
  }
  return n < BE_FAST_CG_ELEMS;
}

void lw_add_enum_attr(em *e, LLVMValueRef f, const char *name, uint64_t v) {
  unsigned k = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->cx, k, v));
}

void lw_kernel_fn(em *e, LLVMValueRef f) {
  LLVMSetLinkage(f, LLVMInternalLinkage);
  /* kept out of line: the same code runs serially and from the worker */
  lw_add_enum_attr(e, f, "noinline", 0);
  /* a frame aligned to a vector, so that the vectors spilled around each
   * libmvec call sit in aligned slots: a kernel whose frame held no
   * 64-byte-aligned array of its own spilled zmm registers at offsets such
   * as 0x370(%rsp), each spill and reload across two cache lines. The
   * symbolic softmax `(softmax (div x 4.0) :axis 1)` over [2048 2048] f32,
   * two run threads, Emerald Rapids, alternated processes, six each:
   * 1359-1588 us -> 1286-1432 (its frame had been aligned while it held
   * the short rows' block arrays: 1300-1367), the known-size kernel of
   * the same graph 1389-1424 -> 1297-1307; one thread no different; the
   * full bench-backend's figures the same within noise */
  lw_add_enum_attr(e, f, "alignstack", e->avx512 ? 64 : 32);
  if (e->avx512) {
    static const char k[] = "prefer-vector-width", v[] = "512";
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateStringAttribute(e->cx, k, sizeof k - 1, v, sizeof v - 1));
  }
}

void lw_kbegin(em *e, const char *name, int32_t node) {
  e->fn = LLVMAddFunction(e->m, name, e->kty);
  lw_kernel_fn(e, e->fn);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->cx, e->fn, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "body");
  LLVMPositionBuilderAtEnd(e->pre, entry);
  LLVMValueRef br = LLVMBuildBr(e->pre, body);
  LLVMPositionBuilderBefore(e->pre, br);
  e->frame = LLVMGetParam(e->fn, 0);
  e->bufs = LLVMBuildLoad2(e->pre, e->ptr, e->frame, "bufs");
  LLVMValueRef sa = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 8)}, 1, "");
  e->syms = LLVMBuildLoad2(e->pre, e->ptr, sa, "syms");
  e->errp = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 16)}, 1, "errp");
  memset(e->bufp, 0, (size_t)e->p->nbufs * sizeof *e->bufp);
  memset(e->symv, 0, sizeof e->symv);
  LLVMPositionBuilderAtEnd(e->b, body);
  e->knode = node;
}

void lw_kend(em *e) {
  /* streaming stores are weakly ordered: make them visible before the
   * kernel returns (its caller or the worker then signals completion
   * with ordinary stores) */
  if (e->nt_used) {
    unsigned id = LLVMLookupIntrinsicID("llvm.x86.sse.sfence", 19);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, NULL, 0);
    LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->cx, id, NULL, 0), f, NULL, 0, "");
  }
  e->nt_used = 0;
  LLVMBuildRetVoid(e->b);
}

void lw_set_err(em *e, int code) {
  LLVMBuildStore(e->b, LLVMConstInt(e->i32, (unsigned long long)(((int64_t)e->knode << 4) | code), 0),
                 e->errp);
}

/* Loop metadata !{self, props...} on a latch: ic > 0
 * !{"llvm.loop.interleave.count", ic}; ic < 0 !{"llvm.loop.vectorize.enable",
 * false} (a remainder shorter than a vector: vectorising it only adds
 * code); nounroll !{"llvm.loop.unroll.disable"}; vectorize
 * !{"llvm.loop.vectorize.enable", true}: LLVM 19's cost model prices a
 * libmvec call it only knows from the call's vector-function-abi-variant
 * (f64 sin and cos at 8 lanes: no TLI entry) above eight scalar calls and
 * leaves such a loop scalar (measured: f64 (let s (sin x)) (out o (add (exp s)
 * (mul s 2))), 10^6 elements, 1 thread 9.7 -> 1.7 ms). */
static void loop_hint(em *e, LLVMValueRef latch_br, int ic, int nounroll, int vectorize) {
  static const char key[] = "llvm.loop.interleave.count", nv[] = "llvm.loop.vectorize.enable",
                    nu[] = "llvm.loop.unroll.disable";
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(e->cx, NULL, 0);
  LLVMMetadataRef ops[4] = {tmp};
  int nops = 1;
  if (ic != 0) {
    LLVMMetadataRef prop[2] = {ic < 0 ? LLVMMDStringInContext2(e->cx, nv, sizeof nv - 1)
                                      : LLVMMDStringInContext2(e->cx, key, sizeof key - 1),
                               ic < 0 ? LLVMValueAsMetadata(LLVMConstInt(e->i1, 0, 0))
                                      : LLVMValueAsMetadata(LLVMConstInt(e->i32, (unsigned long long)ic, 0))};
    ops[nops++] = LLVMMDNodeInContext2(e->cx, prop, 2);
  }
  if (nounroll) {
    LLVMMetadataRef prop = LLVMMDStringInContext2(e->cx, nu, sizeof nu - 1);
    ops[nops++] = LLVMMDNodeInContext2(e->cx, &prop, 1);
  }
  if (vectorize && ic >= 0) {
    LLVMMetadataRef prop[2] = {LLVMMDStringInContext2(e->cx, nv, sizeof nv - 1),
                               LLVMValueAsMetadata(LLVMConstInt(e->i1, 1, 0))};
    ops[nops++] = LLVMMDNodeInContext2(e->cx, prop, 2);
  }
  LLVMMetadataRef id = LLVMMDNodeInContext2(e->cx, ops, (size_t)nops);
  LLVMMetadataReplaceAllUsesWith(tmp, id);
  LLVMSetMetadata(latch_br, LLVMGetMDKindIDInContext(e->cx, "llvm.loop", 9), LLVMMetadataAsValue(e->cx, id));
}

LLVMValueRef lw_loop_open(em *e, loop *l, LLVMValueRef lo, LLVMValueRef hi, int nc,
                          const LLVMValueRef *init) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  l->head = LLVMAppendBasicBlockInContext(e->cx, e->fn, "head");
  l->body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "loop");
  l->exit = LLVMAppendBasicBlockInContext(e->cx, e->fn, "exit");
  l->nc = nc;
  l->ic = 0;
  l->nounroll = 0;
  l->vectorize = 0;
  LLVMBuildBr(e->b, l->head);
  LLVMPositionBuilderAtEnd(e->b, l->head);
  l->iv = LLVMBuildPhi(e->b, e->i64, "i");
  LLVMAddIncoming(l->iv, &lo, &pre, 1);
  for (int k = 0; k < nc; k++) {
    l->phis[k] = LLVMBuildPhi(e->b, LLVMTypeOf(init[k]), "acc");
    LLVMAddIncoming(l->phis[k], (LLVMValueRef *)&init[k], &pre, 1);
  }
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, l->iv, hi, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(e->b, l->body);
  return l->iv;
}

/* In a small one-pass kernel (e->lean_loops) a loop that carries no value
 * is neither interleaved nor unrolled: interleaving pays for a loop-carried
 * chain (several accumulators), while iterations without one already
 * overlap in the out-of-order core, so there the copies only multiply code.
 * For an MLP training step's 22 kernels that cut LLVM's passes and codegen
 * from 50 to 35 ms (two threads) with the step time unchanged; turned on
 * for every kernel it cost log_softmax and layer norm 20-30% (they carry
 * accumulators), which the nc == 0 test keeps out. */
void lw_loop_close(em *e, loop *l, const LLVMValueRef *next) {
  if (e->lean_loops && l->nc == 0) {
    if (l->ic == 0) l->ic = 1;
    l->nounroll = 1;
  }
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
  LLVMValueRef n = LLVMBuildNSWAdd(e->b, l->iv, ci(e, 1), "");
  LLVMValueRef br = LLVMBuildBr(e->b, l->head);
  if (l->ic != 0 || l->nounroll || l->vectorize) loop_hint(e, br, l->ic, l->nounroll, l->vectorize);
  LLVMAddIncoming(l->iv, &n, &latch, 1);
  for (int k = 0; k < l->nc; k++) LLVMAddIncoming(l->phis[k], (LLVMValueRef *)&next[k], &latch, 1);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}

/* ---- loop structure -------------------------------------------------------
 * An elementwise kernel's loop nest covers its output dims, and adjacent
 * dims that every memory access of the kernel sees as one contiguous run
 * share one loop: a [512 32] kernel is one loop of 16384 iterations. The
 * vectoriser's main loop needs VF x interleave iterations (32-64 here), so
 * an innermost loop of 8-60 ran its scalar remainder, libm calls included,
 * 5-10x slower than the same elements in one long loop.
 *
 * Inside a merged group of dims the loop variable j is given to the
 * group's last dim (its "carry" dim) and the other dims' indices are 0, so
 * every access computes j * stride(carry) for the group. That is the right
 * offset exactly when, for each access (a load of a buffer, the store),
 * the group's dims map to adjacent dims of the buffer of the same sizes in
 * the same order (the first may carry a loop-invariant shift: a step-1
 * slice), or the access does not depend on any of them (broadcast). The
 * walk below follows lw_ex()/lw_ex_def()'s index maps to check that. Dims of
 * size 1 always have index 0 and join any group. */

/* How one index of a node's index vector depends on the kernel's output
 * indices (bit a of mask: output dim a). PASS: it is the output index of
 * the one dim in mask; SHIFT: that index plus a loop invariant; OTHER:
 * another function of the dims in mask (mask 0: a loop invariant). */
enum { DEP_PASS, DEP_SHIFT, DEP_OTHER };
typedef struct dep {
  uint8_t kind;
  uint16_t mask;
} dep;

typedef struct mscan {
  const be_plan *p;
  const int64_t *odims;
  int u[TL_MAX_RANK], nu;  /* the output dims not of size 1 */
  bool cut[TL_MAX_RANK];   /* cut[k]: u[k] and u[k + 1] need loops of their own */
} mscan;

static dep dep_of(int kind, unsigned mask) { return (dep){(uint8_t)kind, (uint16_t)mask}; }

/* One memory access: a buffer of dims ldims[0..lr) read or written at an
 * index vector whose entries depend on the output dims as d says. */
static void scan_access(mscan *s, int lr, const int64_t *ldims, const dep *d) {
  for (int k = 0; k + 1 < s->nu; k++) {
    if (s->cut[k]) continue;
    int a = s->u[k], b = s->u[k + 1], p = -1, q = -1, np = 0, nq = 0;
    for (int i = 0; i < lr; i++) {
      if ((d[i].mask >> a) & 1) { p = i; np++; }
      if ((d[i].mask >> b) & 1) { q = i; nq++; }
    }
    if (!np && !nq) continue; /* broadcast over both */
    bool ok = np == 1 && nq == 1 && p < q && (d[p].kind == DEP_PASS || d[p].kind == DEP_SHIFT) &&
              d[q].kind == DEP_PASS && ldims[q] == s->odims[b];
    for (int i = p + 1; ok && i < q; i++) ok = ldims[i] == 1;
    if (!ok) s->cut[k] = true;
  }
}

/* Operand xt of a broadcasting node of type ot (bcast_idx's map). */
static void bcast_dep(const tl_type *xt, const tl_type *ot, const dep *d, dep *x) {
  int src[TL_MAX_RANK];
  tl_broadcast_src_axes(xt, ot, src);
  for (int j = 0; j < xt->rank; j++) x[j] = src[j] < 0 ? dep_of(DEP_OTHER, 0) : d[src[j]];
}

/* The accesses of lw_ex(id) (def: lw_ex_def(id)) at an index vector d.
 * Recursive, as deep as the kernel's expression: at most BE_FUSE_MAX_OPS
 * levels (be_internal.h). */
static void scan_expr(mscan *s, int32_t id, bool def, const dep *d) {
  const be_plan *p = s->p;
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[id];
  if (!def && (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS)) {
    scan_access(s, n->type.rank, n->type.dims, d);
    return;
  }
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = n->ninputs ? &g->nodes[in[0]].type : NULL;
  dep x[TL_MAX_RANK];
  int src[TL_MAX_RANK];
  if (tl_view_src_axes(g, n, src)) {
    for (int i = 0; i < xt->rank; i++) x[i] = src[i] < 0 ? dep_of(DEP_OTHER, 0) : d[src[i]];
    scan_expr(s, in[0], false, x);
    return;
  }
  switch (n->op) {
  case TL_OP_LIT: case TL_OP_FILL: case TL_OP_ZEROS_LIKE: case TL_OP_ONES_LIKE: case TL_OP_DIM:
    return;
  case TL_OP_IOTA: {
    /* its value is the index along :axis itself, so that dim must keep a
     * loop of its own (merged dims see index 0 but the carry's): scanned
     * as an access whose :axis index is no plain pass-through */
    int ax = n->attrs.axes[0] < 0 ? n->attrs.axes[0] + xt->rank : n->attrs.axes[0];
    memcpy(x, d, (size_t)xt->rank * sizeof *x);
    x[ax] = dep_of(DEP_OTHER, d[ax].mask);
    scan_access(s, n->type.rank, n->type.dims, x);
    return;
  }
  case TL_OP_SLICE: {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
    if (ax < 0) ax += xt->rank;
    int64_t step = (n->attrs.present & TL_A_STEP) ? n->attrs.step : 1;
    memcpy(x, d, (size_t)xt->rank * sizeof *x);
    if (step == 1 && d[ax].kind == DEP_PASS) x[ax].kind = DEP_SHIFT;
    else if (step != 1) x[ax] = dep_of(DEP_OTHER, d[ax].mask);
    break;
  }
  case TL_OP_TAKE: {
    const tl_type *it = &g->nodes[in[1]].type;
    bool flat = !(n->attrs.present & TL_A_AXIS);
    int ax = flat ? 0 : n->attrs.axes[0];
    if (ax < 0) ax += xt->rank;
    scan_access(s, it->rank, it->dims, d + ax); /* the indices */
    unsigned m = 0;
    for (int i = 0; i < it->rank; i++) m |= d[ax + i].mask;
    if (flat) { /* a load at the index itself */
      x[0] = dep_of(DEP_OTHER, m);
      scan_access(s, 1, xt->dims, x);
      return;
    }
    for (int i = 0; i < ax; i++) x[i] = d[i];
    x[ax] = dep_of(DEP_OTHER, m);
    for (int i = ax + 1; i < xt->rank; i++) x[i] = d[i - 1 + it->rank];
    break;
  }
  default: /* elementwise (be_plan_build admits nothing else inline) */
    for (int k = 0; k < n->ninputs; k++) {
      bcast_dep(&g->nodes[in[k]].type, &n->type, d, x);
      scan_expr(s, in[k], false, x);
    }
    return;
  }
  scan_expr(s, in[0], false, x);
}

void be_ew_loops(const be_plan *p, const be_kern *k, be_loops *l) {
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[k->node];
  int r = n->type.rank;
  mscan s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.odims = n->type.dims;
  for (int i = 0; i < r; i++)
    if (n->type.dims[i] != 1) s.u[s.nu++] = i;
  dep d[TL_MAX_RANK];
  for (int i = 0; i < r; i++) d[i] = dep_of(DEP_PASS, 1u << i);
  bool own = p->buf_of[k->node] == k->out && p->state[k->node] == BE_S_MAT;
  scan_expr(&s, k->node, own, d);
  if (k->place >= 0) { /* the store, into a concat's buffer at an offset (a slice_update's: strided) */
    const tl_node *cn = &g->nodes[k->place];
    int ax = (cn->attrs.present & TL_A_AXIS) ? cn->attrs.axes[0] : 0;
    if (ax < 0) ax += cn->type.rank;
    bool unit = cn->op == TL_OP_CONCAT || !(cn->attrs.present & TL_A_STEP) || cn->attrs.step == 1;
    if (unit) d[ax].kind = DEP_SHIFT;
    else d[ax] = dep_of(DEP_OTHER, d[ax].mask);
    scan_access(&s, cn->type.rank, cn->type.dims, d);
  } else {
    scan_access(&s, r, n->type.dims, d);
  }
  /* a cut between u[k] and u[k + 1] starts a loop at u[k] + 1 */
  memset(l, 0, sizeof *l);
  if (r == 0) return;
  bool start[TL_MAX_RANK + 1] = {true};
  for (int q = 0; q + 1 < s.nu; q++)
    if (s.cut[q]) start[s.u[q] + 1] = true;
  bool wide = false; /* the current group has a dim not of size 1 */
  for (int i = 0; i < r; i++) {
    if (start[i]) {
      l->first[l->n++] = (int8_t)i;
      wide = false;
    }
    l->last[l->n - 1] = (int8_t)i;
    if (n->type.dims[i] != 1 || !wide) l->carry[l->n - 1] = (int8_t)i;
    wide |= n->type.dims[i] != 1;
  }
}

/* ---- kernels ------------------------------------------------------------- */

/* Opens loops over dims[0..r) (dim 0 from lo to hi), writing the ivs. */
void lw_nest_open(em *e, loop *ls, int r, const int64_t *dims, const int *order, LLVMValueRef lo,
                  LLVMValueRef hi, LLVMValueRef *iv) {
  for (int k = 0; k < r; k++) {
    int d = order ? order[k] : k;
    LLVMValueRef a = k == 0 && lo ? lo : ci(e, 0), b = k == 0 && hi ? hi : lw_dimv(e, dims[d]);
    iv[d] = lw_loop_open(e, &ls[k], a, b, 0, NULL);
  }
}
void lw_nest_close(em *e, loop *ls, int r) {
  for (int k = r - 1; k >= 0; k--) lw_loop_close(e, &ls[k], NULL);
}

LLVMValueRef lw_guard_range(em *e, LLVMValueRef lo, LLVMValueRef hi) {
  /* rank-0 kernels: run once when the range is non-empty */
  LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "once");
  LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(e->cx, e->fn, "done");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, lo, hi), yes, no);
  LLVMPositionBuilderAtEnd(e->b, yes);
  return (LLVMValueRef)no;
}
void lw_guard_end(em *e, LLVMValueRef no) {
  LLVMBuildBr(e->b, (LLVMBasicBlockRef)no);
  LLVMPositionBuilderAtEnd(e->b, (LLVMBasicBlockRef)no);
}

/* The body of an elementwise kernel at index iv: compute and store. */
static void ew_body(em *e, const be_kern *k, LLVMValueRef base, const LLVMValueRef *ost, LLVMValueRef *iv) {
  const tl_node *n = &e->g->nodes[k->node];
  const be_buf *ob = &e->p->bufs[k->out];
  bool own = e->p->buf_of[k->node] == k->out && e->p->state[k->node] == BE_S_MAT;
  LLVMValueRef v = own ? lw_ex_def(e, k->node, iv) : lw_ex(e, k->node, iv);
  v = lw_conv(e, v, n->type.dtype, ob->dtype);
  LLVMValueRef off = LLVMBuildNSWAdd(e->b, base, lw_offset(e, n->type.rank, ost, iv), "");
  lw_store_at(e, k->out, ob->dtype, off, v);
}

typedef struct ew_ctx { const be_kern *k; LLVMValueRef base; const LLVMValueRef *ost; LLVMValueRef *iv; int carry; } ew_ctx;
static void ew_body_at(em *e, LLVMValueRef i, void *ctx) {
  ew_ctx *c = ctx;
  c->iv[c->carry] = i;
  ew_body(e, c->k, c->base, c->ost, c->iv);
}
static LLVMValueRef ew_off_at(em *e, LLVMValueRef i, void *ctx) {
  ew_ctx *c = ctx;
  c->iv[c->carry] = i;
  const tl_node *n = &e->g->nodes[c->k->node];
  return LLVMBuildNSWAdd(e->b, c->base, lw_offset(e, n->type.rank, c->ost, c->iv), "");
}

static bool is_one(LLVMValueRef v) { return LLVMIsAConstantInt(v) && LLVMConstIntGetSExtValue(v) == 1; }

/* One merged loop [lo, hi), prefetching the streams PF_AHEAD lines ahead;
 * iv[carry] is the loop's index. */
static void ew_prefetched(em *e, const be_kern *k, int carry, LLVMValueRef lo, LLVMValueRef hi,
                          LLVMValueRef base, const LLVMValueRef *ost, LLVMValueRef *iv,
                          const int32_t *st, int ns) {
  int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)e->p->bufs[k->out].dtype);
  ew_ctx c = {k, base, ost, iv, carry};
  nt_lines nt = {k->out, e->p->bufs[k->out].dtype, is_one(ost[carry]) ? lw_nt_wanted(e, k) : NULL, ew_off_at};
  lw_prefetched_loop(e, bl, lo, hi, ci(e, bl * PF_AHEAD), st, ns, ew_body_at, &c, nt.on ? &nt : NULL);
}

static void k_ew(em *e, const be_kern *k) {
  const tl_node *n = &e->g->nodes[k->node];
  int r = n->type.rank;
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef ost[TL_MAX_RANK], base = ci(e, 0);
  if (k->place >= 0) {
    const tl_node *cn = &e->g->nodes[k->place];
    lw_contig_strides(e, cn->type.rank, cn->type.dims, ost);
    int ax = (cn->attrs.present & TL_A_AXIS) ? cn->attrs.axes[0] : 0;
    if (ax < 0) ax += cn->type.rank;
    LLVMValueRef pos = ci(e, 0);
    if (cn->op == TL_OP_SLICE_UPDATE) {
      /* the update's index i along the axis lands at start + i * step */
      int64_t step = (cn->attrs.present & TL_A_STEP) ? cn->attrs.step : 1;
      pos = lw_slice_start(e, &cn->attrs, lw_dimv(e, cn->type.dims[ax]));
      base = LLVMBuildMul(e->pre, pos, ost[ax], "");
      ost[ax] = LLVMBuildMul(e->pre, ost[ax], ci(e, step), "");
    } else {
      for (int i = 0; i < k->part; i++)
        pos = LLVMBuildAdd(e->pre, pos, lw_dimv(e, e->g->nodes[tl_node_inputs(e->g, cn)[i]].type.dims[ax]), "");
      base = LLVMBuildMul(e->pre, pos, ost[ax], "");
    }
  } else {
    lw_contig_strides(e, r, n->type.dims, ost);
  }
  /* one loop per group of merged dims (be_ew_loops) */
  be_loops L;
  be_ew_loops(e->p, k, &L);
  loop ls[TL_MAX_RANK];
  LLVMValueRef iv[TL_MAX_RANK], no = NULL;
  for (int i = 0; i < r; i++) iv[i] = ci(e, 0);
  int32_t st[8];
  int ns = L.n == 1 && lw_calls_math(e->p, k->node, true) ? lw_stream_bufs(e->p, k, st, 8) : 0;
  if (ns > 0) {
    ew_prefetched(e, k, L.carry[0], lo, hi, base, ost, iv, st, ns);
    return;
  }
  if (L.n == 0) no = lw_guard_range(e, lo, hi);
  for (int q = 0; q < L.n; q++) {
    LLVMValueRef len = ci(e, 1);
    for (int i = L.first[q]; i <= L.last[q]; i++) len = LLVMBuildMul(e->pre, len, lw_dimv(e, n->type.dims[i]), "");
    iv[L.carry[q]] = lw_loop_open(e, &ls[q], q == 0 ? lo : ci(e, 0), q == 0 ? hi : len, 0, NULL);
  }
  /* an innermost loop that is not the whole kernel may be short (dims that
   * could not be merged: a broadcast row, a slice): vectorised without
   * interleaving it takes a full vector from 16 f32 elements rather than
   * 64 (measured: [1024 16] exp(x - m[r 1]) 12.0 -> 9.2 us; [16 1024] the
   * same) */
  if (L.n > 1) ls[L.n - 1].ic = 1;
  ew_body(e, k, base, ost, iv);
  lw_nest_close(e, ls, L.n);
  if (no) lw_guard_end(e, no);
}

static void k_takecheck(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = &g->nodes[in[0]].type, *it = &g->nodes[in[1]].type;
  bool flat = !(n->attrs.present & TL_A_AXIS);
  int ax = flat ? 0 : n->attrs.axes[0];
  if (ax < 0) ax += xt->rank;
  LLVMValueRef len = ci(e, 1);
  if (flat)
    for (int i = 0; i < xt->rank; i++) len = LLVMBuildMul(e->pre, len, lw_dimv(e, xt->dims[i]), "");
  else
    len = lw_dimv(e, xt->dims[ax]);
  LLVMValueRef cnt = ci(e, 1);
  for (int i = 0; i < it->rank; i++) cnt = LLVMBuildMul(e->pre, cnt, lw_dimv(e, it->dims[i]), "");
  loop l;
  LLVMValueRef init = LLVMConstInt(e->i1, 0, 0);
  LLVMValueRef i = lw_loop_open(e, &l, ci(e, 0), cnt, 1, &init);
  LLVMValueRef j = lw_conv(e, lw_load_at(e, e->p->buf_of[in[1]], it->dtype, i), it->dtype, TL_I64);
  LLVMValueRef bad = LLVMBuildOr(e->b, icmp(e, LLVMIntSLT, j, LLVMBuildNeg(e->b, len, "")),
                                 icmp(e, LLVMIntSGE, j, len), "");
  LLVMValueRef nb = LLVMBuildOr(e->b, l.phis[0], bad, "");
  lw_loop_close(e, &l, &nb);
  LLVMBasicBlockRef eb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "oob");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "inb");
  LLVMBuildCondBr(e->b, l.phis[0], eb, ok);
  LLVMPositionBuilderAtEnd(e->b, eb);
  lw_set_err(e, BE_ERR_TAKE);
  LLVMBuildBr(e->b, ok);
  LLVMPositionBuilderAtEnd(e->b, ok);
}

/* scatter_add's accumulation: for every element of the addend v (in C
 * order, one thread, so duplicate indices add up in a fixed order), the
 * index j = i[...] (negative: from the end; out of range: the take error)
 * picks the element of the buffer (already holding operand 0) that v's
 * element is added to. */
static void k_scatter(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = &n->type, *it = &g->nodes[in[1]].type, *vt = &g->nodes[in[2]].type;
  bool flat = !(n->attrs.present & TL_A_AXIS);
  int ax = flat ? 0 : n->attrs.axes[0], dt = xt->dtype;
  if (ax < 0) ax += xt->rank;
  LLVMValueRef ost[TL_MAX_RANK], ist[TL_MAX_RANK], len = ci(e, 1);
  lw_contig_strides(e, xt->rank, xt->dims, ost);
  lw_contig_strides(e, it->rank, it->dims, ist);
  if (flat)
    for (int i = 0; i < xt->rank; i++) len = LLVMBuildMul(e->pre, len, lw_dimv(e, xt->dims[i]), "");
  else
    len = lw_dimv(e, xt->dims[ax]);
  loop ls[TL_MAX_RANK];
  LLVMValueRef iv[TL_MAX_RANK], no = NULL;
  if (vt->rank == 0) no = lw_guard_range(e, ci(e, 0), ci(e, 1));
  lw_nest_open(e, ls, vt->rank, vt->dims, NULL, NULL, NULL, iv);
  int ia = flat ? 0 : ax;
  LLVMValueRef j = lw_load_at(e, e->p->buf_of[in[1]], it->dtype, lw_offset(e, it->rank, ist, iv + ia));
  j = lw_conv(e, j, it->dtype, TL_I64);
  j = sel(e, icmp(e, LLVMIntSLT, j, ci(e, 0)), LLVMBuildAdd(e->b, j, len, ""), j);
  LLVMValueRef bad = LLVMBuildOr(e->b, icmp(e, LLVMIntSLT, j, ci(e, 0)), icmp(e, LLVMIntSGE, j, len), "");
  LLVMBasicBlockRef eb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "oob");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "inb");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->cx, e->fn, "nexte");
  LLVMBuildCondBr(e->b, bad, eb, ok);
  LLVMPositionBuilderAtEnd(e->b, eb);
  lw_set_err(e, BE_ERR_TAKE);
  LLVMBuildBr(e->b, next);
  LLVMPositionBuilderAtEnd(e->b, ok);
  LLVMValueRef off;
  if (flat) {
    off = j;
  } else {
    LLVMValueRef xi[TL_MAX_RANK];
    for (int i = 0; i < ax; i++) xi[i] = iv[i];
    xi[ax] = j;
    for (int i = ax + 1; i < xt->rank; i++) xi[i] = iv[i - 1 + it->rank];
    off = lw_offset(e, xt->rank, ost, xi);
  }
  LLVMValueRef v = lw_ex(e, in[2], iv), old = lw_load_at(e, k->out, dt, off);
  LLVMValueRef sum = isf(dt) ? LLVMBuildFAdd(e->b, old, v, "") : LLVMBuildAdd(e->b, old, v, "");
  lw_store_at(e, k->out, dt, off, sum);
  LLVMBuildBr(e->b, next);
  LLVMPositionBuilderAtEnd(e->b, next);
  lw_nest_close(e, ls, vt->rank);
  if (no) lw_guard_end(e, no);
}

/* ---- module ---------------------------------------------------------------- */

bool be_kern_split_dims(const be_plan *p, const be_kern *k, const tl_type **t, int *lo, int *hi) {
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[k->node];
  if (k->kind == BE_K_EW) {
    be_loops L;
    be_ew_loops(p, k, &L);
    *t = &n->type;
    *lo = L.n ? L.first[0] : 0;
    *hi = L.n ? L.last[0] : 0;
    return L.n > 0;
  }
  if (k->kind == BE_K_ROWS) { /* rows of the last axis: the first dim */
    *t = &n->type;
    *lo = *hi = 0;
    return true;
  }
  if (k->kind != BE_K_RED && k->kind != BE_K_SOFTMAX) return false;
  /* row kernels: the first kept dim */
  *t = k->kind == BE_K_RED ? &g->nodes[tl_node_inputs(g, n)[0]].type : &n->type;
  bool red[TL_MAX_RANK] = {false};
  if (k->kind == BE_K_RED) lw_reduce_axes(n, (*t)->rank, red);
  else {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
    red[ax < 0 ? ax + (*t)->rank : ax] = true;
  }
  for (int i = 0; i < (*t)->rank; i++)
    if (!red[i]) {
      *lo = *hi = i;
      return true;
    }
  return false;
}

/* Outer range of a kernel (split across threads) and its total work. */
static void kernel_range(em *e, const be_kern *k, LLVMValueRef *range, LLVMValueRef *work, bool *par) {
  const tl_type *t;
  int lo, hi;
  *range = ci(e, 1);
  *work = ci(e, 1);
  *par = be_kern_split_dims(e->p, k, &t, &lo, &hi);
  if (!*par) return;
  for (int i = 0; i < t->rank; i++) *work = LLVMBuildMul(e->b, *work, lw_dimv(e, t->dims[i]), "");
  for (int i = lo; i <= hi; i++) *range = LLVMBuildMul(e->b, *range, lw_dimv(e, t->dims[i]), "");
}

static void builders_release(void *arg) {
  em *e = arg;
  if (e->b) LLVMDisposeBuilder(e->b);
  if (e->pre) LLVMDisposeBuilder(e->pre);
}

/* One plan's constants, kernels and entry function (ENTRY of the ABI,
 * named entry) into the module; the functions it runs were emitted before
 * (e->fnentry). */
static LLVMValueRef emit_program(em *e, const be_plan *p, const char *kprefix, const char *entry, bool internal) {
  LLVMContextRef cx = e->cx;
  e->p = p;
  e->g = p->g;
  e->bufp = tl_xcalloc((size_t)p->nbufs + 1, sizeof *e->bufp);
  e->ascope = tl_xcalloc((size_t)p->nbufs + 1, sizeof *e->ascope);
  e->anoalias = tl_xcalloc((size_t)p->nbufs + 1, sizeof *e->anoalias);
  e->consts = tl_xcalloc((size_t)p->nbufs + 1, sizeof *e->consts);
  if (p->g->nsyms > MAXSYM) {
    tl_fail(e->err, TL_BAD_INPUT, "backend: more than %d symbolic dims are not supported", MAXSYM);
    e->failed = 1;
  }
  for (int i = 0; i < p->nbufs; i++) {
    if (p->bufs[i].kind != BE_BUF_CONST) continue;
    const tl_tensor *t = p->g->lits[p->g->nodes[p->bufs[i].node].attrs.lit];
    size_t bytes = (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype);
    LLVMValueRef init = LLVMConstStringInContext(cx, bytes ? (const char *)t->data : "", (unsigned)(bytes ? bytes : 1), 1);
    LLVMValueRef gv = LLVMAddGlobal(e->m, LLVMTypeOf(init), "lit");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, 16);
    e->consts[i] = gv;
  }
  LLVMValueRef *kfn = tl_xcalloc((size_t)p->nks + 1, sizeof *kfn);
  for (int i = 0; i < p->nks && !e->failed; i++) {
    const be_kern *k = &p->ks[i];
    if (k->kind == BE_K_CONTROL) continue; /* runs in the entry itself */
    /* a one-pass group's products run inside the group's kernel */
    if (k->pass_hi > k->pass_lo && (i == k->pass_lo || i == k->pass_hi)) continue;
    char kn[48];
    snprintf(kn, sizeof kn, "%s%d", kprefix, i);
    lw_kbegin(e, kn, k->node);
    if (!internal) kernel_scopes(e, k);
    e->lean_loops = k->kind != BE_K_ROWS && k->kind != BE_K_SOFTMAX && small_kernel(p, k);
    if (e->lean_loops) { /* fast codegen will do (jit.c) */
      static const char fk[] = "tlaloc-one-pass", fv[] = "1";
      LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex,
                              LLVMCreateStringAttribute(e->cx, fk, sizeof fk - 1, fv, sizeof fv - 1));
    }
    switch (k->kind) {
    case BE_K_EW: k_ew(e, k); break;
    case BE_K_RED: lw_k_red(e, k); break;
    case BE_K_SOFTMAX: lw_k_softmax(e, k); break;
    case BE_K_ROWS: lw_k_rows(e, k); break;
    case BE_K_MATMUL: lw_k_matmul(e, k); break;
    case BE_K_SCATTER: k_scatter(e, k); break;
    default: k_takecheck(e, k); break;
    }
    lw_kend(e);
    memset(e->ascope, 0, (size_t)p->nbufs * sizeof *e->ascope);
    e->lean_loops = e->unroll_rows = 0;
    kfn[i] = e->fn;
  }
  /* one-pass groups: kfn[head] runs the parts, kfn[tail] sums them */
  for (int i = 0; i < p->nks && !e->failed; i++)
    if (p->ks[i].pass_hi > p->ks[i].pass_lo && i == p->ks[i].pass_lo)
      lw_k_pass(e, i, kfn, &kfn[i], &kfn[p->ks[i].pass_hi]);
  /* entry: kernels in order, large ones through par(pool, k, frame, n) */
  LLVMTypeRef pty = LLVMFunctionType(e->vd, (LLVMTypeRef[]){e->ptr, e->ptr, e->ptr, e->i64}, 4, 0);
  LLVMValueRef ef = LLVMAddFunction(e->m, entry, e->ety);
  if (internal) LLVMSetLinkage(ef, LLVMInternalLinkage);
  e->fn = ef;
  LLVMBasicBlockRef eb = LLVMAppendBasicBlockInContext(cx, ef, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cx, ef, "body");
  LLVMPositionBuilderAtEnd(e->pre, eb);
  LLVMValueRef br = LLVMBuildBr(e->pre, body);
  LLVMPositionBuilderBefore(e->pre, br);
  e->frame = LLVMGetParam(ef, 0);
  e->bufs = LLVMBuildLoad2(e->pre, e->ptr, e->frame, "bufs");
  LLVMValueRef sa = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 8)}, 1, "");
  e->syms = LLVMBuildLoad2(e->pre, e->ptr, sa, "syms");
  e->errp = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 16)}, 1, "errp");
  memset(e->symv, 0, sizeof e->symv);
  memset(e->bufp, 0, (size_t)p->nbufs * sizeof *e->bufp);
  LLVMPositionBuilderAtEnd(e->b, body);
  LLVMValueRef par = LLVMGetParam(ef, 1), pool = LLVMGetParam(ef, 2);
  LLVMValueRef havepar = LLVMBuildIsNotNull(e->b, par, "");
  for (int i = 0; i < p->nks && !e->failed; i++) {
    if (p->ks[i].kind == BE_K_CONTROL) {
      lw_k_control(e, &p->ks[i], par, pool);
      continue;
    }
    LLVMValueRef range, work;
    bool canpar;
    const be_kern *k = &p->ks[i];
    bool pass = k->pass_hi > k->pass_lo;
    if (pass) { /* the group's parts; its sum follows, i moving to its tail */
      const tl_graph *g = p->g;
      const tl_type *xt = &g->nodes[tl_node_inputs(g, &g->nodes[k->node])[0]].type;
      range = ci(e, BE_PASS_PARTS);
      work = LLVMBuildMul(e->b, lw_dimv(e, xt->dims[0]), lw_dimv(e, xt->dims[1]), "");
      canpar = true;
    } else {
      kernel_range(e, k, &range, &work, &canpar);
    }
    if (canpar) {
      LLVMValueRef big = LLVMBuildAnd(e->b, icmp(e, LLVMIntSGE, work, ci(e, e->split_elems)),
                                      icmp(e, LLVMIntSGE, range, ci(e, 2)), "");
      big = LLVMBuildAnd(e->b, big, havepar, "");
      LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(cx, ef, "par");
      LLVMBasicBlockRef sb = LLVMAppendBasicBlockInContext(cx, ef, "ser");
      LLVMBasicBlockRef nb = LLVMAppendBasicBlockInContext(cx, ef, "next");
      LLVMBuildCondBr(e->b, big, pb, sb);
      LLVMPositionBuilderAtEnd(e->b, pb);
      LLVMBuildCall2(e->b, pty, par, (LLVMValueRef[]){pool, kfn[i], e->frame, range}, 4, "");
      LLVMBuildBr(e->b, nb);
      LLVMPositionBuilderAtEnd(e->b, sb);
      LLVMBuildCall2(e->b, e->kty, kfn[i], (LLVMValueRef[]){e->frame, ci(e, 0), range}, 3, "");
      LLVMBuildBr(e->b, nb);
      LLVMPositionBuilderAtEnd(e->b, nb);
    } else {
      LLVMBuildCall2(e->b, e->kty, kfn[i], (LLVMValueRef[]){e->frame, ci(e, 0), range}, 3, "");
    }
    if (pass) {
      i = k->pass_hi;
      LLVMBuildCall2(e->b, e->kty, kfn[i], (LLVMValueRef[]){e->frame, ci(e, 0), ci(e, 1)}, 3, "");
    }
    LLVMValueRef ev = LLVMBuildLoad2(e->b, e->i32, e->errp, "");
    LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(cx, ef, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cx, ef, "ok");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntNE, ev, LLVMConstInt(e->i32, 0, 0)), fb, ok);
    LLVMPositionBuilderAtEnd(e->b, fb);
    LLVMBuildRet(e->b, ev);
    LLVMPositionBuilderAtEnd(e->b, ok);
  }
  LLVMBuildRet(e->b, LLVMConstInt(e->i32, 0, 0));
  tl_free(kfn);
  tl_free(e->bufp);
  tl_free(e->consts);
  tl_free(e->ascope);
  tl_free(e->anoalias);
  e->bufp = e->consts = e->ascope = e->anoalias = NULL;
  return ef;
}

/* The functions' entries, each once, callees first. */
static void emit_fn(em *e, const be_plan *root, int fi, const char *entry) {
  if (e->fnentry[fi] || e->failed) return;
  const be_plan *p = root->fns->plan[fi];
  for (int i = 0; i < p->nks; i++)
    for (int s = 0; p->ks[i].ctl && s < p->ks[i].ctl->nsite; s++) emit_fn(e, root, p->ks[i].ctl->site[s].fnplan, entry);
  char kp[64], en[200];
  snprintf(kp, sizeof kp, "f%d_k", fi);
  snprintf(en, sizeof en, "%s_f%d", entry, fi);
  e->fnentry[fi] = emit_program(e, p, kp, en, true);
}

LLVMModuleRef be_emit_module(const be_plan *p, LLVMContextRef cx, LLVMTargetMachineRef tm,
                             const char *name, const char *entry, int vector_math, long split_elems,
                             tl_error *err) {
  em E, *e = &E;
  memset(e, 0, sizeof E);
  e->p = p;
  e->g = p->g;
  e->cx = cx;
  e->err = err;
  e->vector_math = vector_math;
  e->split_elems = split_elems > 0 ? split_elems : BE_SPLIT_ELEMS;
  {
    char *feat = LLVMGetTargetMachineFeatureString(tm);
    e->avx512 = feat && strstr(feat, "+avx512f") != NULL;
    e->avx2 = feat && strstr(feat, "+avx2") != NULL;
    const char *no = getenv("TLALOC_NO_AVX512");
    if (no && *no && *no != '0') e->avx512 = 0;
    LLVMDisposeMessage(feat);
  }
  e->m = LLVMModuleCreateWithNameInContext(name, cx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  e->x86 = !strncmp(triple, "x86_64", 6);
  LLVMSetTarget(e->m, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  char *dl = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(e->m, dl);
  LLVMDisposeMessage(dl);
  LLVMDisposeTargetData(td);
  /* the builders are not the context's: disposed of by hand, or by this
   * cleanup when running out of memory unwinds the lowering (the caller's
   * cleanup disposes of the context and with it the module) */
  tl_cleanup *cl = tl_cleanup_push(builders_release);
  e->b = LLVMCreateBuilderInContext(cx);
  e->pre = LLVMCreateBuilderInContext(cx);
  cl->arg = e;
  e->i1 = LLVMInt1TypeInContext(cx);
  e->i8 = LLVMInt8TypeInContext(cx);
  e->i32 = LLVMInt32TypeInContext(cx);
  e->i64 = LLVMInt64TypeInContext(cx);
  e->f32 = LLVMFloatTypeInContext(cx);
  e->f64 = LLVMDoubleTypeInContext(cx);
  e->ptr = LLVMPointerTypeInContext(cx, 0);
  e->vd = LLVMVoidTypeInContext(cx);
  e->kty = LLVMFunctionType(e->vd, (LLVMTypeRef[]){e->ptr, e->i64, e->i64}, 3, 0);
  e->ety = LLVMFunctionType(e->i32, (LLVMTypeRef[]){e->ptr, e->ptr, e->ptr}, 3, 0);
  e->fnentry = tl_xcalloc((size_t)(p->fns ? p->fns->n : 0) + 1, sizeof *e->fnentry);
  for (int i = 0; p->fns && i < p->fns->n; i++) emit_fn(e, p, i, entry);
  if (!e->failed) emit_program(e, p, "k", entry, false);
  if (e->nused) {
    LLVMTypeRef at = LLVMArrayType2(e->ptr, (uint64_t)e->nused);
    LLVMValueRef gv = LLVMAddGlobal(e->m, at, "llvm.compiler.used");
    LLVMSetInitializer(gv, LLVMConstArray2(e->ptr, e->used, (uint64_t)e->nused));
    LLVMSetLinkage(gv, LLVMAppendingLinkage);
    LLVMSetSection(gv, "llvm.metadata");
  }
  tl_free(e->fnentry);
  tl_free(e->used);
  tl_cleanup_pop(cl);
  LLVMDisposeBuilder(e->b);
  LLVMDisposeBuilder(e->pre);
  if (e->failed) {
    LLVMDisposeModule(e->m);
    return NULL;
  }
  char *msg = NULL;
  if (LLVMVerifyModule(e->m, LLVMReturnStatusAction, &msg)) {
    tl_fail(err, TL_INTERNAL, "backend: internal error: invalid IR: %.300s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(e->m);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  return e->m;
}
