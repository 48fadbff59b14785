/* error.h - how every module of tlaloc reports failure.
 *
 * A failure has a kind and a message. The kind (tl_status) is what a caller
 * acts on: bad input is the user's to fix, an out-of-memory failure may go
 * away with a smaller input, a backend failure is LLVM's or the GPU
 * driver's, an internal one is a bug of tlaloc. The message says where:
 * file:line:col for text, the op's name and position for a graph, the LLVM
 * or driver call for a backend. The public statuses of include/tlaloc.h and
 * the CLI's exit codes are these numbers.
 *
 * Two carriers, for the two shapes failures come in:
 *   - tl_error: the one failure of a call (compile, run, optimize, extract).
 *     A fixed buffer, so that reporting never allocates:
 *         tl_error e = {0};
 *         void *p = e->compile(g, &o, &e);   // NULL: e.status, e.msg
 *     Leaf functions whose only failure is bad input take (char *err,
 *     size_t n) instead; their caller passes TL_EMSG(e) and sets the kind.
 *   - tl_diag: the diagnostics of one input text (.tg, .rw): several per
 *     run, each "file:line:col: error: message", the source line and a
 *     caret, so that a user fixes them all at once. Always bad input.
 *
 * Running out of memory is not reported through either: util/alloc.h
 * unwinds to the region of the public call, which says TL_OUT_OF_MEMORY. */
#ifndef TL_ERROR_H
#define TL_ERROR_H

#include <stddef.h>

#include "util/util.h"

typedef enum tl_status {
  TL_OK = 0,
  TL_CHECK_FAILED = 1,   /* a check said no (prove, check-rules) */
  TL_BAD_INPUT = 2,      /* malformed text, wrong shapes or dtypes, an op an engine lacks */
  TL_OUT_OF_MEMORY = 3,  /* an allocation failed (util/alloc.h) */
  TL_INTERNAL = 4,       /* an invariant of tlaloc failed: a bug, never the input's fault */
  TL_BACKEND_FAILED = 5, /* LLVM, the GPU driver or the ILP solver failed or is missing (no target
                          * machine, codegen, linking, a driver call, no GPU, no CBC) */
} tl_status;

/* The name of a status ("bad input", ...), for messages and JSON. */
const char *tl_status_name(tl_status s);

typedef struct tl_error {
  tl_status status; /* TL_OK until a failure is recorded */
  char msg[4096];   /* NUL-terminated; "" while status is TL_OK; room for a rule file's diagnostics */
} tl_error;

/* A leaf function's message buffer inside e: f(..., TL_EMSG(e)). */
#define TL_EMSG(e) (e)->msg, sizeof(e)->msg

/* Records a failure of kind s (the message printf-style); returns -1, so
 * that `return tl_fail(e, TL_BAD_INPUT, "...")` ends an int function. */
int tl_fail(tl_error *e, tl_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets the kind of a failure whose message a leaf function wrote into
 * TL_EMSG(e); returns -1. */
int tl_fail_kind(tl_error *e, tl_status s);
void tl_error_clear(tl_error *e);
/* For a caller that reports through a message buffer: copies e's message
 * into err (n bytes); returns -1. */
int tl_error_to(const tl_error *e, char *err, size_t n);

/* A position in an input text: 1-based line and column (in bytes); line 0
 * means none (built by code, or the whole file). */
typedef struct tl_loc {
  int line, col;
} tl_loc;

#define TL_DIAG_MAX_ERRORS 25

typedef struct tl_diag {
  const char *file; /* name shown in messages */
  const char *src;  /* the text, for quoting lines; may be NULL */
  size_t len;
  tl_buf out; /* rendered messages */
  int nerrors;
} tl_diag;

/* A zeroed tl_diag is valid too (file "<input>", no quoting). A reader of
 * several files into one tl_diag points file/src/len at each in turn. */
void tl_diag_init(tl_diag *d, const char *file, const char *src, size_t len);
void tl_diag_free(tl_diag *d);
/* An error at loc (line 0: no position, just "file: error: ..."). After
 * TL_DIAG_MAX_ERRORS errors further ones are counted but not rendered. */
void tl_diag_error(tl_diag *d, tl_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note attached to the previous error (same format, "note:"). */
void tl_diag_note(tl_diag *d, tl_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Everything rendered so far ("" when nothing). */
const char *tl_diag_text(const tl_diag *d);

#endif
