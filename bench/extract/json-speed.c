/* json-speed: measures how fast each Debian JSON library parses an
 * egraph-serialize file and walks its nodes (what extract/read_json.c does),
 * so the reader's choice of library rests on numbers, not taste.  Built only
 * when all three libraries are installed; not part of the test suite.
 *   json-speed FILE...   prints min-of-N milliseconds per library. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double js_walk_jansson(const char *buf, size_t len);
double js_walk_jsonc(const char *buf, size_t len);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = 0;
  *len = (size_t)n;
  return buf;
}

/* Each walker parses and touches every node's eclass, cost and children so
 * that lazy libraries cannot win by doing less. */
static double walk_cjson(const char *buf) {
  cJSON *root = cJSON_Parse(buf);
  double s = 0;
  cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes"), *n;
  cJSON_ArrayForEach(n, nodes) {
    cJSON *c = cJSON_GetObjectItemCaseSensitive(n, "cost");
    cJSON *e = cJSON_GetObjectItemCaseSensitive(n, "eclass");
    cJSON *ch = cJSON_GetObjectItemCaseSensitive(n, "children");
    s += (c ? c->valuedouble : 1) + strlen(e->valuestring) + cJSON_GetArraySize(ch);
  }
  cJSON_Delete(root);
  return s;
}

int main(int argc, char **argv) {
  printf("| file | bytes | cJSON ms | jansson ms | json-c ms |\n|---|---|---|---|---|\n");
  for (int i = 1; i < argc; i++) {
    size_t len;
    char *buf = slurp(argv[i], &len);
    if (!buf) continue;
    double best[3] = {1e9, 1e9, 1e9}, sink = 0;
    for (int r = 0; r < 7; r++) {
      double t = now();
      sink += walk_cjson(buf);
      double t1 = now();
      sink += js_walk_jansson(buf, len);
      double t2 = now();
      sink += js_walk_jsonc(buf, len);
      double t3 = now();
      if (t1 - t < best[0]) best[0] = t1 - t;
      if (t2 - t1 < best[1]) best[1] = t2 - t1;
      if (t3 - t2 < best[2]) best[2] = t3 - t2;
    }
    const char *base = strrchr(argv[i], '/');
    printf("| %s | %zu | %.1f | %.1f | %.1f |\n", base ? base + 1 : argv[i], len, best[0] * 1e3, best[1] * 1e3,
           best[2] * 1e3);
    if (sink < 0) puts("");
    free(buf);
  }
  return 0;
}
