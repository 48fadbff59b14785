/* json-speed: the jansson walker (its own unit: jansson and json-c both
 * declare json_object). */
#include <jansson.h>
#include <string.h>

double js_walk_jansson(const char *buf, size_t len);

double js_walk_jansson(const char *buf, size_t len) {
  json_error_t err;
  json_t *root = json_loadb(buf, len, 0, &err);
  double s = 0;
  const char *key;
  json_t *n;
  json_object_foreach(json_object_get(root, "nodes"), key, n) {
    json_t *c = json_object_get(n, "cost");
    s += (c ? json_number_value(c) : 1) + strlen(json_string_value(json_object_get(n, "eclass"))) +
         json_array_size(json_object_get(n, "children"));
  }
  json_decref(root);
  return s;
}
