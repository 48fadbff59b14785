/* util.c - see util.h. */
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double tl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

FILE *tl_open_input(const char *path, int64_t *size, char *why, size_t why_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, why_size, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    snprintf(why, why_size, "cannot open: %s", strerror(errno));
    fclose(f);
    return NULL;
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(why, why_size, "is a folder, not a file");
    fclose(f);
    return NULL;
  }
  *size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
  return f;
}

/* "64 MiB" for the messages; the limits are whole MiB. */
static void limit_str(char *b, size_t n, size_t max) {
  if (max >= ((size_t)1 << 30) && max % ((size_t)1 << 30) == 0)
    snprintf(b, n, "%zu GiB", max >> 30);
  else if (max >= ((size_t)1 << 20))
    snprintf(b, n, "%zu MiB", max >> 20);
  else
    snprintf(b, n, "%zu bytes", max);
}

char *tl_read_input(const char *path, size_t max, size_t *len, char *why, size_t why_size) {
  int64_t size;
  FILE *f = tl_open_input(path, &size, why, why_size);
  if (!f) return NULL;
  char lim[32];
  limit_str(lim, sizeof lim, max);
  if (size >= 0 && (uint64_t)size > max) {
    snprintf(why, why_size, "the file has %lld bytes, more than the input limit of %s",
             (long long)size, lim);
    fclose(f);
    return NULL;
  }
  /* a regular file is read in one piece; one of unknown size (or one that
   * grows while it is read) a block at a time, up to max + 1 bytes */
  size_t cap = size >= 0 ? (size_t)size + 2 : 65536, n = 0;
  char *s = tl_xmalloc(cap);
  for (;;) {
    if (!s) {
      snprintf(why, why_size, "out of memory reading %zu bytes", cap);
      fclose(f);
      return NULL;
    }
    if (n + 1 >= cap) {
      if (n > max) break;
      size_t nc = cap * 2 > max + 2 ? max + 2 : cap * 2;
      char *q = tl_xrealloc(s, nc);
      if (!q) tl_free(s);
      s = q;
      cap = nc;
      continue;
    }
    size_t r = fread(s + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  if (ferror(f)) {
    snprintf(why, why_size, "read error: %s", strerror(errno));
    fclose(f);
    tl_free(s);
    return NULL;
  }
  fclose(f);
  if (n > max) {
    snprintf(why, why_size, "%s and longer than the input limit of %s",
             size >= 0 ? "the file grew while it was read" : "not a regular file", lim);
    tl_free(s);
    return NULL;
  }
  s[n] = 0;
  if (len) *len = n;
  return s;
}

char *tl_read_file(const char *path, size_t *len, char *err, size_t err_size) {
  char why[256];
  char *s = tl_read_input(path, TL_READ_MAX_TEXT, len, why, sizeof why);
  if (!s) snprintf(err, err_size, "%s: %s", path, why);
  return s;
}

void tl_buf_putn(tl_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    while (b->len + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
    b->s = tl_xrealloc(b->s, b->cap);
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

void tl_buf_printf(tl_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    tl_buf_putn(b, tmp, (size_t)n);
    return;
  }
  char *big = tl_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  tl_buf_putn(b, big, (size_t)n);
  tl_free(big);
}

static bool utf8_cont(char c) { return ((unsigned char)c & 0xc0) == 0x80; }

void tl_quote_line(tl_buf *b, const char *indent, const char *line, size_t n, int col) {
  size_t at = col > 1 ? (size_t)col - 1 : 0; /* the caret's byte */
  if (at > n) at = n;
  size_t start = 0, end = n;
  if (n > TL_QUOTE_WIDTH) {
    start = at > TL_QUOTE_WIDTH / 2 ? at - TL_QUOTE_WIDTH / 2 : 0;
    if (start + TL_QUOTE_WIDTH > n) start = n - TL_QUOTE_WIDTH;
    end = start + TL_QUOTE_WIDTH;
    /* whole UTF-8 characters only */
    while (start > 0 && start < n && utf8_cont(line[start])) start--;
    while (end < n && utf8_cont(line[end])) end--;
  }
  const char *lmark = start > 0 ? "..." : "", *rmark = end < n ? "..." : "";
  tl_buf_printf(b, "%s%s%.*s%s\n%s", indent, lmark, (int)(end - start), line + start, rmark, indent);
  if (start > 0) tl_buf_putn(b, "   ", 3);
  for (size_t i = start; i < at; i++) tl_buf_putn(b, line[i] == '\t' ? "\t" : " ", 1);
  tl_buf_putn(b, "^\n", 2);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void close_dir(void *d) { closedir(d); }

char **tl_dir_list(const char *path, const char *suffix, int *n) {
  *n = 0;
  /* running out of memory while listing closes the folder (a cleanup) */
  tl_cleanup *cl = tl_cleanup_push(close_dir);
  DIR *dir = opendir(path);
  if (!dir) {
    tl_cleanup_pop(cl);
    return NULL;
  }
  cl->arg = dir;
  char **names = NULL;
  int cap = 0;
  size_t sl = suffix ? strlen(suffix) : 0;
  struct dirent *ent;
  while ((ent = readdir(dir)) != NULL) {
    size_t len = strlen(ent->d_name);
    if (suffix ? len <= sl || strcmp(ent->d_name + len - sl, suffix) != 0 : ent->d_name[0] == '.') continue;
    TL_GROW(names, *n, cap);
    names[(*n)++] = tl_xstrdup(ent->d_name);
  }
  tl_cleanup_pop(cl);
  closedir(dir);
  if (!names) names = tl_xmalloc(sizeof *names); /* an empty folder is not a failure */
  qsort(names, (size_t)*n, sizeof *names, cmp_name);
  return names;
}

void tl_dir_list_free(char **names, int n) {
  for (int i = 0; i < n; i++) tl_free(names[i]);
  tl_free(names);
}

#ifndef TL_RULES_DIR
#define TL_RULES_DIR "rules"
#endif
#ifndef TL_RULES_INSTALL_DIR
#define TL_RULES_INSTALL_DIR TL_RULES_DIR
#endif

const char *tl_rules_dir(void) {
  const char *env = getenv("TLALOC_RULES_DIR");
  if (env && *env) return env;
  struct stat st;
  if (stat(TL_RULES_DIR, &st) == 0 && S_ISDIR(st.st_mode)) return TL_RULES_DIR;
  return TL_RULES_INSTALL_DIR;
}
