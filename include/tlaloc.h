/* tlaloc.h - the public C API of tlaloc, a tensor-graph optimizer and
 * compiler. Frontends hand it a graph as .tg text; tlaloc type-checks it and
 * runs it with the reference interpreter (tlaloc_run), optimises it
 * (tlaloc_optimize) or compiles it to native code (tlaloc_compile,
 * tlaloc_program_run).
 *
 *   tlaloc_graph *g;
 *   char *errors;
 *   if (tlaloc_parse(text, strlen(text), "model.tg", &g, &errors) != TLALOC_OK) {
 *     fputs(errors, stderr);          // file:line:col: error: ...
 *     tlaloc_free(errors);
 *     return 2;
 *   }
 *   float x[20] = {...};
 *   tlaloc_tensor in = {TLALOC_F32, 2, {2, 10}, x};
 *   tlaloc_tensor out = {0};          // data NULL: tlaloc allocates it
 *   if (tlaloc_run(g, &in, 1, &out, 1, &errors) == TLALOC_OK) {
 *     ... out.data holds the result; tlaloc_free(out.data);
 *   }
 *   tlaloc_graph_free(g);
 *
 * Contracts: every function reports failure by status; error text is
 * returned in a heap string the caller releases with tlaloc_free. Nothing is
 * global: graphs may be used from several threads (one thread per graph),
 * and so may compiled programs (one thread per program). */
#ifndef TLALOC_H
#define TLALOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TLALOC_MAX_RANK 8

typedef enum tlaloc_status {
  TLALOC_OK = 0,
  TLALOC_CHECK_FAILED = 1, /* a check said no (prove, check-rules) */
  TLALOC_BAD_INPUT = 2,    /* malformed graph, wrong shapes or dtypes */
  TLALOC_OUT_OF_MEMORY = 3, /* an allocation failed: the call freed what it
                             * had allocated and changed nothing else */
  TLALOC_INTERNAL_ERROR = 4, /* an invariant of tlaloc failed: a bug to report,
                              * never the input's fault */
  TLALOC_BACKEND_FAILED = 5  /* LLVM, the GPU driver or the ILP solver failed or is missing
                              * (no target machine, codegen, linking, a driver
                              * call, no GPU) */
} tlaloc_status;

typedef enum tlaloc_dtype {
  TLALOC_BOOL, TLALOC_I32, TLALOC_I64, TLALOC_F32, TLALOC_F64
} tlaloc_dtype;

/* A dense C-order tensor. The caller owns `data` of inputs. An output whose
 * `data` is NULL on entry gets data allocated by tlaloc (release with
 * tlaloc_free); one whose `data` is set is written in place, and its
 * dtype, rank and dims must be the output's (see tlaloc_output_shapes). */
typedef struct tlaloc_tensor {
  int32_t dtype; /* tlaloc_dtype */
  int32_t rank;
  int64_t dims[TLALOC_MAX_RANK];
  void *data;
} tlaloc_tensor;

typedef struct tl_graph tlaloc_graph;

/* Parses .tg text (file names messages). On failure *errors holds every
 * diagnostic found. */
tlaloc_status tlaloc_parse(const char *src, size_t len, const char *file,
                           tlaloc_graph **out, char **errors);
void tlaloc_graph_free(tlaloc_graph *g);

/* Canonical .tg text of g (tlaloc_free it). */
char *tlaloc_print(const tlaloc_graph *g);

/* Inputs and outputs, in declaration order. The type is written as .tg
 * does ("f32[n 10]"); strings stay valid while g lives, except type strings
 * (tlaloc_free them). */
int tlaloc_num_inputs(const tlaloc_graph *g);
int tlaloc_num_outputs(const tlaloc_graph *g);
const char *tlaloc_input_name(const tlaloc_graph *g, int i);
const char *tlaloc_output_name(const tlaloc_graph *g, int i);
char *tlaloc_input_type(const tlaloc_graph *g, int i);
char *tlaloc_output_type(const tlaloc_graph *g, int i);

/* Runs g on inputs (one per graph input, in order; dtypes and ranks must
 * match, symbolic dims are bound from them). Fills outputs[0..nout). */
tlaloc_status tlaloc_run(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                         tlaloc_tensor *outputs, int nout, char **errors);

/* The dtype, rank and dims each output will have for these inputs (data is
 * left NULL); nothing is computed. A dim that a loop's per-trip results
 * decide (`:stack`, its length the `:trips` symbol: docs/design.md) is -1:
 * known only when the graph has run, so pass no buffer for that output. */
tlaloc_status tlaloc_output_shapes(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                                   tlaloc_tensor *outputs, int nout, char **errors);

/* Optimises g: saturates an e-graph with the rule files (.rw files or
 * folders; NULL/0 = the default rules folder) within limits
 * ("iters=30,nodes=100000,time=10,mem=512"; NULL = defaults: 30, 100000 +
 * 10 per e-node of the program, 10 s, 2 GiB; nodes= given is exact) and extracts
 * the cheapest equivalent graph into *out (free with tlaloc_graph_free).
 * *stats (if not NULL) gets a JSON object: stop reason, iterations,
 * e-nodes, e-classes, saturation milliseconds. Reaching a limit is not an
 * error. */
tlaloc_status tlaloc_optimize(const tlaloc_graph *g, const char *const *rule_paths, int nrules,
                              const char *limits, tlaloc_graph **out, char **stats, char **errors);

/* tlaloc_optimize with the extraction spelled out. Zeroed fields take the
 * defaults. cost: an expression over cost properties with numbers,
 * + - * / and parentheses ("time", "memory", "time + 1e-9*memory"; NULL:
 * "time + accuracy"); extract: "tree", "dag" (default) or "exact";
 * extract_seconds: exact's time limit (0: 10 s); plugins: cost plugins
 * (.so files, see docs/cost.md). *stats also gets the extraction: "cost",
 * "extract", "extract_ms", "objective", "optimal", the program's cost
 * properties under "program" ({"time": ..., "memory": ...}) and
 * "peak_bytes_program" (live bytes at peak, tl_cost_peak_bytes).
 * profile: a machine profile file (as `tlaloc calibrate` writes, read over
 * the defaults) for the cost model; NULL: the stored one (TLALOC_PROFILE,
 * else the cache folder's), else the defaults. A missing or malformed
 * file given here is an error. */
typedef struct tlaloc_opt_options {
  const char *const *rule_paths; /* NULL/0: the default rules folder */
  int nrules;
  const char *limits;            /* NULL: defaults */
  const char *cost;
  const char *extract;
  double extract_seconds;
  const char *const *plugins;
  int nplugins;
  const char *profile;           /* NULL: the stored profile or the defaults */
} tlaloc_opt_options;

tlaloc_status tlaloc_optimize_opts(const tlaloc_graph *g, const tlaloc_opt_options *opts,
                                   tlaloc_graph **out, char **stats, char **errors);

/* TLALOC_OK when saturation proves the outputs of a and b equal (paired
 * by name), TLALOC_CHECK_FAILED when it does not; *explanation (if not
 * NULL) gets the report with the chains of rewrites. */
tlaloc_status tlaloc_prove(const tlaloc_graph *a, const tlaloc_graph *b, const char *const *rule_paths,
                           int nrules, const char *limits, char **explanation, char **errors);

/* ---- differentiation (docs/grad.md) ------------------------------------------
 *
 *   const char *wrt[] = {"w", "b"};
 *   tlaloc_grad_options o = {.wrt = wrt, .nwrt = 2, .with_outputs = 1};
 *   tlaloc_graph *dg;
 *   tlaloc_grad(g, &o, &dg, &errors);     // outputs: loss, dloss_dw, dloss_db
 *
 * The result is an ordinary graph sharing the forward values: run it,
 * optimise it, compile it, or differentiate it again (grad of grad). */
typedef struct tlaloc_grad_options {
  const char *mode;               /* NULL or "grad": scalar outputs, outputs d<out>_d<in>;
                                     "vjp": inputs ct_<out> (cotangents), outputs vjp_<in>;
                                     "jvp": inputs t_<in> (tangents), outputs jvp_<out> */
  const char *const *of;          /* the outputs to differentiate, by name; 0: every output */
  int nof;
  const char *const *wrt;         /* the inputs, by name; 0: every float input */
  int nwrt;
  int with_outputs;               /* 1: g's outputs first, under their names */
  const char *const *rule_paths;  /* derivative rules (.rw files or folders); NULL/0: the default
                                     rules folder (read once per process) */
  int nrules;
} tlaloc_grad_options;

/* The derivative graph of g into *out (NULL options: grad of every output
 * with respect to every float input). TLALOC_BAD_INPUT with a message:
 * a non-scalar output in grad mode, an unknown name, an op without a
 * derivative rule, rule files with errors. */
tlaloc_status tlaloc_grad(const tlaloc_graph *g, const tlaloc_grad_options *opts, tlaloc_graph **out,
                          char **errors);

/* ---- programs: a graph prepared by an engine ------------------------------
 *
 *   tlaloc_program *p;
 *   if (tlaloc_compile(g, NULL, &p, &errors) != TLALOC_OK) ...  // unsupported op/dtype
 *   tlaloc_program_run(p, &in, 1, &out, 1, &errors);            // as tlaloc_run
 *   tlaloc_program_free(p);
 *
 * An engine runs programs: "llvm" (the default: the LLVM CPU backend),
 * "interp" (the reference interpreter), "gpu" (the GPU backend through the
 * CUDA driver), "gpu-sim" (its kernels on the host's emulator), "auto" (llvm
 * or gpu at each run, from the cost model); tlaloc_engine_name lists them.
 * Everything below holds for each; what follows is about "llvm".
 *
 * The graph is compiled as it is (run tlaloc_optimize first to compile the
 * optimised graph): kernel formation and in-place kernels follow the rule
 * files of the default rules folder (fusion.rw, inplace.rw), the code is
 * JIT-compiled for the host CPU, and the object is cached on disk by a hash
 * of the program and target (cache_dir, else TLALOC_CACHE_DIR, else
 * $XDG_CACHE_HOME/tlaloc, else ~/.cache/tlaloc). */
typedef struct tl_api_program tlaloc_program;

/* Zeroed fields take the defaults. */
typedef struct tlaloc_compile_options {
  int opt_level;         /* 0: default (1, the kernels' own pass list); 1..3; -1: no IR passes */
  int threads;           /* threads for large loops; 0: min(2, online CPUs) */
  int use_cache;         /* 0: default (on); 1: on; -1: neither read nor write the disk cache */
  const char *cache_dir; /* NULL: the environment decides (see above) */
  const char *engine;    /* NULL: "llvm"; else an engine's name (tlaloc_engine_name) */
  const char *device;    /* NULL, or where to run: "cpu" (engine llvm), "gpu", "gpu-sim",
                            "auto" (the engines of those names); engine, if given, must agree */
} tlaloc_compile_options;

/* The name of engine i (0, 1, ...), NULL past the last. */
const char *tlaloc_engine_name(int i);

/* Compiles g (NULL options: the defaults) into *out. The program keeps a
 * pointer to g: g must outlive it. TLALOC_BAD_INPUT with the engine's
 * message ("backend: op X on dtype Y is not supported", or an LLVM
 * failure) when g cannot be compiled, or when no engine has that name. */
tlaloc_status tlaloc_compile(const tlaloc_graph *g, const tlaloc_compile_options *opts,
                             tlaloc_program **out, char **errors);

/* Runs the program with tlaloc_run's conventions: inputs in order (dtypes
 * and ranks must match, symbolic dims are bound from them); an output whose
 * `data` is NULL is allocated (release with tlaloc_free), one whose `data`
 * is set is written in place and its dtype, rank and dims must be the
 * output's (tlaloc_output_shapes of the program's graph). Output buffers
 * must not overlap an input or each other (refused with a message: the
 * kernels write outputs before they finish reading inputs). When every
 * output has its buffer and the symbol sizes are those of the previous
 * call, nothing is allocated. A graph with a loop's per-trip results
 * (`:stack`) runs with fresh results: they are handed over to outputs
 * without data, or copied into a buffer whose dims then must match.
 * Thread safety: a program runs on one thread at a time (it owns its
 * intermediates' arena and a worker thread); run different programs, or
 * serialise the calls, to use several threads. */
tlaloc_status tlaloc_program_run(tlaloc_program *p, const tlaloc_tensor *inputs, int nin,
                                 tlaloc_tensor *outputs, int nout, char **errors);

/* The compile statistics as a JSON object (tlaloc_free it): "engine" (its
 * name), and for "llvm" milliseconds
 * "plan_ms", "lower_ms", "opt_ms", "codegen_ms", "cache_ms", "jit_ms",
 * "compile_ms" (their total, wall clock); "cache_hit" (the object came from
 * the disk cache: no IR, optimisation or codegen ran); "cache_bad" (the
 * cache held an unsound entry for it, now recompiled and replaced); "kernels",
 * "inplace" (kernels writing over a dead operand's buffer) and
 * "arena_bytes" (the intermediates' arena at the last run's sizes; 0
 * before the first run). Not to be called while the program runs. */
char *tlaloc_program_stats(const tlaloc_program *p);

void tlaloc_program_free(tlaloc_program *p);

/* The op table (ir/ops.def; `tlaloc ops` prints it): op i's name, NULL
 * past the last op; its operand count (-1: one or more); its kind
 * ("elementwise", "reduction", "shape", "linalg", "constant", "source");
 * the libm function it is ("exp"; NULL if none). Frontends build their
 * op lists from these. */
const char *tlaloc_op_name(int i);
int tlaloc_op_arity(int i);
const char *tlaloc_op_kind(int i);
const char *tlaloc_op_libm(int i);

/* "MAJOR.MINOR.PATCH" of the library. */
const char *tlaloc_version(void);

void tlaloc_free(void *p);

/* Keeps glibc from returning freed blocks under 32 MiB to the kernel
 * (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 64 MiB), so that outputs
 * allocated on every call reuse warm pages instead of faulting them in
 * again (~10 us per 4 KiB page on some VMs). Process-wide, hence opt-in:
 * the CLI and the Python package call it; TLALOC_MALLOC_TUNE=0 or glibc's
 * own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment
 * make it a no-op, as does a libc other than glibc. */
void tlaloc_malloc_tune(void);

/* Runs the GEMMs on the fastest of OpenBLAS's kernel sets for this CPU:
 * the one `tlaloc calibrate` measured (the profile's blas.core), else
 * OpenBLAS's AVX-512 set where it picked an AVX2 one on a CPU with AVX-512
 * and OPENBLAS_CORETYPE is not set. The measured set applies over
 * OPENBLAS_CORETYPE (images set it to "Haswell" as a blanket workaround,
 * which halves GEMM speed on AVX-512 CPUs). Process-wide (every user of
 * that OpenBLAS in the process) and not safe while another thread is in a
 * BLAS call, hence opt-in, once, at start: the CLI and the Python package
 * call it. A no-op with TLALOC_BLAS_TUNE=0 or a BLAS that is not a
 * dynamic-arch OpenBLAS. Returns the kernel set running afterwards
 * ("SkylakeX", ...) or NULL when the BLAS has no such choice. */
const char *tlaloc_blas_tune(void);

#ifdef __cplusplus
}
#endif

#endif
