/* error.c - see error.h. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tl_status_name(tl_status s) {
  switch (s) {
  case TL_OK: return "ok";
  case TL_CHECK_FAILED: return "check failed";
  case TL_BAD_INPUT: return "bad input";
  case TL_OUT_OF_MEMORY: return "out of memory";
  case TL_INTERNAL: return "internal error";
  case TL_BACKEND_FAILED: return "backend failed";
  }
  return "unknown status";
}

int tl_fail(tl_error *e, tl_status s, const char *fmt, ...) {
  e->status = s;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return -1;
}

int tl_fail_kind(tl_error *e, tl_status s) {
  e->status = s;
  if (!e->msg[0]) snprintf(e->msg, sizeof e->msg, "%s (no message)", tl_status_name(s));
  return -1;
}

int tl_error_to(const tl_error *e, char *err, size_t n) {
  if (n) snprintf(err, n, "%s", e->msg);
  return -1;
}

void tl_error_clear(tl_error *e) {
  e->status = TL_OK;
  e->msg[0] = 0;
}

/* ---- diagnostics of an input text ---------------------------------------- */

void tl_diag_init(tl_diag *d, const char *file, const char *src, size_t len) {
  d->file = file;
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
  const char *file = d->file ? d->file : "<input>";
  if (loc.line > 0)
    tl_buf_printf(&d->out, "%s:%d:%d: %s: %s\n", file, loc.line, loc.col, kind, msg);
  else
    tl_buf_printf(&d->out, "%s: %s: %s\n", file, kind, msg);
  quote_line(d, loc);
}

void tl_diag_error(tl_diag *d, tl_loc loc, const char *fmt, ...) {
  d->nerrors++;
  if (d->nerrors > TL_DIAG_MAX_ERRORS) return;
  if (d->nerrors == TL_DIAG_MAX_ERRORS) {
    va_list ap;
    va_start(ap, fmt);
    emit(d, loc, "error", fmt, ap);
    va_end(ap);
    tl_buf_printf(&d->out, "%s: too many errors, stopping\n", d->file ? d->file : "<input>");
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
