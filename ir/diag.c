/* diag.c - see diag.h. */
#include "ir/diag.h"
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void tl_diag_init(tl_diag *d, const char *file, const char *src, size_t len) {
  d->file = file ? file : "<input>";
  d->src = src;
  d->len = len;
  d->out.s = NULL;
  d->out.len = d->out.cap = 0;
  d->nerrors = 0;
}

void tl_diag_free(tl_diag *d) {
  tl_free(d->out.s);
  d->out.s = NULL;
  d->out.len = d->out.cap = 0;
}

const char *tl_diag_text(const tl_diag *d) { return d->out.s ? d->out.s : ""; }

static void quote_line(tl_diag *d, tl_loc loc) {
  if (!d->src || loc.line <= 0) return;
  const char *p = d->src, *end = d->src + d->len;
  for (int l = 1; l < loc.line && p < end; p++)
    if (*p == '\n') l++;
  const char *e = p;
  while (e < end && *e != '\n') e++;
  tl_quote_line(&d->out, "  ", p, (size_t)(e - p), loc.col);
}

static void emit(tl_diag *d, tl_loc loc, const char *kind, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (loc.line > 0)
    tl_buf_printf(&d->out, "%s:%d:%d: %s: %s\n", d->file, loc.line, loc.col, kind, msg);
  else
    tl_buf_printf(&d->out, "%s: %s: %s\n", d->file, kind, msg);
  quote_line(d, loc);
}

void tl_diag_error(tl_diag *d, tl_loc loc, const char *fmt, ...) {
  d->nerrors++;
  if (d->nerrors > TL_DIAG_MAX_ERRORS) return;
  if (d->nerrors == TL_DIAG_MAX_ERRORS + 0) {
    va_list ap;
    va_start(ap, fmt);
    emit(d, loc, "error", fmt, ap);
    va_end(ap);
    tl_buf_printf(&d->out, "%s: too many errors, stopping\n", d->file);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  emit(d, loc, "error", fmt, ap);
  va_end(ap);
}

void tl_diag_note(tl_diag *d, tl_loc loc, const char *fmt, ...) {
  if (d->nerrors > TL_DIAG_MAX_ERRORS) return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, loc, "note", fmt, ap);
  va_end(ap);
}
