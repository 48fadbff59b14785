/* main.c - a plain C program that calls a graph compiled ahead of time:
 *
 *   tlaloc compile examples/layer_norm.tg -o model.o --header model.h --name model
 *   cc -O2 -I. examples/aot/main.c model.o -lm -lmvec -lopenblas -o layer_norm
 *   ./layer_norm 4        # every symbolic dim = 4
 *   ./layer_norm 4 into   # the same into buffers this program allocates
 *
 * It compiles as C++ too (g++ -x c++): the header declares the object's
 * entry extern "C".
 * Inputs are deterministic (x[i] = sin(0.37 i + input number)) so a test can
 * compute the same values with the interpreter; outputs print one element
 * per line. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int64_t sym = argc > 1 ? atoll(argv[1]) : 4;
  tlaloc_tensor in[model_NUM_INPUTS + 1], out[model_NUM_OUTPUTS + 1];
  for (int b = 0; b < (int)(sizeof model_bufs_ / sizeof model_bufs_[0]); b++) {
    if (model_bufs_[b].kind != 0) continue;
    tlaloc_tensor *t = &in[model_bufs_[b].index];
    t->dtype = model_bufs_[b].dtype;
    t->rank = model_bufs_[b].rank;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
      t->dims[i] = model_bufs_[b].dims[i] >= 0 ? model_bufs_[b].dims[i] : sym;
      n *= t->dims[i];
    }
    static const int esize[5] = {1, 4, 8, 4, 8};
    t->data = malloc((size_t)(n ? n : 1) * (size_t)esize[t->dtype]);
    for (int64_t i = 0; i < n; i++) {
      double v = sin(0.37 * (double)i + model_bufs_[b].index);
      switch (t->dtype) {
      case 3: ((float *)t->data)[i] = (float)v; break;
      case 4: ((double *)t->data)[i] = v; break;
      case 0: ((unsigned char *)t->data)[i] = v > 0; break;
      case 1: ((int32_t *)t->data)[i] = (int32_t)(i % 3); break;
      default: ((int64_t *)t->data)[i] = i % 3; break;
      }
    }
  }
  int into = argc > 2 && !strcmp(argv[2], "into");
  int rc;
  if (into) { /* the caller's buffers, at the shapes model_shapes gives */
#ifndef model_HAS_INTO
    fprintf(stderr, "this header has no model_into (the GPU launcher's has not)\n");
    return 2;
#else
    rc = model_shapes(in, out);
    for (int o = 0; !rc && o < model_NUM_OUTPUTS; o++) {
      static const int esize[5] = {1, 4, 8, 4, 8};
      int64_t n = 1;
      for (int i = 0; i < out[o].rank; i++) n *= out[o].dims[i];
      out[o].data = malloc((size_t)(n ? n : 1) * (size_t)esize[out[o].dtype]);
    }
    if (!rc) rc = model_into(in, out);
#endif
  } else {
    rc = model(in, out);
  }
  if (rc) {
    fprintf(stderr, "model failed: %d\n", rc);
    return 1;
  }
  for (int o = 0; o < model_NUM_OUTPUTS; o++) {
    int64_t n = 1;
    for (int i = 0; i < out[o].rank; i++) n *= out[o].dims[i];
    for (int64_t i = 0; i < n; i++) {
      double v = out[o].dtype == 3 ? ((float *)out[o].data)[i] : out[o].dtype == 4 ? ((double *)out[o].data)[i]
               : out[o].dtype == 2 ? (double)((int64_t *)out[o].data)[i] : out[o].dtype == 1 ? ((int32_t *)out[o].data)[i]
               : ((unsigned char *)out[o].data)[i];
      printf("%.17g\n", v);
    }
    free(out[o].data);
  }
  for (int i = 0; i < model_NUM_INPUTS; i++) free(in[i].data);
  return 0;
}
