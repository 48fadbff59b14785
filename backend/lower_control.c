/* lower_control.c - call, cond, loop and scan as branches and loops of the
 * entry function (interp/control.c states what they do; this is the same
 * thing in generated code).
 *
 * Each function a control kernel runs has an entry of its own (emitted
 * before its callers', lower.c); the kernel gives it a frame of its own in
 * the caller's stack frame: a buffer table whose parameters and results
 * are the caller's buffers, set before each run (a scan's step is a
 * pointer into its sequence and into its stacked result), and whose
 * temporaries are the caller's (plan.c: be_site), and the symbol sizes its
 * parameters bind. Nothing is allocated while it runs. A loop's state and
 * a scan's carries alternate between the result buffers and a second set:
 * a scan's parity is chosen so that its last step writes the results; a
 * loop, whose trip count is not known in advance, copies the state over
 * when it ended in the second set. A run-time error in a function returns
 * from the entry with the control node's code and the function's kind. */
#include "backend/lower_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/* A site's frame: {bufs, syms, err, fresh} with its buffer table and
 * symbols, in the entry block. fresh = 1: its outputs are no fresh pages,
 * but neither should its stores stream (the next step reads them). */
typedef struct sframe {
  const be_plan *sp;
  const be_site *site;
  LLVMValueRef frame, bufs;
} sframe;

static LLVMValueRef gep8(em *e, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildGEP2(e->b, e->i8, base, (LLVMValueRef[]){off}, 1, "");
}

static void site_frame(em *e, const be_plan *root, const be_site *s, sframe *f) {
  f->sp = root->fns->plan[s->fnplan];
  f->site = s;
  const be_plan *sp = f->sp;
  LLVMTypeRef fty = LLVMArrayType2(e->i64, 3);
  f->frame = LLVMBuildAlloca(e->pre, fty, "sframe");
  f->bufs = LLVMBuildAlloca(e->pre, LLVMArrayType2(e->ptr, (uint64_t)sp->nbufs + 1), "sbufs");
  LLVMValueRef syms = LLVMBuildAlloca(e->pre, LLVMArrayType2(e->i64, (uint64_t)sp->g->nsyms + 1), "ssyms");
  LLVMBuildStore(e->pre, f->bufs, f->frame);
  LLVMBuildStore(e->pre, syms, LLVMBuildGEP2(e->pre, e->i8, f->frame, (LLVMValueRef[]){ci(e, 8)}, 1, ""));
  LLVMBuildStore(e->pre, LLVMConstInt(e->i32, 0, 0), LLVMBuildGEP2(e->pre, e->i8, f->frame, (LLVMValueRef[]){ci(e, 16)}, 1, ""));
  LLVMBuildStore(e->pre, LLVMConstInt(e->i32, 1, 0), LLVMBuildGEP2(e->pre, e->i8, f->frame, (LLVMValueRef[]){ci(e, 20)}, 1, ""));
  /* symbols and temporaries: fixed for the whole kernel (set where it runs:
   * the caller's symbol loads are in the entry block already) */
  for (int i = 0; i < sp->g->nsyms; i++) {
    LLVMValueRef a = LLVMBuildGEP2(e->b, e->i64, syms, (LLVMValueRef[]){ci(e, i)}, 1, "");
    LLVMBuildStore(e->b, lw_dimv(e, s->symdim[i]), a);
  }
  for (int b = 0; b < sp->nbufs; b++)
    if (s->temp[b] >= 0) {
      LLVMValueRef a = LLVMBuildGEP2(e->b, e->ptr, f->bufs, (LLVMValueRef[]){ci(e, b)}, 1, "");
      LLVMBuildStore(e->b, lw_bufptr(e, s->temp[b]), a);
    }
}

/* Runs the site's function on parameters ins and results outs (pointers);
 * on an error returns from the entry with the kernel's code. */
static void run_site(em *e, const be_kern *k, sframe *f, const LLVMValueRef *ins, const LLVMValueRef *outs,
                     LLVMValueRef par, LLVMValueRef pool) {
  const be_plan *sp = f->sp;
  for (int b = 0; b < sp->nbufs; b++) {
    const be_buf *bb = &sp->bufs[b];
    LLVMValueRef v = bb->kind == BE_BUF_INPUT ? ins[bb->index] : bb->kind == BE_BUF_OUTPUT ? outs[bb->index] : NULL;
    if (v) LLVMBuildStore(e->b, v, LLVMBuildGEP2(e->b, e->ptr, f->bufs, (LLVMValueRef[]){ci(e, b)}, 1, ""));
  }
  LLVMValueRef rc = LLVMBuildCall2(e->b, e->ety, e->fnentry[f->site->fnplan], (LLVMValueRef[]){f->frame, par, pool},
                                   3, "rc");
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(e->cx, e->fn, "fnfail");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "fnok");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntNE, rc, LLVMConstInt(e->i32, 0, 0)), fail, ok);
  LLVMPositionBuilderAtEnd(e->b, fail);
  LLVMValueRef kind = LLVMBuildAnd(e->b, rc, LLVMConstInt(e->i32, 15, 0), "");
  LLVMBuildRet(e->b, LLVMBuildOr(e->b, kind, LLVMConstInt(e->i32, (unsigned long long)((int64_t)k->node << 4), 0), ""));
  LLVMPositionBuilderAtEnd(e->b, ok);
}

/* Bytes of a value of type (dtype, rank, dims) from dim `from` on. */
static LLVMValueRef bytes_of(em *e, int dtype, int rank, const int64_t *dims, int from) {
  LLVMValueRef n = ci(e, (int64_t)tl_dtype_size((tl_dtype)dtype));
  for (int i = from; i < rank; i++) n = LLVMBuildMul(e->b, n, lw_dimv(e, dims[i]), "");
  return n;
}

static LLVMValueRef buf_bytes(em *e, int32_t b, int from) {
  const be_buf *x = &e->p->bufs[b];
  return bytes_of(e, x->dtype, x->rank, x->dims, from);
}

static void copy(em *e, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef n) {
  LLVMBuildMemCpy(e->b, dst, 1, src, 1, n);
}

/* A condition's truth: element 0 of buffer b non-zero (NaN is true). */
static LLVMValueRef truth(em *e, int32_t b) {
  const be_buf *x = &e->p->bufs[b];
  LLVMValueRef v = LLVMBuildLoad2(e->b, mty(e, x->dtype), lw_bufptr(e, b), "");
  return isf(x->dtype) ? fcmp(e, LLVMRealUNE, v, LLVMConstReal(vty(e, x->dtype), 0))
                       : icmp(e, LLVMIntNE, v, LLVMConstInt(mty(e, x->dtype), 0, 0));
}

/* truth(), and false when the condition has no elements (it then reads
 * nothing). */
static LLVMValueRef guarded_truth(em *e, int32_t b) {
  const be_buf *x = &e->p->bufs[b];
  if (x->rank == 0) return truth(e, b);
  LLVMValueRef some = icmp(e, LLVMIntNE, buf_bytes(e, b, 0), ci(e, 0));
  LLVMBasicBlockRef from = LLVMGetInsertBlock(e->b);
  LLVMBasicBlockRef rd = LLVMAppendBasicBlockInContext(e->cx, e->fn, "cread");
  LLVMBasicBlockRef jn = LLVMAppendBasicBlockInContext(e->cx, e->fn, "cjoin");
  LLVMBuildCondBr(e->b, some, rd, jn);
  LLVMPositionBuilderAtEnd(e->b, rd);
  LLVMValueRef t = truth(e, b);
  LLVMBasicBlockRef rdend = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, jn);
  LLVMPositionBuilderAtEnd(e->b, jn);
  LLVMValueRef phi = LLVMBuildPhi(e->b, e->i1, "truth");
  LLVMValueRef vals[2] = {LLVMConstInt(e->i1, 0, 0), t};
  LLVMBasicBlockRef bbs[2] = {from, rdend};
  LLVMAddIncoming(phi, vals, bbs, 2);
  return phi;
}

static LLVMValueRef operand(em *e, const be_kern *k, int i) { return lw_bufptr(e, k->ctl->opbuf[i]); }

static void k_call(em *e, const be_kern *k, LLVMValueRef par, LLVMValueRef pool) {
  const be_ctl *c = k->ctl;
  const tl_node *x = &e->g->nodes[k->node];
  sframe f;
  site_frame(e, e->p, &c->site[0], &f);
  LLVMValueRef *in = tl_xcalloc((size_t)x->ninputs + 1, sizeof *in), *out = tl_xcalloc((size_t)c->nres + 1, sizeof *out);
  for (int i = 0; i < x->ninputs; i++) in[i] = operand(e, k, i);
  for (int i = 0; i < c->nres; i++) out[i] = lw_bufptr(e, c->res[i]);
  run_site(e, k, &f, in, out, par, pool);
  tl_free(in);
  tl_free(out);
}

static void k_cond(em *e, const be_kern *k, LLVMValueRef par, LLVMValueRef pool) {
  const be_ctl *c = k->ctl;
  const tl_node *x = &e->g->nodes[k->node];
  LLVMValueRef *in = tl_xcalloc((size_t)x->ninputs + 1, sizeof *in), *out = tl_xcalloc((size_t)c->nres + 1, sizeof *out);
  for (int i = 1; i < x->ninputs; i++) in[i - 1] = operand(e, k, i);
  for (int i = 0; i < c->nres; i++) out[i] = lw_bufptr(e, c->res[i]);
  LLVMValueRef t = guarded_truth(e, c->opbuf[0]);
  LLVMBasicBlockRef tb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "then");
  LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "else");
  LLVMBasicBlockRef jb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "endif");
  LLVMBuildCondBr(e->b, t, tb, fb);
  for (int s = 0; s < 2; s++) {
    LLVMPositionBuilderAtEnd(e->b, s ? fb : tb);
    sframe f;
    site_frame(e, e->p, &c->site[s], &f);
    run_site(e, k, &f, in, out, par, pool);
    LLVMBuildBr(e->b, jb);
  }
  LLVMPositionBuilderAtEnd(e->b, jb);
  tl_free(in);
  tl_free(out);
}

static void k_loop(em *e, const be_kern *k, LLVMValueRef par, LLVMValueRef pool) {
  const be_ctl *c = k->ctl;
  const tl_node *x = &e->g->nodes[k->node];
  int ns = c->nres;
  bool until = c->nsite == 3;
  int64_t max = x->attrs.trips;
  sframe fc, fb, fu;
  site_frame(e, e->p, &c->site[0], &fc);
  site_frame(e, e->p, &c->site[1], &fb);
  if (until) site_frame(e, e->p, &c->site[2], &fu);
  LLVMValueRef *st = tl_xcalloc((size_t)ns + 1, sizeof *st), *dst = tl_xcalloc((size_t)ns + 1, sizeof *dst);
  LLVMValueRef *phis = tl_xcalloc((size_t)ns + 1, sizeof *phis);
  LLVMValueRef pc = lw_bufptr(e, c->pred[0]), pu = until ? lw_bufptr(e, c->pred[1]) : NULL;
  for (int i = 0; i < ns; i++) st[i] = operand(e, k, i);
  run_site(e, k, &fc, st, &pc, par, pool);
  LLVMValueRef go = guarded_truth(e, c->pred[0]);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->cx, e->fn, "loop");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->cx, e->fn, "loopdone");
  LLVMBuildCondBr(e->b, go, head, done);
  LLVMPositionBuilderAtEnd(e->b, head);
  LLVMValueRef trips = LLVMBuildPhi(e->b, e->i64, "trips");
  for (int i = 0; i < ns; i++) phis[i] = LLVMBuildPhi(e->b, e->ptr, "state");
  if (max >= 0) {
    LLVMBasicBlockRef over = LLVMAppendBasicBlockInContext(e->cx, e->fn, "maxtrip");
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(e->cx, e->fn, "body");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, trips, ci(e, max)), over, run);
    LLVMPositionBuilderAtEnd(e->b, over);
    LLVMBuildRet(e->b, LLVMConstInt(e->i32, (unsigned long long)(((int64_t)k->node << 4) | BE_ERR_MAXTRIP), 0));
    LLVMPositionBuilderAtEnd(e->b, run);
  }
  /* even trips write the results, odd ones the second set */
  LLVMValueRef odd = LLVMBuildTrunc(e->b, trips, e->i1, "");
  for (int i = 0; i < ns; i++) dst[i] = sel(e, odd, lw_bufptr(e, c->alt[i]), lw_bufptr(e, c->res[i]));
  run_site(e, k, &fb, phis, dst, par, pool);
  LLVMValueRef next = LLVMBuildAdd(e->b, trips, ci(e, 1), "");
  if (until) {
    run_site(e, k, &fu, dst, &pu, par, pool);
    go = LLVMBuildNot(e->b, guarded_truth(e, c->pred[1]), "");
  } else {
    run_site(e, k, &fc, dst, &pc, par, pool);
    go = guarded_truth(e, c->pred[0]);
  }
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
  LLVMBuildCondBr(e->b, go, head, done);
  LLVMAddIncoming(trips, (LLVMValueRef[]){ci(e, 0), next}, (LLVMBasicBlockRef[]){pre, latch}, 2);
  for (int i = 0; i < ns; i++) LLVMAddIncoming(phis[i], (LLVMValueRef[]){st[i], dst[i]}, (LLVMBasicBlockRef[]){pre, latch}, 2);
  LLVMPositionBuilderAtEnd(e->b, done);
  for (int i = 0; i < ns; i++) {
    LLVMValueRef fin = LLVMBuildPhi(e->b, e->ptr, "final");
    LLVMAddIncoming(fin, (LLVMValueRef[]){st[i], dst[i]}, (LLVMBasicBlockRef[]){pre, latch}, 2);
    st[i] = fin;
  }
  /* the state ended in the operands (no trip) or the second set: copy */
  for (int i = 0; i < ns; i++) {
    LLVMValueRef r = lw_bufptr(e, c->res[i]);
    LLVMBasicBlockRef cp = LLVMAppendBasicBlockInContext(e->cx, e->fn, "statecopy");
    LLVMBasicBlockRef nx = LLVMAppendBasicBlockInContext(e->cx, e->fn, "statedone");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntNE, LLVMBuildPtrToInt(e->b, st[i], e->i64, ""), LLVMBuildPtrToInt(e->b, r, e->i64, "")),
                    cp, nx);
    LLVMPositionBuilderAtEnd(e->b, cp);
    copy(e, r, st[i], buf_bytes(e, c->res[i], 0));
    LLVMBuildBr(e->b, nx);
    LLVMPositionBuilderAtEnd(e->b, nx);
  }
  tl_free(st);
  tl_free(dst);
  tl_free(phis);
}

static void k_scan(em *e, const be_kern *k, LLVMValueRef par, LLVMValueRef pool) {
  const be_ctl *c = k->ctl;
  const tl_graph *g = e->g;
  const tl_node *x = &g->nodes[k->node];
  int nk = (int)x->attrs.carry, m = (x->attrs.present & TL_A_CONSTS) ? (int)x->attrs.consts : 0;
  int nin = x->ninputs, nx = nin - nk - m, ny = c->nres - nk;
  sframe f;
  site_frame(e, e->p, &c->site[0], &f);
  const tl_type *x0 = nx ? &g->nodes[tl_node_inputs(g, x)[nk + m]].type : NULL;
  LLVMValueRef len = x0 ? lw_dimv(e, x0->dims[0]) : ci(e, x->attrs.length);
  LLVMValueRef *in = tl_xcalloc((size_t)nin + 1, sizeof *in), *out = tl_xcalloc((size_t)c->nres + 1, sizeof *out);
  LLVMValueRef *phis = tl_xcalloc((size_t)nk + 1, sizeof *phis), *base = tl_xcalloc((size_t)nin + 1, sizeof *base);
  LLVMValueRef *xstep = tl_xcalloc((size_t)nin + 1, sizeof *xstep), *ystep = tl_xcalloc((size_t)c->nres + 1, sizeof *ystep);
  for (int i = 0; i < nin; i++) base[i] = operand(e, k, i);
  for (int i = nk + m; i < nin; i++) {
    const tl_type *t = &g->nodes[tl_node_inputs(g, x)[i]].type;
    xstep[i] = bytes_of(e, t->dtype, t->rank, t->dims, 1);
  }
  for (int j = 0; j < ny; j++) ystep[j] = buf_bytes(e, c->res[nk + j], 1);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->cx, e->fn, "scan");
  LLVMBasicBlockRef empty = LLVMAppendBasicBlockInContext(e->cx, e->fn, "scanempty");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->cx, e->fn, "scandone");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGT, len, ci(e, 0)), head, empty);
  /* no step: the carries are the operands */
  LLVMPositionBuilderAtEnd(e->b, empty);
  for (int i = 0; i < nk; i++) copy(e, lw_bufptr(e, c->res[i]), base[i], buf_bytes(e, c->res[i], 0));
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, head);
  LLVMValueRef t = LLVMBuildPhi(e->b, e->i64, "t");
  for (int i = 0; i < nk; i++) phis[i] = LLVMBuildPhi(e->b, e->ptr, "carry");
  /* step t writes the results when len - 1 - t is even: the last one does */
  LLVMValueRef left = LLVMBuildSub(e->b, LLVMBuildSub(e->b, len, ci(e, 1), ""), t, "");
  LLVMValueRef odd = LLVMBuildTrunc(e->b, left, e->i1, "");
  for (int i = 0; i < nk; i++) {
    in[i] = phis[i];
    out[i] = sel(e, odd, lw_bufptr(e, c->alt[i]), lw_bufptr(e, c->res[i]));
  }
  for (int i = nk; i < nk + m; i++) in[i] = base[i];
  for (int i = nk + m; i < nin; i++) in[i] = gep8(e, base[i], LLVMBuildMul(e->b, t, xstep[i], ""));
  for (int j = 0; j < ny; j++) out[nk + j] = gep8(e, lw_bufptr(e, c->res[nk + j]), LLVMBuildMul(e->b, t, ystep[j], ""));
  run_site(e, k, &f, in, out, par, pool);
  LLVMValueRef next = LLVMBuildAdd(e->b, t, ci(e, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, next, len), head, done);
  LLVMAddIncoming(t, (LLVMValueRef[]){ci(e, 0), next}, (LLVMBasicBlockRef[]){pre, latch}, 2);
  for (int i = 0; i < nk; i++) LLVMAddIncoming(phis[i], (LLVMValueRef[]){base[i], out[i]}, (LLVMBasicBlockRef[]){pre, latch}, 2);
  LLVMPositionBuilderAtEnd(e->b, done);
  tl_free(in);
  tl_free(out);
  tl_free(phis);
  tl_free(base);
  tl_free(xstep);
  tl_free(ystep);
}

void lw_k_control(em *e, const be_kern *k, LLVMValueRef par, LLVMValueRef pool) {
  switch (e->g->nodes[k->node].op) {
  case TL_OP_CALL: k_call(e, k, par, pool); break;
  case TL_OP_COND: k_cond(e, k, par, pool); break;
  case TL_OP_LOOP: k_loop(e, k, par, pool); break;
  default: k_scan(e, k, par, pool); break;
  }
}
