/* json-speed: the json-c walker (its own unit: jansson and json-c both
 * declare json_object). */
#include <json-c/json.h>
#include <string.h>

double js_walk_jsonc(const char *buf, size_t len);

double js_walk_jsonc(const char *buf, size_t len) {
  json_tokener *tok = json_tokener_new();
  json_object *root = json_tokener_parse_ex(tok, buf, (int)len), *nodes;
  double s = 0;
  json_object_object_get_ex(root, "nodes", &nodes);
  json_object_object_foreach(nodes, key, n) {
    json_object *c, *e, *ch;
    (void)key;
    json_object_object_get_ex(n, "cost", &c);
    json_object_object_get_ex(n, "eclass", &e);
    json_object_object_get_ex(n, "children", &ch);
    s += (c ? json_object_get_double(c) : 1) + strlen(json_object_get_string(e)) + json_object_array_length(ch);
  }
  json_object_put(root);
  json_tokener_free(tok);
  return s;
}
