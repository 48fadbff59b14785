/* backend.h - tlaloc's CPU backend: a tl_graph lowered to LLVM IR, optimised
 * for the host CPU and run through ORC LLJIT (or written as an object file).
 *
 *   be_options o = be_options_default();
 *   be_program *p = be_compile(g, &o, err, sizeof err);   // NULL + message
 *   tl_tensor *outs[NOUT];
 *   if (be_run(p, inputs, syms, outs, err, sizeof err)) ...  // as tl_interp_run
 *   be_program_free(p);
 *
 * Kernels: a maximal elementwise subgraph whose intermediates have a single
 * consumer is one loop nest over broadcast shapes (the fuse rules of
 * rules/fusion.rw decide this; rules/inplace.rw which kernels write over a
 * dead operand's buffer); shape ops other than
 * reshape and concat are index maps inside those loops (no copy); reductions
 * and softmax/log_softmax are row kernels with their producer fused in;
 * f32/f64 matmul calls cblas_?gemm (OpenBLAS) from generated code.
 * Compiled objects are cached on disk (TLALOC_CACHE_DIR, else
 * $XDG_CACHE_HOME/tlaloc, else ~/.cache/tlaloc), one KEY.tlc file each:
 * a header naming the program, the object's size and hash, checked on load
 * (a bad entry is recompiled and replaced).
 *
 * Thread safety: compile from any thread; one program must not be run by
 * two threads at once (it owns its buffers and its worker thread). */
#ifndef TL_BACKEND_H
#define TL_BACKEND_H

#include "ir/ir.h"
#include "tensor/tensor.h"

/* be_options.own_math bits (the same values as cost/profile.h's TL_OWN_*) */
enum { BE_OWN_EXP32 = 1, BE_OWN_TANH32 = 2 };

typedef struct be_options {
  int opt_level;   /* 1 (default): the kernels' own pass list; 2 or 3: LLVM's
                      default<On>; 0: no IR passes */
  int threads;     /* threads for large loops; 0 = min(2, online CPUs) */
  int vector_math; /* 1: call glibc libmvec vector variants (default);
                      2: as 1, but f32 exp and tanh are tlaloc's own inline
                      kernels (<= 4 ulp, docs/backend.md); 0: scalar libm */
  unsigned own_math; /* with vector_math 1: BE_OWN_EXP32 / BE_OWN_TANH32 make that f32
                        function tlaloc's own kernel (what `tlaloc calibrate` measured
                        faster on this machine; the engines pass the profile's choice) */
  int use_cache;   /* 1: read and write the on-disk compile cache (default) */
  const char *cache_dir; /* NULL: the environment decides (see above) */
  /* The planner's rule files (docs/rules.md, "Fusion and in-place"): NULL
   * for fusion.rw / inplace.rw of the default rules folder, "" for none (no
   * fusion: every intermediate gets a buffer; no in-place kernels). */
  const char *fusion_rules;
  const char *inplace_rules;
  int destroy_inputs; /* 1: an in-place kernel may overwrite a dead graph input
                         (the caller's tensor; inputs must not share memory) */
  int codegen; /* machine-code optimisation of the JIT: 0 fast instruction selection
                  and register allocation, 1 (default) LLVM's "less", 2 its default
                  (what AOT objects get); see docs/backend.md "Codegen level" */
  long split_elems; /* a kernel is split across the threads from this many elements of
                       work on (0: BE_SPLIT_ELEMS); `tlaloc calibrate` measures where
                       splitting starts to pay, and the engines pass the profile's */
} be_options;

be_options be_options_default(void);
int be_codegen_level(const be_options *o); /* codegen clamped to 0..2 */
long be_split_elems(const be_options *o);   /* split_elems, or BE_SPLIT_ELEMS for 0 */

/* Times of the last compile (ms). cache_hit: the object came from disk and
 * no LLVM optimisation or codegen ran. cache_bad: the cache held an entry
 * for this program that was unsound (truncated, corrupted, another
 * program's object); it was discarded and replaced by a fresh compile. */
typedef struct be_stats {
  double plan_ms;    /* kernel formation and buffer planning */
  double lower_ms;   /* LLVM IR construction and verification */
  double opt_ms;     /* LLVMRunPasses */
  double codegen_ms; /* object emission */
  double cache_ms;   /* key hashing and cache read/write */
  double jit_ms;     /* LLJIT creation, object linking, symbol lookup */
  double total_ms;
  int cache_hit;
  int cache_bad;
  int nkernels;
  int par_modules;    /* 2: compiled in two halves on two threads (jit.c, "parallel codegen") */
  int ninplace;       /* kernels writing over a dead operand's buffer */
  int npasses;        /* one-pass groups: a product and its transpose's over one read of a matrix */
  size_t arena_bytes; /* intermediates' arena at the last run's sizes */
} be_stats;

typedef struct be_program be_program;

/* Compiles g; the program keeps a pointer to g, so g must outlive it. A
 * program runs on one thread at a time. NULL on failure, with err's
 * status TL_BAD_INPUT for an unsupported op/dtype ("backend: op X on
 * dtype Y is not supported"), TL_BACKEND_FAILED for an LLVM failure,
 * TL_INTERNAL for IR that does not verify. A bad compile-cache entry is
 * never a failure: it is discarded and the program compiled afresh. */
be_program *be_compile(const tl_graph *g, const be_options *opt, tl_error *err);

/* Same contract as tl_interp_run: inputs[i] for g->inputs[i]; sym_values
 * (g->nsyms entries, -1 = bind from inputs; may be NULL); outputs[i]
 * receives a new tensor the caller frees. -1 with a message on a run-time
 * error (index out of range, ...), leaving no output allocated. */
int be_run(be_program *p, tl_tensor *const *inputs, const int64_t *sym_values,
           tl_tensor **outputs, tl_error *err);

/* be_run into the caller's memory: outputs[i] describes output i's buffer
 * (dtype, rank and dims must be the output's for these inputs, numel set,
 * data non-NULL unless it has no elements). Nothing is allocated once the
 * temporaries are planned for these symbol sizes (the per-call path of the
 * C API). Output buffers must not overlap the inputs or each other (kernels
 * read inputs after writing outputs): refused with a message. -1 with a
 * message on any error; the outputs' contents are then unspecified. */
int be_run_into(be_program *p, tl_tensor *const *inputs, const int64_t *sym_values,
                tl_tensor *const *outputs, tl_error *err);

const be_stats *be_program_stats(const be_program *p);
const tl_graph *be_program_graph(const be_program *p);
void be_program_free(be_program *p);

/* The host target as the cache key sees it ("triple cpu features"). */
const char *be_host_desc(void);

/* Ahead-of-time compilation (what `tlaloc compile` runs). */
typedef struct be_aot_params {
  const char *name;        /* prefix of the C names (NAME, NAME_entry, ...);
                              NULL: the graph's name, else "graph"; any
                              character other than [A-Za-z0-9_] becomes '_' */
  int opt_level;           /* 0..3, as -O0..-O3 (0: no IR passes) */
  const char *object_path; /* the object file to write */
  const char *header_path; /* the C header to write; NULL: none */
  const char *cpu;         /* the CPUs the object runs on: "x86-64" (SSE2),
                              "x86-64-v2" (SSE4.2), "x86-64-v3" (AVX2, FMA),
                              "x86-64-v4" (AVX-512), or NULL / "native": this
                              host's CPU and features (the default) */
} be_aot_params;

/* Writes g's kernels as an object file and, when asked, the header that
 * declares the C ABI and carries the glue (see aot.c), so that a C program
 * links the object with -lm -lmvec -lopenblas only. 0, or -1 with a message
 * (unsupported op/dtype, LLVM failure, a file that cannot be written). */
int be_compile_aot(const tl_graph *g, be_aot_params p, tl_error *err);

#endif
