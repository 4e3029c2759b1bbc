// SPDX-License-Identifier: MIT
// Internals of the MuJoCo tasks shared with the experts (src/envs/experts.c).
#ifndef DIFFTOP_DMC_INTERNAL_H
#define DIFFTOP_DMC_INTERNAL_H

#ifdef DT_HAVE_MUJOCO
#include <mujoco/mujoco.h>

#include "envs/env_internal.h"

// The DMC task table and its length.
extern const dtTaskDef dt_dmc_tasks[];
extern const int dt_dmc_task_count;

// Install difftop's MuJoCo error and warning handlers (once per process).
void dt_mj_install_handlers(void);

// DMC's tolerance: 1 inside [lo, hi], else a sigmoid (0 gaussian, 1 linear, 2 quadratic) of the
// distance over margin that equals vmargin at the margin.
double dt_dmc_tolerance(double x, double lo, double hi, double margin, int sigmoid, double vmargin);

// The model and data behind a MuJoCo env; returns 0 if env is not a MuJoCo task.
int dt_dmc_physics(const dtEnv* env, const mjModel** m, mjData** d);
#endif

#endif
