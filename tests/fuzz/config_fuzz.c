// SPDX-License-Identifier: MIT
// libFuzzer target: the YAML config loader and the typed getters on arbitrary text.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "difftop/io.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char* text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = 0;
  dtConfig* cfg;
  if (dt_config_new(&cfg) != DT_OK) abort();
  dt_config_set(cfg, "base", "1", NULL);
  dtStatus s = dt_config_load_string(cfg, text, "fuzz.yaml");
  // a failed load names the input and changes nothing
  if (s != DT_OK && (dt_config_count(cfg) != 1 || !strstr(dt_last_error(), "fuzz.yaml"))) abort();
  for (int i = 0; i < dt_config_count(cfg); i++) {
    const char *k, *v, *src;
    if (dt_config_at(cfg, i, &k, &v, &src) != DT_OK || !k || !v || !src) abort();
    if (dt_config_get(cfg, k) != v) abort();
    int iv;
    int64_t lv;
    float fv;
    double dv;
    const char* sv;
    dt_config_get_int(cfg, k, 0, &iv);
    dt_config_get_int64(cfg, k, 0, &lv);
    dt_config_get_float(cfg, k, 0, &fv);
    dt_config_get_double(cfg, k, 0, &dv);
    dt_config_get_bool(cfg, k, 0, &iv);
    dt_config_get_str(cfg, k, "", &sv);
  }
  static const char* const known[] = {"base", "solver.iters", "solver.step_size", "seed"};
  dt_config_check_keys(cfg, known, 4);
  dt_config_free(cfg);
  free(text);
  return 0;
}
