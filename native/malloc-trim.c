/*
 * A Node-API addon with one function, trim(): glibc's malloc_trim(0), which gives the pages of freed
 * heap memory back to the kernel. The node daemon calls it after a burst of work (src/native/
 * memory-reducer.ts): socket reads and table growth leave the C heap fragmented, and glibc only
 * returns memory at the top of the heap by itself (measured: 100 000 BGP routes left ~19 MB of RSS
 * growth, 3-6 MB after a trim; bench/results/bgp.md).
 *
 * Built with plain `cc -shared` (no node-gyp, no Node headers): Node-API is a stable C ABI, and the
 * three functions used are declared here; they resolve against the running node binary at load time.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
extern napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, malloc_trim(0) != 0, &result);
  return result;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", 4, trim, NULL, &fn) != 0) return exports;
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
