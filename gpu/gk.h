/* gk.h - private to gpu/: a GPU kernel described once, as a small
 * structured program, and lowered twice: to LLVM IR for NVPTX (gk_nvptx.c)
 * and to the host emulator (gk_sim.c), which runs every thread of every
 * block. gk_build.c writes the descriptions from the CPU backend's kernel
 * plan.
 *
 * A kernel is a list of instructions in program order. An instruction that
 * yields a value is named by its index (an SSA id); statements (stores,
 * SET, loops, ifs, barriers) yield none. Control flow is structured:
 *
 *   LOOP a=var b=lo c=hi d=step   for (var = lo; var < hi; var += step)
 *   IF a=cond                     if (cond)
 *   END                           closes the innermost LOOP or IF
 *
 * so the emulator can run all threads of a block through a statement
 * before the next (barriers are then honoured by construction, and checked
 * to be reached by the whole block), and the NVPTX lowering emits plain
 * loops. A value defined inside a LOOP or IF is used inside it only (the
 * builder asserts this); mutable state lives in variables (GET/SET), which
 * the NVPTX lowering keeps in allocas that LLVM promotes to registers.
 *
 * Index arithmetic is i64; bool values are i1 in registers and one byte
 * in memory. Every value op has the semantics of the LLVM instruction of
 * the same name; the emulator implements exactly those (and reports what
 * would be poison or undefined behaviour in LLVM as an error). */
#ifndef TL_GPU_GK_H
#define TL_GPU_GK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gk_ty { GK_VOID, GK_I1, GK_I32, GK_I64, GK_F32, GK_F64 } gk_ty;

typedef enum gk_op {
  /* values */
  GK_CONST,   /* k.i (ints, i1) or k.f (floats) */
  GK_SREG,    /* aux gk_sreg: the thread's coordinates, i64 */
  GK_SYM,     /* a: the size of graph symbol a (a kernel parameter), i64 */
  GK_BIN,     /* aux gk_bin: a, b of one type */
  GK_FNEG,    /* -a */
  GK_ICMP,    /* aux gk_icmp: a, b -> i1 */
  GK_FCMP,    /* aux gk_fcmp (LLVM's ordered/unordered predicates): a, b -> i1 */
  GK_SELECT,  /* a (i1) ? b : c */
  GK_CONV,    /* aux gk_conv: a to ty */
  GK_INTR,    /* aux gk_intr: a [, b [, c]] of type ty */
  GK_MATH,    /* aux gk_math: a [, b] of type ty (libdevice's __nv_*; the host's libm) */
  GK_LOAD,    /* a: plan buffer, b: element index, aux: tl dtype, c: alignment in bytes */
  GK_SHLOAD,  /* a: shared array, b: index */
  GK_SHFL,    /* a: value, k.i: lane mask; the value of lane (lane ^ k.i) of the warp */
  GK_GET,     /* a: variable */
  /* statements */
  GK_STORE,   /* a: plan buffer, b: element index, c: value, aux: tl dtype */
  GK_SHSTORE, /* a: shared array, b: index, c: value */
  GK_SET,     /* a: variable, b: value */
  GK_LOOP,    /* a: variable, b: lo, c: hi, d: step (> 0) */
  GK_IF,      /* a: condition */
  GK_END,
  GK_BARRIER, /* every thread of the block, in uniform control flow */
  GK_ERR,     /* k.i: the program's error word becomes k.i if it is 0 (atomic) */
  GK_OP_COUNT
} gk_op;

typedef enum gk_sreg { GK_TID, GK_NTID, GK_CTAID, GK_NCTAID } gk_sreg;

typedef enum gk_bin {
  GK_ADD, GK_SUB, GK_MUL, GK_SDIV, GK_SREM, GK_AND, GK_OR, GK_XOR, GK_SHL, GK_ASHR, GK_LSHR,
  GK_FADD, GK_FSUB, GK_FMUL, GK_FDIV
} gk_bin;

typedef enum gk_icmp { GK_IEQ, GK_INE, GK_ISLT, GK_ISLE, GK_ISGT, GK_ISGE } gk_icmp;

/* LLVM's real predicates: O* false when either operand is NaN, U* true */
typedef enum gk_fcmp { GK_FOEQ, GK_FONE, GK_FOLT, GK_FOLE, GK_FOGT, GK_FOGE, GK_FORD, GK_FUNO, GK_FUNE } gk_fcmp;

typedef enum gk_conv {
  GK_SEXT, GK_ZEXT, GK_TRUNC, GK_FPEXT, GK_FPTRUNC, GK_SITOFP, GK_UITOFP,
  GK_FPTOSI, /* the operand must be in range (the builder selects a safe value first) */
  GK_BITCAST /* f32 <-> i32, f64 <-> i64 */
} gk_conv;

typedef enum gk_intr {
  GK_FABS, GK_SQRT, GK_FLOOR, GK_CEIL, GK_COPYSIGN, GK_MAXNUM, GK_MINNUM,
  GK_MAXIMUM, GK_MINIMUM, /* NaN-propagating */
  GK_FMA
} gk_intr;

/* The math functions a kernel may call: libdevice's __nv_NAME(f). */
typedef enum gk_math {
  GK_EXP, GK_LOG, GK_LOG1P, GK_EXPM1, GK_SIN, GK_COS, GK_TAN, GK_TANH, GK_ERF, GK_ERFC,
  GK_POW, GK_FMOD, GK_ASIN, GK_ACOS, GK_ATAN, GK_SINH, GK_COSH, GK_ASINH, GK_ACOSH, GK_ATANH,
  GK_CBRT, GK_ATAN2, GK_HYPOT, GK_MATH_COUNT
} gk_math;
extern const char *const gk_math_names[GK_MATH_COUNT]; /* "exp", ..., libm's names */
int gk_math_lookup(const char *libm_name);             /* -1 when not one of them */

typedef struct gk_ins {
  uint8_t op, ty, aux, pad_;
  int32_t scope; /* the enclosing LOOP/IF instruction, -1 at the top */
  int32_t a, b, c, d;
  union { int64_t i; double f; } k;
} gk_ins;

/* How a kernel is launched: blocks of `threads` threads, enough of them
 * for ceil(work / per_block) blocks (at most the device's limit; the
 * kernels loop over what the grid does not cover), where work is the
 * product over i of ceil(work[i] / wdiv[i]) (work[i] a tl dim: >= 0
 * concrete, < 0 a graph symbol; wdiv 0 counts as 1). No launch when work
 * is 0. */
typedef struct gk_launch {
  int threads;
  int nwork;
  int64_t work[16];
  int32_t wdiv[16];
  int64_t per_block;
} gk_launch;

typedef struct gk_kernel {
  char name[32];
  int plan_kernel; /* index in the plan (be_plan.ks) */
  /* 0: the plan kernel's own; of a split reduction (gk_rows.c), 1 the
   * partial results into plan buffer scratch, 2 the rows from them */
  int stage;
  int32_t scratch;
  gk_ins *ins;
  int32_t nins, capins;
  uint8_t *vars; /* gk_ty of each variable */
  int32_t nvars, capvars;
  uint8_t shm_ty[8];
  int32_t shm_n[8];
  int nshm;
  /* parameters: the error word, then these plan buffers, then these symbols */
  int32_t *bufs;
  int nbufs, capbufs;
  uint8_t *buf_written; /* per parameter buffer: the kernel stores to it */
  int32_t *syms;
  int nsyms, capsyms;
  gk_launch launch;
  bool uses_shuffles, uses_barriers;
  /* builder state */
  int32_t *open; /* stack of open LOOP/IF instructions */
  int nopen, capopen;
  uint8_t *closed; /* per instruction: a LOOP/IF whose END has been written */
  int32_t nowrite;  /* loads of this plan buffer are not merged (the kernel writes it); -1 */
  int32_t *memo;    /* hash table of value instructions for merging equal ones */
  uint32_t memocap, memon;
  /* a load or store at index align_base (-1: none) starts a run of
   * align_vec elements whose first is aligned to the run's size (at most
   * 16 bytes): every buffer starts 256-byte aligned and align_base is a
   * multiple of align_vec */
  int32_t align_base;
  int align_vec;
  const uint8_t *is_const; /* per plan buffer: a constant of the module, not a parameter */
} gk_kernel;

gk_kernel *gk_new(const char *name, int threads);
void gk_free(gk_kernel *k);

/* ---- building (gk.c) ---------------------------------------------------
 * Value builders merge an instruction equal to one already visible in the
 * current scope (op, type, operands, constant) and fold integer constants
 * and identities (x + 0, x * 1, x * 0); floats are never folded. */
gk_ty gk_type(const gk_kernel *k, int32_t v);
int32_t gk_ci(gk_kernel *k, gk_ty ty, int64_t v); /* integer or i1 constant */
int32_t gk_cf(gk_kernel *k, gk_ty ty, double v);  /* float constant (rounded to ty) */
int32_t gk_sreg_v(gk_kernel *k, gk_sreg r);
int32_t gk_sym(gk_kernel *k, int sym);
int32_t gk_bin_v(gk_kernel *k, gk_bin op, int32_t a, int32_t b);
int32_t gk_fneg(gk_kernel *k, int32_t a);
int32_t gk_icmp_v(gk_kernel *k, gk_icmp p, int32_t a, int32_t b);
int32_t gk_fcmp_v(gk_kernel *k, gk_fcmp p, int32_t a, int32_t b);
int32_t gk_select(gk_kernel *k, int32_t c, int32_t a, int32_t b);
int32_t gk_conv_v(gk_kernel *k, gk_conv kind, int32_t a, gk_ty to);
int32_t gk_intr_v(gk_kernel *k, gk_intr f, int32_t a, int32_t b, int32_t c);
int32_t gk_math_v(gk_kernel *k, gk_math f, int32_t a, int32_t b);
int32_t gk_load(gk_kernel *k, int32_t buf, int dtype, int32_t idx);
void gk_store(gk_kernel *k, int32_t buf, int dtype, int32_t idx, int32_t v);
int32_t gk_shm(gk_kernel *k, gk_ty ty, int32_t n);
int32_t gk_shload(gk_kernel *k, int32_t arr, int32_t idx);
void gk_shstore(gk_kernel *k, int32_t arr, int32_t idx, int32_t v);
int32_t gk_shfl_xor(gk_kernel *k, int32_t v, int mask);
int32_t gk_var(gk_kernel *k, gk_ty ty);
int32_t gk_get(gk_kernel *k, int32_t var);
void gk_set(gk_kernel *k, int32_t var, int32_t v);
void gk_loop(gk_kernel *k, int32_t var, int32_t lo, int32_t hi, int32_t step);
void gk_if(gk_kernel *k, int32_t cond);
void gk_end(gk_kernel *k);
void gk_barrier(gk_kernel *k);
void gk_err(gk_kernel *k, int64_t code);

/* Shorthands for i64 index arithmetic. */
static inline int32_t gk_add(gk_kernel *k, int32_t a, int32_t b) { return gk_bin_v(k, GK_ADD, a, b); }
static inline int32_t gk_mul(gk_kernel *k, int32_t a, int32_t b) { return gk_bin_v(k, GK_MUL, a, b); }
static inline int32_t gk_i64(gk_kernel *k, int64_t v) { return gk_ci(k, GK_I64, v); }

/* Memory type of a tl dtype's elements in registers. */
gk_ty gk_ty_of_dtype(int dtype);
size_t gk_ty_size(gk_ty ty);

/* The kernel as text, one instruction a line (for TLALOC_GPU_DUMP and
 * error messages); the caller frees it. */
char *gk_print(const gk_kernel *k);

/* Checks the structural invariants (balanced LOOP/IF/END, operands defined
 * before use and visible, types of operands); 0 or -1 with a message. */
int gk_verify(const gk_kernel *k, char *err, size_t n);

#endif
