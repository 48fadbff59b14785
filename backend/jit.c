/* jit.c - compile driver: plan, cache lookup, LLVM IR, O2/O3, object
 * emission, ORC LLJIT; and the run-time side: buffer planning, the worker
 * thread, be_run (new output tensors) and be_run_into (the caller's).
 *
 * The JIT always links an object file: on a cache miss the optimised module
 * is emitted with LLVMTargetMachineEmitToMemoryBuffer (and stored), on a
 * hit the stored object is linked as is, so a hit skips IR construction,
 * optimisation and codegen. The plan is rebuilt from the graph either way
 * (it is cheap and the run-time needs it).
 *
 * Process-wide state: one pthread_once for LLVM's target initialisation,
 * the -vector-library option and loading libmvec (RTLD_GLOBAL, so the JIT's
 * process-symbol generator resolves _ZGVdN8v_expf and friends); the host's
 * triple, CPU and features; a pool of target machines reused across
 * compiles; one LLJIT in which each program has a JITDylib of its own. */
#include "backend/be_internal.h"
#include "backend/blas.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <assert.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define BE_VERSION "tlaloc-be-6"

typedef struct be_frame {
  void **bufs;
  const int64_t *syms;
  int32_t err;
  int32_t fresh; /* the outputs were just allocated: no streaming stores (lower_stream.c) */
} be_frame;

typedef void (*be_kfn)(be_frame *, int64_t, int64_t);
typedef int32_t (*be_entry)(be_frame *, void (*)(void *, be_kfn, be_frame *, int64_t), void *);

/* ---- the worker thread ------------------------------------------------
 * A parallel loop is cut into chunks that the caller and the worker take
 * from a shared counter, so a worker that is descheduled (a loaded machine)
 * or slower does not hold the caller back. The worker has to claim a job
 * (POSTED -> RUNNING) before it touches it; a caller that finishes every
 * chunk while the job is still unclaimed withdraws it (POSTED -> IDLE) and
 * returns without waiting for the worker to wake up at all. */

enum { JOB_IDLE, JOB_POSTED, JOB_RUNNING };

typedef struct be_pool {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, quit;
  unsigned gen;
  _Alignas(64) atomic_int state;
  atomic_int active;     /* 1 while the worker runs chunks of this job */
  _Alignas(64) atomic_llong next; /* next chunk start */
  be_kfn k;
  be_frame *f;
  int64_t n, chunk;
} be_pool;

static void run_chunks(be_pool *p) {
  for (;;) {
    int64_t lo = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
    if (lo >= p->n) break;
    int64_t hi = lo + p->chunk < p->n ? lo + p->chunk : p->n;
    p->k(p->f, lo, hi);
  }
}

static void *pool_main(void *arg) {
  be_pool *p = arg;
  unsigned seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->quit && p->gen == seen) pthread_cond_wait(&p->cv, &p->mu);
    int quit = p->quit;
    seen = p->gen;
    pthread_mutex_unlock(&p->mu);
    if (quit) break;
    int want = JOB_POSTED;
    if (!atomic_compare_exchange_strong(&p->state, &want, JOB_RUNNING)) continue; /* withdrawn */
    run_chunks(p);
    atomic_store_explicit(&p->active, 0, memory_order_release);
  }
  return NULL;
}

static void pool_par(void *pool, be_kfn k, be_frame *f, int64_t n) {
  be_pool *p = pool;
  /* about 8 chunks per thread; at least 16 units so that neighbouring
   * chunks of a 1-D f32/f64 loop rarely share a cache line */
  int64_t chunk = n / 16;
  if (chunk < 1) chunk = 1;
  if (n >= 256) chunk = (chunk + 15) & ~(int64_t)15;
  p->k = k;
  p->f = f;
  p->n = n;
  p->chunk = chunk;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  atomic_store_explicit(&p->active, 1, memory_order_relaxed);
  atomic_store_explicit(&p->state, JOB_POSTED, memory_order_release);
  pthread_mutex_lock(&p->mu);
  p->gen++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  run_chunks(p);
  int want = JOB_POSTED;
  if (atomic_compare_exchange_strong(&p->state, &want, JOB_IDLE)) return; /* never claimed */
  /* the worker is on its last chunk at most: spin briefly, then yield */
  for (int i = 0; atomic_load_explicit(&p->active, memory_order_acquire); i++)
    if (i > 1000) sched_yield();
  atomic_store_explicit(&p->state, JOB_IDLE, memory_order_relaxed);
}

static int pool_start(be_pool *p) {
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  atomic_init(&p->state, JOB_IDLE);
  atomic_init(&p->active, 0);
  atomic_init(&p->next, 0);
  if (pthread_create(&p->th, NULL, pool_main, p)) return -1;
  p->started = 1;
  return 0;
}

static void pool_stop(be_pool *p) {
  if (!p->started) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->th, NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
}

/* ---- program ------------------------------------------------------------- */

struct be_program {
  const tl_graph *g;
  be_plan plan;
  be_options opt;
  be_stats stats;
  LLVMOrcJITDylibRef jd; /* this program's code in the process's LLJIT */
  be_entry entry;
  be_pool pool;
  int threads;
  /* run-time buffer plan, valid for the symbol sizes in planned_syms */
  int64_t *planned_syms, *syms;
  size_t *offs;
  char *arena;
  size_t arena_size;
  int planned;
  void **bufs;
  int64_t (*out_dims)[TL_MAX_RANK]; /* per output, at planned_syms */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char host_desc[20480]; /* the whole feature list: the cache key must not cut it */
static char *host_triple, *host_cpu, *host_feat; /* kept for the process */

static void init_impl(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
  /* libmvec must be resolvable by the JIT; the AOT route links -lmvec */
  dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL);
  /* cblas_?gemm for generated code (backend/blas.c: the global scope, where
   * the JIT resolves symbols; OpenBLAS is made global when it is not) */
  be_blas_global();
  const char *nv = getenv("TLALOC_NO_VECLIB");
  if (!nv || !*nv || *nv == '0') {
    const char *args[] = {"tlaloc", "-vector-library=LIBMVEC-X86"};
    LLVMParseCommandLineOptions(2, args, NULL);
  }
  /* asked once: LLVM reads /proc/cpuinfo and runs cpuid for each call,
   * 0.2 ms a compile when every target machine asked again */
  host_triple = LLVMGetDefaultTargetTriple();
  host_cpu = LLVMGetHostCPUName();
  host_feat = LLVMGetHostCPUFeatures();
  /* TLALOC_NO_AVX512=1: no 512-bit code at all, not only no 512-bit libmvec
   * calls (lower.c): the host CPU's name implies AVX-512 on Zen 4/5 and
   * Sapphire Rapids, so the features say -avx512f last, which also turns
   * off every AVX-512 extension that needs it */
  const char *na = getenv("TLALOC_NO_AVX512");
  if (na && *na && *na != '0') {
    static char feat[16384]; /* a host's list is ~1-2 KB */
    snprintf(feat, sizeof feat, "%s%s-avx512f", host_feat, *host_feat ? "," : "");
    LLVMDisposeMessage(host_feat);
    host_feat = feat;
  }
  snprintf(host_desc, sizeof host_desc, "%s %s %s", host_triple, host_cpu, host_feat);
}

void be_init(void) { pthread_once(&init_once, init_impl); }

const char *be_host_desc(void) {
  be_init();
  return host_desc;
}

LLVMTargetMachineRef be_host_tm(int opt_level) {
  return be_host_tm_cg(opt_level, opt_level > 0 ? 2 : 0);
}

/* cg: 0 fast instruction selection and register allocation, 1 LLVM's
 * "less" (the JIT's default), 2 its default (AOT objects). Level 0 had been
 * the JIT's: the IR passes vectorise and unroll, and codegen's own work
 * cost 3-5x the codegen time for ~10% on the row kernels then measured.
 * But its register allocator spills the accumulators of a kernel with
 * several passes: layer norm 4096 x 1024 on one thread ran 2.6 ms at 0,
 * 1.19 at 1, 0.92 at 2 (gcc -O3 -march=native: 1.36); the 5-op chain into
 * a buffer 6.7 -> 5.5 ms; the examples' mean cold JIT 4.9 -> 13.2 ms (14.2
 * at 2). Measured on the 2-vCPU Zen 5 VM (bench-backend). */
/* A target machine for the host's triple with this CPU and features. */
static LLVMTargetMachineRef make_tm(const char *cpu, const char *feat, int cg) {
  be_init();
  LLVMTargetRef t = NULL;
  char *msg = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (!LLVMGetTargetFromTriple(host_triple, &t, &msg))
    tm = LLVMCreateTargetMachine(t, host_triple, cpu, feat,
                                 cg >= 2 ? LLVMCodeGenLevelDefault : cg == 1 ? LLVMCodeGenLevelLess : LLVMCodeGenLevelNone,
                                 LLVMRelocPIC, LLVMCodeModelDefault);
  LLVMDisposeMessage(msg);
  return tm;
}

LLVMTargetMachineRef be_host_tm_cg(int opt_level, int cg) {
  (void)opt_level;
  be_init();
  return make_tm(host_cpu, host_feat, cg);
}

LLVMTargetMachineRef be_level_tm(const char *cpu, int cg) {
  if (!cpu || !strcmp(cpu, "native")) return be_host_tm_cg(1, cg);
  /* the features each level adds (the psABI's micro-architecture levels) */
  static const char v2[] = "+cx16,+popcnt,+sse3,+sse4.1,+sse4.2,+ssse3,+sahf",
                    v3[] = ",+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,+xsave",
                    v4[] = ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl";
  char feat[512];
  if (!strcmp(cpu, "x86-64")) snprintf(feat, sizeof feat, "%s", "");
  else if (!strcmp(cpu, "x86-64-v2")) snprintf(feat, sizeof feat, "%s", v2);
  else if (!strcmp(cpu, "x86-64-v3")) snprintf(feat, sizeof feat, "%s%s", v2, v3);
  else if (!strcmp(cpu, "x86-64-v4")) snprintf(feat, sizeof feat, "%s%s%s", v2, v3, v4);
  else return NULL;
  be_init();
  if (strncmp(host_triple, "x86_64", 6)) return NULL; /* the levels are x86-64's */
  return make_tm(cpu, feat, cg);
}

/* Target machines are kept for reuse: a fresh one builds its X86 subtarget
 * (legal types, lowering actions, register classes) again on first use,
 * about 1 ms of every cold compile (attention: 9.2-9.6 -> 8.4-8.5 ms).
 * A target machine serves one compile at a time, so compiles take one
 * from the pool and give it back; concurrent compiles get their own. */
enum { TM_POOL_MAX = 4 };
static pthread_mutex_t tm_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static LLVMTargetMachineRef tm_pool[3][TM_POOL_MAX];
static int tm_pool_n[3];

static LLVMTargetMachineRef tm_take(int cg) {
  LLVMTargetMachineRef tm = NULL;
  pthread_mutex_lock(&tm_pool_mu);
  if (tm_pool_n[cg] > 0) tm = tm_pool[cg][--tm_pool_n[cg]];
  pthread_mutex_unlock(&tm_pool_mu);
  return tm ? tm : be_host_tm_cg(1, cg);
}

static void tm_give(int cg, LLVMTargetMachineRef tm) {
  pthread_mutex_lock(&tm_pool_mu);
  if (tm_pool_n[cg] < TM_POOL_MAX) tm_pool[cg][tm_pool_n[cg]++] = tm, tm = NULL;
  pthread_mutex_unlock(&tm_pool_mu);
  if (tm) LLVMDisposeTargetMachine(tm);
}

/* Level 1, the JIT's default: the passes that the generated kernels need,
 * not LLVM's whole O3 pipeline. The kernels arrive as single functions of
 * simple counted loops, kept out of line (no inliner, no interprocedural
 * passes); what pays is: CSE of the repeated loads of a fused expression,
 * loop rotation and LICM into the form the loop vectoriser accepts, the
 * vectoriser itself (with libmvec's variants: inject-tli-mappings), one
 * unroll of the vector body (chosen when the JIT's codegen level was None,
 * which does no loop strength reduction), and a cleanup. Measured on the examples' kernels:
 * 30-45% less optimisation time than default<O3>, run time within the
 * noise (docs/backend.md). */
static const char lean_pipeline[] =
    "function(early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,loop-simplify,lcssa,"
    "loop(loop-rotate),loop-mssa(licm),inject-tli-mappings,loop-vectorize,loop-unroll<O3>,"
    "instcombine<no-verify-fixpoint>,simplifycfg)";

int be_optimise(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, tl_error *er) {
  if (opt_level <= 0) return 0;
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
  const char *passes = opt_level == 1 ? lean_pipeline : opt_level == 2 ? "default<O2>" : "default<O3>";
  LLVMErrorRef e = LLVMRunPasses(m, passes, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *s = LLVMGetErrorMessage(e);
    tl_fail(er, TL_BACKEND_FAILED, "backend: LLVM passes failed: %s", s);
    LLVMDisposeErrorMessage(s);
    return -1;
  }
  return 0;
}

int be_codegen_level(const be_options *o) { return o->codegen < 0 ? 0 : o->codegen > 2 ? 2 : o->codegen; }

long be_split_elems(const be_options *o) { return o->split_elems > 0 ? o->split_elems : BE_SPLIT_ELEMS; }

be_options be_options_default(void) {
  be_options o = {1, 0, 1, 0, 1, NULL, NULL, NULL, 0, 1, 0};
  return o;
}

/* ---- cache ----------------------------------------------------------------
 * An entry is DIR/KEY.tlc: a 64-byte header, then the object file. KEY is
 * the XXH3-128 of everything the object depends on (the program's canonical
 * text, the plan's hash, the target, the options, BE_VERSION, the build).
 * The header says what the object is for and lets a load check it before
 * linking: a truncated, corrupted or empty file, or another program's
 * entry copied over this one (a valid object that would compute the wrong
 * thing or crash), is refused, removed and replaced by a fresh compile. Entries are
 * written to a temporary file and renamed over the old one, so a reader
 * sees a whole entry or none. Fields are in host byte order: the target
 * is part of the key. */

#define CE_MAGIC "tlcache\n"
enum { CE_FORMAT = 2 };

typedef struct cache_hdr {
  char magic[8];      /* CE_MAGIC */
  uint32_t format;    /* CE_FORMAT */
  uint32_t hdr_size;  /* sizeof(cache_hdr) */
  uint64_t key_hi, key_lo; /* the entry's key, as in its file name */
  uint64_t prog_hash; /* XXH3-64 of what the key hashes (program, plan, target, options) */
  uint64_t obj_size;  /* bytes of object after the header */
  uint64_t obj_hash;  /* XXH3-64 of those bytes */
  uint64_t first_size; /* the first object's bytes; the rest, if any, is a second
                          object (a module compiled in two halves, "parallel codegen") */
  uint64_t hdr_hash;  /* XXH3-64 of the header's bytes before this field */
} cache_hdr;
static_assert(sizeof(cache_hdr) == 72, "the cache header has no padding");

/* What an entry is for: its key (the file name) and the program hash. */
typedef struct cache_id {
  uint64_t key_hi, key_lo, prog_hash;
} cache_id;

static int cache_dir(const be_options *o, char *buf, size_t n) {
  const char *d = o->cache_dir ? o->cache_dir : getenv("TLALOC_CACHE_DIR");
  if (d && *d) return snprintf(buf, n, "%s", d) < (int)n ? 0 : -1;
  const char *x = getenv("XDG_CACHE_HOME");
  if (x && *x) return snprintf(buf, n, "%s/tlaloc", x) < (int)n ? 0 : -1;
  const char *h = getenv("HOME");
  if (!h || !*h) return -1;
  return snprintf(buf, n, "%s/.cache/tlaloc", h) < (int)n ? 0 : -1;
}

static void mkdirs(const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *q = tmp + 1; *q; q++)
    if (*q == '/') {
      *q = 0;
      mkdir(tmp, 0755);
      *q = '/';
    }
  mkdir(tmp, 0755);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? 2 * cap : 65536;
      buf = tl_xrealloc(buf, cap);
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0) break;
  }
  fclose(f);
  *len = n;
  return buf;
}

/* The build of the code that emits kernels: the GNU build ID of the
 * loaded object holding this function (the library, or a program linking
 * it statically), else that file's size and modification time. Part of the
 * cache key because BE_VERSION is bumped by hand: an emitter changed
 * without the bump served a kernel of the previous build from the cache
 * (`tlaloc run` ran the kernel an earlier build had cached). */
typedef struct build_q {
  uintptr_t at;
  uint8_t id[64];
  size_t n;
} build_q;

static int build_id_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  build_q *q = arg;
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    mine = ph->p_type == PT_LOAD && q->at >= lo && q->at - lo < ph->p_memsz;
  }
  if (!mine) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
      size_t name = (nh->n_namesz + 3) & ~(size_t)3, desc = (nh->n_descsz + 3) & ~(size_t)3;
      const uint8_t *d = p + sizeof *nh + name;
      if (d + desc > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(p + sizeof *nh, "GNU", 4) &&
          nh->n_descsz <= sizeof q->id) {
        memcpy(q->id, d, nh->n_descsz);
        q->n = nh->n_descsz;
        return 1;
      }
      p = d + desc;
    }
  }
  return 1;
}

static build_q build_stamp_v;

static void build_stamp_init(void) {
  build_q *q = &build_stamp_v;
  q->at = (uintptr_t)(void *)q; /* a data address of this build (ISO C casts no function to one) */
  dl_iterate_phdr(build_id_cb, q);
  Dl_info di;
  struct stat st;
  if (!q->n && dladdr(q, &di) && di.dli_fname && stat(di.dli_fname, &st) == 0) {
    int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
    memcpy(q->id, v, sizeof v);
    q->n = sizeof v;
  }
}

static const build_q *build_stamp(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, build_stamp_init);
  return &build_stamp_v;
}

/* The id of g's object under plan p and options o. */
static cache_id cache_id_of(const tl_graph *g, const be_plan *p, const be_options *o) {
  const build_q *bs = build_stamp();
  char *text = tl_tg_print(g);
  uint64_t ph = be_plan_hash(p);
  long opts[5] = {o->opt_level, o->vector_math, (long)(o->vector_math == 1 ? o->own_math : 0), be_codegen_level(o),
                  be_split_elems(o)};
  const char *nv = getenv("TLALOC_NO_VECLIB"), *na = getenv("TLALOC_NO_AVX512");
  struct {
    const void *p;
    size_t n;
  } part[] = {{BE_VERSION, strlen(BE_VERSION)},
              {bs->id, bs->n},
              {text, strlen(text)},
              {&ph, sizeof ph},
              {host_desc, strlen(host_desc)},
              {opts, sizeof opts},
              {"novl", nv && *nv && *nv != '0' ? 4u : 0u},
              {"no512", na && *na && *na != '0' ? 5u : 0u}};
  XXH3_state_t *s128 = XXH3_createState(), *s64 = XXH3_createState();
  XXH3_128bits_reset(s128);
  XXH3_64bits_reset(s64);
  for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
    XXH3_128bits_update(s128, part[i].p, part[i].n);
    XXH3_64bits_update(s64, part[i].p, part[i].n);
  }
  XXH128_hash_t h = XXH3_128bits_digest(s128);
  cache_id id = {h.high64, h.low64, XXH3_64bits_digest(s64)};
  XXH3_freeState(s128);
  XXH3_freeState(s64);
  tl_free(text);
  return id;
}

static uint64_t hdr_hash(const cache_hdr *h) { return XXH3_64bits(h, offsetof(cache_hdr, hdr_hash)); }

/* The hash of an entry's objects: the first's, seeding the second's. */
static uint64_t objs_hash(const void *o1, size_t n1, const void *o2, size_t n2) {
  uint64_t h = XXH3_64bits(o1, n1);
  return n2 ? XXH3_64bits_withSeed(o2, n2, h) : h;
}

/* The entry at path as object buffers: 0 and *obj (and *obj2, or NULL
 * for a one-object entry) on a sound entry for id; 1 when there is no
 * entry; -1 when there is one but it is not sound (short, corrupted,
 * another program's, another format). */
static int cache_load(const char *path, const cache_id *id, LLVMMemoryBufferRef *obj, LLVMMemoryBufferRef *obj2) {
  size_t len;
  char *data = read_all(path, &len);
  if (!data) return 1;
  cache_hdr h;
  int rc = -1;
  if (len >= sizeof h) {
    memcpy(&h, data, sizeof h);
    const char *o = data + sizeof h;
    if (!memcmp(h.magic, CE_MAGIC, sizeof h.magic) && h.format == CE_FORMAT && h.hdr_size == sizeof h &&
        h.hdr_hash == hdr_hash(&h) && h.key_hi == id->key_hi && h.key_lo == id->key_lo &&
        h.prog_hash == id->prog_hash && h.obj_size > 0 && h.obj_size == len - sizeof h &&
        h.first_size > 0 && h.first_size <= h.obj_size &&
        h.obj_hash == objs_hash(o, h.first_size, o + h.first_size, h.obj_size - h.first_size)) {
      *obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(o, h.first_size, "tlaloc-cached");
      *obj2 = h.first_size < h.obj_size
                  ? LLVMCreateMemoryBufferWithMemoryRangeCopy(o + h.first_size, h.obj_size - h.first_size,
                                                              "tlaloc-cached-2")
                  : NULL;
      rc = 0;
    }
  }
  tl_free(data);
  return rc;
}

/* Writes the entry for id (header + objects) to a temporary file in dir
 * and renames it to path. Best effort: a failure leaves no entry (or the
 * old). obj2 may be NULL. */
static void cache_store(const char *dir, const char *path, const cache_id *id, LLVMMemoryBufferRef obj,
                        LLVMMemoryBufferRef obj2) {
  const char *o1 = LLVMGetBufferStart(obj), *o2 = obj2 ? LLVMGetBufferStart(obj2) : NULL;
  size_t n1 = LLVMGetBufferSize(obj), n2 = obj2 ? LLVMGetBufferSize(obj2) : 0;
  cache_hdr h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, CE_MAGIC, sizeof h.magic);
  h.format = CE_FORMAT;
  h.hdr_size = sizeof h;
  h.key_hi = id->key_hi;
  h.key_lo = id->key_lo;
  h.prog_hash = id->prog_hash;
  h.obj_size = n1 + n2;
  h.first_size = n1;
  h.obj_hash = objs_hash(o1, n1, o2, n2);
  h.hdr_hash = hdr_hash(&h);
  mkdirs(dir);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%p", path, (long)getpid(), (void *)&tmp);
  FILE *f = fopen(tmp, "wb");
  if (!f) return;
  bool ok = fwrite(&h, 1, sizeof h, f) == sizeof h && fwrite(o1, 1, n1, f) == n1 && (!n2 || fwrite(o2, 1, n2, f) == n2);
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path)) unlink(tmp);
}

/* ---- compile ------------------------------------------------------------- */

/* One LLJIT for the process; each program links its object into a
 * JITDylib of its own, so every program may define tlk_main. Creating an
 * LLJIT builds a target machine and an execution session, about 1 ms, which
 * a cache hit would otherwise pay in full. A freed program's JITDylib is
 * cleared (its code and symbols go) and kept for the next program: the C
 * API cannot remove a JITDylib from the session. */
static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
static LLVMOrcLLJITRef the_jit;
static char the_jit_err[sizeof ((tl_error *)0)->msg];
static pthread_mutex_t jd_mu = PTHREAD_MUTEX_INITIALIZER;
static LLVMOrcJITDylibRef *jd_free;
static int jd_nfree, jd_cap;
static unsigned jd_count;

static void set_llvm_err(LLVMErrorRef e, const char *what, tl_error *er) {
  char *s = LLVMGetErrorMessage(e);
  tl_fail(er, TL_BACKEND_FAILED, "backend: %s: %s", what, s);
  LLVMDisposeErrorMessage(s);
}

static void jit_init(void) {
  LLVMTargetMachineRef tm = be_host_tm_cg(1, 2);
  if (!tm) {
    snprintf(the_jit_err, sizeof the_jit_err, "backend: no target machine for the host");
    return;
  }
  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&the_jit, jb);
  if (e) {
    tl_error er = {0};
    set_llvm_err(e, "LLJIT", &er);
    snprintf(the_jit_err, sizeof the_jit_err, "%s", er.msg);
    the_jit = NULL;
  }
}

/* a JITDylib that resolves the process's symbols (libm, libmvec, BLAS) */
static LLVMOrcJITDylibRef jd_take(tl_error *er) {
  pthread_mutex_lock(&jd_mu);
  LLVMOrcJITDylibRef jd = jd_nfree > 0 ? jd_free[--jd_nfree] : NULL;
  unsigned id = jd ? 0 : jd_count++;
  pthread_mutex_unlock(&jd_mu);
  if (jd) return jd;
  char name[64];
  snprintf(name, sizeof name, "tlaloc.program.%u", id);
  jd = LLVMOrcExecutionSessionCreateBareJITDylib(LLVMOrcLLJITGetExecutionSession(the_jit), name);
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  LLVMErrorRef e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(the_jit), NULL, NULL);
  if (e) {
    set_llvm_err(e, "process symbols", er);
    return NULL; /* the bare JITDylib stays in the session, empty */
  }
  LLVMOrcJITDylibAddGenerator(jd, gen);
  return jd;
}

static void jd_give(LLVMOrcJITDylibRef jd) {
  LLVMErrorRef e = LLVMOrcJITDylibClear(jd);
  if (e) {
    LLVMConsumeError(e); /* not reused: its symbols may still be defined */
    return;
  }
  pthread_mutex_lock(&jd_mu);
  if (jd_nfree == jd_cap) {
    /* no unwinding here (the lock is held, and freeing a program happens
     * in cleanups): without memory the JITDylib is just not reused */
    int cap = jd_cap ? 2 * jd_cap : 16;
    LLVMOrcJITDylibRef *grown = tl_try_realloc(jd_free, (size_t)cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&jd_mu);
      return;
    }
    tl_keep(grown); /* process-wide: no region's */
    jd_free = grown;
    jd_cap = cap;
  }
  jd_free[jd_nfree++] = jd;
  pthread_mutex_unlock(&jd_mu);
}

/* LLJIT's own lookup searches only its main JITDylib; this one searches
 * jd. The session's lookup is asynchronous in general, so wait for it. */
typedef struct lookup_wait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  LLVMErrorRef err;
  LLVMOrcExecutorAddress addr;
} lookup_wait;

static void lookup_done(LLVMErrorRef e, LLVMOrcCSymbolMapPairs res, size_t npairs, void *ctx) {
  lookup_wait *w = ctx;
  pthread_mutex_lock(&w->mu);
  w->err = e;
  if (!e && npairs > 0) w->addr = res[0].Sym.Address;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static LLVMErrorRef jd_lookup(LLVMOrcJITDylibRef jd, const char *name, LLVMOrcExecutorAddress *addr) {
  lookup_wait w = {.done = 0, .err = NULL, .addr = 0};
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  LLVMOrcCJITDylibSearchOrderElement order[1] = {{jd, LLVMOrcJITDylibLookupFlagsMatchAllSymbols}};
  /* the lookup takes over the interned name's reference */
  LLVMOrcCLookupSetElement sym[1] = {{LLVMOrcLLJITMangleAndIntern(the_jit, name), LLVMOrcSymbolLookupFlagsRequiredSymbol}};
  LLVMOrcExecutionSessionLookup(LLVMOrcLLJITGetExecutionSession(the_jit), LLVMOrcLookupKindStatic, order, 1, sym, 1,
                                lookup_done, &w);
  pthread_mutex_lock(&w.mu);
  while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  *addr = w.addr;
  return w.err;
}

static int jit_link(be_program *p, LLVMMemoryBufferRef obj, LLVMMemoryBufferRef obj2, tl_error *er) {
  pthread_once(&jit_once, jit_init);
  if (!the_jit) {
    LLVMDisposeMemoryBuffer(obj);
    if (obj2) LLVMDisposeMemoryBuffer(obj2);
    tl_fail(er, TL_BACKEND_FAILED, "%s", the_jit_err);
    return -1;
  }
  LLVMOrcJITDylibRef jd = jd_take(er);
  if (!jd) {
    LLVMDisposeMemoryBuffer(obj);
    if (obj2) LLVMDisposeMemoryBuffer(obj2);
    return -1;
  }
  p->jd = jd;
  LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(the_jit, jd, obj);
  if (e) {
    if (obj2) LLVMDisposeMemoryBuffer(obj2);
    set_llvm_err(e, "adding the object", er);
    return -1;
  }
  if (obj2 && (e = LLVMOrcLLJITAddObjectFile(the_jit, jd, obj2))) {
    set_llvm_err(e, "adding the object", er);
    return -1;
  }
  LLVMOrcExecutorAddress addr = 0;
  e = jd_lookup(jd, "tlk_main", &addr);
  if (e) {
    set_llvm_err(e, "symbol lookup", er);
    return -1;
  }
  p->entry = (be_entry)(uintptr_t)addr;
  return 0;
}

/* ---- parallel codegen ------------------------------------------------------
 * Passes and codegen are most of a cold compile (an MLP training step's
 * 22 kernels: 39 + 60 of 105 ms), and at level 1 they work function by
 * function (the lean pipeline has no interprocedural pass). So a module
 * with enough code is cut in two by functions, balanced by instruction
 * count, and the second half is optimised and emitted on another thread,
 * in an LLVM context of its own (a context is single-threaded): the module
 * goes to bitcode and back into the new context, each copy keeps the
 * bodies of its half and turns the other half's functions into
 * declarations. Every function is made external first, so the two objects
 * link against each other in the program's JITDylib; private constants are
 * copied into both (they are read-only). TLALOC_COMPILE_THREADS=1 keeps one
 * module. */
enum {
  PAR_MIN_INSTS = 400, /* a module smaller than this compiles in one piece */
  PAR_MIN_SHARE = 20    /* nor when the lighter half would be under this % */
};

static size_t fn_insts(LLVMValueRef f) {
  size_t n = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) n++;
  return n;
}

/* f becomes a declaration: its instructions' uses go to poison first, so
 * erasing them and then the (empty, unreferenced) blocks leaves nothing
 * dangling. */
static void drop_body(LLVMValueRef f) {
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
      if (LLVMGetTypeKind(LLVMTypeOf(i)) != LLVMVoidTypeKind) LLVMReplaceAllUsesWith(i, LLVMGetPoison(LLVMTypeOf(i)));
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b)) {
    LLVMValueRef i;
    while ((i = LLVMGetFirstInstruction(b))) LLVMInstructionEraseFromParent(i);
  }
  LLVMBasicBlockRef b;
  while ((b = LLVMGetFirstBasicBlock(f))) LLVMDeleteBasicBlock(b);
}

static int compile_threads(void) {
  const char *v = getenv("TLALOC_COMPILE_THREADS");
  if (v && *v) return atoi(v) > 1 ? 2 : 1;
  return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1;
}

/* Cuts m in two as above: 1 and the second half in *m2 (in the new context
 * *cx2), 0 when m stays whole (small, lopsided, one thread, or LLVM failed
 * to read the bitcode back). */
static int split_module(LLVMModuleRef m, LLVMContextRef *cx2, LLVMModuleRef *m2) {
  if (compile_threads() < 2) return 0;
  size_t nf = 0, total = 0, k = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) nf += !LLVMIsDeclaration(f);
  if (nf < 2) return 0;
  /* heaviest first, each to the lighter half: half[k] is function k's (in
   * module order) */
  size_t *w = tl_xcalloc(nf, sizeof *w), *ord = tl_xcalloc(nf, sizeof *ord);
  unsigned char *half = tl_xcalloc(nf, 1);
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    if (!LLVMIsDeclaration(f)) w[k] = fn_insts(f), total += w[k], ord[k] = k, k++;
  for (size_t i = 1; i < nf; i++) /* insertion sort by weight, descending */
    for (size_t j = i; j > 0 && w[ord[j]] > w[ord[j - 1]]; j--) {
      size_t t = ord[j];
      ord[j] = ord[j - 1];
      ord[j - 1] = t;
    }
  size_t load[2] = {0, 0};
  for (size_t i = 0; i < nf; i++) {
    int h = load[1] < load[0];
    half[ord[i]] = (unsigned char)h;
    load[h] += w[ord[i]];
  }
  size_t lighter = load[0] < load[1] ? load[0] : load[1];
  int rc = 0;
  if (total >= PAR_MIN_INSTS && lighter * 100 >= total * PAR_MIN_SHARE) {
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
      if (!LLVMIsDeclaration(f)) LLVMSetLinkage(f, LLVMExternalLinkage);
    /* it lists functions to keep; external ones are kept anyway */
    LLVMValueRef used = LLVMGetNamedGlobal(m, "llvm.compiler.used");
    if (used) LLVMDeleteGlobal(used);
    LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(m);
    LLVMContextRef c2 = LLVMContextCreate();
    LLVMModuleRef n2 = NULL;
    if (bc && !LLVMParseBitcodeInContext2(c2, bc, &n2)) {
      LLVMValueRef f = LLVMGetFirstFunction(m), g = LLVMGetFirstFunction(n2);
      for (k = 0; f && g; f = LLVMGetNextFunction(f), g = LLVMGetNextFunction(g)) {
        if (LLVMIsDeclaration(f)) continue;
        drop_body(half[k] ? f : g);
        k++;
      }
      *cx2 = c2;
      *m2 = n2;
      rc = 1;
    } else {
      LLVMContextDispose(c2);
    }
    if (bc) LLVMDisposeMemoryBuffer(bc);
  }
  tl_free(w);
  tl_free(ord);
  tl_free(half);
  return rc;
}

/* Small one-pass kernels get fast codegen (BE_FAST_CG_ELEMS; at level 1,
 * the JIT's default, only; TLALOC_FAST_CG=0 turns it off to compare). */
static void mark_fast_cg(LLVMModuleRef m, LLVMContextRef cx, int cg) {
  const char *fc = getenv("TLALOC_FAST_CG");
  if (cg != 1 || (fc && *fc == '0')) return;
  unsigned on = LLVMGetEnumAttributeKindForName("optnone", 7);
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    if (!LLVMIsDeclaration(f) && LLVMGetStringAttributeAtIndex(f, LLVMAttributeFunctionIndex, "tlaloc-one-pass", 15))
      LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cx, on, 0));
}

/* Passes and codegen of one module; 0 and *obj, or -1 with a message. */
static int optimise_emit(LLVMModuleRef m, LLVMContextRef cx, LLVMTargetMachineRef tm, int opt_level, int cg,
                         LLVMMemoryBufferRef *obj, double *opt_ms, tl_error *er) {
  double t = tl_now_ms();
  int rc = be_optimise(m, tm, opt_level, er);
  if (rc == 0) mark_fast_cg(m, cx, cg);
  *opt_ms = tl_now_ms() - t;
  const char *dump = getenv("TLALOC_BE_DUMP");
  if (dump && *dump == '2') LLVMDumpModule(m);
  if (rc == 0) {
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, obj)) {
      tl_fail(er, TL_BACKEND_FAILED, "backend: codegen failed: %s", msg ? msg : "");
      rc = -1;
    }
    LLVMDisposeMessage(msg);
  }
  return rc;
}

/* The second half's compile, on its own thread (it owns m, cx and tm). */
typedef struct half_job {
  LLVMModuleRef m;
  LLVMContextRef cx;
  LLVMTargetMachineRef tm;
  int opt_level, cg, rc;
  double opt_ms;
  LLVMMemoryBufferRef obj;
  tl_error er;
} half_job;

static void *half_main(void *arg) {
  half_job *j = arg;
  j->rc = optimise_emit(j->m, j->cx, j->tm, j->opt_level, j->cg, &j->obj, &j->opt_ms, &j->er);
  LLVMDisposeModule(j->m);
  LLVMContextDispose(j->cx);
  return NULL;
}

typedef struct emit_res {
  LLVMContextRef cx;
  LLVMTargetMachineRef tm;
  int cg;
} emit_res;

static void emit_release(void *arg) {
  emit_res *r = arg;
  if (r->cx) LLVMContextDispose(r->cx);
  tm_give(r->cg, r->tm);
}

/* LLVM IR, passes and codegen for p's plan: 0 and the object in *obj, or
 * -1 with a message. */
static int emit_object(be_program *p, LLVMMemoryBufferRef *obj, LLVMMemoryBufferRef *obj2, tl_error *er) {
  double t2 = tl_now_ms();
  /* running out of memory while lowering frees the context (and the module
   * in it) and returns the target machine */
  tl_cleanup *cl = tl_cleanup_push(emit_release);
  int cg = be_codegen_level(&p->opt);
  LLVMTargetMachineRef tm = tm_take(cg);
  if (!tm) {
    tl_cleanup_pop(cl);
    tl_fail(er, TL_BACKEND_FAILED, "backend: no target machine for the host");
    return -1;
  }
  const tl_graph *g = p->g;
  emit_res res = {NULL, tm, cg};
  cl->arg = &res;
  LLVMContextRef cx = res.cx = LLVMContextCreate();
  int vm = be_vm_code(p->opt.vector_math, p->opt.own_math);
  LLVMModuleRef m = be_emit_module(&p->plan, cx, tm, g->name ? g->name : "g", "tlk_main", vm, be_split_elems(&p->opt), er);
  double t3 = tl_now_ms();
  p->stats.lower_ms = t3 - t2;
  const char *dump = getenv("TLALOC_BE_DUMP");
  if (m && dump && *dump == '1') LLVMDumpModule(m);
  /* the second half, when the module is worth cutting, on another thread */
  half_job job = {0};
  pthread_t th;
  bool split = m && p->opt.opt_level == 1 && split_module(m, &job.cx, &job.m), par = false;
  if (split) {
    job.opt_level = p->opt.opt_level;
    job.cg = cg;
    job.tm = tm_take(cg);
    if (!job.tm) {
      LLVMDisposeModule(job.m);
      LLVMContextDispose(job.cx);
      job.rc = -1;
      tl_fail(&job.er, TL_BACKEND_FAILED, "backend: no target machine for the host");
    } else if (pthread_create(&th, NULL, half_main, &job) == 0) {
      par = true;
    } else {
      half_main(&job); /* no thread: this one compiles both halves */
    }
  }
  double t4 = tl_now_ms();
  int rc = m ? optimise_emit(m, cx, tm, p->opt.opt_level, cg, obj, &p->stats.opt_ms, er) : -1;
  if (par) pthread_join(th, NULL);
  if (job.tm) tm_give(cg, job.tm);
  p->stats.par_modules = split ? 2 : 1;
  if (split && job.rc == 0) {
    *obj2 = job.obj;
  } else if (split) {
    if (rc == 0) *er = job.er, rc = -1;
    if (job.obj) LLVMDisposeMemoryBuffer(job.obj);
  }
  if (rc != 0 && *obj) LLVMDisposeMemoryBuffer(*obj), *obj = NULL;
  if (rc != 0 && *obj2) LLVMDisposeMemoryBuffer(*obj2), *obj2 = NULL;
  p->stats.codegen_ms = tl_now_ms() - t4 - p->stats.opt_ms;
  if (m) LLVMDisposeModule(m);
  tl_cleanup_pop(cl);
  LLVMContextDispose(cx);
  tm_give(cg, tm);
  return rc;
}

be_program *be_compile(const tl_graph *g, const be_options *opt, tl_error *er) {
  double t0 = tl_now_ms();
  be_init();
  /* its thread pool's atomics sit on their own cache lines */
  be_program *p = tl_xaligned_alloc(_Alignof(be_program), sizeof *p);
  memset(p, 0, sizeof *p);
  p->g = g;
  p->opt = opt ? *opt : be_options_default();
  p->threads = p->opt.threads > 0 ? p->opt.threads : be_default_threads();
  be_rules own;
  const be_rules *rules = be_rules_get(&p->opt, &own, TL_EMSG(er));
  if (!rules) {
    tl_fail_kind(er, TL_BAD_INPUT); /* a rule file of the caller's */
    be_program_free(p);
    return NULL;
  }
  int prc = be_plan_build_with(&p->plan, g, rules, p->opt.destroy_inputs, TL_EMSG(er));
  if (rules == &own) be_rules_free(&own);
  if (prc) {
    tl_fail_kind(er, TL_BAD_INPUT); /* an op or dtype the backend lacks */
    be_program_free(p);
    return NULL;
  }
  p->stats.nkernels = p->plan.nks;
  p->stats.ninplace = p->plan.ninplace;
  p->stats.npasses = 0;
  for (int i = 0; i < p->plan.nks; i++)
    p->stats.npasses += p->plan.ks[i].pass_hi > p->plan.ks[i].pass_lo && i == p->plan.ks[i].pass_lo;
  double t1 = tl_now_ms();
  p->stats.plan_ms = t1 - t0;
  char dir[4096] = "", path[4200] = "";
  bool cache = p->opt.use_cache && cache_dir(&p->opt, dir, sizeof dir) == 0;
  cache_id id = {0, 0, 0};
  LLVMMemoryBufferRef obj = NULL, obj2 = NULL;
  if (cache) {
    id = cache_id_of(g, &p->plan, &p->opt);
    snprintf(path, sizeof path, "%s/%016llx%016llx.tlc", dir, (unsigned long long)id.key_hi,
             (unsigned long long)id.key_lo);
    int lr = cache_load(path, &id, &obj, &obj2);
    if (lr == 0) p->stats.cache_hit = 1;
    if (lr < 0) {
      p->stats.cache_bad = 1;
      unlink(path);
    }
  }
  p->stats.cache_ms = tl_now_ms() - t1;
  if (obj) {
    double t6 = tl_now_ms();
    if (jit_link(p, obj, obj2, er) == 0) {
      p->stats.jit_ms = tl_now_ms() - t6;
      p->stats.total_ms = tl_now_ms() - t0;
      return p;
    }
    /* a sound entry that LLVM refuses (written by a tlaloc whose lowering
     * differs under the same BE_VERSION): compile afresh */
    if (p->jd) jd_give(p->jd);
    p->jd = NULL;
    obj = obj2 = NULL;
    p->stats.cache_hit = 0;
    p->stats.cache_bad = 1;
    unlink(path);
    tl_error_clear(er);
  }
  if (emit_object(p, &obj, &obj2, er)) {
    be_program_free(p);
    return NULL;
  }
  if (cache) {
    double t5 = tl_now_ms();
    cache_store(dir, path, &id, obj, obj2);
    p->stats.cache_ms += tl_now_ms() - t5;
  }
  double t6 = tl_now_ms();
  if (jit_link(p, obj, obj2, er)) {
    be_program_free(p);
    return NULL;
  }
  p->stats.jit_ms = tl_now_ms() - t6;
  p->stats.total_ms = tl_now_ms() - t0;
  return p;
}

const be_stats *be_program_stats(const be_program *p) { return &p->stats; }
const tl_graph *be_program_graph(const be_program *p) { return p->g; }

void be_program_free(be_program *p) {
  if (!p) return;
  pool_stop(&p->pool);
  if (p->jd) jd_give(p->jd);
  be_plan_free(&p->plan);
  tl_free(p->planned_syms);
  tl_free(p->syms);
  tl_free(p->offs);
  tl_free(p->arena);
  tl_free(p->bufs);
  tl_free(p->out_dims);
  tl_free(p);
}

/* ---- run ------------------------------------------------------------------- */

/* Large buffers on transparent huge pages (2 MiB aligned, MADV_HUGEPAGE):
 * a fresh 40 MB output otherwise takes ~10^4 page faults, which cost as
 * much as the kernel that fills it. */
enum { BE_HUGE = 1 << 21 };

static void *alloc_big(size_t bytes) {
  if (bytes < 2 * (size_t)BE_HUGE) return tl_xaligned_alloc(64, (bytes + 63) & ~(size_t)63);
  size_t sz = (bytes + BE_HUGE - 1) & ~(size_t)(BE_HUGE - 1);
  void *q = tl_xaligned_alloc(BE_HUGE, sz);
#ifdef MADV_HUGEPAGE
  if (q) madvise(q, sz, MADV_HUGEPAGE);
#endif
  return q;
}

/* Temporaries share one arena; a buffer's bytes are reused once its last
 * reader has run (first fit over the kernel order). Planned again only when
 * the symbol sizes change. */
static int plan_memory(be_program *p, tl_error *er) {
  const be_plan *pl = &p->plan;
  const tl_graph *g = p->g;
  int nb = pl->nbufs;
  if (!p->offs) { /* kept by the program: a later unwind must not free it */
    size_t *o = tl_xcalloc((size_t)nb + 1, sizeof *o);
    tl_keep(o);
    p->offs = o;
  }
  int *first = tl_xmalloc(((size_t)nb + 1) * sizeof *first), *last = tl_xmalloc(((size_t)nb + 1) * sizeof *last);
  size_t *size = tl_xcalloc((size_t)nb + 1, sizeof *size);
  for (int b = 0; b < nb; b++) first[b] = last[b] = -1;
  for (int k = 0; k < pl->nks; k++) {
    const be_kern *kk = &pl->ks[k];
    /* a one-pass group's kernels run interleaved, block by block: every
     * buffer one of them touches is live over the whole group */
    bool grp = kk->pass_hi > kk->pass_lo;
    int lo = grp ? kk->pass_lo : k, hi = grp ? kk->pass_hi : k;
    if (kk->out >= 0) {
      if (first[kk->out] < 0) first[kk->out] = lo;
      if (last[kk->out] < hi) last[kk->out] = hi;
    }
    for (int r = 0; r < kk->nreads; r++) {
      if (last[kk->reads[r]] < hi) last[kk->reads[r]] = hi;
      if (first[kk->reads[r]] < 0) first[kk->reads[r]] = lo; /* what a control kernel writes */
    }
    if (grp && k == kk->pass_lo) first[kk->pass_part] = lo, last[kk->pass_part] = hi;
  }
  for (int b = 0; b < nb; b++) {
    const be_buf *bb = &pl->bufs[b];
    if (bb->kind != BE_BUF_TEMP) continue;
    tl_type t = {.dtype = bb->dtype, .rank = bb->rank};
    memcpy(t.dims, bb->dims, sizeof t.dims);
    int64_t dims[TL_MAX_RANK];
    if (tl_concrete_dims(g, &t, p->syms, dims, TL_EMSG(er))) {
      tl_free(first); tl_free(last); tl_free(size);
      return tl_fail_kind(er, TL_BAD_INPUT);
    }
    uint64_t bytes = tl_dtype_size((tl_dtype)bb->dtype);
    for (int i = 0; i < bb->rank; i++) {
      if (dims[i] && bytes > (uint64_t)TL_TENSOR_MAX_BYTES / (uint64_t)dims[i]) {
        tl_fail(er, TL_BAD_INPUT, "backend: an intermediate exceeds %lld bytes", (long long)TL_TENSOR_MAX_BYTES);
        tl_free(first); tl_free(last); tl_free(size);
        return -1;
      }
      bytes *= (uint64_t)dims[i];
    }
    size[b] = ((size_t)bytes + 63) & ~(size_t)63;
  }
  /* first fit: place buffers in order of first write, avoiding overlap
   * with every placed buffer whose live range intersects */
  size_t total = 0;
  int *placed = tl_xmalloc(((size_t)nb + 1) * sizeof *placed);
  int np = 0;
  for (int k = 0; k < pl->nks; k++)
    for (int b = 0; b < nb; b++) {
      if (pl->bufs[b].kind != BE_BUF_TEMP || first[b] != k) continue;
      size_t off = 0;
      bool moved = true;
      while (moved) {
        moved = false;
        for (int i = 0; i < np; i++) {
          int q = placed[i];
          bool overlap_t = !(last[q] < first[b] || last[b] < first[q]);
          bool overlap_m = off < p->offs[q] + size[q] && p->offs[q] < off + size[b];
          if (overlap_t && overlap_m) {
            off = p->offs[q] + size[q];
            moved = true;
          }
        }
      }
      p->offs[b] = off;
      placed[np++] = b;
      if (off + size[b] > total) total = off + size[b];
    }
  tl_free(placed);
  tl_free(first);
  tl_free(last);
  tl_free(size);
  if (total > p->arena_size || !p->arena) {
    tl_free(p->arena);
    p->arena = NULL;
    p->arena = alloc_big(total ? total : 64);
    tl_keep(p->arena);
    if (!p->arena) {
      p->arena_size = 0;
      tl_fail(er, TL_OUT_OF_MEMORY, "backend: out of memory for %zu bytes of intermediates", total);
      return -1;
    }
    p->arena_size = total;
  }
  p->stats.arena_bytes = total;
  return 0;
}

/* As tl_tensor_new, but every element is written by a kernel, so no zero
 * fill; the data is malloc-family memory the caller's tl_tensor_free frees. */
static tl_tensor *new_output(tl_dtype dt, int rank, const int64_t *dims, tl_error *er) {
  uint64_t bytes = tl_dtype_size(dt);
  for (int i = 0; i < rank; i++) {
    if (dims[i] && bytes > (uint64_t)TL_TENSOR_MAX_BYTES / (uint64_t)dims[i]) {
      tl_fail(er, TL_BAD_INPUT, "backend: an output exceeds %lld bytes", (long long)TL_TENSOR_MAX_BYTES);
      return NULL;
    }
    bytes *= (uint64_t)dims[i];
  }
  if (bytes >= (1u << 20)) {
    void *data = alloc_big((size_t)bytes);
    tl_tensor *t = data ? tl_tensor_wrap(dt, rank, dims, data) : NULL;
    if (t) {
      t->owns = true;
      return t;
    }
    tl_free(data);
  }
  tl_tensor *t = tl_tensor_new(dt, rank, dims, TL_EMSG(er));
  if (!t) tl_fail_kind(er, TL_BAD_INPUT);
  return t;
}

/* Binds the symbols from the inputs; when their sizes differ from the last
 * run's, plans the temporaries again and computes the outputs' dims. */
static int prepare(be_program *p, tl_tensor *const *inputs, const int64_t *sym_values, tl_error *er) {
  const tl_graph *g = p->g;
  const be_plan *pl = &p->plan;
  int ns = g->nsyms;
  if (!p->syms) {
    /* all four first, then kept by the program (util/alloc.h: an unwind
     * must not leave it pointing at freed blocks) */
    int64_t *syms = tl_xcalloc((size_t)ns + 1, sizeof *syms);
    int64_t *planned = tl_xcalloc((size_t)ns + 1, sizeof *planned);
    void **bufs = tl_xcalloc((size_t)pl->nbufs + 1, sizeof *bufs);
    void *out_dims = tl_xcalloc((size_t)g->noutputs + 1, sizeof *p->out_dims);
    tl_keep(syms);
    tl_keep(planned);
    tl_keep(bufs);
    tl_keep(out_dims);
    p->syms = syms;
    p->planned_syms = planned;
    p->bufs = bufs;
    p->out_dims = out_dims;
  }
  for (int s = 0; s < ns; s++) p->syms[s] = sym_values ? sym_values[s] : -1;
  for (int i = 0; i < g->ninputs; i++)
    if (!inputs[i]) {
      tl_fail(er, TL_BAD_INPUT, "input '%s' is missing", g->names[g->nodes[g->inputs[i]].name]);
      return -1;
    }
  if (tl_bind_inputs(g, inputs, p->syms, TL_EMSG(er))) return tl_fail_kind(er, TL_BAD_INPUT);
  if (!p->planned || memcmp(p->syms, p->planned_syms, (size_t)ns * sizeof *p->syms)) {
    p->planned = 0;
    if (plan_memory(p, er)) return -1;
    for (int i = 0; i < g->noutputs; i++) {
      const be_buf *b = &pl->bufs[pl->out_buf[i]];
      tl_type t = {.dtype = b->dtype, .rank = b->rank};
      memcpy(t.dims, b->dims, sizeof t.dims);
      if (tl_concrete_dims(g, &t, p->syms, p->out_dims[i], TL_EMSG(er))) return tl_fail_kind(er, TL_BAD_INPUT);
    }
    memcpy(p->planned_syms, p->syms, (size_t)ns * sizeof *p->syms);
    p->planned = 1;
  }
  return 0;
}

/* Points the plan's buffers at inputs, outputs and the arena and runs the
 * kernels; -1 with the failing op's message on a run-time error. */
static int execute(be_program *p, tl_tensor *const *inputs, tl_tensor *const *outputs, int fresh, tl_error *er) {
  const tl_graph *g = p->g;
  const be_plan *pl = &p->plan;
  for (int b = 0; b < pl->nbufs; b++) {
    const be_buf *bb = &pl->bufs[b];
    switch (bb->kind) {
    case BE_BUF_INPUT: p->bufs[b] = inputs[bb->index]->data; break;
    case BE_BUF_OUTPUT: p->bufs[b] = outputs[bb->index]->data; break;
    case BE_BUF_TEMP: p->bufs[b] = p->arena + p->offs[b]; break;
    default: p->bufs[b] = NULL;
    }
  }
  if (p->threads > 1 && !p->pool.started && pool_start(&p->pool)) p->threads = 1;
  be_frame f = {p->bufs, p->syms, 0, fresh};
  int32_t rc = p->entry(&f, p->threads > 1 ? pool_par : NULL, &p->pool);
  if (rc) return be_run_error(g, rc, er);
  return 0;
}

int be_run(be_program *p, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor **outputs,
           tl_error *er) {
  const tl_graph *g = p->g;
  const be_plan *pl = &p->plan;
  for (int i = 0; i < g->noutputs; i++) outputs[i] = NULL;
  if (prepare(p, inputs, sym_values, er)) return -1;
  for (int i = 0; i < g->noutputs; i++) {
    const be_buf *b = &pl->bufs[pl->out_buf[i]];
    if (!(outputs[i] = new_output((tl_dtype)b->dtype, b->rank, p->out_dims[i], er))) {
      for (int j = 0; j < i; j++) {
        tl_tensor_free(outputs[j]);
        outputs[j] = NULL;
      }
      return -1;
    }
  }
  if (execute(p, inputs, outputs, 1, er)) {
    for (int i = 0; i < g->noutputs; i++) {
      tl_tensor_free(outputs[i]);
      outputs[i] = NULL;
    }
    return -1;
  }
  return 0;
}

static bool overlap(const tl_tensor *a, const tl_tensor *b) {
  size_t na = (size_t)a->numel * tl_dtype_size((tl_dtype)a->dtype);
  size_t nb = (size_t)b->numel * tl_dtype_size((tl_dtype)b->dtype);
  const char *pa = a->data, *pb = b->data;
  return na && nb && pa < pb + nb && pb < pa + na;
}

int be_run_into(be_program *p, tl_tensor *const *inputs, const int64_t *sym_values,
                tl_tensor *const *outputs, tl_error *er) {
  const tl_graph *g = p->g;
  const be_plan *pl = &p->plan;
  if (prepare(p, inputs, sym_values, er)) return -1;
  for (int i = 0; i < g->noutputs; i++) {
    const tl_tensor *o = outputs[i];
    const be_buf *b = &pl->bufs[pl->out_buf[i]];
    const char *name = g->names[g->outputs[i].name];
    bool same = o && o->dtype == b->dtype && o->rank == b->rank &&
                !memcmp(o->dims, p->out_dims[i], (size_t)b->rank * sizeof *o->dims);
    if (!same || (!o->data && o->numel > 0)) {
      char want[256];
      tl_type ty = {.dtype = b->dtype, .rank = b->rank};
      memcpy(ty.dims, p->out_dims[i], sizeof ty.dims);
      tl_fail(er, TL_BAD_INPUT, "output %d ('%s') is %s; the buffer given %s", i, name,
               tl_type_str(NULL, &ty, want, sizeof want), same ? "has no data" : "does not match");
      return -1;
    }
    /* kernels read inputs after writing outputs, and outputs after
     * writing them: caller buffers must be separate */
    for (int j = 0; j < g->ninputs; j++)
      if (overlap(o, inputs[j])) {
        tl_fail(er, TL_BAD_INPUT, "output %d ('%s') overlaps input '%s': a compiled program needs separate "
                 "output buffers", i, name, g->names[g->nodes[g->inputs[j]].name]);
        return -1;
      }
    for (int j = 0; j < i; j++)
      if (overlap(o, outputs[j])) {
        tl_fail(er, TL_BAD_INPUT, "outputs %d ('%s') and %d ('%s') share memory", j,
                 g->names[g->outputs[j].name], i, name);
        return -1;
      }
  }
  return execute(p, inputs, outputs, 0, er);
}
