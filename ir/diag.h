/* diag.h - diagnostics for user input: "file:line:col: error: message",
 * the source line and a caret, several per run. Collected into a buffer so
 * library callers decide where they go (the CLI prints them to stderr). */
#ifndef TL_DIAG_H
#define TL_DIAG_H

#include "ir/ir.h"
#include "util/util.h"

#define TL_DIAG_MAX_ERRORS 25

typedef struct tl_diag {
  const char *file; /* name shown in messages */
  const char *src;  /* the text, for quoting lines; may be NULL */
  size_t len;
  tl_buf out;       /* rendered messages */
  int nerrors;
} tl_diag;

void tl_diag_init(tl_diag *d, const char *file, const char *src, size_t len);
void tl_diag_free(tl_diag *d);
/* An error at loc (line 0: no position, just "file: error: ..."). */
void tl_diag_error(tl_diag *d, tl_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A note attached to the previous error (same format, "note:"). */
void tl_diag_note(tl_diag *d, tl_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *tl_diag_text(const tl_diag *d);

#endif
