/* exact_internal.h - declarations shared by the files of the exact extractor
 * (exact.c, exact_lp.c, exact_bound.c, exact_cycles.c, exact_reduce.c; the
 * overview is in exact.c), private to them. Everything not listed here is
 * static in its file. These files are built only with CBC
 * (extract/meson.build), so CBC's header is included here. */
#ifndef EXACT_INTERNAL_H
#define EXACT_INTERNAL_H

#include "extract/ex_internal.h"

#include <math.h>

#include <Cbc_C_Interface.h>
#include <Clp_C_Interface.h>

/* CBC and CLP are opened when an exact extraction first needs them
 * (exact_solver.c), not when tlaloc is loaded: with their dependencies
 * (Cgl, Osi, CoinUtils, LAPACK) they took 7-10 ms of every process's start,
 * the Python package's and the CLI's, for a solver that only `--extract
 * exact` uses. Their entry points are this table's; the macros below keep
 * the call sites in the libraries' own names. */
#define EX_SOLVER_FNS(X) X(Cbc_newModel) X(Cbc_deleteModel) X(Cbc_loadProblem) X(Cbc_addRow) \
  X(Cbc_setColName) X(Cbc_setInteger) X(Cbc_setLogLevel) X(Cbc_setParameter) X(Cbc_setMaximumSeconds) \
  X(Cbc_addCutCallback) X(Cbc_setAllowableGap) X(Cbc_setAllowableFractionGap) X(Cbc_setMIPStartI) \
  X(Cbc_solve) X(Cbc_bestSolution) X(Cbc_isProvenOptimal) X(Cbc_getObjValue) X(Cbc_getBestPossibleObjValue) \
  X(Cbc_numberSavedSolutions) X(Cbc_savedSolution) X(Osi_getNumCols) X(Osi_getColSolution) X(OsiCuts_addRowCut) \
  X(Clp_newModel) X(Clp_deleteModel) X(Clp_loadProblem) \
  X(Clp_setLogLevel) X(Clp_setMaximumSeconds) X(Clp_initialSolve) X(Clp_primal) X(Clp_isProvenOptimal) \
  X(Clp_objectiveValue) X(Clp_getColSolution) X(Clp_getReducedCost) X(Clp_rowLower)
#define EX_SOLVER_FIELD(f) __typeof__(f) *f;
typedef struct ex_solver_api {
  EX_SOLVER_FNS(EX_SOLVER_FIELD)
} ex_solver_api;
#undef EX_SOLVER_FIELD
extern ex_solver_api ex_solver;

/* Opens the libraries once per process; false with the reason in d
 * (EX_ERR_SOLVER) when they or an entry point cannot be found. */
bool ex_solver_load(tl_error *d);

#ifndef EX_SOLVER_TABLE /* exact_solver.c fills the table by these names */
#define Cbc_newModel (ex_solver.Cbc_newModel)
#define Cbc_deleteModel (ex_solver.Cbc_deleteModel)
#define Cbc_loadProblem (ex_solver.Cbc_loadProblem)
#define Cbc_addRow (ex_solver.Cbc_addRow)
#define Cbc_setColName (ex_solver.Cbc_setColName)
#define Cbc_setInteger (ex_solver.Cbc_setInteger)
#define Cbc_setLogLevel (ex_solver.Cbc_setLogLevel)
#define Cbc_setParameter (ex_solver.Cbc_setParameter)
#define Cbc_setMaximumSeconds (ex_solver.Cbc_setMaximumSeconds)
#define Cbc_addCutCallback (ex_solver.Cbc_addCutCallback)
#define Cbc_setAllowableGap (ex_solver.Cbc_setAllowableGap)
#define Cbc_setAllowableFractionGap (ex_solver.Cbc_setAllowableFractionGap)
#define Cbc_setMIPStartI (ex_solver.Cbc_setMIPStartI)
#define Cbc_solve (ex_solver.Cbc_solve)
#define Cbc_bestSolution (ex_solver.Cbc_bestSolution)
#define Cbc_isProvenOptimal (ex_solver.Cbc_isProvenOptimal)
#define Cbc_getObjValue (ex_solver.Cbc_getObjValue)
#define Cbc_getBestPossibleObjValue (ex_solver.Cbc_getBestPossibleObjValue)
#define Cbc_numberSavedSolutions (ex_solver.Cbc_numberSavedSolutions)
#define Cbc_savedSolution (ex_solver.Cbc_savedSolution)
#define Osi_getNumCols (ex_solver.Osi_getNumCols)
#define Osi_getColSolution (ex_solver.Osi_getColSolution)
#define OsiCuts_addRowCut (ex_solver.OsiCuts_addRowCut)
#define Clp_newModel (ex_solver.Clp_newModel)
#define Clp_deleteModel (ex_solver.Clp_deleteModel)
#define Clp_loadProblem (ex_solver.Clp_loadProblem)
#define Clp_setLogLevel (ex_solver.Clp_setLogLevel)
#define Clp_setMaximumSeconds (ex_solver.Clp_setMaximumSeconds)
#define Clp_initialSolve (ex_solver.Clp_initialSolve)
#define Clp_primal (ex_solver.Clp_primal)
#define Clp_isProvenOptimal (ex_solver.Clp_isProvenOptimal)
#define Clp_objectiveValue (ex_solver.Clp_objectiveValue)
#define Clp_getColSolution (ex_solver.Clp_getColSolution)
#define Clp_getReducedCost (ex_solver.Clp_getReducedCost)
#define Clp_rowLower (ex_solver.Clp_rowLower)
#endif

/* At most this many cycle rows are added per round. */
#define EX_CUTS_PER_ROUND 2000
/* LP solution values at most this count as 0. */
#define EX_EPS 1e-6

typedef struct model {
  const ex_graph *g;
  uint8_t *cand;   /* [n_nodes] node may be chosen */
  uint8_t *live;   /* [n_classes] class reachable through candidates */
  uint8_t *isroot; /* [n_classes] */
  uint32_t *col;   /* [n_nodes] column of x_n, EX_NONE when not a candidate */
  uint32_t *scc;   /* [n_classes] SCC id, in completion order (sinks first) */
  uint32_t n_scc;
  uint8_t *mand; /* [n_classes] every valid extraction uses the class */
} model;

/* The model is collected here and handed to CBC in one Cbc_loadProblem:
 * CBC's incremental Cbc_addRow re-packs its matrix on every call (quadratic;
 * minutes on tensat/bert). Rows added for cycles accumulate here too, and
 * each round loads the whole model again. */
typedef struct lp {
  uint32_t ncols, capc, nrows, capr, nz, capz;
  double *clb, *cub, *obj;
  double *rlb, *rub;
  uint32_t *zr, *zc;
  double *zv;
  /* The row being built. */
  int *ri;
  double *rv;
  uint32_t rn, rcap;
  bool oom;
} lp;

typedef struct edge {
  uint32_t child, node;
} edge;

typedef struct edges {
  edge *v;
  size_t n, cap;
} edges;

/* Scratch arrays shared by the stages, sized once per extraction. */
typedef struct work {
  uint32_t *pstart, *par;           /* parents index (ex_parents) */
  double *tc;                       /* [n_classes] tree costs (ex_repair) */
  uint32_t *pick, *alt, *stk, *pos; /* [n_classes] */
  uint8_t *colour, *ok;             /* [n_classes] */
  uint32_t *left_n;                 /* [n_nodes] */
  edges eb;
  uint32_t *mrow, n_mrow, cap_mrow; /* rows of mandatory classes (ex_build_rows) */
} work;

/* The support of an LP solution as a class graph: for each class c with
 * X_c > 0, its out-edges c -> d with weight y_cd = sum of x_n over c's nodes
 * having d as a child. Compressed rows; rebuilt after every LP solve. */
typedef struct support {
  double *X;       /* [n_classes] */
  uint32_t *start; /* [n_classes + 1] */
  uint32_t *to;    /* [edges] */
  double *y;       /* [edges] */
  uint32_t n, cap;
  uint32_t *slot;    /* [n_classes] scratch: edge index of d for the current c */
  double *dist;      /* [n_classes] Dijkstra */
  uint32_t *pred;    /* [n_classes] Dijkstra: predecessor class */
  uint32_t *touched; /* [n_classes] classes whose dist was set */
  uint8_t *on_cut;   /* [n_classes] already on a cycle cut this round */
} support;

/* The cycle separator's state, handed by CBC to ex_separate. */
typedef struct sep {
  const model *m;
  lp *l;  /* the model: kept rows are appended here */
  lp row; /* row buffer only */
  support s;
  ex_heap h;
  uint32_t *cyc;
  uint8_t *cyclic; /* [n_scc] SCC has more than one class */
  uint32_t kept;
  bool oom;
} sep;

/* Is the gap between the incumbent and the bound closed? */
static inline bool closed(double best, double lb) { return best - lb <= 1e-9 * (1 + fabs(best)); }

/* exact_lp.c: the model as arrays (comments at the definitions). */
bool ex_lp_grow(void **p, uint32_t *cap, uint32_t need, size_t sz);
uint32_t ex_lp_col(lp *l, double obj);
void ex_lp_term(lp *l, uint32_t col, double coef);
void ex_lp_row(lp *l, char sense, double rhs);
bool ex_lp_csc(const lp *l, CoinBigIndex **startp, int **idxp, double **valp);
Cbc_Model *ex_lp_load(const lp *l, bool integer);
void ex_lp_free(lp *l);

/* exact.c: the model's live classes, SCCs and rows, and the rounds of CBC. */
bool ex_mark_live(model *m);
bool ex_sccs(model *m);
bool ex_build_rows(model *m, lp *l, work *w, bool mand);
ex_status ex_rounds(model *m, work *w, const ex_params *p, double deadline, double gap, bool mand, uint32_t *choice,
                    double *best, double *lb, bool *optimal);

/* exact_bound.c: the combinatorial lower bound. */
double ex_lower_bound(const model *m);

/* exact_cycles.c: cycle rows and repair of cyclic solutions. */
void ex_chosen(const model *m, const double *sol, bool from_roots, uint32_t *pick);
uint32_t ex_cut_cycles(const model *m, lp *l, const uint32_t *pick, uint8_t *colour, uint32_t *stk, uint32_t *pos);
void COINLINKAGE_CB ex_separate(void *osi, void *osi_cuts, void *app);
bool ex_sep_init(sep *sp, const model *m, lp *l);
void ex_sep_free(sep *sp);
bool ex_repair(const model *m, const uint32_t *pstart, const uint32_t *par, const uint32_t *pick, uint32_t *out,
               double *tcost, uint32_t *left, uint32_t *queue);

/* exact_reduce.c: the LP stage. */
ex_status ex_reduce(model *m, model *h, work *w, const ex_params *p, double deadline, uint32_t *choice, double *best,
                    double *lb, bool *optimal, bool *mand_rows);

#endif
