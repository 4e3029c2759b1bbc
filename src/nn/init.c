// SPDX-License-Identifier: MIT
// Weight initialisation: orthogonal (through LAPACK's QR), uniform, constant.
#include <math.h>
#include <string.h>

#include "difftop/nn.h"

// LAPACK (from OpenBLAS)
extern void sgeqrf_(const int* m, const int* n, float* a, const int* lda, float* tau, float* work,
                    const int* lwork, int* info);
extern void sorgqr_(const int* m, const int* n, const int* k, float* a, const int* lda,
                    const float* tau, float* work, const int* lwork, int* info);

void dt_init_uniform(dtTensor* p, float lo, float hi, dtRng* rng) {
  dt_rng_fill_uniform(rng, p->val, (size_t)p->size, lo, hi);
}

void dt_init_constant(dtTensor* p, float value) {
  for (int64_t i = 0; i < p->size; i++) p->val[i] = value;
}

dtStatus dt_init_orthogonal(dtTensor* p, float gain, dtRng* rng) {
  if (!p || p->ndim < 2)
    return dt_error(DT_ERR_SHAPE, "dt_init_orthogonal: '%s' needs at least 2 dimensions",
                    p && p->name ? p->name : "?");
  // as torch: flatten to rows x cols, QR of the taller orientation, fix signs by diag(R)
  int rows = p->shape[0], cols = (int)(p->size / rows);
  int m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
  float* a = dt_malloc((size_t)m * n * sizeof(float));  // column-major m x n
  float* tau = dt_malloc((size_t)n * sizeof(float));
  float* diag = dt_malloc((size_t)n * sizeof(float));
  int lwork = 64 * (m + n), info = 0;
  float* work = dt_malloc((size_t)lwork * sizeof(float));
  if (!a || !tau || !diag || !work) {
    dt_free(a), dt_free(tau), dt_free(diag), dt_free(work);
    return DT_ERR_NOMEM;
  }
  dt_rng_fill_normal(rng, a, (size_t)m * n, 0.0f, 1.0f);
  sgeqrf_(&m, &n, a, &m, tau, work, &lwork, &info);
  for (int j = 0; j < n && !info; j++) diag[j] = a[(size_t)j * m + j] < 0 ? -1.0f : 1.0f;
  if (!info) sorgqr_(&m, &n, &n, a, &m, tau, work, &lwork, &info);
  if (!info) {
    // q is m x n column-major; the parameter is rows x cols row-major
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        float q = a[(size_t)j * m + i] * diag[j] * gain;
        if (rows >= cols) {
          p->val[(size_t)i * cols + j] = q;  // rows = m
        } else {
          p->val[(size_t)j * cols + i] = q;  // transposed: rows = n
        }
      }
    }
  }
  dt_free(a), dt_free(tau), dt_free(diag), dt_free(work);
  if (info) return dt_error(DT_ERR_INTERNAL, "dt_init_orthogonal: LAPACK info %d for '%s'",
                            info, p->name ? p->name : "?");
  return DT_OK;
}
