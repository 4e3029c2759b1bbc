// SPDX-License-Identifier: MIT
// An outside program built against an installed difftop (find_package and pkg-config).
#include <difftop/difftop.h>
#include <stdio.h>
int main(void) {
  if (dt_version() != DT_VERSION_HEX) { printf("header/library mismatch\n"); return 1; }
  dtTape* t = dt_tape_new(NULL);
  dtTensor* x = dt_input2(t, 1, 2, (float[]){1, 2}, "x");
  dt_requires_grad(t, x);
  dtTensor* y = dt_sum(t, dt_square(t, x), DT_AXIS_ALL);
  dt_backward(t, y, NULL);
  printf("difftop %s: d/dx sum(x^2) at (1,2) = (%g, %g)\n", dt_version_string(), x->grad[0], x->grad[1]);
  dt_tape_free(t);
  return 0;
}
