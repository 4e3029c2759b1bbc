// SPDX-License-Identifier: MIT
// Small dense solves on the free set through LAPACK's symmetric eigensolver: the eigenvalues
// are raised to a floor, so the solve never fails whatever the Hessian.
#include <math.h>
#include <string.h>

#include "trajopt_internal.h"

extern void ssyev_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda,
                   float* w, float* work, const int* lwork, int* info);

int dt_trajopt_free_solve(dtTrajopt* s, const float* H, const float* v, const uint8_t* free_mask,
                          float min_eig, float* u) {
  int n = s->n, m = 0;
  for (int i = 0; i < n; i++) {
    u[i] = 0.0f;
    if (free_mask[i]) s->free_idx[m++] = i;
  }
  if (!m) return 0;
  // M = -H_FF (symmetric: row- and column-major agree)
  for (int i = 0; i < m; i++)
    for (int j = 0; j < m; j++)
      s->sub[(size_t)i * m + j] = -H[(size_t)s->free_idx[i] * n + s->free_idx[j]];
  int info = 0;
  ssyev_("V", "U", &m, s->sub, &m, s->eig_w, s->eig_work, &s->eig_lwork, &info);
  if (info != 0) {
    // the eigensolver did not converge: fall back to a scaled gradient step
    for (int i = 0; i < m; i++) u[s->free_idx[i]] = v[s->free_idx[i]] / fmaxf(min_eig, 1.0f);
    return 1;
  }
  int indefinite = s->eig_w[0] <= 0.0f;
  // u_F = Q diag(1 / max(w, floor)) Q^T v_F; column k of Q is s->sub[k * m ...]
  for (int k = 0; k < m; k++) s->rhs[k] = 0.0f;
  for (int k = 0; k < m; k++) {
    const float* q = s->sub + (size_t)k * m;
    double proj = 0;
    for (int i = 0; i < m; i++) proj += (double)q[i] * v[s->free_idx[i]];
    float wk = s->eig_w[k] > min_eig ? s->eig_w[k] : min_eig;
    s->rhs[k] = (float)(proj / wk);
  }
  for (int i = 0; i < m; i++) {
    double acc = 0;
    for (int k = 0; k < m; k++) acc += (double)s->sub[(size_t)k * m + i] * s->rhs[k];
    u[s->free_idx[i]] = (float)acc;
  }
  return indefinite;
}
