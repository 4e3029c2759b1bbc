// SPDX-License-Identifier: MIT
// YAML configs (libyaml): flattened dotted keys with the file:line of every value.
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "io/io_internal.h"

// nesting accepted in a config file (each level is one dotted segment)
#define CFG_MAX_DEPTH 32

typedef struct cfgEntry {
  char* key;
  char* value;
  char* source;  // "file:line", or "command line"
  int gen;       // load that last set it (duplicate keys within one file)
} cfgEntry;

struct dtConfig {
  cfgEntry* e;
  int n;
  size_t cap;
  int gen;  // current load number
};

dtStatus dt_config_new(dtConfig** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_config_new: out is NULL");
  *out = dt_calloc(1, sizeof **out);
  return *out ? DT_OK : DT_ERR_NOMEM;
}

void dt_config_free(dtConfig* cfg) {
  if (!cfg) return;
  for (int i = 0; i < cfg->n; i++) {
    dt_free(cfg->e[i].key);
    dt_free(cfg->e[i].value);
    dt_free(cfg->e[i].source);
  }
  dt_free(cfg->e);
  dt_free(cfg);
}

static cfgEntry* find(const dtConfig* cfg, const char* key) {
  for (int i = 0; i < cfg->n; i++)
    if (strcmp(cfg->e[i].key, key) == 0) return &cfg->e[i];
  return NULL;
}

// set key; an existing key keeps its position and takes the new value and source
static dtStatus set_entry(dtConfig* cfg, const char* key, const char* value, const char* source) {
  char* v = dt_strdup(value);
  char* s = dt_strdup(source);
  if (!v || !s) {
    dt_free(v);
    dt_free(s);
    return DT_ERR_NOMEM;
  }
  cfgEntry* e = find(cfg, key);
  if (!e) {
    char* k = dt_strdup(key);
    if (!k || !dt_grow((void**)&cfg->e, &cfg->cap, (size_t)cfg->n + 1, sizeof *cfg->e)) {
      dt_free(k);
      dt_free(v);
      dt_free(s);
      return DT_ERR_NOMEM;
    }
    e = &cfg->e[cfg->n++];
    e->key = k;
    e->value = NULL;
    e->source = NULL;
  }
  dt_free(e->value);
  dt_free(e->source);
  e->value = v;
  e->source = s;
  e->gen = cfg->gen;
  return DT_OK;
}

dtStatus dt_config_set(dtConfig* cfg, const char* key, const char* value, const char* source) {
  if (!cfg || !key || !value) return dt_error(DT_ERR_ARG, "dt_config_set: NULL argument");
  if (!*key) return dt_error(DT_ERR_ARG, "dt_config_set: empty key");
  cfg->gen++;
  return set_entry(cfg, key, value, source ? source : "<set>");
}

//---------------------------------------------------------------------------------------------
// loading

typedef struct Loader {
  dtConfig* cfg;
  yaml_parser_t parser;
  const char* label;
} Loader;

static dtStatus yerr(Loader* ld, const yaml_mark_t* m, const char* what, const char* name) {
  return dt_error(DT_ERR_FORMAT, "%s:%zu:%zu: %s%s%.120s%s", ld->label, m->line + 1, m->column + 1,
                  what, name ? " '" : "", name ? name : "", name ? "'" : "");
}

// next event; a syntax error reports the parser's file:line:column
static dtStatus next(Loader* ld, yaml_event_t* ev) {
  if (yaml_parser_parse(&ld->parser, ev)) return DT_OK;
  const yaml_parser_t* p = &ld->parser;
  const yaml_mark_t* m = &p->problem_mark;
  if (p->error == YAML_MEMORY_ERROR) return dt_error(DT_ERR_NOMEM, "%s: out of memory", ld->label);
  if (p->error == YAML_READER_ERROR)
    return dt_error(DT_ERR_FORMAT, "%s: byte %zu: %s", ld->label, p->problem_offset,
                    p->problem ? p->problem : "unreadable input");
  return dt_error(DT_ERR_FORMAT, "%s:%zu:%zu: %s%s%s", ld->label, m->line + 1, m->column + 1,
                  p->problem ? p->problem : "syntax error", p->context ? " " : "",
                  p->context ? p->context : "");
}

static int is_null_scalar(const yaml_event_t* ev) {
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char* v = (const char*)ev->data.scalar.value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

// the value of one key: scalar, flow of scalars, or a nested mapping
static dtStatus load_mapping(Loader* ld, const char* prefix, int depth);

static dtStatus load_value(Loader* ld, yaml_event_t* ev, const char* key, int depth) {
  char src[1200];
  snprintf(src, sizeof src, "%s:%zu", ld->label, ev->start_mark.line + 1);
  switch (ev->type) {
    case YAML_SCALAR_EVENT: {
      cfgEntry* old = find(ld->cfg, key);
      if (old && old->gen == ld->cfg->gen)
        return yerr(ld, &ev->start_mark, "duplicate key", key);
      return set_entry(ld->cfg, key, is_null_scalar(ev) ? "" : (const char*)ev->data.scalar.value, src);
    }
    case YAML_MAPPING_START_EVENT:
      if (depth >= CFG_MAX_DEPTH) return yerr(ld, &ev->start_mark, "mappings nested too deep at", key);
      return load_mapping(ld, key, depth + 1);
    case YAML_SEQUENCE_START_EVENT: {
      // a sequence of scalars becomes "[a, b, c]"
      dtBuf b = {0};
      dt_buf_put(&b, "[", 1);
      yaml_mark_t start = ev->start_mark;
      dtStatus s = DT_OK;
      for (int k = 0;; k++) {
        yaml_event_t item;
        if ((s = next(ld, &item))) break;
        if (item.type == YAML_SEQUENCE_END_EVENT) {
          yaml_event_delete(&item);
          break;
        }
        if (item.type != YAML_SCALAR_EVENT) {
          s = yerr(ld, &item.start_mark, "only sequences of scalars are supported, in", key);
          yaml_event_delete(&item);
          break;
        }
        if (k) dt_buf_put(&b, ", ", 2);
        dt_buf_puts(&b, (const char*)item.data.scalar.value);
        yaml_event_delete(&item);
      }
      if (!s && b.oom) s = DT_ERR_NOMEM;
      if (!s) {
        dt_buf_put(&b, "]", 1);
        cfgEntry* old = find(ld->cfg, key);
        if (old && old->gen == ld->cfg->gen) s = yerr(ld, &start, "duplicate key", key);
        else s = b.oom ? DT_ERR_NOMEM : set_entry(ld->cfg, key, b.data, src);
      }
      dt_buf_free(&b);
      return s;
    }
    case YAML_ALIAS_EVENT:
      return yerr(ld, &ev->start_mark, "aliases (*name) are not supported, in", key);
    default:
      return yerr(ld, &ev->start_mark, "unexpected YAML event for", key);
  }
}

static dtStatus load_mapping(Loader* ld, const char* prefix, int depth) {
  for (;;) {
    yaml_event_t kev;
    dtStatus s = next(ld, &kev);
    if (s) return s;
    if (kev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&kev);
      return DT_OK;
    }
    if (kev.type != YAML_SCALAR_EVENT) {
      s = yerr(ld, &kev.start_mark, "keys must be plain scalars", prefix[0] ? prefix : NULL);
      yaml_event_delete(&kev);
      return s;
    }
    const char* name = (const char*)kev.data.scalar.value;
    if (!*name || strcmp(name, "<<") == 0 || strchr(name, '=')) {
      s = yerr(ld, &kev.start_mark,
               !*name ? "empty key" : strchr(name, '=') ? "'=' in key" : "merge keys (<<) are not supported",
               name);
      yaml_event_delete(&kev);
      return s;
    }
    size_t len = strlen(prefix) + strlen(name) + 2;
    char* key = dt_malloc(len);
    if (!key) {
      yaml_event_delete(&kev);
      return DT_ERR_NOMEM;
    }
    snprintf(key, len, "%s%s%s", prefix, prefix[0] ? "." : "", name);
    yaml_event_delete(&kev);
    yaml_event_t vev;
    s = next(ld, &vev);
    if (!s) {
      s = load_value(ld, &vev, key, depth);
      yaml_event_delete(&vev);
    }
    dt_free(key);
    if (s) return s;
  }
}

// a stream of at most one document whose top level is a mapping (or empty)
static dtStatus load_stream(Loader* ld) {
  yaml_event_t ev;
  dtStatus s = next(ld, &ev);  // stream start
  if (s) return s;
  yaml_event_delete(&ev);
  int docs = 0;
  for (;;) {
    if ((s = next(ld, &ev))) return s;
    yaml_event_type_t t = ev.type;
    yaml_mark_t m = ev.start_mark;
    yaml_event_delete(&ev);
    if (t == YAML_STREAM_END_EVENT) return DT_OK;
    if (t != YAML_DOCUMENT_START_EVENT) return yerr(ld, &m, "expected a document", NULL);
    if (docs++) return yerr(ld, &m, "more than one YAML document", NULL);
    if ((s = next(ld, &ev))) return s;
    if (ev.type == YAML_MAPPING_START_EVENT) {
      yaml_event_delete(&ev);
      if ((s = load_mapping(ld, "", 0))) return s;
    } else if (ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev)) {
      yaml_event_delete(&ev);  // an empty document
    } else {
      m = ev.start_mark;
      yaml_event_delete(&ev);
      return yerr(ld, &m, "the top level of a config must be a mapping", NULL);
    }
    if ((s = next(ld, &ev))) return s;  // document end
    yaml_event_delete(&ev);
  }
}

static dtStatus load_with(dtConfig* cfg, const char* label, FILE* f, const char* text) {
  Loader ld = {cfg, {0}, label};
  if (!yaml_parser_initialize(&ld.parser)) return dt_error(DT_ERR_NOMEM, "%s: out of memory", label);
  if (f) yaml_parser_set_input_file(&ld.parser, f);
  else yaml_parser_set_input_string(&ld.parser, (const unsigned char*)text, strlen(text));
  cfg->gen++;
  dtStatus s = load_stream(&ld);
  yaml_parser_delete(&ld.parser);
  return s;
}

// load into a scratch copy, committed to cfg only on success: a malformed file changes nothing
static dtStatus load_atomic(dtConfig* cfg, const char* label, FILE* f, const char* text) {
  dtConfig* tmp;
  dtStatus s = dt_config_new(&tmp);
  if (s) return s;
  for (int i = 0; i < cfg->n && !s; i++)
    s = set_entry(tmp, cfg->e[i].key, cfg->e[i].value, cfg->e[i].source);
  tmp->gen = cfg->gen + 1;
  if (!s) s = load_with(tmp, label, f, text);
  if (s) {
    dt_config_free(tmp);
    return s;
  }
  // swap contents
  dtConfig old = *cfg;
  *cfg = *tmp;
  *tmp = old;
  dt_config_free(tmp);
  return DT_OK;
}

dtStatus dt_config_load_file(dtConfig* cfg, const char* path) {
  if (!cfg || !path) return dt_error(DT_ERR_ARG, "dt_config_load_file: NULL argument");
  FILE* f = fopen(path, "rb");
  if (!f) return dt_error(DT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  dtStatus s = load_atomic(cfg, path, f, NULL);
  fclose(f);
  return s;
}

dtStatus dt_config_load_string(dtConfig* cfg, const char* text, const char* label) {
  if (!cfg || !text) return dt_error(DT_ERR_ARG, "dt_config_load_string: NULL argument");
  return load_atomic(cfg, label ? label : "<string>", NULL, text);
}

dtStatus dt_config_load_task(dtConfig* cfg, const char* dir, const char* task) {
  if (!cfg || !dir) return dt_error(DT_ERR_ARG, "dt_config_load_task: NULL argument");
  char path[4096];
  snprintf(path, sizeof path, "%s/default.yaml", dir);
  dtStatus s = dt_config_load_file(cfg, path);
  if (s || !task) return s;
  if (!*task || strchr(task, '/') || task[0] == '.')
    return dt_error(DT_ERR_ARG, "invalid task name '%.80s'", task);
  snprintf(path, sizeof path, "%s/tasks/%s.yaml", dir, task);
  FILE* f = fopen(path, "rb");
  if (!f) return dt_error(DT_ERR_NOT_FOUND, "unknown task '%.80s': cannot open %s: %s", task, path,
                          strerror(errno));
  fclose(f);
  return dt_config_load_file(cfg, path);
}

dtStatus dt_config_override(dtConfig* cfg, const char* assignment) {
  if (!cfg || !assignment) return dt_error(DT_ERR_ARG, "dt_config_override: NULL argument");
  const char* eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return dt_error(DT_ERR_FORMAT, "override '%.120s' is not of the form key=value", assignment);
  size_t klen = (size_t)(eq - assignment);
  char* key = dt_malloc(klen + 1);
  if (!key) return DT_ERR_NOMEM;
  memcpy(key, assignment, klen);
  key[klen] = 0;
  cfg->gen++;
  dtStatus s = set_entry(cfg, key, eq + 1, "command line");
  dt_free(key);
  return s;
}

//---------------------------------------------------------------------------------------------
// queries

int dt_config_count(const dtConfig* cfg) { return cfg ? cfg->n : 0; }

dtStatus dt_config_at(const dtConfig* cfg, int i, const char** key, const char** value,
                      const char** source) {
  if (!cfg || i < 0 || i >= cfg->n)
    return dt_error(DT_ERR_ARG, "dt_config_at: index %d out of range", i);
  if (key) *key = cfg->e[i].key;
  if (value) *value = cfg->e[i].value;
  if (source) *source = cfg->e[i].source;
  return DT_OK;
}

const char* dt_config_get(const dtConfig* cfg, const char* key) {
  const cfgEntry* e = (cfg && key) ? find(cfg, key) : NULL;
  return e ? e->value : NULL;
}

const char* dt_config_source(const dtConfig* cfg, const char* key) {
  const cfgEntry* e = (cfg && key) ? find(cfg, key) : NULL;
  return e ? e->source : NULL;
}

// the entry to convert, or NULL when the default applies (absent or null); 0 on a bad call
static int lookup_value(const dtConfig* cfg, const char* key, const void* out, const cfgEntry** e,
                        dtStatus* s) {
  *e = NULL;
  if (!cfg || !key || !out) {
    *s = dt_error(DT_ERR_ARG, "dt_config_get: NULL argument");
    return 0;
  }
  const cfgEntry* f = find(cfg, key);
  if (f && !*f->value) f = NULL;
  if (f && strcmp(f->value, "?\?\?") == 0) {
    *s = dt_error(DT_ERR_FORMAT, "%s: required key '%s' is not set ('?\?\?')", f->source, key);
    return 0;
  }
  *e = f;
  *s = DT_OK;
  return 1;
}

static dtStatus bad_value(const cfgEntry* e, const char* what) {
  return dt_error(DT_ERR_FORMAT, "%s: key '%s': '%.80s' is not %s", e->source, e->key, e->value, what);
}

dtStatus dt_config_get_int64(const dtConfig* cfg, const char* key, int64_t def, int64_t* out) {
  const cfgEntry* e;
  dtStatus s;
  if (!lookup_value(cfg, key, out, &e, &s)) return s;
  if (!e) {
    *out = def;
    return DT_OK;
  }
  // a plain integer, or an integral number such as 1e6
  char* end;
  errno = 0;
  long long v = strtoll(e->value, &end, 10);
  if (*end == 0 && errno == 0 && !isspace((unsigned char)e->value[0])) {
    *out = v;
    return DT_OK;
  }
  double d = strtod(e->value, &end);
  if (*end == 0 && !isspace((unsigned char)e->value[0]) && isfinite(d) && d == floor(d) &&
      fabs(d) < 9.2e18) {
    *out = (int64_t)d;
    return DT_OK;
  }
  return bad_value(e, "an integer");
}

dtStatus dt_config_get_int(const dtConfig* cfg, const char* key, int def, int* out) {
  int64_t v;
  dtStatus s = dt_config_get_int64(cfg, key, def, out ? &v : NULL);
  if (s) return s;
  if (v < INT32_MIN || v > INT32_MAX) return bad_value(find(cfg, key), "a 32-bit integer");
  *out = (int)v;
  return DT_OK;
}

dtStatus dt_config_get_double(const dtConfig* cfg, const char* key, double def, double* out) {
  const cfgEntry* e;
  dtStatus s;
  if (!lookup_value(cfg, key, out, &e, &s)) return s;
  if (!e) {
    *out = def;
    return DT_OK;
  }
  char* end;
  double d = strtod(e->value, &end);
  if (*end || isspace((unsigned char)e->value[0]) || !isfinite(d))
    return bad_value(e, "a finite number");
  *out = d;
  return DT_OK;
}

dtStatus dt_config_get_float(const dtConfig* cfg, const char* key, float def, float* out) {
  double d;
  dtStatus s = dt_config_get_double(cfg, key, def, out ? &d : NULL);
  if (s) return s;
  if (fabs(d) > FLT_MAX) return bad_value(find(cfg, key), "a float32 number");
  *out = (float)d;
  return DT_OK;
}

dtStatus dt_config_get_bool(const dtConfig* cfg, const char* key, int def, int* out) {
  const cfgEntry* e;
  dtStatus s;
  if (!lookup_value(cfg, key, out, &e, &s)) return s;
  if (!e) {
    *out = def;
    return DT_OK;
  }
  static const char* const yes[] = {"true", "yes", "on", "1"};
  static const char* const no[] = {"false", "no", "off", "0"};
  for (int k = 0; k < 4; k++) {
    if (strcasecmp(e->value, yes[k]) == 0) {
      *out = 1;
      return DT_OK;
    }
    if (strcasecmp(e->value, no[k]) == 0) {
      *out = 0;
      return DT_OK;
    }
  }
  return bad_value(e, "a boolean (true/false, yes/no, on/off, 1/0)");
}

dtStatus dt_config_get_str(const dtConfig* cfg, const char* key, const char* def,
                           const char** out) {
  const cfgEntry* e;
  dtStatus s;
  if (!lookup_value(cfg, key, out, &e, &s)) return s;
  *out = e ? e->value : def;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// unknown keys

// Levenshtein distance (two rows; keys are short)
static size_t edit_distance(const char* a, const char* b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 255 || m > 255) return SIZE_MAX;
  size_t prev[256], cur[256];
  for (size_t j = 0; j <= m; j++) prev[j] = j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, (m + 1) * sizeof *prev);
  }
  return prev[m];
}

dtStatus dt_config_check_keys(const dtConfig* cfg, const char* const* known, int n) {
  if (!cfg || (n > 0 && !known)) return dt_error(DT_ERR_ARG, "dt_config_check_keys: NULL argument");
  for (int i = 0; i < cfg->n; i++) {
    const char* key = cfg->e[i].key;
    int found = 0;
    for (int k = 0; k < n && !found; k++) found = known[k] && strcmp(known[k], key) == 0;
    if (found) continue;
    // the closest known key, if it is close enough to be a typo
    const char* best = NULL;
    size_t best_d = SIZE_MAX;
    for (int k = 0; k < n; k++) {
      if (!known[k]) continue;
      size_t d = edit_distance(key, known[k]);
      if (d < best_d) {
        best_d = d;
        best = known[k];
      }
    }
    size_t len = strlen(key), limit = len / 3 > 2 ? len / 3 : 2;
    if (best && best_d <= limit)
      return dt_error(DT_ERR_NOT_FOUND, "%s: unknown key '%s' (did you mean '%s'?)",
                      cfg->e[i].source, key, best);
    return dt_error(DT_ERR_NOT_FOUND, "%s: unknown key '%s'", cfg->e[i].source, key);
  }
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// writing

static int emit_write(void* data, unsigned char* buffer, size_t size) {
  dtBuf* b = data;
  dt_buf_put(b, buffer, size);
  return !b->oom;
}

static int emit_scalar(yaml_emitter_t* em, const char* text) {
  yaml_event_t ev;
  yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t*)text, (int)strlen(text), 1, 1,
                               YAML_ANY_SCALAR_STYLE);
  return yaml_emitter_emit(em, &ev);
}

// length of the first dotted segment of key past skip (the whole rest if no dot)
static size_t segment(const char* key, size_t skip) {
  const char* dot = strchr(key + skip, '.');
  return dot ? (size_t)(dot - (key + skip)) : strlen(key + skip);
}

// emit the keys whose first `skip` bytes equal prefix, grouped by next segment in first-seen order
static int emit_level(yaml_emitter_t* em, const dtConfig* cfg, const char* prefix, size_t skip,
                      char* done) {
  yaml_event_t ev;
  yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
  if (!yaml_emitter_emit(em, &ev)) return 0;
  for (int i = 0; i < cfg->n; i++) {
    const char* key = cfg->e[i].key;
    if (done[i] || strncmp(key, prefix, skip) != 0) continue;
    size_t seg = segment(key, skip);
    char name[1024];
    if (seg >= sizeof name) seg = sizeof name - 1;
    memcpy(name, key + skip, seg);
    name[seg] = 0;
    // leaf here, and whether deeper keys share this segment
    int leaf = -1, deeper = 0;
    for (int j = i; j < cfg->n; j++) {
      const char* kj = cfg->e[j].key;
      if (done[j] || strncmp(kj, prefix, skip) != 0 || strncmp(kj + skip, name, seg) != 0) continue;
      if (kj[skip + seg] == 0) leaf = j;
      else if (kj[skip + seg] == '.') deeper = 1;
    }
    if (leaf >= 0 && deeper) {
      // both "a" and "a.b": write "a" and keep the deeper keys flat ("a.b") at this level
      if (!emit_scalar(em, name) || !emit_scalar(em, cfg->e[leaf].value)) return 0;
      done[leaf] = 1;
      for (int j = i; j < cfg->n; j++) {
        const char* kj = cfg->e[j].key;
        if (done[j] || strncmp(kj, prefix, skip) != 0 || strncmp(kj + skip, name, seg) != 0 ||
            kj[skip + seg] != '.')
          continue;
        if (!emit_scalar(em, kj + skip) || !emit_scalar(em, cfg->e[j].value)) return 0;
        done[j] = 1;
      }
    } else if (leaf >= 0) {
      if (!emit_scalar(em, name) || !emit_scalar(em, cfg->e[leaf].value)) return 0;
      done[leaf] = 1;
    } else {
      if (!emit_scalar(em, name)) return 0;
      if (!emit_level(em, cfg, key, skip + seg + 1, done)) return 0;
    }
  }
  yaml_mapping_end_event_initialize(&ev);
  return yaml_emitter_emit(em, &ev);
}

dtStatus dt_config_write(const dtConfig* cfg, const char* path) {
  if (!cfg || !path) return dt_error(DT_ERR_ARG, "dt_config_write: NULL argument");
  dtBuf b = {0};
  dt_buf_puts(&b, "# resolved config written by difftop\n");
  char* done = dt_calloc((size_t)cfg->n + 1, 1);
  if (!done) return DT_ERR_NOMEM;
  yaml_emitter_t em;
  yaml_event_t ev;
  int ok = yaml_emitter_initialize(&em);
  if (ok) {
    yaml_emitter_set_output(&em, emit_write, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = yaml_emitter_emit(&em, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit(&em, &ev);
    ok = ok && emit_level(&em, cfg, "", 0, done);
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&em, &ev);
    ok = ok && yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
  }
  dt_free(done);
  dtStatus s = DT_OK;
  if (!ok || b.oom) {
    s = dt_error(b.oom ? DT_ERR_NOMEM : DT_ERR_INTERNAL, "%s: YAML emitter failed", path);
  } else {
    dtAtomicFile af;
    s = dt_atomic_begin(&af, path);
    if (!s) {
      dt_atomic_write(&af, b.data, b.len);
      s = dt_atomic_commit(&af);
    }
  }
  dt_buf_free(&b);
  return s;
}
