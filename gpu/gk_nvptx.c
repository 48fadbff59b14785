/* gk_nvptx.c - kernel descriptions (gk.h) as LLVM IR for the NVPTX target,
 * and that IR as PTX text: triple nvptx64-nvidia-cuda, sm_90 unless asked
 * otherwise, LLVM 19's own NVPTX back end through its C API.
 *
 * Every description becomes one kernel function (calling convention
 * ptx_kernel, and the nvvm.annotations "kernel" and "maxntidx" entries):
 * parameters are the error word, the plan buffers as global-address-space
 * pointers (noalias: the runtime never passes overlapping buffers; read-only
 * ones also readonly, so their loads become ld.global.nc), then one i64
 * per symbol. Variables are allocas of the entry block, which LLVM promotes
 * to registers; LOOP and IF become plain branches; constants of the plan
 * are initialised globals of the module; shared arrays are globals in
 * address space 3. Math functions call libdevice (__nv_expf, ...), which
 * is linked in from a pruned copy (below), internalised and inlined.
 *
 * libdevice is 480 KB of bitcode and parsing it takes ~90 ms, more than a
 * whole compile. So the first compile of a process parses it once, keeps
 * only the __nv_ functions kernels can call and what they reach (every other
 * definition made internal, then LLVM's globaldce), and stores that as
 * bitcode in the compile cache folder (the CPU backend's, keyed by the
 * library's path, size and modification time); later compiles, in any
 * process, parse the pruned copy into their own context. */
#include "gpu/gpu_internal.h"

#include "util/util.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define NV_TRIPLE "nvptx64-nvidia-cuda"

static pthread_once_t nv_once = PTHREAD_ONCE_INIT;

static void nv_init(void) {
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTarget();
  LLVMInitializeNVPTXTargetMC();
  LLVMInitializeNVPTXAsmPrinter();
}

/* ---- the pruned libdevice ---------------------------------------------------------- */

static pthread_mutex_t ld_mu = PTHREAD_MUTEX_INITIALIZER;
static char ld_key[4200]; /* path size mtime of the cached copy */
static char *ld_bc;
static size_t ld_len;

static bool is_root(const char *name) {
  if (strncmp(name, "__nv_", 5)) return false;
  for (int i = 0; i < GK_MATH_COUNT; i++) {
    size_t l = strlen(gk_math_names[i]);
    if (!strncmp(name + 5, gk_math_names[i], l) && (!name[5 + l] || !strcmp(name + 5 + l, "f"))) return true;
  }
  return false;
}

static int cache_path(const char *key, char *buf, size_t n) {
  const char *d = getenv("TLALOC_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
  char dir[4096];
  if (d && *d) snprintf(dir, sizeof dir, "%s", d);
  else if (x && *x) snprintf(dir, sizeof dir, "%s/tlaloc", x);
  else if (h && *h) snprintf(dir, sizeof dir, "%s/.cache/tlaloc", h);
  else return -1;
  snprintf(buf, n, "%s/libdevice-%016llx.bc", dir, (unsigned long long)XXH3_64bits(key, strlen(key)));
  return 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = sz > 0 ? tl_xmalloc((size_t)sz) : NULL;
  if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
    tl_free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = buf ? (size_t)sz : 0;
  return buf;
}

/* Prunes libdevice at path into bitcode (*bc, *len). */
static int ld_prune(const char *path, char **bc, size_t *len, char *err, size_t n) {
  LLVMMemoryBufferRef mb = NULL;
  char *msg = NULL;
  if (LLVMCreateMemoryBufferWithContentsOfFile(path, &mb, &msg)) {
    snprintf(err, n, "gpu: reading %s: %s", path, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return -1;
  }
  LLVMContextRef cx = LLVMContextCreate();
  LLVMModuleRef m = NULL;
  int rc = 0;
  if (LLVMParseBitcodeInContext2(cx, mb, &m)) {
    snprintf(err, n, "gpu: %s is not LLVM bitcode", path);
    rc = -1;
  } else {
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
      size_t l;
      const char *name = LLVMGetValueName2(f, &l);
      if (!LLVMIsDeclaration(f) && !is_root(name)) LLVMSetLinkage(f, LLVMInternalLinkage);
    }
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m, "globaldce", NULL, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
      char *s = LLVMGetErrorMessage(e);
      snprintf(err, n, "gpu: pruning libdevice: %s", s);
      LLVMDisposeErrorMessage(s);
      rc = -1;
    } else {
      LLVMMemoryBufferRef out = LLVMWriteBitcodeToMemoryBuffer(m);
      *len = LLVMGetBufferSize(out);
      *bc = tl_xmalloc(*len);
      memcpy(*bc, LLVMGetBufferStart(out), *len);
      LLVMDisposeMemoryBuffer(out);
    }
    LLVMDisposeModule(m);
  }
  LLVMDisposeMemoryBuffer(mb);
  LLVMContextDispose(cx);
  return rc;
}

/* The pruned libdevice of path into a fresh module of cx. */
static LLVMModuleRef ld_module(const char *path, LLVMContextRef cx, char *err, size_t n) {
  struct stat sb;
  if (stat(path, &sb)) {
    snprintf(err, n, "gpu: %s: cannot read libdevice", path);
    return NULL;
  }
  char key[sizeof ld_key];
  snprintf(key, sizeof key, "%s %lld %lld", path, (long long)sb.st_size, (long long)sb.st_mtime);
  pthread_mutex_lock(&ld_mu);
  if (!ld_bc || strcmp(key, ld_key)) {
    tl_free(ld_bc);
    ld_bc = NULL;
    char cpath[4400];
    bool cached = !cache_path(key, cpath, sizeof cpath) && (ld_bc = read_file(cpath, &ld_len)) != NULL;
    if (!cached && !ld_prune(path, &ld_bc, &ld_len, err, n) && !cache_path(key, cpath, sizeof cpath)) {
      /* written atomically: a temporary file renamed over the entry */
      char tmp[4500], dir[4400];
      snprintf(dir, sizeof dir, "%s", cpath);
      char *slash = strrchr(dir, '/');
      if (slash) {
        *slash = 0;
        for (char *q = dir + 1; *q; q++)
          if (*q == '/') {
            *q = 0;
            mkdir(dir, 0755);
            *q = '/';
          }
        mkdir(dir, 0755);
      }
      snprintf(tmp, sizeof tmp, "%s.%ld.tmp", cpath, (long)getpid());
      FILE *f = fopen(tmp, "wb");
      if (f) {
        bool ok = fwrite(ld_bc, 1, ld_len, f) == ld_len;
        if (fclose(f) || !ok || rename(tmp, cpath)) unlink(tmp);
      }
    }
    if (ld_bc) snprintf(ld_key, sizeof ld_key, "%s", key);
  }
  LLVMModuleRef m = NULL;
  if (ld_bc) {
    LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(ld_bc, ld_len, "libdevice");
    if (LLVMParseBitcodeInContext2(cx, mb, &m)) {
      snprintf(err, n, "gpu: the pruned copy of %s does not parse", path);
      m = NULL;
    }
    LLVMDisposeMemoryBuffer(mb);
  }
  pthread_mutex_unlock(&ld_mu);
  return m;
}

/* ---- lowering ------------------------------------------------------------------------- */

typedef struct nv {
  const gpu_build *bd;
  LLVMContextRef cx;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  LLVMTargetMachineRef tm;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, g1, g3, vd;
  LLVMValueRef *consts; /* per plan buffer: its global (constants) */
  /* the kernel being lowered */
  const gk_kernel *k;
  LLVMValueRef fn, errp, *bufp, *symv, *vals, *vars, shm[8];
  bool uses_math;
  char *err;
  size_t errn;
} nv;

static void nv_release(void *arg) {
  nv *e = arg;
  if (e->b) LLVMDisposeBuilder(e->b);
  if (e->cx) LLVMContextDispose(e->cx); /* with its modules */
  if (e->tm) LLVMDisposeTargetMachine(e->tm);
}

static LLVMTypeRef ty_of(nv *e, int t) {
  switch (t) {
  case GK_I1: return e->i1;
  case GK_I32: return e->i32;
  case GK_I64: return e->i64;
  case GK_F32: return e->f32;
  case GK_F64: return e->f64;
  default: return e->vd;
  }
}

static LLVMTypeRef mem_ty(nv *e, int dtype) { return dtype == TL_BOOL ? e->i8 : ty_of(e, gk_ty_of_dtype(dtype)); }

static LLVMValueRef intr(nv *e, const char *name, LLVMTypeRef over, LLVMValueRef *args, int na) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef tys[1] = {over};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, over ? tys : NULL, over ? 1 : 0);
  LLVMTypeRef ft = LLVMIntrinsicGetType(e->cx, id, over ? tys : NULL, over ? 1 : 0);
  return LLVMBuildCall2(e->b, ft, f, args, (unsigned)na, "");
}

static LLVMValueRef ci(nv *e, LLVMTypeRef t, long long v) { return LLVMConstInt(t, (unsigned long long)v, 1); }

static LLVMValueRef buf_base(nv *e, int32_t buf) {
  return e->consts[buf] ? e->consts[buf] : e->bufp[buf];
}

static LLVMValueRef shfl32(nv *e, LLVMValueRef v, int mask) {
  LLVMValueRef a[4] = {ci(e, e->i32, -1), v, ci(e, e->i32, mask), ci(e, e->i32, 0x1f)};
  return intr(e, "llvm.nvvm.shfl.sync.bfly.i32", NULL, a, 4);
}

static LLVMValueRef shuffle(nv *e, LLVMValueRef v, int t, int mask) {
  LLVMBuilderRef B = e->b;
  switch (t) {
  case GK_I32: return shfl32(e, v, mask);
  case GK_F32: return LLVMBuildBitCast(B, shfl32(e, LLVMBuildBitCast(B, v, e->i32, ""), mask), e->f32, "");
  case GK_I1: return LLVMBuildTrunc(B, shfl32(e, LLVMBuildZExt(B, v, e->i32, ""), mask), e->i1, "");
  default: {
    LLVMValueRef w = t == GK_F64 ? LLVMBuildBitCast(B, v, e->i64, "") : v;
    LLVMValueRef lo = shfl32(e, LLVMBuildTrunc(B, w, e->i32, ""), mask);
    LLVMValueRef hi = shfl32(e, LLVMBuildTrunc(B, LLVMBuildLShr(B, w, ci(e, e->i64, 32), ""), e->i32, ""), mask);
    LLVMValueRef r = LLVMBuildOr(B, LLVMBuildZExt(B, lo, e->i64, ""),
                                 LLVMBuildShl(B, LLVMBuildZExt(B, hi, e->i64, ""), ci(e, e->i64, 32), ""), "");
    return t == GK_F64 ? LLVMBuildBitCast(B, r, e->f64, "") : r;
  }
  }
}

static LLVMValueRef math_call(nv *e, const gk_ins *x) {
  bool f = x->ty == GK_F32;
  char name[32];
  snprintf(name, sizeof name, "__nv_%s%s", gk_math_names[x->aux], f ? "f" : "");
  LLVMTypeRef t = ty_of(e, x->ty), pt[2] = {t, t};
  int na = x->aux == GK_POW || x->aux == GK_FMOD || x->aux == GK_ATAN2 || x->aux == GK_HYPOT ? 2 : 1;
  LLVMTypeRef ft = LLVMFunctionType(t, pt, (unsigned)na, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->m, name);
  if (!fn) fn = LLVMAddFunction(e->m, name, ft);
  LLVMValueRef a[2] = {e->vals[x->a], na == 2 ? e->vals[x->b] : NULL};
  e->uses_math = true;
  return LLVMBuildCall2(e->b, ft, fn, a, (unsigned)na, "");
}

static LLVMValueRef value(nv *e, int32_t i) {
  const gk_ins *x = &e->k->ins[i];
  LLVMBuilderRef B = e->b;
  LLVMTypeRef t = ty_of(e, x->ty);
  LLVMValueRef a = x->a >= 0 && x->op != GK_CONST && x->op != GK_SREG && x->op != GK_SYM && x->op != GK_LOAD &&
                           x->op != GK_SHLOAD && x->op != GK_GET
                       ? e->vals[x->a]
                       : NULL;
  LLVMValueRef b = x->op == GK_BIN || x->op == GK_ICMP || x->op == GK_FCMP || x->op == GK_SELECT ? e->vals[x->b] : NULL;
  switch (x->op) {
  case GK_CONST: return x->ty == GK_F32 || x->ty == GK_F64 ? LLVMConstReal(t, x->k.f) : ci(e, t, x->k.i);
  case GK_SREG: {
    static const char *const n[] = {"llvm.nvvm.read.ptx.sreg.tid.x", "llvm.nvvm.read.ptx.sreg.ntid.x",
                                    "llvm.nvvm.read.ptx.sreg.ctaid.x", "llvm.nvvm.read.ptx.sreg.nctaid.x"};
    return LLVMBuildZExt(B, intr(e, n[x->aux], NULL, NULL, 0), e->i64, "");
  }
  case GK_SYM: return e->symv[x->a];
  case GK_BIN:
    switch (x->aux) {
    case GK_ADD: return LLVMBuildAdd(B, a, b, "");
    case GK_SUB: return LLVMBuildSub(B, a, b, "");
    case GK_MUL: return LLVMBuildMul(B, a, b, "");
    case GK_SDIV: return LLVMBuildSDiv(B, a, b, "");
    case GK_SREM: return LLVMBuildSRem(B, a, b, "");
    case GK_AND: return LLVMBuildAnd(B, a, b, "");
    case GK_OR: return LLVMBuildOr(B, a, b, "");
    case GK_XOR: return LLVMBuildXor(B, a, b, "");
    case GK_SHL: return LLVMBuildShl(B, a, b, "");
    case GK_ASHR: return LLVMBuildAShr(B, a, b, "");
    case GK_LSHR: return LLVMBuildLShr(B, a, b, "");
    case GK_FADD: return LLVMBuildFAdd(B, a, b, "");
    case GK_FSUB: return LLVMBuildFSub(B, a, b, "");
    case GK_FMUL: return LLVMBuildFMul(B, a, b, "");
    default: return LLVMBuildFDiv(B, a, b, "");
    }
  case GK_FNEG: return LLVMBuildFNeg(B, a, "");
  case GK_ICMP: {
    static const LLVMIntPredicate p[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
    return LLVMBuildICmp(B, p[x->aux], a, b, "");
  }
  case GK_FCMP: {
    static const LLVMRealPredicate p[] = {LLVMRealOEQ, LLVMRealONE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT,
                                          LLVMRealOGE, LLVMRealORD, LLVMRealUNO, LLVMRealUNE};
    return LLVMBuildFCmp(B, p[x->aux], a, b, "");
  }
  case GK_SELECT: return LLVMBuildSelect(B, a, b, e->vals[x->c], "");
  case GK_CONV:
    switch (x->aux) {
    case GK_SEXT: return LLVMBuildSExt(B, a, t, "");
    case GK_ZEXT: return LLVMBuildZExt(B, a, t, "");
    case GK_TRUNC: return LLVMBuildTrunc(B, a, t, "");
    case GK_FPEXT: return LLVMBuildFPExt(B, a, t, "");
    case GK_FPTRUNC: return LLVMBuildFPTrunc(B, a, t, "");
    case GK_SITOFP: return LLVMBuildSIToFP(B, a, t, "");
    case GK_UITOFP: return LLVMBuildUIToFP(B, a, t, "");
    case GK_FPTOSI: return LLVMBuildFPToSI(B, a, t, "");
    default: return LLVMBuildBitCast(B, a, t, "");
    }
  case GK_INTR: {
    static const char *const n[] = {"llvm.fabs", "llvm.sqrt", "llvm.floor", "llvm.ceil", "llvm.copysign",
                                    "llvm.maxnum", "llvm.minnum", "llvm.maximum", "llvm.minimum", "llvm.fma"};
    LLVMValueRef args[3] = {a, x->b >= 0 ? e->vals[x->b] : NULL, x->c >= 0 ? e->vals[x->c] : NULL};
    int na = x->c >= 0 ? 3 : x->b >= 0 ? 2 : 1;
    return intr(e, n[x->aux], t, args, na);
  }
  case GK_MATH: return math_call(e, x);
  case GK_LOAD: {
    LLVMTypeRef mt = mem_ty(e, x->aux);
    LLVMValueRef idx = e->vals[x->b];
    LLVMValueRef p = LLVMBuildInBoundsGEP2(B, mt, buf_base(e, x->a), &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(B, mt, p, "");
    LLVMSetAlignment(v, (unsigned)x->c);
    return x->aux == TL_BOOL ? LLVMBuildICmp(B, LLVMIntNE, v, ci(e, e->i8, 0), "") : v;
  }
  case GK_SHLOAD: {
    LLVMValueRef idx[2] = {ci(e, e->i64, 0), e->vals[x->b]};
    LLVMTypeRef at = LLVMArrayType2(t, (uint64_t)e->k->shm_n[x->a]);
    return LLVMBuildLoad2(B, t, LLVMBuildInBoundsGEP2(B, at, e->shm[x->a], idx, 2, ""), "");
  }
  case GK_SHFL: return shuffle(e, a, x->ty, (int)x->k.i);
  case GK_GET: return LLVMBuildLoad2(B, t, e->vars[x->a], "");
  default: return NULL;
  }
}

typedef struct ctl {
  int32_t at;
  LLVMBasicBlockRef head, exit;
} ctl;

static void lower_kernel(nv *e, const gk_kernel *k) {
  const gpu_build *bd = e->bd;
  e->k = k;
  int np = 1 + k->nbufs + k->nsyms;
  LLVMTypeRef *pt = tl_xmalloc((size_t)np * sizeof *pt);
  pt[0] = e->g1;
  for (int i = 0; i < k->nbufs; i++) pt[1 + i] = e->g1;
  for (int i = 0; i < k->nsyms; i++) pt[1 + k->nbufs + i] = e->i64;
  e->fn = LLVMAddFunction(e->m, k->name, LLVMFunctionType(e->vd, pt, (unsigned)np, 0));
  tl_free(pt);
  LLVMSetFunctionCallConv(e->fn, LLVMPTXKernelCallConv);
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  unsigned readonly = LLVMGetEnumAttributeKindForName("readonly", 8);
  unsigned nocapture = LLVMGetEnumAttributeKindForName("nocapture", 9);
  for (int i = 0; i < k->nbufs; i++) {
    unsigned at = (unsigned)(2 + i);
    LLVMAddAttributeAtIndex(e->fn, at, LLVMCreateEnumAttribute(e->cx, noalias, 0));
    LLVMAddAttributeAtIndex(e->fn, at, LLVMCreateEnumAttribute(e->cx, nocapture, 0));
    if (!k->buf_written[i]) LLVMAddAttributeAtIndex(e->fn, at, LLVMCreateEnumAttribute(e->cx, readonly, 0));
  }
  /* kernel and maxntidx annotations */
  LLVMMetadataRef md[3] = {LLVMValueAsMetadata(e->fn), LLVMMDStringInContext2(e->cx, "kernel", 6),
                           LLVMValueAsMetadata(ci(e, e->i32, 1))};
  LLVMAddNamedMetadataOperand(e->m, "nvvm.annotations", LLVMMetadataAsValue(e->cx, LLVMMDNodeInContext2(e->cx, md, 3)));
  md[1] = LLVMMDStringInContext2(e->cx, "maxntidx", 8);
  md[2] = LLVMValueAsMetadata(ci(e, e->i32, k->launch.threads));
  LLVMAddNamedMetadataOperand(e->m, "nvvm.annotations", LLVMMetadataAsValue(e->cx, LLVMMDNodeInContext2(e->cx, md, 3)));
  int32_t nbufs = bd->plan.nbufs;
  e->bufp = tl_xcalloc((size_t)nbufs + 1, sizeof *e->bufp);
  e->symv = tl_xcalloc((size_t)bd->g->nsyms + 1, sizeof *e->symv);
  e->vals = tl_xcalloc((size_t)k->nins + 1, sizeof *e->vals);
  e->vars = tl_xcalloc((size_t)k->nvars + 1, sizeof *e->vars);
  e->errp = LLVMGetParam(e->fn, 0);
  for (int i = 0; i < k->nbufs; i++) e->bufp[k->bufs[i]] = LLVMGetParam(e->fn, (unsigned)(1 + i));
  for (int i = 0; i < k->nsyms; i++) e->symv[k->syms[i]] = LLVMGetParam(e->fn, (unsigned)(1 + k->nbufs + i));
  for (int i = 0; i < k->nshm; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s_shm%d", k->name, i);
    LLVMTypeRef at = LLVMArrayType2(ty_of(e, k->shm_ty[i]), (uint64_t)k->shm_n[i]);
    e->shm[i] = LLVMAddGlobalInAddressSpace(e->m, at, name, 3);
    LLVMSetInitializer(e->shm[i], LLVMGetUndef(at));
    LLVMSetLinkage(e->shm[i], LLVMInternalLinkage);
    LLVMSetAlignment(e->shm[i], 16);
  }
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->cx, e->fn, "entry");
  LLVMPositionBuilderAtEnd(e->b, entry);
  for (int i = 0; i < k->nvars; i++) e->vars[i] = LLVMBuildAlloca(e->b, ty_of(e, k->vars[i]), "");
  ctl *stack = tl_xcalloc((size_t)k->nins + 1, sizeof *stack);
  int depth = 0;
  LLVMBuilderRef B = e->b;
  for (int32_t i = 0; i < k->nins; i++) {
    const gk_ins *x = &k->ins[i];
    switch (x->op) {
    case GK_STORE: {
      LLVMTypeRef mt = mem_ty(e, x->aux);
      LLVMValueRef v = e->vals[x->c], idx = e->vals[x->b];
      if (x->aux == TL_BOOL) v = LLVMBuildZExt(B, v, e->i8, "");
      LLVMValueRef s = LLVMBuildStore(B, v, LLVMBuildInBoundsGEP2(B, mt, e->bufp[x->a], &idx, 1, ""));
      LLVMSetAlignment(s, (unsigned)x->d);
      break;
    }
    case GK_SHSTORE: {
      LLVMTypeRef t = ty_of(e, k->shm_ty[x->a]);
      LLVMValueRef idx[2] = {ci(e, e->i64, 0), e->vals[x->b]};
      LLVMTypeRef at = LLVMArrayType2(t, (uint64_t)k->shm_n[x->a]);
      LLVMBuildStore(B, e->vals[x->c], LLVMBuildInBoundsGEP2(B, at, e->shm[x->a], idx, 2, ""));
      break;
    }
    case GK_SET: LLVMBuildStore(B, e->vals[x->b], e->vars[x->a]); break;
    case GK_LOOP: {
      ctl *c = &stack[depth++];
      c->at = i;
      LLVMBuildStore(B, e->vals[x->b], e->vars[x->a]);
      c->head = LLVMAppendBasicBlockInContext(e->cx, e->fn, "head");
      LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "body");
      c->exit = LLVMAppendBasicBlockInContext(e->cx, e->fn, "exit");
      LLVMBuildBr(B, c->head);
      LLVMPositionBuilderAtEnd(B, c->head);
      LLVMValueRef iv = LLVMBuildLoad2(B, e->i64, e->vars[x->a], "");
      LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, iv, e->vals[x->c], ""), body, c->exit);
      LLVMPositionBuilderAtEnd(B, body);
      break;
    }
    case GK_IF: {
      ctl *c = &stack[depth++];
      c->at = i;
      c->head = NULL;
      LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(e->cx, e->fn, "then");
      c->exit = LLVMAppendBasicBlockInContext(e->cx, e->fn, "endif");
      LLVMBuildCondBr(B, e->vals[x->a], then, c->exit);
      LLVMPositionBuilderAtEnd(B, then);
      break;
    }
    case GK_END: {
      ctl *c = &stack[--depth];
      if (c->head) {
        const gk_ins *l = &k->ins[c->at];
        LLVMValueRef iv = LLVMBuildLoad2(B, e->i64, e->vars[l->a], "");
        LLVMBuildStore(B, LLVMBuildNSWAdd(B, iv, e->vals[l->d], ""), e->vars[l->a]);
        LLVMBuildBr(B, c->head);
      } else {
        LLVMBuildBr(B, c->exit);
      }
      LLVMPositionBuilderAtEnd(B, c->exit);
      break;
    }
    case GK_BARRIER: intr(e, "llvm.nvvm.barrier0", NULL, NULL, 0); break;
    case GK_ERR: {
      LLVMValueRef r = LLVMBuildAtomicCmpXchg(B, e->errp, ci(e, e->i32, 0), ci(e, e->i32, x->k.i),
                                              LLVMAtomicOrderingMonotonic, LLVMAtomicOrderingMonotonic, 0);
      (void)r;
      break;
    }
    default: e->vals[i] = value(e, i); break;
    }
  }
  LLVMBuildRetVoid(B);
  tl_free(stack);
  tl_free(e->bufp);
  tl_free(e->symv);
  tl_free(e->vals);
  tl_free(e->vars);
}

char *gpu_nvptx(const gpu_build *bd, const char *arch, const char *libdevice, int opt_level, gpu_ptx_stats *st,
                char *err, size_t n) {
  pthread_once(&nv_once, nv_init);
  double t0 = tl_now_ms();
  nv E, *e = &E;
  memset(e, 0, sizeof E);
  e->bd = bd;
  e->err = err;
  e->errn = n;
  /* running out of memory while lowering disposes of the LLVM objects */
  tl_cleanup *cl = tl_cleanup_push(nv_release);
  cl->arg = e;
  e->cx = LLVMContextCreate();
  e->m = LLVMModuleCreateWithNameInContext(bd->g->name ? bd->g->name : "g", e->cx);
  e->b = LLVMCreateBuilderInContext(e->cx);
  e->i1 = LLVMInt1TypeInContext(e->cx);
  e->i8 = LLVMInt8TypeInContext(e->cx);
  e->i32 = LLVMInt32TypeInContext(e->cx);
  e->i64 = LLVMInt64TypeInContext(e->cx);
  e->f32 = LLVMFloatTypeInContext(e->cx);
  e->f64 = LLVMDoubleTypeInContext(e->cx);
  e->g1 = LLVMPointerTypeInContext(e->cx, 1);
  e->g3 = LLVMPointerTypeInContext(e->cx, 3);
  e->vd = LLVMVoidTypeInContext(e->cx);
  char *ptx = NULL, *msg = NULL;
  LLVMTargetRef target = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMGetTargetFromTriple(NV_TRIPLE, &target, &msg)) {
    snprintf(err, n, "gpu: LLVM has no NVPTX target: %s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    goto done;
  }
  tm = LLVMCreateTargetMachine(target, NV_TRIPLE, arch, "", opt_level > 0 ? LLVMCodeGenLevelAggressive : LLVMCodeGenLevelNone,
                               LLVMRelocDefault, LLVMCodeModelDefault);
  e->tm = tm;
  if (!tm) {
    snprintf(err, n, "gpu: no NVPTX target machine for %s", arch);
    goto done;
  }
  LLVMSetTarget(e->m, NV_TRIPLE);
  {
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *dl = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(e->m, dl);
    LLVMDisposeMessage(dl);
    LLVMDisposeTargetData(td);
  }
  /* the plan's constants */
  e->consts = tl_xcalloc((size_t)bd->plan.nbufs + 1, sizeof *e->consts);
  for (int i = 0; i < bd->plan.nbufs; i++) {
    if (bd->plan.bufs[i].kind != BE_BUF_CONST) continue;
    const tl_tensor *t = bd->g->lits[bd->g->nodes[bd->plan.bufs[i].node].attrs.lit];
    size_t bytes = (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype);
    LLVMValueRef init = LLVMConstStringInContext2(e->cx, bytes ? (const char *)t->data : "", bytes ? bytes : 1, 1);
    char name[32];
    snprintf(name, sizeof name, "lit%d", i);
    LLVMValueRef gv = LLVMAddGlobalInAddressSpace(e->m, LLVMTypeOf(init), name, 1);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    LLVMSetAlignment(gv, 16);
    e->consts[i] = gv;
  }
  for (int i = 0; i < bd->nks; i++) lower_kernel(e, bd->ks[i]);
  if (LLVMVerifyModule(e->m, LLVMReturnStatusAction, &msg)) {
    snprintf(err, n, "gpu: internal error: invalid IR: %.400s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    goto done;
  }
  LLVMDisposeMessage(msg);
  msg = NULL;
  double t1 = tl_now_ms();
  st->lower_ms = t1 - t0;
  if (e->uses_math) {
    if (!libdevice) {
      snprintf(err, n, "gpu: internal error: math calls without libdevice");
      goto done;
    }
    LLVMModuleRef ld = ld_module(libdevice, e->cx, err, n);
    if (!ld) goto done;
    LLVMSetTarget(ld, NV_TRIPLE);
    LLVMSetDataLayout(ld, LLVMGetDataLayoutStr(e->m));
    if (LLVMLinkModules2(e->m, ld)) {
      snprintf(err, n, "gpu: linking libdevice failed");
      goto done;
    }
    /* libdevice asks __nvvm_reflect("__CUDA_FTZ"): no flush to zero */
    LLVMAddModuleFlag(e->m, LLVMModuleFlagBehaviorOverride, "nvvm-reflect-ftz", 16,
                      LLVMValueAsMetadata(ci(e, e->i32, 0)));
    for (LLVMValueRef f = LLVMGetFirstFunction(e->m); f; f = LLVMGetNextFunction(f))
      if (!LLVMIsDeclaration(f) && LLVMGetFunctionCallConv(f) != LLVMPTXKernelCallConv)
        LLVMSetLinkage(f, LLVMInternalLinkage);
    st->libdevice = 1;
  }
  double t2 = tl_now_ms();
  st->link_ms = t2 - t1;
  if (opt_level > 0) {
    char passes[64];
    snprintf(passes, sizeof passes, "globaldce,default<O%d>", opt_level > 3 ? 3 : opt_level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef le = LLVMRunPasses(e->m, passes, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (le) {
      char *s = LLVMGetErrorMessage(le);
      snprintf(err, n, "gpu: LLVM passes failed: %s", s);
      LLVMDisposeErrorMessage(s);
      goto done;
    }
  }
  double t3 = tl_now_ms();
  st->opt_ms = t3 - t2;
  const char *dump = getenv("TLALOC_GPU_DUMP");
  if (dump && *dump == '2') LLVMDumpModule(e->m);
  LLVMMemoryBufferRef out = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, e->m, LLVMAssemblyFile, &msg, &out)) {
    snprintf(err, n, "gpu: PTX emission failed: %.400s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    goto done;
  }
  size_t len = LLVMGetBufferSize(out);
  ptx = tl_try_malloc(len + 1);
  if (ptx) {
    memcpy(ptx, LLVMGetBufferStart(out), len);
    ptx[len] = 0;
  } else {
    snprintf(err, n, "gpu: out of memory for %zu bytes of PTX", len);
  }
  LLVMDisposeMemoryBuffer(out);
  st->emit_ms = tl_now_ms() - t3;
done:
  tl_cleanup_pop(cl);
  tl_free(e->consts);
  LLVMDisposeBuilder(e->b);
  LLVMDisposeModule(e->m);
  LLVMContextDispose(e->cx);
  if (tm) LLVMDisposeTargetMachine(tm);
  return ptx;
}
