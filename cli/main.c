/* cli/main.c - the `tlaloc` program: one subcommand per job. run, infer,
 * fmt, opt, prove and dot are here; the others are in cli/cmd_*.c (cli.h).
 *
 * Exit status: 0 success, 1 a check said no, 2 bad input (the message says
 * where). The library never exits; only this file does. */
#include "cli/cli.h"

#include "backend/backend.h"
#include "backend/blas.h"
#include "engine/engine.h"
#include "extract/extract.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_CHECK 1
#define EXIT_BAD 2

static void usage(FILE *f) {
  fprintf(f,
          "usage: tlaloc COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  run G.tg [--in NAME=F.npy]... [--dim SYM=SIZE]... [--random SEED]\n"
          "           [--out DIR] [--save-inputs DIR] [--engine NAME | --interp]\n"
          "           [--device cpu|gpu|gpu-sim|auto] [--stats] [-O0|-O1|-O2|-O3]\n"
          "                                      compile (or interpret) a graph, print outputs\n"
          "  compile G.tg -o G.o [--header G.h] [--name NAME] [-O0|-O1|-O2|-O3]\n"
          "                                      ahead-of-time object for use from C\n"
          "  compile G.tg --target ptx -o G.ptx [--header G.h [--launcher G_launch.c]] [--arch sm_90]\n"
          "                                      GPU kernels and a C launcher (CUDA driver only)\n"
          "  infer G.tg                          print each named value's dtype and shape\n"
          "  opt G.tg [--rules PATH]... [--phase RULESETS]... [--limit K=V,...]\n"
          "           [--scheduler backoff|simple] [--cost EXPR] [--extract tree|dag|exact]\n"
          "           [--time-limit S] [--plugin F.so]... [--explain] [--stats] [-o OUT.tg]\n"
          "                                      saturate with rules, print the best program\n"
          "  prove A.tg B.tg [--rules PATH]... [--limit K=V,...]\n"
          "                                      prove the outputs equal, with the rewrites\n"
          "  grad G.tg [--wrt IN,...] [--of OUT,...] [--vjp | --jvp] [--with-outputs] [-o OUT.tg]\n"
          "                                      the gradient (vjp, jvp) graph of a graph\n"
          "  check-rules F.rw... [--seed N] [--trials N]\n"
          "                                      test every rule on random inputs\n"
          "  extract E.json [--extract tree|dag|exact] [--time-limit S] [--json]\n"
          "                                      extract from a serialized e-graph\n"
          "  calibrate [--quick] [-o PATH]       measure this machine for the time model\n"
          "  cost-report G.tg [--dim SYM=SIZE]... [--runs N] [--time-limit S] [-O0|-O1|-O2|-O3]\n"
          "                                      predicted vs measured time, per kernel and in total\n"
          "  dot G.tg [--rules PATH]... [--saturate]\n"
          "                                      the graph's e-graph as Graphviz\n"
          "  fmt G.tg                            print the graph in canonical form\n"
          "  engines                             the engines that run graphs (run --engine)\n"
          "  ops [--markdown]                    the op table: every op and its facts\n"
          "  help                                this text\n"
          "\n"
          "Exit status: 0 success, 1 a check failed, 2 bad input.\n");
}

/* Reads and parses a .tg file; prints diagnostics. NULL on failure. */
static tl_graph *load_graph(const char *path) { return tl_tg_load(path, stderr); }

static int cmd_fmt(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tlaloc fmt G.tg\n");
    return EXIT_BAD;
  }
  tl_graph *g = load_graph(argv[1]);
  if (!g) return EXIT_BAD;
  char *s = tl_tg_print(g);
  fputs(s, stdout);
  tl_free(s);
  tl_graph_free(g);
  return 0;
}

static int cmd_infer(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tlaloc infer G.tg\n");
    return EXIT_BAD;
  }
  tl_graph *g = load_graph(argv[1]);
  if (!g) return EXIT_BAD;
  char buf[256];
  for (int i = 0; i < g->ninputs; i++) {
    const tl_node *n = &g->nodes[g->inputs[i]];
    printf("in  %s: %s\n", g->names[n->name], tl_type_str(g, &n->type, buf, sizeof buf));
  }
  for (int i = 0; i < g->nlets; i++) {
    const tl_node *n = &g->nodes[g->lets[i]];
    printf("let %s: %s\n", g->names[n->name], tl_type_str(g, &n->type, buf, sizeof buf));
  }
  for (int i = 0; i < g->noutputs; i++) {
    const tl_node *n = &g->nodes[g->outputs[i].node];
    printf("out %s: %s\n", g->names[g->outputs[i].name], tl_type_str(g, &n->type, buf, sizeof buf));
  }
  tl_graph_free(g);
  return 0;
}

/* ---- printing tensors like numpy, summarised when large --------------- */

#define PRINT_FULL_LIMIT 1000
#define PRINT_EDGE 3

static void print_elem(const tl_tensor *t, int64_t i) {
  char b[64];
  switch (t->dtype) {
  case TL_BOOL: fputs(tl_tensor_get_i64(t, i) ? "True" : "False", stdout); break;
  case TL_I32: case TL_I64: printf("%lld", (long long)tl_tensor_get_i64(t, i)); break;
  default:
    tl_fmt_double(b, sizeof b, tl_tensor_get_f64(t, i), t->dtype == TL_F32);
    fputs(b, stdout);
  }
}

static void print_rec(const tl_tensor *t, int dim, int64_t base, int64_t stride, bool summarise,
                      int indent) {
  if (dim == t->rank) {
    print_elem(t, base);
    return;
  }
  int64_t n = t->dims[dim], inner = stride / (n ? n : 1);
  putchar('[');
  for (int64_t i = 0; i < n; i++) {
    if (summarise && n > 2 * PRINT_EDGE && i == PRINT_EDGE) {
      fputs(dim + 1 == t->rank ? "..., " : "...,\n", stdout);
      if (dim + 1 < t->rank) printf("%*s", indent + 1, "");
      i = n - PRINT_EDGE - 1;
      continue;
    }
    print_rec(t, dim + 1, base + i * inner, inner, summarise, indent + 1);
    if (i + 1 < n) {
      if (dim + 1 == t->rank) fputs(" ", stdout);
      else printf("\n%*s", indent + 1, "");
    }
  }
  putchar(']');
}

static void print_tensor(const char *name, const tl_tensor *t) {
  printf("%s: %s[", name, tl_dtype_name((tl_dtype)t->dtype));
  for (int i = 0; i < t->rank; i++) printf(i ? " %lld" : "%lld", (long long)t->dims[i]);
  printf("] =%s", t->rank ? "\n" : " ");
  int64_t stride = t->numel;
  int indent = 0;
  print_rec(t, 0, 0, stride, t->numel > PRINT_FULL_LIMIT, indent);
  putchar('\n');
}

/* ---- run -------------------------------------------------------------- */

static int parse_size(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || *end || end == s || x < 0) return -1;
  *v = x;
  return 0;
}

/* --device: the engine that runs on it (cpu is the LLVM CPU backend; auto
 * picks the CPU or the GPU for each run from the cost model's prediction) */
static const tl_engine *device_engine(const char *d) {
  if (!strcmp(d, "cpu")) return tl_engine_find("llvm", 0);
  if (!strcmp(d, "gpu") || !strcmp(d, "gpu-sim") || !strcmp(d, "auto")) return tl_engine_find(d, 0);
  return NULL;
}

static int write_npys(const char *dir, const tl_graph *g, tl_tensor *const *ts, bool inputs, char *err, size_t n) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    snprintf(err, n, "cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  int count = inputs ? g->ninputs : g->noutputs;
  for (int i = 0; i < count; i++) {
    tl_buf p = {0};
    const char *name = inputs ? g->names[g->nodes[g->inputs[i]].name] : g->names[g->outputs[i].name];
    tl_buf_printf(&p, "%s/%s.npy", dir, name);
    int w = tl_npy_write(p.s, ts[i], err, n);
    tl_free(p.s);
    if (w) return -1;
  }
  return 0;
}

typedef struct held_prog {
  const tl_engine *engine;
  void *prog;
} held_prog;

static void release_prog(void *arg) {
  held_prog *h = arg;
  if (h && h->prog) h->engine->free(h->prog);
}

static int cmd_run(int argc, char **argv) {
  const char *path = NULL, *outdir = NULL, *indir = NULL;
  bool have_seed = false, stats = false;
  const tl_engine *engine = tl_engine_find("llvm", 0);
  void *prog = NULL;
  held_prog *held = NULL;
  tl_cleanup *prog_cleanup = NULL;
  int opt_level = 0; /* the engine's default */
  uint64_t seed = 0;
  const char **in_names = tl_xcalloc((size_t)argc, sizeof *in_names);
  const char **in_files = tl_xcalloc((size_t)argc, sizeof *in_files);
  const char **dim_names = tl_xcalloc((size_t)argc, sizeof *dim_names);
  int64_t *dim_vals = tl_xcalloc((size_t)argc, sizeof *dim_vals);
  int nin = 0, ndims = 0, rc = EXIT_BAD;
  tl_graph *g = NULL;
  tl_tensor **inputs = NULL, **outputs = NULL;
  int64_t *syms = NULL;
  tl_error err = {0};

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (strcmp(a, "--in") == 0 && has_val) {
      const char *v = argv[++i], *eq = strchr(v, '=');
      if (!eq || eq == v || !eq[1]) {
        fprintf(stderr, "tlaloc run: --in expects NAME=FILE.npy, got '%s'\n", v);
        goto done;
      }
      in_names[nin] = tl_xstrndup(v, (size_t)(eq - v));
      in_files[nin++] = eq + 1;
    } else if (strcmp(a, "--dim") == 0 && has_val) {
      const char *v = argv[++i], *eq = strchr(v, '=');
      if (!eq || eq == v || parse_size(eq + 1, &dim_vals[ndims])) {
        fprintf(stderr, "tlaloc run: --dim expects SYM=SIZE (SIZE >= 0), got '%s'\n", v);
        goto done;
      }
      dim_names[ndims++] = tl_xstrndup(v, (size_t)(eq - v));
    } else if (strcmp(a, "--random") == 0 && has_val) {
      int64_t s;
      if (parse_size(argv[++i], &s)) {
        fprintf(stderr, "tlaloc run: --random expects a non-negative seed\n");
        goto done;
      }
      seed = (uint64_t)s;
      have_seed = true;
    } else if (strcmp(a, "--out") == 0 && has_val) {
      outdir = argv[++i];
    } else if (strcmp(a, "--interp") == 0) {
      engine = tl_engine_find("interp", 0);
    } else if (strcmp(a, "--engine") == 0 && has_val) {
      const char *v = argv[++i];
      if (!(engine = tl_engine_find(v, 0))) {
        char names[256];
        fprintf(stderr, "tlaloc run: --engine %s: no such engine (engines: %s)\n", v,
                tl_engine_names(names, sizeof names));
        goto done;
      }
    } else if (strcmp(a, "--device") == 0 && has_val) {
      const char *v = argv[++i];
      if (!(engine = device_engine(v))) {
        fprintf(stderr, "tlaloc run: --device is cpu, gpu, gpu-sim or auto, not '%s'\n", v);
        goto done;
      }
    } else if (strcmp(a, "--save-inputs") == 0 && has_val) {
      indir = argv[++i];
    } else if (strcmp(a, "--stats") == 0) {
      stats = true;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      opt_level = a[2] == '0' ? -1 : a[2] - '0'; /* -O0: no IR passes (tl_engine_opts) */
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "tlaloc run: unknown or incomplete option '%s'\n", a);
      goto done;
    } else if (!path) {
      path = a;
    } else {
      fprintf(stderr, "tlaloc run: more than one graph given ('%s', '%s')\n", path, a);
      goto done;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: tlaloc run G.tg [--in NAME=F.npy]... [--dim SYM=SIZE]... "
                    "[--random SEED] [--out DIR] [--save-inputs DIR] [--engine NAME | --interp | "
                    "--device cpu|gpu|gpu-sim|auto] [--stats] [-O0|-O1|-O2|-O3]\n");
    goto done;
  }
  g = load_graph(path);
  if (!g) goto done;
  inputs = tl_xcalloc((size_t)g->ninputs + 1, sizeof *inputs);
  outputs = tl_xcalloc((size_t)g->noutputs + 1, sizeof *outputs);
  syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int i = 0; i < g->nsyms; i++) syms[i] = -1;
  for (int k = 0; k < ndims; k++) {
    int s = -1;
    for (int i = 0; i < g->nsyms; i++)
      if (strcmp(g->syms[i], dim_names[k]) == 0) s = i;
    if (s < 0) {
      fprintf(stderr, "tlaloc run: --dim %s: the graph has no symbolic dim '%s'\n", dim_names[k], dim_names[k]);
      goto done;
    }
    syms[s] = dim_vals[k];
  }
  for (int k = 0; k < nin; k++) {
    int slot = -1;
    for (int i = 0; i < g->ninputs; i++)
      if (strcmp(g->names[g->nodes[g->inputs[i]].name], in_names[k]) == 0) slot = i;
    if (slot < 0) {
      fprintf(stderr, "tlaloc run: --in %s: the graph has no input '%s'\n", in_names[k], in_names[k]);
      goto done;
    }
    if (inputs[slot]) {
      fprintf(stderr, "tlaloc run: input '%s' is given twice\n", in_names[k]);
      goto done;
    }
    inputs[slot] = tl_npy_read(in_files[k], TL_EMSG(&err));
    if (!inputs[slot]) {
      fprintf(stderr, "tlaloc run: %s\n", err.msg);
      goto done;
    }
  }
  if (tl_bind_inputs(g, inputs, syms, TL_EMSG(&err))) {
    fprintf(stderr, "tlaloc run: %s\n", err.msg);
    goto done;
  }
  for (int i = 0; i < g->ninputs; i++) {
    if (inputs[i] || have_seed) continue;
    fprintf(stderr, "tlaloc run: input '%s' has no value (give --in %s=FILE.npy or --random SEED)\n",
            g->names[g->nodes[g->inputs[i]].name], g->names[g->nodes[g->inputs[i]].name]);
    goto done;
  }
  if (have_seed && tl_random_inputs(g, inputs, syms, seed, TL_EMSG(&err))) {
    fprintf(stderr, "tlaloc run: %s\n", err.msg);
    goto done;
  }
  if (indir && write_npys(indir, g, inputs, true, TL_EMSG(&err))) {
    fprintf(stderr, "tlaloc run: %s\n", err.msg);
    goto done;
  }
  tl_engine_opts eo = tl_engine_opts_default();
  eo.opt_level = opt_level;
  /* running out of memory in the run frees the program (what it kept
   * beyond the command's region: buffers grown at the first run, LLVM's) */
  held = tl_xcalloc(1, sizeof *held);
  prog_cleanup = tl_cleanup_push(release_prog);
  prog = engine->compile(g, &eo, &err);
  held->engine = engine;
  held->prog = prog;
  prog_cleanup->arg = held;
  if (!prog) {
    fprintf(stderr, "tlaloc run: %s: %s (--interp runs the interpreter)\n", path, err.msg);
    rc = err.status; /* bad input, or LLVM's or the driver's failure */
    goto done;
  }
  double t0 = tl_now_ms();
  int r = engine->run(prog, inputs, syms, outputs, &err);
  double run_ms = tl_now_ms() - t0;
  if (r) {
    fprintf(stderr, "tlaloc run: %s: %s\n", path, err.msg);
    rc = err.status;
    goto done;
  }
  if (!strcmp(engine->name, "auto")) { /* the placement, always: it is what auto is for */
    char *d = engine->describe(prog);
    fprintf(stderr, "placement: %s\n", d);
    tl_free(d);
  }
  if (stats) {
    char *d = engine->describe(prog);
    fprintf(stderr, "compile: %s\n", d);
    tl_free(d);
    fprintf(stderr, "run: %.3f ms (%s)\n", run_ms, engine->name);
  }
  if (outdir) {
    if (write_npys(outdir, g, outputs, false, TL_EMSG(&err))) {
      fprintf(stderr, "tlaloc run: %s\n", err.msg);
      goto done;
    }
  } else {
    for (int i = 0; i < g->noutputs; i++) print_tensor(g->names[g->outputs[i].name], outputs[i]);
  }
  rc = 0;
done:
  for (int k = 0; k < nin; k++) tl_free((void *)in_names[k]);
  for (int k = 0; k < ndims; k++) tl_free((void *)dim_names[k]);
  tl_free(in_names);
  tl_free(in_files);
  tl_free(dim_names);
  tl_free(dim_vals);
  if (g) {
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(inputs[i]);
    for (int i = 0; i < g->noutputs; i++) tl_tensor_free(outputs[i]);
  }
  tl_free(inputs);
  tl_free(outputs);
  tl_free(syms);
  if (prog_cleanup) tl_cleanup_pop(prog_cleanup);
  tl_free(held);
  if (prog) engine->free(prog);
  tl_graph_free(g);
  return rc;
}

/* ---- the optimizer: opt, prove, dot ---------------------------------- */

typedef struct opt_args {
  tl_opt_params p;
  const char **rules;
  int nrules;
  const char **plugins;
  int nplugins;
  bool extraction; /* an extraction option was given (opt only) */
  const char *files[2];
  int nfiles;
  const char *out;
  bool explain, stats, saturate;
} opt_args;

/* Parses the options shared by opt, prove and dot; the rest are files. */
static int parse_opt_args(const char *cmd, int argc, char **argv, opt_args *a, int want_files) {
  memset(a, 0, sizeof *a);
  a->p = tl_opt_defaults();
  a->rules = tl_xcalloc((size_t)argc + 1, sizeof *a->rules);
  a->plugins = tl_xcalloc((size_t)argc + 1, sizeof *a->plugins);
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    bool v = i + 1 < argc;
    if (strcmp(o, "--rules") == 0 && v) a->rules[a->nrules++] = argv[++i];
    else if (strcmp(o, "--phase") == 0 && v) {
      if (a->p.nphases == TL_OPT_MAX_PHASES) {
        fprintf(stderr, "tlaloc %s: at most %d phases\n", cmd, TL_OPT_MAX_PHASES);
        return -1;
      }
      a->p.phases[a->p.nphases++] = argv[++i];
    } else if (strcmp(o, "--limit") == 0 && v) {
      if (tl_opt_parse_limits(argv[++i], &a->p)) {
        fprintf(stderr, "tlaloc %s: --limit expects iters=N,nodes=N,time=SECONDS,mem=MIB, got '%s'\n", cmd, argv[i]);
        return -1;
      }
    } else if (strcmp(o, "--scheduler") == 0 && v) {
      const char *s = argv[++i];
      if (strcmp(s, "backoff") == 0) a->p.run.sched = EG_SCHED_BACKOFF;
      else if (strcmp(s, "simple") == 0) a->p.run.sched = EG_SCHED_SIMPLE;
      else {
        fprintf(stderr, "tlaloc %s: --scheduler is backoff or simple, not '%s'\n", cmd, s);
        return -1;
      }
    } else if (strcmp(o, "--cost") == 0 && v) {
      a->p.cost = argv[++i];
      a->extraction = true;
    } else if (strcmp(o, "--extract") == 0 && v) {
      a->p.extract = ex_kind_parse(argv[++i]);
      a->p.dag_max_classes = 0; /* asked for by name: no size fallback */
      a->extraction = true;
      if (a->p.extract == EX_KIND_COUNT) {
        fprintf(stderr, "tlaloc %s: --extract is tree, dag or exact, not '%s'\n", cmd, argv[i]);
        return -1;
      }
    } else if (strcmp(o, "--time-limit") == 0 && v) {
      char *end;
      a->p.extract_seconds = strtod(argv[++i], &end);
      a->extraction = true;
      if (*end || end == argv[i] || !(a->p.extract_seconds > 0)) {
        fprintf(stderr, "tlaloc %s: --time-limit expects seconds > 0, got '%s'\n", cmd, argv[i]);
        return -1;
      }
    } else if (strcmp(o, "--plugin") == 0 && v) {
      a->plugins[a->nplugins++] = argv[++i];
      a->extraction = true;
    } else if (strcmp(o, "-o") == 0 && v) a->out = argv[++i];
    else if (strcmp(o, "--explain") == 0) a->explain = true;
    else if (strcmp(o, "--stats") == 0) a->stats = true;
    else if (strcmp(o, "--saturate") == 0) a->saturate = true;
    else if (strcmp(o, "--check") == 0) a->p.check = true;
    else if (o[0] == '-' && o[1]) {
      fprintf(stderr, "tlaloc %s: unknown or incomplete option '%s'\n", cmd, o);
      return -1;
    } else if (a->nfiles < 2) a->files[a->nfiles++] = o;
    else {
      fprintf(stderr, "tlaloc %s: too many files\n", cmd);
      return -1;
    }
  }
  if (a->nfiles != want_files) {
    fprintf(stderr, "tlaloc %s: expects %d graph file%s (see tlaloc help)\n", cmd, want_files,
            want_files == 1 ? "" : "s");
    return -1;
  }
  if (a->extraction && strcmp(cmd, "opt") != 0) {
    fprintf(stderr, "tlaloc %s: --cost, --extract, --time-limit and --plugin apply to opt only\n", cmd);
    return -1;
  }
  a->p.rule_paths = a->rules;
  a->p.nrule_paths = a->nrules;
  a->p.plugins = a->plugins;
  a->p.nplugins = a->nplugins;
  return 0;
}

static tl_opt *make_opt(const char *cmd, opt_args *a) {
  char *err = tl_xmalloc(1 << 16);
  err[0] = 0;
  tl_opt *o = tl_opt_new(&a->p, err, 1 << 16);
  if (!o) fprintf(stderr, "%s%stlaloc %s: the optimizer cannot start (rule files, profile, plugins "
                          "or cost expression above)\n", err,
                  err[0] && err[strlen(err) - 1] != '\n' ? "\n" : "", cmd);
  tl_free(err);
  return o;
}

static int cmd_opt(int argc, char **argv) {
  opt_args a;
  int rc = EXIT_BAD;
  tl_graph *g = NULL, *best = NULL;
  tl_opt *o = NULL;
  if (parse_opt_args("opt", argc, argv, &a, 1)) goto done;
  a.p.explain = a.explain;
  if (!(g = load_graph(a.files[0])) || !(o = make_opt("opt", &a))) goto done;
  tl_error err = {0};
  best = tl_opt_graph(o, g, &err);
  if (!best) {
    fprintf(stderr, "tlaloc opt: %s: %s\n", a.files[0], err.msg);
    rc = err.status;
    goto done;
  }
  if (a.stats) tl_opt_print_stats(o, stderr);
  if (a.explain) tl_opt_print_explain(o, stderr);
  char *text = tl_tg_print(best);
  if (a.out) {
    FILE *f = fopen(a.out, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
      fprintf(stderr, "tlaloc opt: cannot write %s\n", a.out);
      tl_free(text);
      goto done;
    }
  } else {
    fputs(text, stdout);
  }
  tl_free(text);
  rc = 0;
done:
  tl_free(a.rules);
  tl_free(a.plugins);
  tl_graph_free(g);
  tl_graph_free(best);
  tl_opt_free(o);
  return rc;
}

static int cmd_prove(int argc, char **argv) {
  opt_args a;
  int rc = EXIT_BAD;
  tl_graph *g1 = NULL, *g2 = NULL;
  tl_opt *o = NULL;
  if (parse_opt_args("prove", argc, argv, &a, 2)) goto done;
  a.p.explain = true;
  if (!(g1 = load_graph(a.files[0])) || !(g2 = load_graph(a.files[1])) || !(o = make_opt("prove", &a)))
    goto done;
  char err[1024];
  int r = tl_opt_prove(o, g1, g2, stdout, err, sizeof err);
  if (r < 0) fprintf(stderr, "tlaloc prove: %s\n", err);
  else rc = r == 1 ? 0 : EXIT_CHECK;
  if (r >= 0 && a.stats) tl_opt_print_stats(o, stderr);
done:
  tl_free(a.rules);
  tl_free(a.plugins);
  tl_graph_free(g1);
  tl_graph_free(g2);
  tl_opt_free(o);
  return rc;
}

static int cmd_dot(int argc, char **argv) {
  opt_args a;
  int rc = EXIT_BAD;
  tl_graph *g = NULL;
  tl_opt *o = NULL;
  if (parse_opt_args("dot", argc, argv, &a, 1)) goto done;
  if (!(g = load_graph(a.files[0])) || !(o = make_opt("dot", &a))) goto done;
  char err[1024];
  if (tl_opt_dot(o, g, a.saturate, stdout, err, sizeof err)) fprintf(stderr, "tlaloc dot: %s\n", err);
  else rc = 0;
done:
  tl_free(a.rules);
  tl_free(a.plugins);
  tl_graph_free(g);
  tl_opt_free(o);
  return rc;
}

/* `tlaloc ops [--markdown]`: the op table (ir/ops.def), one row per op;
 * docs/ops.md holds the markdown form (tests/docs checks it is current). */
static int cmd_ops(int argc, char **argv) {
  bool md = argc == 2 && !strcmp(argv[1], "--markdown");
  if (argc > 2 || (argc == 2 && !md)) {
    fprintf(stderr, "usage: tlaloc ops [--markdown]\n");
    return EXIT_BAD;
  }
  const char *const *kinds = tl_kind_names;
  static const char *const rules[] = {"same", "numeric", "float", "bool", "cmp", "where", "sum", "first", "attr", "integer"};
  static const char *const signs[] = {"", "nonneg", "positive", "nonpos", "keep", "nonneg-if-nonneg", "custom"};
  static const char *const doms[] = {"all", "positive", "negative", "nonzero", "> -1", "(-1, 1)", "> 1"};
  _Static_assert(sizeof doms / sizeof *doms == TL_DOM_GT_ONE + 1, "a name per tl_domain");
  static const char *const grads[] = {"yes", "zero", "none"};
  const char *const *attrs = tl_attr_names;
  const char *head[] = {"op", "arity", "kind", "dtype", "attributes", "fusion", "in place", "libm", "sign",
                        "domain", "grad"};
  if (md) {
    printf("|");
    for (int i = 0; i < 11; i++) printf(" %s |", head[i]);
    printf("\n|");
    for (int i = 0; i < 11; i++) printf("---|");
    printf("\n");
  } else {
    printf("%-13s %-5s %-11s %-7s %-22s %-11s %-8s %-6s %-16s %-8s %s\n", head[0], head[1], head[2], head[3],
           head[4], head[5], head[6], head[7], head[8], head[9], head[10]);
  }
  for (int op = 0; op < TL_OP_COUNT; op++) {
    const tl_op_info *o = &tl_ops[op];
    char ar[8], at[160] = "", ip[16] = "";
    snprintf(ar, sizeof ar, "%d", o->arity);
    if (o->arity < 0) snprintf(ar, sizeof ar, "n");
    size_t l = 0;
    for (int b = 0; b < TL_NATTRS; b++)
      if (o->allowed_attrs & (1u << b))
        l += (size_t)snprintf(at + l, sizeof at - l, "%s%s%s", l ? " " : "", attrs[b],
                              o->required_attrs & (1u << b) ? "!" : "");
    if (o->inplace & TL_INPLACE_ROWS) snprintf(ip, sizeof ip, "rows");
    else if (o->inplace) snprintf(ip, sizeof ip, "elements");
    char gr[32];
    /* control flow: gradient functions (grad/transform.c); a loop's replay
     * its body (none with :stack) */
    snprintf(gr, sizeof gr, "%s", o->kind != TL_KIND_CONTROL ? grads[o->grad] : op == TL_OP_LOOP ? "replay" : "functions");
    for (int k = 0; k < 8; k++) /* the operands that never carry one (NOGRAD) */
      if ((o->nograd >> k) & 1) snprintf(gr + strlen(gr), sizeof gr - strlen(gr), ", not %d", k);
    const char *cells[] = {o->name, ar, kinds[o->kind], rules[o->dtype_rule], at, tl_fuse_class_names[o->fuse], ip,
                           o->math ? o->math : "", signs[o->sign], doms[o->domain], gr};
    if (md) {
      printf("|");
      for (int i = 0; i < 11; i++) printf(i == 0 ? " `%s` |" : " %s |", cells[i]);
      printf("\n");
    } else {
      printf("%-13s %-5s %-11s %-7s %-22s %-11s %-8s %-6s %-16s %-8s %s\n", cells[0], cells[1], cells[2],
             cells[3], cells[4], cells[5], cells[6], cells[7], cells[8], cells[9], cells[10]);
    }
  }
  return 0;
}

/* `tlaloc engines`: the engines `run --engine` and the C API can use. */
static int cmd_engines(int argc, char **argv) {
  (void)argv;
  if (argc != 1) {
    fprintf(stderr, "usage: tlaloc engines\n");
    return EXIT_BAD;
  }
  for (int i = 0; tl_engine_at(i); i++) printf("%-8s %s\n", tl_engine_at(i)->name, tl_engine_at(i)->summary);
  return 0;
}

static int dispatch(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_BAD;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (strcmp(cmd, "infer") == 0) return cmd_infer(argc - 1, argv + 1);
  if (strcmp(cmd, "fmt") == 0) return cmd_fmt(argc - 1, argv + 1);
  if (strcmp(cmd, "opt") == 0) return cmd_opt(argc - 1, argv + 1);
  if (strcmp(cmd, "compile") == 0) return cli_cmd_compile(argc - 1, argv + 1);
  if (strcmp(cmd, "check-rules") == 0) return cli_cmd_check_rules(argc - 1, argv + 1);
  if (strcmp(cmd, "grad") == 0) return cli_cmd_grad(argc - 1, argv + 1);
  if (strcmp(cmd, "extract") == 0) return cli_cmd_extract(argc - 1, argv + 1);
  if (strcmp(cmd, "prove") == 0) return cmd_prove(argc - 1, argv + 1);
  if (strcmp(cmd, "calibrate") == 0) return cli_cmd_calibrate(argc - 1, argv + 1);
  if (strcmp(cmd, "cost-report") == 0) return cli_cmd_cost_report(argc - 1, argv + 1);
  if (strcmp(cmd, "dot") == 0) return cmd_dot(argc - 1, argv + 1);
  if (strcmp(cmd, "engines") == 0) return cmd_engines(argc - 1, argv + 1);
  if (strcmp(cmd, "ops") == 0) return cmd_ops(argc - 1, argv + 1);
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "tlaloc: unknown command '%s'\n", cmd);
  usage(stderr);
  return EXIT_BAD;
}

_Static_assert(CLI_EXIT_CHECK == TL_CHECK_FAILED && CLI_EXIT_BAD == TL_BAD_INPUT && CLI_EXIT_OOM == TL_OUT_OF_MEMORY &&
                   CLI_EXIT_INTERNAL == TL_INTERNAL && CLI_EXIT_BACKEND == TL_BACKEND_FAILED,
               "the exit statuses are tl_status's");

/* Every command runs in one region: running out of memory anywhere frees
 * what the command allocated and exits with CLI_EXIT_OOM after saying so.
 * TLALOC_FAIL_ALLOC=k fails the k-th allocation (the out-of-memory tests). */
int main(int argc, char **argv) {
  tl_alloc_tune(); /* outputs of repeated runs stay warm (util/alloc.h) */
  be_blas_tune();  /* GEMMs on the CPU's fastest OpenBLAS kernels (backend/blas.h) */
  const char *k = getenv("TLALOC_FAIL_ALLOC");
  if (k && *k) tl_alloc_fail_at(strtoull(k, NULL, 10));
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    fflush(stdout);
    fprintf(stderr, "tlaloc: out of memory (allocating %zu bytes)\n", r.failed);
    return CLI_EXIT_OOM;
  }
  int rc = dispatch(argc, argv);
  tl_region_end(&r);
  return rc;
}
