// SPDX-License-Identifier: MIT
// Push-T internals shared by the task, its expert and tests.
#ifndef DIFFTOP_ENVS_PUSHT_INTERNAL_H
#define DIFFTOP_ENVS_PUSHT_INTERNAL_H

#include "difftop/pusht.h"
#include "envs/env_internal.h"

// the Push-T task table ("pusht": exact clone/restore); the generic env layer registers it
extern const dtTaskDef dt_pusht_task;

// "pusht-pymunk": contacts persist across control steps as in pymunk, so trajectories from a reset
// match gym-pusht bit for bit, but set_state is approximate (hidden contact state is dropped)
extern const dtTaskDef dt_pusht_pymunk_task;

// physics constants shared with the expert
#define DT_PUSHT_DT 0.01
#define DT_PUSHT_SUBSTEPS 10
#define DT_PUSHT_KP 100.0
#define DT_PUSHT_KV 20.0
#define DT_PUSHT_AGENT_RADIUS 15.0
#define DT_PUSHT_GOAL_X 256.0
#define DT_PUSHT_GOAL_Y 256.0
#define DT_PUSHT_GOAL_ANGLE 0.78539816339744830962
#define DT_PUSHT_COG_Y 45.0

// a state's block origin pose (x, y, angle) from its centre of gravity and angle
void dt_pusht_state_block_pose(const double* state, double pose[3]);

#endif
