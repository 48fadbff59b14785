/* be_jit_share.c - programs share one LLJIT (a JITDylib each, reused once
 * freed) and a pool of target machines (backend/jit.c). Checks that
 * programs alive at the same time keep their own code (every one defines
 * tlk_main), that a program compiled into a reused JITDylib runs its own
 * code and not the freed one's, and that two threads compiling, running
 * and freeing at once get the same results as one thread. Compiled outputs
 * of one graph are bit-identical run to run, so they are compared exactly. */
#include "backend/backend.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NG = 3, ROUNDS = 6 };
static const char *const names[NG] = {"xent.tg", "attention.tg", "gelu.tg"};

typedef struct share_case {
  tl_graph *g;
  int64_t syms[8];
  tl_tensor *in[8];
  tl_tensor *ref[8]; /* the first compiled program's outputs */
} share_case;

static be_options no_cache(void) {
  be_options o = be_options_default();
  o.use_cache = 0;
  return o;
}

/* runs p on c's inputs; 0 iff every output equals c->ref bit for bit */
static int same_as_ref(be_program *p, share_case *c, const char *what) {
  tl_error err = {0};
  tl_tensor *out[8] = {0};
  int bad = 0;
  if (be_run(p, c->in, c->syms, out, &err)) {
    printf("FAIL jit share %s: %s\n", what, err.msg);
    return 1;
  }
  for (int i = 0; i < c->g->noutputs; i++) {
    size_t bytes = (size_t)out[i]->numel * tl_dtype_size((tl_dtype)out[i]->dtype);
    if (out[i]->numel != c->ref[i]->numel || memcmp(out[i]->data, c->ref[i]->data, bytes)) {
      printf("FAIL jit share %s: output %d differs from the first program's\n", what, i);
      bad = 1;
    }
    tl_tensor_free(out[i]);
  }
  return bad;
}

typedef struct worker_arg {
  share_case *c;
  int fails;
} worker_arg;

static void *worker(void *arg) {
  worker_arg *w = arg;
  be_options o = no_cache();
  char what[64];
  tl_error err = {0};
  for (int r = 0; r < ROUNDS; r++) {
    be_program *p = be_compile(w->c->g, &o, &err);
    snprintf(what, sizeof what, "thread round %d", r);
    if (!p) {
      printf("FAIL jit share %s: %s\n", what, err.msg);
      w->fails++;
      continue;
    }
    w->fails += same_as_ref(p, w->c, what);
    be_program_free(p);
  }
  return NULL;
}

int be_jit_share_tests(const char *srcdir) {
  share_case cs[NG];
  memset(cs, 0, sizeof cs);
  be_program *p[NG] = {0};
  be_options o = no_cache();
  tl_error err = {0};
  int bad = 0;
  for (int k = 0; k < NG; k++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/examples/%s", srcdir, names[k]);
    size_t len;
    char *src = tl_read_file(path, &len, TL_EMSG(&err));
    if (!src) {
      printf("FAIL jit share: %s\n", err.msg);
      bad = 1;
      goto done;
    }
    tl_diag d;
    tl_diag_init(&d, path, src, len);
    cs[k].g = tl_tg_parse(src, len, &d);
    tl_diag_free(&d);
    tl_free(src);
    if (!cs[k].g || cs[k].g->nsyms > 8 || cs[k].g->ninputs > 8 || cs[k].g->noutputs > 8) {
      printf("FAIL jit share: %s does not parse or is too wide for this test\n", path);
      bad = 1;
      goto done;
    }
    for (int s = 0; s < cs[k].g->nsyms; s++) cs[k].syms[s] = 7 + s;
    if (tl_random_inputs(cs[k].g, cs[k].in, cs[k].syms, 5 + (uint64_t)k, TL_EMSG(&err))) {
      printf("FAIL jit share: inputs: %s\n", err.msg);
      bad = 1;
      goto done;
    }
  }
  /* every program alive at once; the first runs give the references */
  for (int k = 0; k < NG; k++) {
    p[k] = be_compile(cs[k].g, &o, &err);
    if (!p[k] || be_run(p[k], cs[k].in, cs[k].syms, cs[k].ref, &err)) {
      printf("FAIL jit share: %s: %s\n", names[k], err.msg);
      bad = 1;
      goto done;
    }
  }
  /* the references are right: they match the interpreter's shapes */
  for (int k = 0; k < NG; k++) {
    tl_tensor *iout[8] = {0};
    if (tl_interp_run(cs[k].g, cs[k].in, cs[k].syms, iout, TL_EMSG(&err))) {
      printf("FAIL jit share: interpreter on %s: %s\n", names[k], err.msg);
      bad = 1;
    }
    for (int i = 0; i < cs[k].g->noutputs; i++) {
      if (iout[i] && iout[i]->numel != cs[k].ref[i]->numel) {
        printf("FAIL jit share: %s output %d has %lld elements, the interpreter's %lld\n", names[k], i,
               (long long)cs[k].ref[i]->numel, (long long)iout[i]->numel);
        bad = 1;
      }
      tl_tensor_free(iout[i]);
    }
  }
  /* free the middle one: its JITDylib goes to the next compile, which must
   * run its own code; the others keep theirs */
  be_program_free(p[1]);
  p[1] = be_compile(cs[2].g, &o, &err);
  if (!p[1]) {
    printf("FAIL jit share: recompile: %s\n", err.msg);
    bad = 1;
    goto done;
  }
  bad |= same_as_ref(p[1], &cs[2], "gelu in a reused JITDylib");
  bad |= same_as_ref(p[0], &cs[0], "xent after another program was freed");
  bad |= same_as_ref(p[2], &cs[2], "gelu beside its twin");
  be_program_free(p[1]);
  p[1] = be_compile(cs[1].g, &o, &err);
  if (!p[1]) {
    printf("FAIL jit share: recompile: %s\n", err.msg);
    bad = 1;
    goto done;
  }
  bad |= same_as_ref(p[1], &cs[1], "attention compiled again");
  /* two threads compiling, running and freeing at once */
  {
    pthread_t th[2];
    worker_arg wa[2] = {{&cs[0], 0}, {&cs[1], 0}};
    int started[2] = {0, 0};
    for (int t = 0; t < 2; t++) started[t] = pthread_create(&th[t], NULL, worker, &wa[t]) == 0;
    for (int t = 0; t < 2; t++)
      if (started[t]) pthread_join(th[t], NULL);
    if (!started[0] || !started[1]) {
      printf("FAIL jit share: cannot start threads\n");
      bad = 1;
    }
    bad |= wa[0].fails || wa[1].fails;
  }
  bad |= same_as_ref(p[2], &cs[2], "gelu after the threads");
done:
  for (int k = 0; k < NG; k++) {
    be_program_free(p[k]);
    if (!cs[k].g) continue;
    for (int i = 0; i < cs[k].g->ninputs; i++) tl_tensor_free(cs[k].in[i]);
    for (int i = 0; i < cs[k].g->noutputs; i++) tl_tensor_free(cs[k].ref[i]);
    tl_graph_free(cs[k].g);
  }
  printf("jit share: %s\n", bad ? "FAILED" : "ok");
  return bad;
}
