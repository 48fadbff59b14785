/* bench-gpu.c - the GPU backend's benchmarks that run through tlaloc:
 *
 *   compile  PTX compile time per example (the goal: <= 30 ms), needing no
 *            GPU: "first" is the example compiled by a fresh process (LLVM's
 *            own first-use costs included), "cold" the same compile in a
 *            process that has compiled another program before (no cache of
 *            any kind holds this program: plan, descriptions, LLVM IR,
 *            libdevice linked, optimised, PTX emitted), the minimum of the
 *            runs; its parts (build, lower, link, opt, emit) from that run.
 *   device   the kernels on the GPU through the gpu engine (only with a GPU):
 *            the fused elementwise chain and a loss (n = 10^8, f32), a
 *            column sum ([2^20 64] over axis 0), softmax /
 *            log_softmax over 4096 x 32768 against the device-to-device copy
 *            bandwidth measured in the same run. PyTorch's figures for the
 *            same shapes come from scripts/gpu-check.sh (bench/gpu/torch_bench.py),
 *            which also runs these through the AOT launchers where there is no
 *            LLVM (bench/gpu/launch_bench.c).
 *
 * usage: bench-gpu SOURCE_DIR [--smoke] [compile] [device]
 * (default: both; --smoke: one run per figure). Exit 1 when a compile
 * fails; the goal is reported, not enforced (the machine is shared). */
#include "gpu/gpu.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int smoke;

static tl_graph *load(const char *path) { return tl_tg_load(path, stderr); }

/* The first compile of path in a fresh process (a child): its total ms,
 * through a pipe; -1 on failure. */
static double first_in_process(const char *path) {
  int fd[2];
  if (pipe(fd)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    tl_graph *g = load(path);
    char err[2048];
    gpu_ptx_stats st;
    gpu_options o = gpu_options_default();
    char *p = g ? gpu_ptx(g, &o, NULL, &st, err, sizeof err) : NULL;
    double ms = p ? st.total_ms : -1;
    if (write(fd[1], &ms, sizeof ms) != sizeof ms) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  double ms = -1;
  if (read(fd[0], &ms, sizeof ms) != sizeof ms) ms = -1;
  close(fd[0]);
  waitpid(pid, NULL, 0);
  return ms;
}

static int bench_compile(const char *src) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "ls %s/examples/*.tg %s/bench/gpu/*.tg", src, src);
  FILE *ls = popen(cmd, "r");
  if (!ls) return 1;
  char path[4200];
  gpu_options o = gpu_options_default();
  char ldb[4096];
  const char *ld = gpu_libdevice_path(&o, ldb, sizeof ldb);
  printf("PTX compile time per program (%s, -O%d, %s)\n", gpu_arch(&o), o.opt_level,
         ld ? "libdevice linked where math is used" : "no libdevice: the project's own math");
  printf("%-22s %7s %9s %9s   %6s %6s %6s %6s %6s\n", "program", "kernels", "first ms", "cold ms", "build", "lower",
         "link", "opt", "emit");
  /* warm the process up on a program of its own: LLVM's first-use costs
   * and the pruned libdevice are then paid */
  tl_graph *w = load(strcat(strcpy(path, src), "/examples/gelu.tg"));
  char err[2048];
  tl_free(gpu_ptx(w, &o, NULL, NULL, err, sizeof err));
  tl_graph_free(w);
  int fails = 0, n = 0, under = 0, nrefused = 0;
  double sum = 0, worst = 0;
  while (fgets(path, sizeof path, ls)) {
    path[strcspn(path, "\n")] = 0;
    tl_graph *g = load(path);
    if (!g) {
      fails++;
      continue;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    double first = first_in_process(path); /* -1 where refused */
    gpu_ptx_stats best = {.total_ms = 1e300}, st;
    int refused = 0;
    for (int r = 0; r < (smoke ? 1 : 7) && !refused; r++) {
      char *p = gpu_ptx(g, &o, NULL, &st, err, sizeof err);
      if (!p) {
        /* without the CUDA toolkit the own math covers f32 exp, log, log1p
         * and tanh only: the others are refused, and that is no failure */
        if (!ld && strstr(err, "needs libdevice")) {
          printf("%-22s refused here: %.*s\n", base, (int)strcspn(err, "("), err);
          nrefused++;
        } else {
          printf("FAIL %s: %s\n", path, err);
          fails++;
        }
        refused = 1;
      } else {
        tl_free(p);
        if (st.total_ms < best.total_ms) best = st;
      }
    }
    if (refused) {
      tl_graph_free(g);
      continue;
    }
    printf("%-22s %7d %9.1f %9.1f   %6.1f %6.1f %6.1f %6.1f %6.1f%s\n", base, best.nkernels, first, best.total_ms,
           best.build_ms, best.lower_ms, best.link_ms, best.opt_ms, best.emit_ms, best.total_ms <= 30 ? "" : "  > 30");
    n++;
    sum += best.total_ms;
    if (best.total_ms > worst) worst = best.total_ms;
    under += best.total_ms <= 30;
    tl_graph_free(g);
  }
  pclose(ls);
  printf("cold compile: %d programs, mean %.1f ms, at most %.1f ms; %d of %d within the 30 ms goal\n", n,
         n ? sum / n : 0, worst, under, n);
  if (nrefused) printf("%d programs refused for want of libdevice (no CUDA toolkit here)\n", nrefused);
  return fails ? 1 : 0;
}

/* ---- on the GPU ------------------------------------------------------------------ */

static int bench_device(const char *src) {
  char why[512];
  if (!gpu_available(why, sizeof why)) {
    printf("device benchmarks skipped: %s\n", why);
    return 0;
  }
  static const struct { const char *file; int64_t sym; const char *what; } cases[] = {
    {"chain.tg", 100000000, "fused elementwise chain, n = 10^8 f32"},
    {"loss.tg", 100000000, "a loss, mean of (a - b)^2, n = 10^8 f32"},
    {"colsum.tg", 1 << 20, "a bias's gradient, sum over axis 0 of [2^20 64] f32"},
    {"softmax.tg", 0, "softmax 4096 x 32768 f32"},
    {"log_softmax.tg", 0, "log_softmax 4096 x 32768 f32"},
    {"attention.tg", 0, "attention t = 4096, d = 64 f32"},
  };
  int fails = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char path[4200];
    tl_error err = {0};
    snprintf(path, sizeof path, "%s/bench/gpu/%s", src, cases[i].file);
    tl_graph *g = load(path);
    gpu_options o = gpu_options_default();
    gpu_program *p = g ? gpu_compile(g, &o, &err) : NULL;
    if (!p) {
      printf("FAIL %s: %s\n", cases[i].what, g ? err.msg : "does not parse");
      fails++;
      tl_graph_free(g);
      continue;
    }
    int64_t syms[1] = {cases[i].sym};
    tl_tensor *in[4] = {0}, *out[4] = {0};
    if (tl_random_inputs(g, in, g->nsyms ? syms : NULL, 1, TL_EMSG(&err)) ||
        gpu_run(p, in, g->nsyms ? syms : NULL, out, &err)) {
      printf("FAIL %s: %s\n", cases[i].what, err.msg);
      fails++;
    } else {
      char *d = gpu_describe(p);
      printf("%s: %s\n", cases[i].what, d);
      tl_free(d);
    }
    for (int k = 0; k < 4; k++) {
      tl_tensor_free(in[k]);
      tl_tensor_free(out[k]);
    }
    gpu_program_free(p);
    tl_graph_free(g);
  }
  printf("(kernel times against the copy bandwidth: scripts/gpu-check.sh, which times the same kernels with CUDA "
         "events through their launchers)\n");
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-gpu SOURCE_DIR [--smoke] [compile] [device]\n");
    return 2;
  }
  int want_compile = 0, want_device = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--smoke")) smoke = 1;
    else if (!strcmp(argv[i], "compile")) want_compile = 1;
    else if (!strcmp(argv[i], "device")) want_device = 1;
    else {
      fprintf(stderr, "bench-gpu: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!want_compile && !want_device) want_compile = want_device = 1;
  int rc = 0;
  if (want_compile) rc |= bench_compile(argv[1]);
  if (want_device) rc |= bench_device(argv[1]);
  return rc;
}
