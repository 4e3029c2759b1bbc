// SPDX-License-Identifier: MIT
// YAML configs: flattening, merging, overrides, typed getters, errors with file:line, writing.
#include <sys/stat.h>
#include <unistd.h>

#include "difftop/io.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

static char dir[64];

static const char* path_in(const char* name) {
  static char buf[256];
  if (!dir[0]) {
    strcpy(dir, "/tmp/dt_cfg_test_XXXXXX");
    if (!mkdtemp(dir)) abort();
  }
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  return buf;
}

static void write_text(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static int has(const char* needle) { return strstr(dt_last_error(), needle) != NULL; }

static void expect_value(const dtConfig* cfg, const char* key, const char* want, int line) {
  const char* v = dt_config_get(cfg, key);
  CHECK(v && strcmp(v, want) == 0, "line %d: %s = '%s', want '%s'", line, key, v ? v : "(absent)", want);
}
#define EXPECT_VALUE(cfg, key, want) expect_value(cfg, key, want, __LINE__)

static void test_flatten(void) {
  dtConfig* cfg;
  CHECK_OK(dt_config_new(&cfg));
  const char* text =
      "# a comment\n"
      "task: walker-run\n"
      "solver:\n"
      "  iters: 5\n"
      "  lr: 1e-3\n"
      "  inner: {a: 1, b: two}\n"
      "dims: [1, 2, 3]\n"
      "block:\n"
      "  - x\n"
      "  - 'y z'\n"
      "empty:\n"
      "tilde: ~\n"
      "quoted: '  spaced '\n"
      "multi: |\n"
      "  line1\n"
      "  line2\n";
  CHECK_OK(dt_config_load_string(cfg, text, "flat.yaml"));
  CHECK(dt_config_count(cfg) == 11, "%d keys", dt_config_count(cfg));
  const char *k, *v, *src;
  CHECK_OK(dt_config_at(cfg, 0, &k, &v, &src));
  CHECK(strcmp(k, "task") == 0 && strcmp(v, "walker-run") == 0 && strcmp(src, "flat.yaml:2") == 0, "%s %s %s", k, v, src);
  CHECK_OK(dt_config_at(cfg, 1, &k, NULL, NULL));
  CHECK(strcmp(k, "solver.iters") == 0, "%s", k);
  EXPECT_VALUE(cfg, "solver.lr", "1e-3");
  EXPECT_VALUE(cfg, "solver.inner.a", "1");
  EXPECT_VALUE(cfg, "solver.inner.b", "two");
  EXPECT_VALUE(cfg, "dims", "[1, 2, 3]");
  EXPECT_VALUE(cfg, "block", "[x, y z]");
  EXPECT_VALUE(cfg, "empty", "");
  EXPECT_VALUE(cfg, "tilde", "");
  EXPECT_VALUE(cfg, "quoted", "  spaced ");
  EXPECT_VALUE(cfg, "multi", "line1\nline2\n");
  CHECK(strcmp(dt_config_source(cfg, "solver.lr"), "flat.yaml:5") == 0, "%s", dt_config_source(cfg, "solver.lr"));
  CHECK(dt_config_get(cfg, "solver") == NULL);
  CHECK(dt_config_at(cfg, 11, &k, &v, &src) == DT_ERR_ARG);
  // empty documents are fine
  CHECK_OK(dt_config_load_string(cfg, "", "empty.yaml"));
  CHECK_OK(dt_config_load_string(cfg, "---\n...\n", "empty2.yaml"));
  CHECK(dt_config_count(cfg) == 11);
  dt_config_free(cfg);
}

static void test_merge(void) {
  char cfgdir[256];
  strcpy(cfgdir, path_in("configs"));
  mkdir(cfgdir, 0755);
  char p[512];
  snprintf(p, sizeof p, "%s/tasks", cfgdir);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/default.yaml", cfgdir);
  write_text(p, "seed: 1\nsolver:\n  iters: 5\n  step_size: 0.1\naction_repeat: 2\n");
  snprintf(p, sizeof p, "%s/tasks/walker-run.yaml", cfgdir);
  write_text(p, "action_repeat: 4\nsolver:\n  iters: 10\nextra: yes\n");
  dtConfig* cfg;
  CHECK_OK(dt_config_new(&cfg));
  CHECK_OK(dt_config_load_task(cfg, cfgdir, "walker-run"));
  CHECK_OK(dt_config_override(cfg, "solver.step_size=0.05"));
  CHECK_OK(dt_config_override(cfg, "new.key=a=b"));
  EXPECT_VALUE(cfg, "seed", "1");
  EXPECT_VALUE(cfg, "solver.iters", "10");
  EXPECT_VALUE(cfg, "solver.step_size", "0.05");
  EXPECT_VALUE(cfg, "action_repeat", "4");
  EXPECT_VALUE(cfg, "extra", "yes");
  EXPECT_VALUE(cfg, "new.key", "a=b");
  // overridden keys keep their first position; their source is the last file
  const char* k;
  CHECK_OK(dt_config_at(cfg, 1, &k, NULL, NULL));
  CHECK(strcmp(k, "solver.iters") == 0, "%s", k);
  CHECK(strstr(dt_config_source(cfg, "solver.iters"), "tasks/walker-run.yaml:3"), "%s",
        dt_config_source(cfg, "solver.iters"));
  CHECK(strcmp(dt_config_source(cfg, "solver.step_size"), "command line") == 0);
  CHECK(strstr(dt_config_source(cfg, "seed"), "default.yaml:1"));
  // errors: bad override, unknown task, bad task name, missing directory
  CHECK(dt_config_override(cfg, "novalue") == DT_ERR_FORMAT && has("novalue"));
  CHECK(dt_config_override(cfg, "=3") == DT_ERR_FORMAT);
  CHECK(dt_config_load_task(cfg, cfgdir, "cheetah-run") == DT_ERR_NOT_FOUND && has("cheetah-run"),
        "%s", dt_last_error());
  CHECK(dt_config_load_task(cfg, cfgdir, "../default") == DT_ERR_ARG);
  CHECK(dt_config_load_task(cfg, path_in("nowhere"), NULL) == DT_ERR_IO && has("default.yaml"));
  CHECK(dt_config_load_file(cfg, path_in("missing.yaml")) == DT_ERR_IO && has("missing.yaml"));
  // a task can repeat keys of the default; the same file cannot
  CHECK_OK(dt_config_load_task(cfg, cfgdir, NULL));
  EXPECT_VALUE(cfg, "solver.iters", "5");
  dt_config_free(cfg);
}

static void test_getters(void) {
  dtConfig* cfg;
  CHECK_OK(dt_config_new(&cfg));
  CHECK_OK(dt_config_load_string(cfg,
                                 "i: 42\nneg: -7\nbig: 1e6\nhuge: 3000000000\nfrac: 1.5\n"
                                 "word: abc\nt: True\nf: off\nnul: null\nreq: ???\nflt: 1e39\n"
                                 "nan: .nan\ninf: inf\nsp: ' 5'\n",
                                 "get.yaml"));
  int i = 0;
  CHECK_OK(dt_config_get_int(cfg, "i", 0, &i));
  CHECK(i == 42);
  CHECK_OK(dt_config_get_int(cfg, "neg", 0, &i));
  CHECK(i == -7);
  CHECK_OK(dt_config_get_int(cfg, "big", 0, &i));
  CHECK(i == 1000000);
  CHECK_OK(dt_config_get_int(cfg, "absent", 17, &i));
  CHECK(i == 17);
  CHECK_OK(dt_config_get_int(cfg, "nul", 3, &i));
  CHECK(i == 3);
  int64_t i64;
  CHECK_OK(dt_config_get_int64(cfg, "huge", 0, &i64));
  CHECK(i64 == 3000000000LL);
  CHECK(dt_config_get_int(cfg, "huge", 0, &i) == DT_ERR_FORMAT && has("32-bit"));
  CHECK(dt_config_get_int(cfg, "frac", 0, &i) == DT_ERR_FORMAT);
  CHECK(has("get.yaml:5") && has("'frac'") && has("'1.5'"), "%s", dt_last_error());
  CHECK(dt_config_get_int(cfg, "word", 0, &i) == DT_ERR_FORMAT && has("get.yaml:6"));
  CHECK(dt_config_get_int(cfg, "sp", 0, &i) == DT_ERR_FORMAT);
  double d;
  float f;
  CHECK_OK(dt_config_get_double(cfg, "frac", 0, &d));
  CHECK(d == 1.5);
  CHECK_OK(dt_config_get_double(cfg, "i", 0, &d));
  CHECK(d == 42);
  CHECK_OK(dt_config_get_float(cfg, "big", 0, &f));
  CHECK(f == 1e6f);
  CHECK(dt_config_get_float(cfg, "flt", 0, &f) == DT_ERR_FORMAT && has("float32"));
  CHECK(dt_config_get_double(cfg, "nan", 0, &d) == DT_ERR_FORMAT);
  CHECK(dt_config_get_double(cfg, "inf", 0, &d) == DT_ERR_FORMAT && has("'inf'"));
  CHECK(dt_config_get_double(cfg, "word", 0, &d) == DT_ERR_FORMAT);
  int b = -1;
  CHECK_OK(dt_config_get_bool(cfg, "t", 0, &b));
  CHECK(b == 1);
  CHECK_OK(dt_config_get_bool(cfg, "f", 1, &b));
  CHECK(b == 0);
  CHECK_OK(dt_config_get_bool(cfg, "absent", 1, &b));
  CHECK(b == 1);
  CHECK(dt_config_get_bool(cfg, "word", 0, &b) == DT_ERR_FORMAT && has("boolean"));
  const char* s;
  CHECK_OK(dt_config_get_str(cfg, "word", "x", &s));
  CHECK(strcmp(s, "abc") == 0);
  CHECK_OK(dt_config_get_str(cfg, "absent", "dflt", &s));
  CHECK(strcmp(s, "dflt") == 0);
  CHECK(dt_config_get_str(cfg, "req", "x", &s) == DT_ERR_FORMAT && has("required") && has("get.yaml:10"),
        "%s", dt_last_error());
  CHECK(dt_config_get_int(cfg, "i", 0, NULL) == DT_ERR_ARG);
  dt_config_free(cfg);
}

// load text, expect DT_ERR_FORMAT with every needle in the message, and cfg unchanged
static void expect_bad(const char* text, const char* n1, const char* n2, int line) {
  dtConfig* cfg;
  dt_config_new(&cfg);
  dt_config_set(cfg, "keep", "1", NULL);
  dtStatus s = dt_config_load_string(cfg, text, "bad.yaml");
  CHECK(s == DT_ERR_FORMAT, "line %d: %s", line, dt_status_string(s));
  CHECK(has("bad.yaml:"), "line %d: %s", line, dt_last_error());
  if (n1) CHECK(has(n1), "line %d: '%s' not in '%s'", line, n1, dt_last_error());
  if (n2) CHECK(has(n2), "line %d: '%s' not in '%s'", line, n2, dt_last_error());
  CHECK(dt_config_count(cfg) == 1, "line %d: a failed load changed the config", line);
  dt_config_free(cfg);
}
#define EXPECT_BAD(text, n1, n2) expect_bad(text, n1, n2, __LINE__)

static void test_malformed(void) {
  EXPECT_BAD("a: [1, 2\nb: 3\n", "bad.yaml:2:", NULL);
  EXPECT_BAD("a: 1\n  b: 2\n", "bad.yaml:2:", NULL);
  EXPECT_BAD("a: 1\nb: 'unterminated\n", "bad.yaml:", "quoted scalar");
  EXPECT_BAD("a:\n\tb: 1\n", "bad.yaml:2:", NULL);
  EXPECT_BAD("a: 1\nb: 2\na: 3\n", "bad.yaml:3:", "duplicate key 'a'");
  EXPECT_BAD("s:\n  x: 1\ns.x: 2\n", "duplicate key 's.x'", NULL);
  EXPECT_BAD("a: &x 1\nb: *x\n", "bad.yaml:2:", "aliases");
  EXPECT_BAD("- 1\n- 2\n", "bad.yaml:1:1", "mapping");
  EXPECT_BAD("just text\n", "mapping", NULL);
  EXPECT_BAD("a: 1\n---\nb: 2\n", "bad.yaml:2:", "more than one");
  EXPECT_BAD("a:\n  - x: 1\n", "bad.yaml:2:", "only sequences of scalars");
  EXPECT_BAD("a: [[1]]\n", "only sequences of scalars", "'a'");
  EXPECT_BAD("? [1, 2]\n: x\n", "keys must be", NULL);
  EXPECT_BAD("base: {a: 1}\nd:\n  <<: {a: 2}\n", "merge keys", NULL);
  EXPECT_BAD("'': 1\n", "empty key", NULL);
  EXPECT_BAD("a=b: 1\n", "'=' in key", NULL);
  EXPECT_BAD("a: \"\\xZZ\"\n", "bad.yaml:1:", NULL);
  EXPECT_BAD("a: \xff\xfe\n", NULL, NULL);
  // deep nesting
  char deep[2000] = "";
  for (int k = 0; k < 40; k++) {
    char line[128];
    snprintf(line, sizeof line, "%*sk%d:\n", 2 * k, "", k);
    strcat(deep, line);
  }
  strcat(deep, "                                                                                 x: 1\n");
  EXPECT_BAD(deep, "too deep", NULL);
}

static void test_check_keys(void) {
  dtConfig* cfg;
  CHECK_OK(dt_config_new(&cfg));
  CHECK_OK(dt_config_load_string(cfg, "seed: 1\nsolver:\n  iter: 5\n", "keys.yaml"));
  const char* known[] = {"seed", "solver.iters", "solver.step_size", "action_repeat"};
  CHECK(dt_config_check_keys(cfg, known, 4) == DT_ERR_NOT_FOUND);
  CHECK(has("keys.yaml:3") && has("unknown key 'solver.iter'") && has("did you mean 'solver.iters'"),
        "%s", dt_last_error());
  CHECK_OK(dt_config_override(cfg, "solver.iter=1"));  // still unknown; now from the command line
  CHECK(dt_config_check_keys(cfg, known, 4) == DT_ERR_NOT_FOUND && has("command line"));
  dtConfig* cfg2;
  CHECK_OK(dt_config_new(&cfg2));
  CHECK_OK(dt_config_load_string(cfg2, "seed: 1\nbanana: 2\n", "keys.yaml"));
  CHECK(dt_config_check_keys(cfg2, known, 4) == DT_ERR_NOT_FOUND);
  CHECK(has("unknown key 'banana'") && !has("did you mean"), "%s", dt_last_error());
  const char* all[] = {"seed", "banana"};
  CHECK_OK(dt_config_check_keys(cfg2, all, 2));
  dt_config_free(cfg);
  dt_config_free(cfg2);
}

static void test_write(void) {
  dtConfig* cfg;
  CHECK_OK(dt_config_new(&cfg));
  CHECK_OK(dt_config_load_string(cfg,
                                 "task: walker-run\nsolver:\n  iters: 5\n  inner: {a: 1}\n"
                                 "dims: [1, 2]\nq: 'a: b # c'\nnl: \"x\\ny\"\nempty: ''\n",
                                 "w.yaml"));
  CHECK_OK(dt_config_override(cfg, "solver.lr=0.001"));
  CHECK_OK(dt_config_override(cfg, "task.variant=hard"));  // "task" is a leaf and a prefix
  CHECK_OK(dt_config_override(cfg, "unicode=caf\xc3\xa9"));
  const char* out = path_in("resolved.yaml");
  CHECK_OK(dt_config_write(cfg, out));
  dtConfig* back;
  CHECK_OK(dt_config_new(&back));
  CHECK_OK(dt_config_load_file(back, out));
  CHECK(dt_config_count(back) == dt_config_count(cfg), "%d vs %d", dt_config_count(back),
        dt_config_count(cfg));
  // same values; the order differs only where keys are grouped under their prefix
  for (int i = 0; i < dt_config_count(cfg); i++) {
    const char *k, *v;
    dt_config_at(cfg, i, &k, &v, NULL);
    const char* w = dt_config_get(back, k);
    CHECK(w && strcmp(v, w) == 0, "%s: '%s' vs '%s'", k, v, w ? w : "(absent)");
  }
  const char* k;
  CHECK_OK(dt_config_at(back, 1, &k, NULL, NULL));
  CHECK(strcmp(k, "task.variant") == 0, "grouping: %s", k);
  CHECK_OK(dt_config_at(back, 4, &k, NULL, NULL));
  CHECK(strcmp(k, "solver.lr") == 0, "grouping: %s", k);
  if (getenv("DT_SHOW_YAML")) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "cat '%s'", out);
    CHECK(system(cmd) == 0);
  }
  dt_config_free(back);
  dt_config_free(cfg);
  CHECK(dt_config_write(NULL, out) == DT_ERR_ARG);
}

static void cleanup(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

DT_TEST_MAIN("config", TEST(test_flatten), TEST(test_merge), TEST(test_getters),
             TEST(test_malformed), TEST(test_check_keys), TEST(test_write), TEST(cleanup))
