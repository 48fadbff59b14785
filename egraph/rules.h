/* rules.h - rewrite rules read from .rw files, and the condition registry.
 *
 *   (ruleset NAME
 *     (rule NAME LHS => RHS [:if (COND ARG...)]...)
 *     (rule NAME LHS <=> RHS)           ; two rules: NAME and NAME backwards
 *     ...)
 *
 * Patterns use the language's syntax with ?vars (see pattern.h); an LHS may
 * be a bare ?var (it matches every class). Conditions are predicates
 * registered by name (eg_conds_add) and checked per match at apply time;
 * their arguments are ?vars of the LHS or atoms (`(dtype ?x f32)`).
 *
 * A ruleset may also hold declarations for a backend's planner, which are
 * not rewrites (the saturation runner never sees them: they are kept apart
 * from `rules`; docs/rules.md "Fusion and in-place"):
 *     (opclass NAME MEMBER...)          ; MEMBER: an op or an earlier opclass
 *     (fuse NAME PRODUCER :into CONSUMER [:if (COND ARG...)]...)
 *     (inplace NAME (OP ?a ?b ...) :destroys ?a [?b]... [:rowwise])
 * PRODUCER and CONSUMER are an op, an opclass, `any` or `output` (the
 * program's outputs, as a consumer); the fuse conditions are (single-use),
 * (cheap), (light) and (max-ops N), facts of the program that the planner evaluates
 * (see eg_fuse_cond). Rules, fuse and inplace declarations share one
 * namespace of names; opclass names are their own. Derivative rules,
 * (grad NAME ...), are skipped here: grad/ reads them (docs/grad.md).
 *
 * Errors are reported as `file:line:col: error: msg`, the source line and a
 * caret; parsing goes on after an error to report more in one run. */
#ifndef TL_EGRAPH_RULES_H
#define TL_EGRAPH_RULES_H

#include "egraph/egraph.h"
#include "egraph/pattern.h"
#include "util/error.h"

/* A condition: args[i] is the class bound to the i-th argument's variable,
 * or EG_NONE where atoms[i] is a literal atom. */
typedef bool (*eg_cond_fn)(eg_egraph *g, const uint32_t *args,
                           const char *const *atoms, int nargs, void *ctx);

#define EG_COND_MAX_ARGS 8

typedef struct eg_conds eg_conds;
eg_conds *eg_conds_new(void);
void eg_conds_free(eg_conds *c);
/* Registers name (copied); -1 if the name exists. args gives the arguments
 * the reader accepts, one letter each: 'v' a ?variable bound to an operand
 * of the left side (fn gets its class), 'a' an atom (fn gets its text); a
 * final '+' repeats the last letter up to EG_COND_MAX_ARGS. "v", "va",
 * "vv+", "" (no arguments). */
int eg_conds_add(eg_conds *c, const char *name, const char *args, eg_cond_fn fn, void *ctx);

typedef struct eg_cond_use {
  int fn;          /* index in the registry */
  int nargs;
  uint32_t *vars;  /* per argument: variable index, or EG_NONE for an atom */
  char **atoms;
} eg_cond_use;

typedef struct eg_rule {
  char *name;
  bool backward;   /* the right-to-left half of a `<=>` rule */
  int ruleset;
  eg_pattern lhs, rhs;
  eg_vartab *vars; /* shared by the two halves of a `<=>` rule */
  eg_cond_use *conds;
  int nconds;
  const char *file;
  int line, col;
} eg_rule;

/* A named set of ops. ops[op] is 1 for a member; lang->nops + 1 entries,
 * the last one standing for `output`. */
typedef struct eg_opclass {
  char *name;
  uint8_t *ops;
  const char *file;
  int line, col;
} eg_opclass;

/* Conditions of a fuse declaration, about the producer P in the program:
 *   SINGLE_USE  P has exactly one use (an operand slot or a program output)
 *   CHEAP       P's fused expression does no arithmetic (only index maps,
 *               literals and loads), so computing it at every use costs
 *               nothing that a buffer would save
 *   LIGHT       P's fused expression does only plain arithmetic (no op
 *               that calls a math function) and reads at most one value
 *               as large as P (the others broadcast along some dim), so
 *               computing it at a use reads no more memory than its buffer
 *               would, and saves writing that buffer
 *   MAX_OPS     P's fused expression has at most `arg` ops */
enum { EG_FUSE_SINGLE_USE, EG_FUSE_CHEAP, EG_FUSE_MAX_OPS, EG_FUSE_LIGHT };
typedef struct eg_fuse_cond {
  int kind;
  int64_t arg;
} eg_fuse_cond;

/* May a producer whose op is in `producer` be computed inside the loop of
 * a consumer whose op is in `consumer` (per-op flags as in eg_opclass),
 * when every condition holds? */
typedef struct eg_fuse {
  char *name;
  int ruleset;
  uint8_t *producer, *consumer;
  eg_fuse_cond *conds;
  int nconds;
  const char *file;
  int line, col;
} eg_fuse;

/* The op of `pat` (one op over distinct ?vars) may write its result over the
 * operands whose bits are set in `destroys` (bit i: operand i). Without
 * `rowwise` the claim is that result element i reads each destroyed operand
 * at element i only; with it (`:rowwise`), that each row of the result along
 * the op's :axis reads the same row of the destroyed operand only (softmax:
 * a row kernel that reads each element before writing it may then work in
 * place). */
typedef struct eg_inplace {
  char *name;
  int ruleset;
  int op;
  uint32_t destroys;
  bool rowwise;
  eg_pattern pat;
  eg_vartab *vars;
  const char *file;
  int line, col;
} eg_inplace;

/* Control-flow rules: a rewrite of one node whose right side makes or reads
 * functions, which a pattern cannot say, so the language owner carries it
 * out (docs/rules.md "Control-flow rules"):
 *     (control NAME (OP ?v... :key ?f...) => (HEAD ?x... [:key ?f]...) [:if (COND ARG...)]...)
 * The left side binds the node's first operands to class variables and the
 * functions its keys name to function variables; operands it does not name
 * pass through to the right side. HEAD is an op (a node of that op, keeping
 * the left node's other attributes) or one of the language's
 * transformations, applied to the variables. Conditions are the registry's
 * (class variables) or the language's function conditions. */
#define EG_CTERM_MAX 8
typedef struct eg_cterm {
  int op;   /* an op, or -1: transformation `head` */
  int head; /* index in eg_control_lang.heads */
  int nvars;
  uint32_t vars[EG_CTERM_MAX];
  int nkeys;
  int keys[EG_CTERM_MAX]; /* index in eg_control_lang.keys */
  uint32_t keyvars[EG_CTERM_MAX];
  int line, col;
} eg_cterm;

typedef struct eg_control {
  char *name;
  int ruleset;
  eg_cterm lhs, rhs;
  eg_vartab vars;    /* is_attr: a function variable */
  eg_cond_use *conds; /* fn >= 0: the registry's; fn < 0: function condition -1 - fn */
  int nconds;
  const char *file;
  int line, col;
} eg_control;

/* What control-flow rules may name, given by the language owner. */
typedef struct eg_control_lang {
  const char *const *keys;  /* attribute keys that name functions */
  int nkeys;
  const char *const *heads; /* transformations */
  int nheads;
  const char *const *conds; /* conditions on function variables (each takes them all as 'v+') */
  int nconds;
  bool (*op_ok)(int op);    /* ops a control rule may match or make */
  bool (*key_ok)(int op, int key); /* op has a function under keys[key] */
} eg_control_lang;

/* Does a registry condition hold for one match (slots as in eg_matches)? */
bool eg_cond_holds(eg_egraph *g, const eg_conds *c, const eg_cond_use *u, const uint32_t *subst);

typedef struct eg_rules {
  const eg_lang *lang;
  const eg_conds *conds;
  eg_control *controls;
  int ncontrols, capcontrols;
  eg_rule *rules;
  int nrules, caprules;
  eg_opclass *classes;
  int nclasses, capclasses;
  eg_fuse *fuses;
  int nfuses, capfuses;
  eg_inplace *inplaces;
  int ninplaces, capinplaces;
  char **rulesets;
  int nrulesets, caprulesets;
  char **files;
  int nfiles;
} eg_rules;

eg_rules *eg_rules_new(const eg_lang *l, const eg_conds *conds);
void eg_rules_free(eg_rules *r);
/* Parses text (named file in messages) into r. Returns the number of errors;
 * on errors nothing of this text is kept. d may be NULL. */
int eg_rules_load(eg_rules *r, const char *file, const char *text, size_t n, tl_diag *d);
/* Reads and loads a file; a read failure counts as one error. */
int eg_rules_load_file(eg_rules *r, const char *path, tl_diag *d);
int eg_rules_ruleset(const eg_rules *r, const char *name); /* -1 */
const eg_rule *eg_rules_find(const eg_rules *r, const char *name, bool backward);

/* Checks a rule's conditions for one match (slots as in eg_matches). */
bool eg_rule_conds_hold(eg_egraph *g, const eg_rules *r, const eg_rule *rule,
                        const uint32_t *subst);

#endif
