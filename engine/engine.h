/* engine.h - one interface for everything that runs a graph: the reference
 * interpreter, the LLVM CPU backend, the GPU backend and its emulator. Callers
 * (the C API, the CLI, the every-op tests) pick an engine by name from one
 * table and never call a backend directly, so a new engine is one entry.
 *
 *   const tl_engine *e = tl_engine_find("llvm");        // NULL: no such engine
 *   tl_engine_opts o = tl_engine_opts_default();
 *   tl_error err = {0};
 *   void *p = e->compile(g, &o, &err);       // NULL: err.status, err.msg
 *   e->run(p, inputs, NULL, outputs, &err);  // as tl_interp_run
 *   e->free(p);
 *
 * Contracts shared by every engine: a program keeps a pointer to its graph
 * (the graph must outlive it); inputs[i] is for g->inputs[i]; sym_values
 * has g->nsyms entries (-1: bind from the inputs) or is NULL; a program
 * runs on one thread at a time; a failure is a tl_error (util/error.h)
 * whose status tells bad input from an LLVM or driver failure, never an
 * exit. */
#ifndef TL_ENGINE_H
#define TL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "tensor/tensor.h"

/* Options an engine may use; zeroed fields take the defaults, and an
 * engine ignores what does not concern it (the interpreter all of them). */
typedef struct tl_engine_opts {
  int opt_level;         /* LLVM: 1 (default): the kernels' own passes; 2, 3: default<On>; -1: none */
  int threads;           /* threads for large loops; 0 = min(2, online CPUs) */
  int use_cache;         /* 0, 1: the on-disk compile cache; -1: off */
  const char *cache_dir; /* NULL: the environment decides */
  int destroy_inputs;    /* 1: kernels may overwrite dead graph inputs */
} tl_engine_opts;

typedef struct tl_engine {
  const char *name;    /* "interp", "llvm", "gpu", "gpu-sim" */
  const char *summary; /* one line for `tlaloc engines` and errors */
  /* Prepares g to run; NULL when it cannot: an op or dtype the engine
   * lacks (TL_BAD_INPUT), an LLVM or driver failure (TL_BACKEND_FAILED). */
  void *(*compile)(const tl_graph *g, const tl_engine_opts *o, tl_error *err);
  /* Runs; outputs[i] receives a new tensor the caller frees. -1 on a
   * run-time error (bad inputs, an index out of range: TL_BAD_INPUT; a
   * driver call: TL_BACKEND_FAILED), leaving no output allocated. */
  int (*run)(void *prog, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor **outputs,
             tl_error *err);
  /* Runs into the caller's buffers (dtype, rank and dims must be the
   * output's, data set unless empty; no overlap with inputs or each other). */
  int (*run_into)(void *prog, tl_tensor *const *inputs, const int64_t *sym_values,
                  tl_tensor *const *outputs, tl_error *err);
  /* A JSON object describing the program (engine name, compile times,
   * kernels...); the caller frees it. */
  char *(*describe)(const void *prog);
  void (*free)(void *prog);
  /* Whether the engine can run here: 1, or 0 with the reason in why (the
   * GPU without a driver or a GPU). NULL: always. */
  int (*available)(char *why, size_t n);
} tl_engine;

tl_engine_opts tl_engine_opts_default(void);

/* The engine named name (n bytes, or NUL-terminated if n is 0); NULL. */
const tl_engine *tl_engine_find(const char *name, size_t n);
/* Engines in table order (the reference interpreter first); NULL past the end. */
const tl_engine *tl_engine_at(int i);
/* The engines' names as "interp, llvm" (for messages), into buf. */
char *tl_engine_names(char *buf, size_t n);

#endif
