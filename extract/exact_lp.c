/* exact_lp.c - the exact extractor's model as plain arrays: 0-1 columns,
 * rows built term by term, and the conversions to the column-major matrix
 * that CBC and CLP load. The other exact_*.c files add their rows through
 * these functions; the model is then handed to CBC in one Cbc_loadProblem,
 * because CBC's own Cbc_addRow is quadratic (see the lp type in
 * exact_internal.h). A file of its own because every stage of the
 * extractor builds rows, while none of them needs to see how. */
#include "extract/exact_internal.h"
#include "util/alloc.h"

#include <float.h>
#include <stdio.h>

bool ex_lp_grow(void **p, uint32_t *cap, uint32_t need, size_t sz) {
  if (need <= *cap) return true;
  uint32_t nc = *cap ? *cap : 256;
  while (nc < need) nc *= 2;
  void *q = tl_xrealloc(*p, (size_t)nc * sz);
  if (!q) return false;
  *p = q;
  *cap = nc;
  return true;
}

/* A 0-1 column with objective coefficient obj. */
uint32_t ex_lp_col(lp *l, double obj) {
  uint32_t need = l->ncols + 1, cap = l->capc, c2 = cap, c3 = cap;
  if (!ex_lp_grow((void **)&l->clb, &cap, need, sizeof(double)) ||
      !ex_lp_grow((void **)&l->cub, &c2, need, sizeof(double)) ||
      !ex_lp_grow((void **)&l->obj, &c3, need, sizeof(double))) {
    l->oom = true;
    return 0;
  }
  if (need > l->capc) l->capc = cap;
  l->clb[l->ncols] = 0.0, l->cub[l->ncols] = 1.0, l->obj[l->ncols] = obj;
  return l->ncols++;
}

/* Appends coef * x[col] to the row being built. */
void ex_lp_term(lp *l, uint32_t col, double coef) {
  uint32_t cap = l->rcap, c2 = cap;
  if (!ex_lp_grow((void **)&l->ri, &cap, l->rn + 1, sizeof(int)) ||
      !ex_lp_grow((void **)&l->rv, &c2, l->rn + 1, sizeof(double))) {
    l->oom = true;
    return;
  }
  l->rcap = cap;
  l->ri[l->rn] = (int)col, l->rv[l->rn++] = coef;
}

/* Ends the row being built: sum (sense 'L' <=, 'G' >=, 'E' =) rhs. Each
 * column must occur once in it. */
void ex_lp_row(lp *l, char sense, double rhs) {
  uint32_t k = l->rn;
  l->rn = 0;
  uint32_t need = l->nrows + 1, cap = l->capr, c2 = cap;
  uint32_t nz = l->nz + k, z1 = l->capz, z2 = z1, z3 = z1;
  if (!ex_lp_grow((void **)&l->rlb, &cap, need, sizeof(double)) ||
      !ex_lp_grow((void **)&l->rub, &c2, need, sizeof(double)) ||
      !ex_lp_grow((void **)&l->zr, &z1, nz, sizeof(uint32_t)) ||
      !ex_lp_grow((void **)&l->zc, &z2, nz, sizeof(uint32_t)) ||
      !ex_lp_grow((void **)&l->zv, &z3, nz, sizeof(double))) {
    l->oom = true;
    return;
  }
  if (need > l->capr) l->capr = cap;
  if (nz > l->capz) l->capz = z1;
  l->rlb[l->nrows] = sense == 'L' ? -DBL_MAX : rhs;
  l->rub[l->nrows] = sense == 'G' ? DBL_MAX : rhs;
  for (uint32_t i = 0; i < k; i++)
    l->zr[l->nz] = l->nrows, l->zc[l->nz] = (uint32_t)l->ri[i], l->zv[l->nz++] = l->rv[i];
  l->nrows++;
}

/* Column-major copy of the triplets (start[ncols+1], idx, val), as both
 * CBC and CLP load them. False on OOM (the arrays are freed). */
bool ex_lp_csc(const lp *l, CoinBigIndex **startp, int **idxp, double **valp) {
  CoinBigIndex *start = tl_xcalloc((size_t)l->ncols + 2, sizeof *start);
  int *idx = tl_xmalloc(((size_t)l->nz + 1) * sizeof *idx);
  double *val = tl_xmalloc(((size_t)l->nz + 1) * sizeof *val);
  if (!start || !idx || !val) {
    tl_free(start), tl_free(idx), tl_free(val);
    return false;
  }
  for (uint32_t i = 0; i < l->nz; i++) start[l->zc[i] + 2]++;
  for (uint32_t c = 0; c < l->ncols; c++) start[c + 2] += start[c + 1];
  for (uint32_t i = 0; i < l->nz; i++) {
    CoinBigIndex at = start[l->zc[i] + 1]++;
    idx[at] = (int)l->zr[i], val[at] = l->zv[i];
  }
  *startp = start, *idxp = idx, *valp = val;
  return true;
}

/* The model loaded into a new CBC model; with integer false the columns
 * stay continuous (the LP relaxation). */
Cbc_Model *ex_lp_load(const lp *l, bool integer) {
  CoinBigIndex *start;
  int *idx;
  double *val;
  if (!ex_lp_csc(l, &start, &idx, &val)) return NULL;
  Cbc_Model *cbc = Cbc_newModel();
  if (!cbc) goto out;
  Cbc_loadProblem(cbc, (int)l->ncols, (int)l->nrows, start, idx, val, l->clb, l->cub, l->obj, l->rlb, l->rub);
  for (uint32_t c = 0; c < l->ncols; c++) {
    char nm[24];
    /* Distinct names: CBC's MIP start is resolved through column names. */
    snprintf(nm, sizeof nm, "c%u", c);
    Cbc_setColName(cbc, (int)c, nm);
    if (integer) Cbc_setInteger(cbc, (int)c);
  }
out:
  tl_free(start), tl_free(idx), tl_free(val);
  return cbc;
}

void ex_lp_free(lp *l) {
  tl_free(l->clb), tl_free(l->cub), tl_free(l->obj), tl_free(l->rlb), tl_free(l->rub);
  tl_free(l->zr), tl_free(l->zc), tl_free(l->zv), tl_free(l->ri), tl_free(l->rv);
}
