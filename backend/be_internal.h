/* be_internal.h - private to backend/: the kernel plan shared by the JIT
 * driver (jit.c) and the AOT writer (aot.c), and the IR emitter (lower*.c).
 *
 * Generated code ABI (one module per program):
 *   struct frame { void **bufs; const int64_t *syms; int32_t err;
 *                  int32_t fresh; };
 *   int32_t ENTRY(struct frame *f, parfor *par, void *pool);
 *   typedef void parfor(void *pool, void (*k)(struct frame *, int64_t, int64_t),
 *                       struct frame *f, int64_t n);
 * bufs[i] points at buffer i of the plan (inputs, outputs, temporaries;
 * constants live in the object). syms[s] is the size of symbol s. fresh is
 * 1 when the outputs were just allocated (then no streaming stores:
 * lower_stream.c). ENTRY runs the kernels in order and returns 0 or an
 * error code (BE_ERR_*: (node << 4) | kind); par may be NULL (everything
 * single-threaded). */
#ifndef TL_BE_INTERNAL_H
#define TL_BE_INTERNAL_H

#include "backend/backend.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>

/* ROW: a reduction over a row computed inside a BE_K_ROWS kernel, held
 * per row in a register (no buffer) */
enum { BE_S_DEAD, BE_S_INLINE, BE_S_MAT, BE_S_ALIAS, BE_S_ROW };
/* UNUSED: a temporary whose kernel now writes over a dead operand's buffer
 * (the in-place pass); nothing reads or writes it. */
enum { BE_BUF_INPUT, BE_BUF_OUTPUT, BE_BUF_TEMP, BE_BUF_CONST, BE_BUF_UNUSED };
/* SCATTER: scatter_add's accumulation into its buffer (which an EW kernel
 * filled with operand 0 first); one thread, in the addend's element order */
/* CONTROL: a call, cond, loop or scan (be_ctl): the entry runs the
 * functions' own entries on frames of their own, in branches and loops */
/* ROWS: an elementwise kernel over rows of the last axis that computes the
 * row reductions it reads (rows[], state ROW) in passes over each row
 * first, so the row is read from cache by every pass after the first
 * (layer norm, RMS norm: plan.c "row kernels") */
enum { BE_K_EW, BE_K_RED, BE_K_SOFTMAX, BE_K_MATMUL, BE_K_TAKECHECK, BE_K_SCATTER, BE_K_CONTROL, BE_K_ROWS };

/* error codes: (node << 4) | kind. A function's error is reported as its
 * control node's, with the function's kind; MAXTRIP: a loop needed more
 * than its :max iterations. */
enum { BE_ERR_TAKE = 1, BE_ERR_POW = 2, BE_ERR_EMPTY = 3, BE_ERR_MAXTRIP = 4 };
/* A kernel's error code rc (non-zero) as both engines report it: the
 * node's op, its source position where it has one, and the interpreter's
 * words for the kind. Returns -1. */
int be_run_error(const tl_graph *g, int32_t rc, tl_error *err);

struct be_plan;

/* One function as a control kernel runs it. The function's plan is shared
 * by every kernel that runs it (the root plan's table); what differs per
 * site is where its buffers live: its inputs and outputs are the caller's
 * buffers (bound as the kernel runs), and each of its temporaries is a
 * temporary of the caller's own (temp[b]), sized by the caller's symbols
 * (symdim: the caller's dim each of the function's symbols is bound to by
 * the operands' types), so that the caller's arena holds them and nothing
 * is allocated while the kernel runs, however many iterations it takes. */
typedef struct be_site {
  int fnplan;      /* index in the root plan's table (be_fnplans) */
  int32_t *temp;   /* per buffer of the function's plan: the caller's buffer, or -1 */
  int64_t *symdim; /* per symbol of the function: the caller's tl dim */
} be_site;

typedef struct be_ctl {
  int nop;
  int32_t *opbuf;  /* the operands' buffers (an operand fused into other kernels gets one of
                      its own here: its node stays inline for them) */
  int nres;
  int32_t *res;    /* the run's results' buffers, in result order */
  int32_t *alt;    /* loop: a second buffer per state value; scan: per carry */
  int32_t pred[2]; /* loop: the scalar buffers of :cond's and :until's results */
  int nsite;
  be_site site[3]; /* in tl_control_fns's order */
} be_ctl;

/* The plans of the functions a program runs (each planned once, callees
 * before their callers), owned by the root plan. */
typedef struct be_fnplans {
  int n, cap;
  bool no_rows; /* no BE_K_ROWS kernels (the GPU's plans) */
  const tl_graph **g;
  struct be_plan **plan;
} be_fnplans;

typedef struct be_buf {
  int kind;
  int32_t index; /* input or output number */
  int32_t node;  /* the value it holds (after the in-place pass: its last writer's) */
  uint8_t dtype, rank;
  int64_t dims[TL_MAX_RANK]; /* tl dims: >= 0 concrete, < 0 symbol */
} be_buf;

typedef struct be_kern {
  int kind;
  int32_t node;  /* the node computed (EW: root expression) */
  int32_t out;   /* output buffer */
  int32_t place; /* EW into part of a buffer: the concat or slice_update node, else -1 */
  int part;      /* the operand it computes (slice_update: 1, the update) */
  int32_t opbuf[2]; /* matmul: operand buffers (contiguous, result dtype) */
  uint8_t trans[2]; /* matmul: operand k's buffer holds it with its last two dims swapped */
  uint8_t uniform[2]; /* matmul: every element of operand k is the same number (a fill seen
                         through shape ops): the product's rows (k = 0) or columns (k = 1)
                         are equal, and lower_matmul.c computes one and copies it */
  int32_t *reads; int nreads; /* buffers read (for liveness; a control kernel's also lists
                                 every buffer it writes) */
  be_ctl *ctl;                /* CONTROL: what it runs, on which buffers */
  int32_t *rows; int nrows;   /* ROWS: the row reductions, in node order */
  /* a one-pass group (plan_pass.c): ks[pass_lo..pass_hi] run over blocks of
   * rows, interleaved; pass_hi > pass_lo on each of its kernels, both 0
   * elsewhere. pass_part (on ks[pass_lo]): the buffer of the parts' sums */
  int32_t pass_lo, pass_hi, pass_part;
} be_kern;

/* A one-pass group runs as this many parts of rows (what threads share),
 * each over blocks of about BE_PASS_BLOCK_BYTES of the matrix (a block is
 * read from memory by the first product and from cache by the second). */
enum { BE_PASS_PARTS = 4, BE_PASS_BLOCK_BYTES = 1 << 17 };
/* each part's row of the partial buffer starts on a line of its own */
enum { BE_PASS_LINE = 64 };

/* The planner's rules, read from .rw files (docs/rules.md, "Fusion and
 * in-place"): the fuse declarations of the fusion file, and per op the
 * operands that the in-place declarations let a kernel write over.
 * Immutable once loaded, so one set is shared by every compile. */
typedef struct be_fuse {
  uint8_t producer[TL_OP_COUNT + 1], consumer[TL_OP_COUNT + 1]; /* [TL_OP_COUNT]: output */
  bool single_use, cheap, light;
  int64_t max_ops; /* 0: no limit */
} be_fuse;

/* The most ops a fused expression may have (counted as fuse's max-ops
 * counts them: as a tree, loads 0), whatever the rules allow: a chain of
 * 10^6 elementwise ops with single uses is legal, and fusing it whole gave
 * one kernel whose expression every walk over it (planning, lowering,
 * the cost model) recursed through, level by level, and whose LLVM time
 * grew faster than its size (10^4 adds 1.1 s, 4x10^4 11 s in LLVM's
 * passes). Cut at this bound, the walks recurse at most this deep (a
 * kernel's root adds one level) and a chain compiles in linear time
 * (kernels of ~500 adds). No shipped example or test fuses more than 16
 * ops, so this changes none of them. */
#define BE_FUSE_MAX_OPS 1024

typedef struct be_rules {
  be_fuse *fuse;
  int nfuse;
  uint32_t destroys[TL_OP_COUNT]; /* bit k: operand k may be overwritten */
  /* softmax/log_softmax (:rowwise rules): bit k, the row kernel may write
   * over operand k (it reads each element before it writes it) */
  uint32_t destroys_rows[TL_OP_COUNT];
  int ninplace_rules;
} be_rules;

/* Loads the rules the options name (NULL: the default file in the rules
 * folder, "": none). Returns the rules (the process-wide default set, or
 * *own filled in) or NULL with the files' diagnostics in err. */
const be_rules *be_rules_get(const be_options *o, be_rules *own, char *err, size_t n);
void be_rules_free(be_rules *r);

typedef struct be_plan {
  const tl_graph *g;
  uint8_t *state;   /* per node */
  int32_t *buf_of;  /* per node: buffer for MAT/ALIAS */
  int32_t *uses;
  be_buf *bufs; int nbufs, capbufs;
  be_kern *ks; int nks, capks;
  int32_t *out_buf; /* per graph output */
  int ninplace;     /* kernels that write over a dead operand's buffer */
  be_fnplans *fns;  /* the functions' plans: the root's table (owned when root) */
  bool root;
} be_plan;

/* Forms the kernels of g under rules (fusion), then applies the in-place
 * rules to the schedule (inputs may be overwritten when destroy_inputs).
 * On failure p is still safe to pass to be_plan_free. be_plan_build_for
 * without BE_K_ROWS kernels when row_kernels is false (the GPU backend's
 * plans); be_plan_build_with with them. */
int be_plan_build_for(be_plan *p, const tl_graph *g, const be_rules *rules, int destroy_inputs, bool row_kernels,
                      char *err, size_t n);
int be_plan_build_with(be_plan *p, const tl_graph *g, const be_rules *rules, int destroy_inputs,
                       char *err, size_t n);
/* Adds a buffer of type t to the plan; its index. */
int be_plan_add_buf(be_plan *p, int kind, int32_t node, int index, const tl_type *t);
/* Forms the one-pass groups of a planned program (plan_pass.c). */
void be_plan_passes(be_plan *p);
/* The same under the default rule files (be_options_default()). */
int be_plan_build(be_plan *p, const tl_graph *g, char *err, size_t n);
/* A hash of everything the generated code depends on in the plan, and of
 * BE_LOWER_VERSION: the compile cache's key holds it, so raising the
 * version when lower*.c emit different code for the same plan keeps stale
 * objects from being linked. */
#define BE_LOWER_VERSION 17 /* 17: softmax over short rows in vector registers (lower_short.c); 16: one-pass groups over a matrix (plan_pass.c, lower_pass.c); 15: rows of a known length up to 16 emitted unrolled (UNROLL_ROW); 14: small one-pass kernels' loops without carried values neither interleaved nor unrolled; 13: small one-pass kernels get fast codegen (BE_FAST_CG_ELEMS); 12: dim, iota, bitwise_xor, the split threshold an option; 11: row kernels (BE_K_ROWS); 10: control kernels (call, cond, loop, scan); 9: slice_update, scatter_add, relu; 2: merged loops, column mode, short rows, BLAS trans/gemv/fold; 3: streaming prefetch; 4: log1p in log_softmax/logsumexp; 5: softmax prefetches the next row; 6: streaming stores, the frame's fresh flag; 7: softmax keeps its exps; 8: uniform matmul operands */
uint64_t be_plan_hash(const be_plan *p);
void be_plan_free(be_plan *p);

/* The loops of an elementwise kernel (lower.c): its output dims in groups
 * of adjacent dims that one loop covers, outermost first. Loop g covers
 * dims [first[g], last[g]]; its variable is the index of dim carry[g] and
 * the group's other dims have index 0 (see lower.c, "loop structure").
 * A rank-0 kernel has no loop (n = 0). */
typedef struct be_loops {
  int n;
  int8_t first[TL_MAX_RANK], last[TL_MAX_RANK], carry[TL_MAX_RANK];
} be_loops;
void be_ew_loops(const be_plan *p, const be_kern *k, be_loops *l);

/* Threads: a kernel is split across the program's threads when its loop
 * covers at least BE_SPLIT_ELEMS elements (*work below) and its outer loop
 * at least 2 iterations; below that, handing half to the worker costs more
 * than it saves. */
enum { BE_SPLIT_ELEMS = 1 << 16 };

/* A one-pass kernel (not a row kernel) over fewer than this many elements,
 * all known, is compiled with fast codegen (FastISel, no machine-level
 * optimisation: LLVM's optnone on the function after the IR passes ran):
 * on the 2-vCPU Zen 5 VM that took the gradient programs' LLVM compile
 * 30% down (bench/grad: MLP 127 -> 85 ms) and cost an elementwise chain
 * ~10% of its run time, which below 2^20 elements is under ~0.1 ms a
 * call. Larger kernels, symbolic sizes and row kernels (whose
 * accumulators need the register allocator) keep the full codegen. */
enum { BE_FAST_CG_ELEMS = 1 << 20 };

/* The threads a program runs on when be_options.threads is 0:
 * min(2, online CPUs). */
int be_default_threads(void);

/* A matmul node's operands as matrices with batch dims, numpy's way: a
 * vector a is [1 K], a vector b [K 1]; the batch dims (all but the last
 * two) broadcast. ad/bd hold the operands' dims so promoted (rank ar/br:
 * M = ad[ar-2], K = ad[ar-1], N = bd[br-1]); the result has nbr batch
 * dims bdims; batch dim i of the result reads A's dim abat[i] (-1: A
 * has no such dim or a 1 broadcast there, so its stride is 0), B's
 * bbat[i]. Both engines lay out their batch loops and strides from it. */
typedef struct {
  int64_t ad[TL_MAX_RANK + 1], bd[TL_MAX_RANK + 1], bdims[TL_MAX_RANK];
  int ar, br, nbr;
  int abat[TL_MAX_RANK], bbat[TL_MAX_RANK];
} be_matmul_shape;
void be_matmul_shape_of(const tl_graph *g, const tl_node *n, be_matmul_shape *m);

/* Which loop of kernel k the entry may split: the dims [*lo, *hi] of *t
 * make up its outer loop (what the threads share), all dims of *t the
 * kernel's work. false for kernels that are never split (matmul, index
 * checks, rank 0, reductions to a scalar). */
bool be_kern_split_dims(const be_plan *p, const be_kern *k, const tl_type **t, int *lo, int *hi);

/* The emitter's vector-math code for be_options' vector_math and own_math:
 * 0 scalar libm; else bit 0 (libmvec) and, above it, the BE_OWN_* bits of
 * the f32 functions that are tlaloc's own inline kernels (vector_math 2:
 * both). */
static inline int be_vm_code(int vector_math, unsigned own_math) {
  if (vector_math <= 0) return 0;
  return 1 | (int)((vector_math >= 2 ? (unsigned)(BE_OWN_EXP32 | BE_OWN_TANH32) : own_math) << 1);
}

/* Emits the whole program as function `entry` into a fresh module of ctx
 * (with the TM's triple and data layout); vector_math as be_vm_code gives
 * it; kernels split across threads from split_elems elements of work
 * (be_split_elems). NULL + message on failure. */
LLVMModuleRef be_emit_module(const be_plan *p, LLVMContextRef ctx, LLVMTargetMachineRef tm,
                             const char *name, const char *entry, int vector_math, long split_elems,
                             tl_error *err);

/* One-time target/LLVM initialisation (pthread_once) and a host TM. */
void be_init(void);
LLVMTargetMachineRef be_host_tm(int opt_level);
/* cg: codegen level, 0 None (the JIT's), 1 Less, 2 Default (be_host_tm) */
LLVMTargetMachineRef be_host_tm_cg(int opt_level, int cg);
/* A target machine for the x86-64 micro-architecture level cpu ("x86-64",
 * "x86-64-v2", "-v3", "-v4") with that level's features spelled out (so
 * that the lowering sees them, as it sees the host's), or the host's for
 * NULL or "native"; NULL for another name. */
LLVMTargetMachineRef be_level_tm(const char *cpu, int cg);
int be_optimise(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, tl_error *err);

/* The program that probes op's vector math in dtype f64 ? f64 : f32: the
 * op on [n] written to an intermediate that is read twice (an output is
 * written through streaming-store lines, which vectorised anyway), where
 * LLVM 19 once left f64 libmvec calls scalar (the "f64 cliff",
 * docs/backend.md). false, text untouched, for an op the backend does not
 * lower to vector math. backend-diff checks its optimised module for a
 * libmvec call; bench-backend times it whole against its kernels. */
static inline bool be_vmath_probe(int op, int f64, char *text, size_t n) {
  const tl_op_info *oi = &tl_ops[op];
  if (!oi->vmath || !oi->math || oi->kind != TL_KIND_ELEMWISE || oi->arity < 1 || oi->arity > 2) return false;
  snprintf(text, n, "(graph g (in x %s [n]) (let s (%s x%s)) (out y (add (neg s) (mul s 2))))", f64 ? "f64" : "f32",
           oi->name, oi->arity == 2 ? " (add x 1)" : "");
  return true;
}

#endif
