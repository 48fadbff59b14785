/* control.c - what call, cond, loop and scan do, once, for every engine.
 *
 * A runner says how to run one function of the graph's table (the
 * interpreter recurses into tl_interp_run; a compiled engine runs the
 * function's program); this file says which functions run, how often, on
 * what, and where their results go:
 *
 *   call  f(args)
 *   cond  (p ? then : else)(args): the branch not taken never runs
 *   loop  state = args; if cond(state) { do { state = body(state) } while
 *         (until ? !until(state) : cond(state)) }, at most :max bodies (one
 *         more is a run-time error naming the loop)
 *   scan  carry = args[:k]; for t < L: (carry, y_t) = body(carry, xs[t]);
 *         results: carry, then each y stacked along a new first dim
 *
 * A scalar condition is true when non-zero (NaN is true, as bool(nan) is
 * in Python). With a runner that writes into given buffers (run_into), a
 * loop's state and a scan's carries are double-buffered and each y_t is
 * written straight into its stacked result: no allocation per iteration
 * beyond the scalar conditions. */
#include "interp/interp.h"
#include "util/alloc.h"

#include <stdio.h>
#include <string.h>

/* A buffer that will receive values like t (same dtype and dims). */
static tl_tensor *like(const tl_ctl_runner *r, const tl_tensor *t, char *err, size_t n) {
  if (r->get) return r->get(r->ctx, t, err, n);
  return tl_tensor_new((tl_dtype)t->dtype, t->rank, t->dims, err, n);
}

static void free_all(tl_tensor **t, int n) {
  for (int i = 0; i < n; i++) {
    tl_tensor_free(t[i]);
    t[i] = NULL;
  }
}

/* Buffers from like() back to the runner. */
static void put_all(const tl_ctl_runner *r, tl_tensor **t, int n) {
  if (!r->put) {
    free_all(t, n);
    return;
  }
  for (int i = 0; i < n; i++) {
    if (t[i]) r->put(r->ctx, t[i]);
    t[i] = NULL;
  }
}

/* Runs predicate fn on state; *truth its value. */
static int predicate(const tl_ctl_runner *r, int32_t fn, tl_tensor *const *state, bool *truth, char *err, size_t n) {
  tl_tensor *p = NULL;
  if (r->run(r->ctx, fn, state, &p, err, n)) return -1;
  *truth = p->numel > 0 && tl_tensor_get_f64(p, 0) != 0;
  tl_tensor_free(p);
  return 0;
}

static int where(const tl_node *x, char *err, size_t n, const char *msg) {
  if (x->loc.line > 0)
    snprintf(err, n, "%s (at %d:%d): %s", tl_ops[x->op].name, x->loc.line, x->loc.col, msg);
  else
    snprintf(err, n, "%s: %s", tl_ops[x->op].name, msg);
  return -1;
}

/* A loop about to run its body a :max + 1'th time: the run-time error. */
static bool past_max(const tl_node *x, int64_t trips, char *err, size_t n) {
  if (x->attrs.trips < 0 || trips != x->attrs.trips) return false;
  char m[160];
  snprintf(m, sizeof m, "the loop did not end within its :max of %lld iterations", (long long)x->attrs.trips);
  where(x, err, n, m);
  return true;
}

static int run_loop(const tl_graph *g, const tl_node *x, tl_tensor *const *args, tl_tensor **res,
                    const tl_ctl_runner *r, char *err, size_t n) {
  int ns = x->ninputs;
  const tl_attrs *a = &x->attrs;
  bool until = (a->present & TL_A_UNTIL) != 0, go;
  tl_tensor **cur = tl_xcalloc((size_t)ns + 1, sizeof *cur);       /* the state (args until owned) */
  tl_tensor **bufs = tl_xcalloc(2 * (size_t)ns + 1, sizeof *bufs); /* run_into's two owned sets */
  for (int i = 0; i < ns; i++) cur[i] = args[i];
  int rc = predicate(r, a->fn[0], cur, &go, err, n), side = 0;
  int64_t trips = 0;
  bool owned = false; /* cur holds tensors of its own (run, not run_into) */
  while (rc == 0 && go) {
    if (past_max(x, trips, err, n)) {
      rc = -1;
      break;
    }
    if (r->run_into) {
      tl_tensor **dst = bufs + (size_t)side * ns;
      for (int i = 0; i < ns && rc == 0; i++)
        if (!dst[i] && !(dst[i] = like(r, args[i], err, n))) rc = -1;
      if (rc == 0) rc = r->run_into(r->ctx, a->fn[1], cur, dst, err, n);
      if (rc == 0) memcpy(cur, dst, (size_t)ns * sizeof *cur);
      side ^= 1;
    } else {
      tl_tensor **next = tl_xcalloc((size_t)ns + 1, sizeof *next);
      rc = r->run(r->ctx, a->fn[1], cur, next, err, n);
      if (owned) free_all(cur, ns);
      if (rc == 0) {
        memcpy(cur, next, (size_t)ns * sizeof *cur);
        owned = true;
      } else {
        owned = false;
      }
      tl_free(next);
    }
    trips++;
    if (rc == 0) {
      rc = predicate(r, a->fn[until ? 2 : 0], cur, &go, err, n);
      if (until) go = !go;
    }
  }
  for (int i = 0; i < ns; i++) {
    if (rc == 0) {
      bool from_bufs = r->run_into && trips > 0;
      /* hand over the buffer holding the result; copy a borrowed argument */
      if (from_bufs) {
        for (int s = 0; s < 2; s++)
          if (bufs[(size_t)s * ns + i] == cur[i]) bufs[(size_t)s * ns + i] = NULL;
        res[i] = cur[i];
      } else if (owned) {
        res[i] = cur[i];
      } else {
        res[i] = tl_tensor_copy(cur[i]);
      }
    } else if (owned && !r->run_into) {
      tl_tensor_free(cur[i]);
    }
  }
  put_all(r, bufs, 2 * ns);
  tl_free(bufs);
  tl_free(cur);
  return rc;
}

/* A loop with :stack: its body gives the next state, then the trip's
 * values, which are appended to growing buffers (the trip count is known
 * only at the end: no preallocated result). Each trip's state is the
 * runner's fresh tensors. */
static int run_stacked_loop(const tl_graph *g, const tl_node *x, tl_tensor *const *args, tl_tensor **res,
                            const tl_ctl_runner *r, char *err, size_t n) {
  int ns = x->ninputs, ny = (int)x->attrs.stack;
  const tl_attrs *a = &x->attrs;
  bool until = (a->present & TL_A_UNTIL) != 0, go;
  tl_tensor **cur = tl_xcalloc((size_t)ns + 1, sizeof *cur);
  tl_tensor **next = tl_xcalloc((size_t)(ns + ny) + 1, sizeof *next);
  char **buf = tl_xcalloc((size_t)ny + 1, sizeof *buf);
  size_t *cap = tl_xcalloc((size_t)ny + 1, sizeof *cap);
  tl_type *yt = tl_xcalloc((size_t)ny + 1, sizeof *yt); /* one trip's value: the result without its first dim */
  size_t *ybytes = tl_xcalloc((size_t)ny + 1, sizeof *ybytes);
  for (int i = 0; i < ns; i++) cur[i] = args[i];
  bool owned = false;
  int rc = 0;
  for (int k = 0; k < ny && rc == 0; k++) {
    tl_type t;
    memset(&t, 0, sizeof t);
    tl_attrs at = *a;
    at.out = ns + k;
    const tl_type **in = tl_xmalloc(((size_t)ns + 1) * sizeof *in);
    for (int i = 0; i < ns; i++) in[i] = &g->nodes[tl_node_inputs(g, x)[i]].type;
    rc = tl_infer_control(g, TL_OP_LOOP, &at, in, ns, &t, err, n);
    tl_free(in);
    yt[k] = t;
    yt[k].rank--;
    memmove(yt[k].dims, t.dims + 1, sizeof(int64_t) * (TL_MAX_RANK - 1));
  }
  int64_t trips = 0;
  if (rc == 0) rc = predicate(r, a->fn[0], cur, &go, err, n);
  while (rc == 0 && go) {
    if (past_max(x, trips, err, n)) {
      rc = -1;
      break;
    }
    rc = r->run(r->ctx, a->fn[1], cur, next, err, n);
    if (owned) free_all(cur, ns);
    owned = false;
    if (rc) break;
    memcpy(cur, next, (size_t)ns * sizeof *cur);
    owned = true;
    for (int k = 0; k < ny; k++) { /* append the trip's values */
      tl_tensor *y = next[ns + k];
      size_t sz = (size_t)y->numel * tl_dtype_size((tl_dtype)y->dtype);
      if (trips == 0) {
        ybytes[k] = sz;
        yt[k].rank = y->rank;
        memcpy(yt[k].dims, y->dims, sizeof y->dims);
      }
      if (sz != ybytes[k] && rc == 0) rc = where(x, err, n, "a per-trip result changed its size between trips");
      if (rc == 0 && (size_t)(trips + 1) * sz > cap[k]) {
        size_t c = cap[k] ? 2 * cap[k] : 16 * sz + 64;
        while (c < (size_t)(trips + 1) * sz) c *= 2;
        buf[k] = tl_xrealloc(buf[k], c);
        cap[k] = c;
      }
      if (rc == 0 && sz) memcpy(buf[k] + (size_t)trips * sz, y->data, sz);
      tl_tensor_free(y);
      next[ns + k] = NULL;
    }
    trips++;
    if (rc == 0) {
      rc = predicate(r, a->fn[until ? 2 : 0], cur, &go, err, n);
      if (until) go = !go;
    }
  }
  if (rc == 0 && trips == 0) /* no trip: the element shapes from the caller's symbols */
    for (int k = 0; k < ny && rc == 0; k++) {
      char e2[200];
      int64_t d[TL_MAX_RANK];
      if (tl_concrete_dims(g, &yt[k], r->syms, d, e2, sizeof e2)) rc = where(x, err, n, e2);
      else memcpy(yt[k].dims, d, sizeof d);
    }
  for (int k = 0; k < ny && rc == 0; k++) {
    int64_t d[TL_MAX_RANK];
    d[0] = trips;
    memcpy(d + 1, yt[k].dims, sizeof(int64_t) * (TL_MAX_RANK - 1));
    res[ns + k] = tl_tensor_new((tl_dtype)yt[k].dtype, yt[k].rank + 1, d, err, n);
    if (!res[ns + k]) rc = -1;
    else if (res[ns + k]->numel) memcpy(res[ns + k]->data, buf[k], (size_t)res[ns + k]->numel * tl_dtype_size((tl_dtype)yt[k].dtype));
  }
  for (int i = 0; i < ns; i++) {
    if (rc == 0) res[i] = owned ? cur[i] : tl_tensor_copy(cur[i]);
    else if (owned) tl_tensor_free(cur[i]);
  }
  if (rc) free_all(res + ns, ny);
  for (int k = 0; k < ny; k++) tl_free(buf[k]);
  tl_free(buf);
  tl_free(cap);
  tl_free(yt);
  tl_free(ybytes);
  tl_free(next);
  tl_free(cur);
  return rc;
}

int tl_control_bind_trips(const tl_graph *g, const tl_node *x, tl_tensor *const *res, int64_t *syms, char *err,
                          size_t n) {
  if (x->op != TL_OP_LOOP || !(x->attrs.present & TL_A_STACK) || !syms) return 0;
  int s = tl_dim_sym_id(x->attrs.tdim);
  int64_t trips = res[x->ninputs]->dims[0];
  if (syms[s] >= 0 && syms[s] != trips) {
    char m[200];
    snprintf(m, sizeof m, "ran %lld trips, but its :trips '%s' is %lld already", (long long)trips, g->syms[s],
             (long long)syms[s]);
    return where(x, err, n, m);
  }
  syms[s] = trips;
  return 0;
}

/* Element t of x along its first dim, as a view (no copy). */
static tl_tensor step_view(const tl_tensor *x, int64_t t) {
  tl_tensor v;
  memset(&v, 0, sizeof v);
  v.dtype = x->dtype;
  v.rank = (uint8_t)(x->rank - 1);
  memcpy(v.dims, x->dims + 1, sizeof(int64_t) * (TL_MAX_RANK - 1));
  v.numel = 1;
  for (int d = 0; d < v.rank; d++) v.numel *= v.dims[d];
  v.data = x->data ? (char *)x->data + (size_t)t * (size_t)v.numel * tl_dtype_size((tl_dtype)x->dtype) : NULL;
  return v;
}

static int run_scan(const tl_graph *g, const tl_node *x, tl_tensor *const *args, tl_tensor **res,
                    const tl_ctl_runner *r, char *err, size_t n) {
  const tl_attrs *a = &x->attrs;
  const tl_graph *f = g->fns->fn[a->fn[1]];
  int k = (int)a->carry, m = (a->present & TL_A_CONSTS) ? (int)a->consts : 0;
  int nin = x->ninputs, nx = nin - k - m, nout = f->noutputs, ny = nout - k;
  int64_t len = nx ? args[k + m]->dims[0] : a->length;
  tl_tensor *views = tl_xcalloc((size_t)nx + 1, sizeof *views);
  tl_tensor **in = tl_xcalloc((size_t)nin + 1, sizeof *in);
  tl_tensor **out = tl_xcalloc((size_t)nout + 1, sizeof *out);
  tl_tensor **bufs = tl_xcalloc(2 * (size_t)k + 1, sizeof *bufs); /* the carries' two buffers */
  tl_tensor *yview = tl_xcalloc((size_t)ny + 1, sizeof *yview);
  tl_tensor **yptr = tl_xcalloc((size_t)ny + 1, sizeof *yptr);
  for (int i = 0; i < k + m; i++) in[i] = args[i]; /* the consts stay, whole */
  for (int i = 0; i < ny; i++) res[k + i] = NULL;
  bool owned = false; /* in[0..k) are the scan's own (not the arguments) */
  int rc = 0, side = 0;
  for (int64_t t = 0; t < len && rc == 0; t++) {
    for (int i = 0; i < nx; i++) {
      views[i] = step_view(args[k + m + i], t);
      in[k + m + i] = &views[i];
    }
    if (t > 0 && r->run_into) {
      /* carries into the buffer not being read, ys into their rows */
      for (int i = 0; i < k && rc == 0; i++) {
        tl_tensor **b = &bufs[(size_t)side * k + i];
        if (!*b && !(*b = like(r, args[i], err, n))) rc = -1;
        out[i] = *b;
      }
      for (int i = 0; i < ny; i++) {
        yview[i] = step_view(res[k + i], t);
        yptr[i] = &yview[i];
        out[k + i] = yptr[i];
      }
      if (rc == 0) rc = r->run_into(r->ctx, a->fn[1], in, out, err, n);
      if (rc == 0) memcpy(in, out, (size_t)k * sizeof *in);
      side ^= 1;
      continue;
    }
    rc = r->run(r->ctx, a->fn[1], in, out, err, n);
    if (rc) break;
    if (t == 0)
      for (int i = 0; i < ny && rc == 0; i++) { /* the stacked results, now that y's dims are known */
        /* from the runner's pool where it has one: every row is written,
         * and a fresh buffer of megabytes faults its pages in on every run
         * (the staged engine puts control results back after a run) */
        tl_tensor proto = {0};
        proto.dtype = out[k + i]->dtype;
        proto.rank = (uint8_t)(out[k + i]->rank + 1);
        proto.dims[0] = len;
        memcpy(proto.dims + 1, out[k + i]->dims, sizeof(int64_t) * (TL_MAX_RANK - 1));
        proto.numel = len * out[k + i]->numel;
        if (!(res[k + i] = like(r, &proto, err, n))) rc = -1;
      }
    for (int i = 0; i < ny && rc == 0; i++) {
      size_t sz = (size_t)out[k + i]->numel * tl_dtype_size((tl_dtype)out[k + i]->dtype);
      if (sz) memcpy((char *)res[k + i]->data + (size_t)t * sz, out[k + i]->data, sz);
    }
    free_all(out + k, ny);
    if (owned) free_all(in, k);
    memcpy(in, out, (size_t)k * sizeof *in);
    owned = true;
    if (r->run_into) { /* from now on the carries live in bufs; these become side 1's */
      for (int i = 0; i < k; i++) bufs[(size_t)k + i] = in[i];
      owned = false;
      side = 0;
    }
  }
  if (rc == 0 && len == 0) { /* no step ran: the ys are empty, of the types the body gives these operands */
    int64_t *syms = tl_xmalloc(((size_t)f->nsyms + 1) * sizeof *syms);
    for (int s = 0; s < f->nsyms; s++) syms[s] = -1;
    for (int i = 0; i < nx; i++) {
      views[i] = step_view(args[k + m + i], 0);
      in[k + m + i] = &views[i];
    }
    rc = tl_bind_inputs(f, in, syms, err, n);
    for (int i = 0; i < ny && rc == 0; i++) {
      const tl_type *yt = &f->nodes[f->outputs[k + i].node].type;
      int64_t dims[TL_MAX_RANK] = {0};
      rc = tl_concrete_dims(f, yt, syms, dims + 1, err, n);
      if (rc == 0 && !(res[k + i] = tl_tensor_new((tl_dtype)yt->dtype, yt->rank + 1, dims, err, n))) rc = -1;
    }
    tl_free(syms);
  }
  for (int i = 0; i < k; i++) {
    if (rc) break;
    bool mine = owned;
    for (int s = 0; s < 2 && !mine; s++)
      if (bufs[(size_t)s * k + i] == in[i]) {
        bufs[(size_t)s * k + i] = NULL;
        mine = true;
      }
    res[i] = mine ? in[i] : tl_tensor_copy(in[i]);
  }
  if (rc) {
    if (owned) free_all(in, k);
    free_all(res + k, ny);
  }
  put_all(r, bufs, 2 * k);
  tl_free(bufs);
  tl_free(views);
  tl_free(in);
  tl_free(out);
  tl_free(yview);
  tl_free(yptr);
  return rc;
}

int tl_control_run(const tl_graph *g, const tl_node *x, tl_tensor *const *args, tl_tensor **results,
                   const tl_ctl_runner *r, char *err, size_t n) {
  const tl_attrs *a = &x->attrs;
  switch (x->op) {
  case TL_OP_CALL: return r->run(r->ctx, a->fn[0], args, results, err, n);
  case TL_OP_COND: {
    bool p = args[0]->numel > 0 && tl_tensor_get_f64(args[0], 0) != 0;
    return r->run(r->ctx, a->fn[p ? 0 : 1], args + 1, results, err, n);
  }
  case TL_OP_LOOP:
    return (a->present & TL_A_STACK) ? run_stacked_loop(g, x, args, results, r, err, n)
                                     : run_loop(g, x, args, results, r, err, n);
  case TL_OP_SCAN: return run_scan(g, x, args, results, r, err, n);
  default: return where(x, err, n, "not a control-flow op");
  }
}
