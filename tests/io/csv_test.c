// SPDX-License-Identifier: MIT
// CSV logs: header, numeric and text rows, quoting, resume checks, torn rows.
#include <unistd.h>

#include "difftop/io.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

static char path[64];

static char* slurp(const char* p) {
  static char buf[4096];
  FILE* f = fopen(p, "rb");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void spit(const char* p, const char* text) {
  FILE* f = fopen(p, "wb");
  fputs(text, f);
  fclose(f);
}

static void test_create(void) {
  int fd;
  strcpy(path, "/tmp/dt_csv_test_XXXXXX");
  fd = mkstemp(path);
  close(fd);
  const char* cols[] = {"step", "episode_reward", "note"};
  dtCsv* csv;
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_CREATE, &csv));
  CHECK(dt_csv_columns(csv) == 3);
  double row1[3] = {1000, 0.1, -0.0};
  CHECK_OK(dt_csv_row(csv, row1));
  // flushed per row: visible before close
  CHECK(strcmp(slurp(path), "step,episode_reward,note\n1000,0.1,-0\n") == 0, "%s", slurp(path));
  double row2[3] = {1e20, NAN, -INFINITY};
  CHECK_OK(dt_csv_row(csv, row2));
  double third = 1.0 / 3.0;
  double row3[3] = {third, 2.5e-8, 123456789012345.0};
  CHECK_OK(dt_csv_row(csv, row3));
  const char* cells[3] = {"a,b", "say \"hi\"", NULL};
  CHECK_OK(dt_csv_row_str(csv, cells));
  CHECK_OK(dt_csv_close(csv));
  const char* text = slurp(path);
  CHECK(strstr(text, "\n1e+20,nan,-inf\n"), "%s", text);
  CHECK(strstr(text, "\n\"a,b\",\"say \"\"hi\"\"\",\n"), "%s", text);
  // shortest round trip
  CHECK(strstr(text, "\n0.3333333333333333,2.5e-08,123456789012345\n"), "%s", text);
  CHECK(strtod(strstr(text, "0.333"), NULL) == third);
}

static void test_resume(void) {
  const char* cols[] = {"step", "episode_reward", "note"};
  dtCsv* csv;
  // a matching header appends after the existing rows
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv));
  double row[3] = {2000, 5, 6};
  CHECK_OK(dt_csv_row(csv, row));
  CHECK_OK(dt_csv_close(csv));
  const char* text = slurp(path);
  CHECK(strncmp(text, "step,episode_reward,note\n1000,", 30) == 0, "%s", text);
  CHECK(strstr(text, ",\n2000,5,6\n") && text[strlen(text) - 1] == '\n', "%s", text);
  // a torn last row (no newline) is dropped
  spit(path, "step,episode_reward,note\n1,2,3\n4,5");
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv));
  CHECK_OK(dt_csv_row(csv, row));
  CHECK_OK(dt_csv_close(csv));
  CHECK(strcmp(slurp(path), "step,episode_reward,note\n1,2,3\n2000,5,6\n") == 0, "%s", slurp(path));
  // header only, without its newline; CRLF headers; empty files
  spit(path, "step,episode_reward,note");
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv));
  CHECK_OK(dt_csv_row(csv, row));
  CHECK_OK(dt_csv_close(csv));
  CHECK(strcmp(slurp(path), "step,episode_reward,note\n2000,5,6\n") == 0, "%s", slurp(path));
  spit(path, "step,episode_reward,note\r\n");
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv));
  CHECK_OK(dt_csv_close(csv));
  spit(path, "");
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv));
  CHECK_OK(dt_csv_close(csv));
  CHECK(strcmp(slurp(path), "step,episode_reward,note\n") == 0, "%s", slurp(path));
  // mismatches name the file and the column
  spit(path, "step,reward,note\n1,2,3\n");
  CHECK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv) == DT_ERR_FORMAT && !csv);
  CHECK(strstr(dt_last_error(), path) && strstr(dt_last_error(), "column 2 is 'reward'") &&
        strstr(dt_last_error(), "'episode_reward'"), "%s", dt_last_error());
  CHECK(strcmp(slurp(path), "step,reward,note\n1,2,3\n") == 0, "a failed resume changed the file");
  spit(path, "step,episode_reward\n");
  CHECK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "2 columns, expected 3"), "%s", dt_last_error());
  // quoted header cells compare unquoted
  const char* qcols[] = {"a,b", "c"};
  CHECK_OK(dt_csv_open(path, qcols, 2, DT_CSV_CREATE, &csv));
  CHECK_OK(dt_csv_close(csv));
  CHECK_OK(dt_csv_open(path, qcols, 2, DT_CSV_RESUME, &csv));
  CHECK_OK(dt_csv_close(csv));
  // a missing file is created
  unlink(path);
  CHECK_OK(dt_csv_open(path, cols, 3, DT_CSV_RESUME, &csv));
  CHECK_OK(dt_csv_close(csv));
  CHECK(strcmp(slurp(path), "step,episode_reward,note\n") == 0);
  unlink(path);
}

static void test_errors(void) {
  const char* cols[] = {"a", ""};
  dtCsv* csv = (dtCsv*)1;
  CHECK(dt_csv_open("/tmp/x.csv", cols, 2, DT_CSV_CREATE, &csv) == DT_ERR_ARG && !csv);
  CHECK(dt_csv_open("/tmp/x.csv", cols, 0, DT_CSV_CREATE, &csv) == DT_ERR_ARG);
  CHECK(dt_csv_open("/nonexistent-dir/x.csv", cols, 1, DT_CSV_CREATE, &csv) == DT_ERR_IO);
  CHECK(strstr(dt_last_error(), "/nonexistent-dir/x.csv"), "%s", dt_last_error());
  CHECK(dt_csv_row(NULL, NULL) == DT_ERR_ARG);
  CHECK_OK(dt_csv_close(NULL));
}

DT_TEST_MAIN("csv", TEST(test_create), TEST(test_resume), TEST(test_errors))
