/* random_graph.c - the random graph generator (random_graph.h). */
#include "tests/backend/random_graph.h"

#include <stdio.h>
#include <string.h>

static uint64_t rs;
static uint64_t rnd(void) {
  uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static int rn(int n) { return (int)(rnd() % (uint64_t)n); }

static const int unary[] = {TL_OP_NEG, TL_OP_ABS, TL_OP_EXP, TL_OP_LOG, TL_OP_SQRT, TL_OP_TANH,
  TL_OP_SIGMOID, TL_OP_SOFTPLUS, TL_OP_SIN, TL_OP_COS, TL_OP_FLOOR, TL_OP_CEIL, TL_OP_RECIPROCAL,
  TL_OP_EXPM1, TL_OP_LOG1P, TL_OP_ERF, TL_OP_ERFC, TL_OP_SIGN, TL_OP_LOG1MEXP};
static const int binary[] = {TL_OP_ADD, TL_OP_SUB, TL_OP_MUL, TL_OP_DIV, TL_OP_MAXIMUM, TL_OP_MINIMUM,
  TL_OP_POW, TL_OP_LOGADDEXP, TL_OP_XLOGY, TL_OP_FLOOR_DIVIDE, TL_OP_REMAINDER};
static const int reds[] = {TL_OP_SUM, TL_OP_MEAN, TL_OP_MAX, TL_OP_MIN, TL_OP_PROD, TL_OP_LOGSUMEXP,
  TL_OP_SOFTMAX, TL_OP_LOG_SOFTMAX};
static const int cmps[] = {TL_OP_LT, TL_OP_GE, TL_OP_EQ, TL_OP_NE};

#define N(a) ((int)(sizeof a / sizeof a[0]))

tl_graph *rg_graph(int *depth_out) {
  tl_graph *g = tl_graph_new("rnd");
  int dt = rn(2) ? TL_F32 : TL_F64;
  int rank = rn(4);
  static const int64_t sizes[] = {1, 2, 3, 5, 0, 4};
  int64_t base[TL_MAX_RANK];
  for (int i = 0; i < rank; i++) base[i] = sizes[rn(rn(8) == 0 ? 6 : 4)];
  int32_t ids[64];
  int depth[64], nn = 0;
  int nin = 1 + rn(3);
  for (int i = 0; i < nin; i++) {
    tl_type t;
    memset(&t, 0, sizeof t);
    t.dtype = (uint8_t)dt;
    int drop = rank ? rn(rank + 1) : 0;
    if (rn(2)) drop = 0;
    t.rank = (uint8_t)(rank - drop);
    for (int k = 0; k < t.rank; k++) t.dims[k] = rn(4) == 0 ? 1 : base[k + drop];
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    ids[nn] = tl_graph_add_input(g, name, &t, (tl_loc){0, 0});
    depth[nn++] = 0;
  }
  int steps = 2 + rn(12);
  char err[256];
  for (int s = 0; s < steps && nn < 60; s++) {
    /* two times in three the first operand is the deepest node so far, so
     * that chains reach depth 8; the others are any earlier node (sharing) */
    int deep = 0;
    for (int q = 1; q < nn; q++)
      if (depth[q] >= depth[deep]) deep = q;
    int a = rn(3) ? deep : rn(nn), b = rn(nn);
    int kind = rn(10);
    tl_attrs at;
    tl_attrs_init(&at);
    int32_t in[3] = {ids[a], ids[b], ids[rn(nn)]};
    int op, nin2 = 1;
    const tl_type *ta = &g->nodes[ids[a]].type;
    if (kind < 3) op = unary[rn(N(unary))];
    else if (kind < 6) { op = binary[rn(N(binary))]; nin2 = 2; }
    else if (kind < 8) {
      op = reds[rn(N(reds))];
      if (ta->rank > 0 && (rn(3) || op == TL_OP_SOFTMAX || op == TL_OP_LOG_SOFTMAX)) {
        at.present |= TL_A_AXIS;
        at.naxes = 1;
        at.axes[0] = (int8_t)(rn(ta->rank) - (rn(2) ? ta->rank : 0));
        if (ta->rank > 1 && rn(4) == 0 && op != TL_OP_SOFTMAX && op != TL_OP_LOG_SOFTMAX) {
          at.naxes = 2;
          at.axes[0] = 0;
          at.axes[1] = (int8_t)(ta->rank - 1);
        }
      }
      if (rn(3) == 0 && op != TL_OP_SOFTMAX && op != TL_OP_LOG_SOFTMAX) {
        at.present |= TL_A_KEEPDIMS;
        at.keepdims = 1;
      }
    } else if (kind == 8) {
      /* where(cmp(a, b), a, c) */
      int32_t ci[2] = {ids[a], ids[b]};
      int32_t c = tl_graph_add(g, cmps[rn(N(cmps))], &at, ci, 2, (tl_loc){0, 0}, err, sizeof err);
      if (c < 0) continue;
      in[0] = c;
      in[1] = ids[a];
      op = TL_OP_WHERE;
      nin2 = 3;
    } else {
      int r = ta->rank;
      int which = rn(4);
      if (which == 0 && r >= 2) {
        op = TL_OP_TRANSPOSE;
      } else if (which == 1 && r > 0) {
        op = TL_OP_SLICE;
        at.present |= TL_A_AXIS | TL_A_START | TL_A_STEP;
        at.naxes = 1;
        at.axes[0] = (int8_t)rn(r);
        at.start = rn(3) - 1;
        at.step = rn(2) ? 1 : (rn(2) ? 2 : -1);
      } else if (which == 2 && r < 4) {
        op = TL_OP_EXPAND_DIMS;
        at.present |= TL_A_AXIS;
        at.naxes = 1;
        at.axes[0] = (int8_t)rn(r + 1);
      } else {
        op = TL_OP_RESHAPE;
        at.present |= TL_A_SHAPE;
        at.nshape = 1;
        at.shape[0] = TL_DIM_INFER;
      }
    }
    int32_t id = tl_graph_add(g, op, &at, in, nin2, (tl_loc){0, 0}, err, sizeof err);
    if (id < 0) continue;
    int d = 0;
    for (int k = 0; k < nin2; k++)
      for (int q = 0; q < nn; q++)
        if (ids[q] == in[k] && depth[q] + 1 > d) d = depth[q] + 1;
    if (d > 8) continue;
    ids[nn] = id;
    depth[nn++] = d;
  }
  int no = 1 + rn(2), md = 0;
  for (int i = 0; i < no; i++) {
    int q = nn - 1 - rn(nn > 3 ? 3 : nn);
    char name[16];
    snprintf(name, sizeof name, "y%d", i);
    tl_graph_add_output(g, name, ids[q]);
    if (depth[q] > md) md = depth[q];
  }
  *depth_out = md;
  return g;
}

void rg_seed(uint64_t seed) { rs = seed * 0x2545F4914F6CDD1DULL + 7; }
