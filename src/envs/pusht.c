// SPDX-License-Identifier: MIT
// Push-T (diffusion_policy's PushTEnv, re-created from its published parameters) on Chipmunk2D 7.
//
// The world is 512 x 512 units, y pointing down the image. A kinematic disk (radius 15) follows a
// PD law towards the action target and pushes a T block (mass 1) that has zero space damping, so
// the block moves only while pushed. Contacts are frictionless. Reward is the coverage of the goal
// T at (256, 256, pi/4) by exact polygon intersection. See docs/pusht.md.
#include "envs/pusht.h"

#include <math.h>
#include <string.h>

#ifdef DT_HAVE_CHIPMUNK

#include <chipmunk/chipmunk.h>
#include <chipmunk/chipmunk_structs.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

// bounds that keep every Chipmunk computation finite (its debug asserts abort otherwise)
#define PUSHT_POS_LIMIT 1.0e5
#define PUSHT_VEL_LIMIT 1.0e6
#define PUSHT_ACTION_MAX 512.0

struct dtPusht {
  cpSpace* space;
  cpBody* agent;
  cpShape* agent_shape;
  cpBody* block;
  cpShape* block_shapes[2];
  cpShape* walls[4];
  cpHashValue first_dynamic_id;  // hash id of the agent shape, to re-add shapes identically
  double target[2];              // last action (for the state and rendering)
  int has_target;
  int64_t steps;
  int upstream_solver;           // 1: keep contacts across control steps (no canonicalisation)
};

// T geometry in the block frame, in upstream's vertex order
static const cpVect crossbar_verts[4] = {{-60, 30}, {60, 30}, {60, 0}, {-60, 0}};
static const cpVect stem_verts[4] = {{-15, 30}, {-15, 120}, {15, 120}, {15, 30}};

//---------------------------------------------------------------------------------------------
// exact coverage: the T is two boxes with disjoint interiors, so area(T & G) is the sum of the four
// box-box intersections (their interiors are disjoint too); each is a convex clip

typedef struct pushtQuad {
  double x[4], y[4];
} pushtQuad;

// keep the part of a convex polygon on the inner side of the line a->b (orientation sgn)
static int clip_half_plane(const double* px, const double* py, int n, double ax, double ay,
                           double bx, double by, double sgn, double* ox, double* oy) {
  int m = 0;
  double ex = bx - ax, ey = by - ay;
  for (int i = 0; i < n; i++) {
    int j = (i + 1) % n;
    double si = sgn * (ex * (py[i] - ay) - ey * (px[i] - ax));
    double sj = sgn * (ex * (py[j] - ay) - ey * (px[j] - ax));
    if (si >= 0) {
      ox[m] = px[i];
      oy[m] = py[i];
      m++;
    }
    if ((si >= 0) != (sj >= 0)) {
      double t = si / (si - sj);
      ox[m] = px[i] + t * (px[j] - px[i]);
      oy[m] = py[i] + t * (py[j] - py[i]);
      m++;
    }
  }
  return m;
}

// signed shoelace area
static double poly_area(const double* x, const double* y, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    int j = (i + 1) % n;
    s += x[i] * y[j] - x[j] * y[i];
  }
  return 0.5 * s;
}

// area of the intersection of two convex quadrilaterals (Sutherland-Hodgman)
static double quad_intersection_area(const pushtQuad* subject, const pushtQuad* clip) {
  double ax[16], ay[16], bx[16], by[16];
  int n = 4;
  for (int i = 0; i < 4; i++) {
    ax[i] = subject->x[i];
    ay[i] = subject->y[i];
  }
  double sgn = poly_area(clip->x, clip->y, 4) >= 0 ? 1.0 : -1.0;
  for (int e = 0; e < 4 && n > 0; e++) {
    int f = (e + 1) % 4;
    n = clip_half_plane(ax, ay, n, clip->x[e], clip->y[e], clip->x[f], clip->y[f], sgn, bx, by);
    memcpy(ax, bx, sizeof(double) * (size_t)n);
    memcpy(ay, by, sizeof(double) * (size_t)n);
  }
  if (n < 3) return 0.0;
  return fabs(poly_area(ax, ay, n));
}

// world corners of both boxes for a transform x' = a x + c y + tx, y' = b x + d y + ty
static void t_quads(double a, double b, double c, double d, double tx, double ty, pushtQuad q[2]) {
  for (int i = 0; i < 4; i++) {
    q[0].x[i] = a * crossbar_verts[i].x + c * crossbar_verts[i].y + tx;
    q[0].y[i] = b * crossbar_verts[i].x + d * crossbar_verts[i].y + ty;
    q[1].x[i] = a * stem_verts[i].x + c * stem_verts[i].y + tx;
    q[1].y[i] = b * stem_verts[i].x + d * stem_verts[i].y + ty;
  }
}

// the goal's boxes: a body with its centre of gravity at its origin, so the translation is exact
static void goal_quads(pushtQuad q[2]) {
  double c = cos(DT_PUSHT_GOAL_ANGLE), s = sin(DT_PUSHT_GOAL_ANGLE);
  t_quads(c, s, -s, c, DT_PUSHT_GOAL_X, DT_PUSHT_GOAL_Y, q);
}

// coverage of the goal by a T with the given world boxes
static double coverage_of_quads(const pushtQuad block[2]) {
  pushtQuad goal[2];
  goal_quads(goal);
  double goal_area = fabs(poly_area(goal[0].x, goal[0].y, 4)) + fabs(poly_area(goal[1].x, goal[1].y, 4));
  double inter = 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) inter += quad_intersection_area(&block[i], &goal[j]);
  double cov = inter / goal_area;
  return cov < 0 ? 0 : (cov > 1 ? 1 : cov);
}

double dt_pusht_coverage_of_pose(double x, double y, double angle) {
  if (!isfinite(x) || !isfinite(y) || !isfinite(angle)) return 0.0;
  double c = cos(angle), s = sin(angle);
  pushtQuad q[2];
  t_quads(c, s, -s, c, x, y, q);
  return coverage_of_quads(q);
}

double dt_pusht_reward_of_coverage(double coverage) {
  double r = coverage / DT_PUSHT_SUCCESS_COVERAGE;
  return r < 0 ? 0 : (r > 1 ? 1 : r);
}

double dt_pusht_coverage(const dtPusht* sim) {
  if (!sim) return 0.0;
  cpTransform t = sim->block->transform;
  pushtQuad q[2];
  t_quads(t.a, t.b, t.c, t.d, t.tx, t.ty, q);
  return coverage_of_quads(q);
}

//---------------------------------------------------------------------------------------------
// creation

// Debian's Chipmunk is a debug build that prints a banner on stdout at its first cpSpaceNew;
// create (and drop) one space once with stdout pointed at /dev/null so the banner never shows
static pthread_once_t banner_once = PTHREAD_ONCE_INIT;

static void swallow_banner(void) {
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int null_fd = open("/dev/null", O_WRONLY);
  int redirected = saved >= 0 && null_fd >= 0 && dup2(null_fd, STDOUT_FILENO) >= 0;
  cpSpace* space = cpSpaceNew();
  fflush(stdout);
  if (redirected) dup2(saved, STDOUT_FILENO);
  if (saved >= 0) close(saved);
  if (null_fd >= 0) close(null_fd);
  if (space) cpSpaceFree(space);
}

void dt_pusht_free(dtPusht* sim) {
  if (!sim) return;
  if (sim->space) {
    // shapes and bodies first, then the space
    cpShape* shapes[7] = {sim->agent_shape, sim->block_shapes[0], sim->block_shapes[1],
                          sim->walls[0], sim->walls[1], sim->walls[2], sim->walls[3]};
    for (int i = 0; i < 7; i++) {
      if (!shapes[i]) continue;
      if (cpShapeGetSpace(shapes[i])) cpSpaceRemoveShape(sim->space, shapes[i]);
      cpShapeFree(shapes[i]);
    }
    cpBody* bodies[2] = {sim->agent, sim->block};
    for (int i = 0; i < 2; i++) {
      if (!bodies[i]) continue;
      if (cpBodyGetSpace(bodies[i])) cpSpaceRemoveBody(sim->space, bodies[i]);
      cpBodyFree(bodies[i]);
    }
    cpSpaceFree(sim->space);
  }
  dt_free(sim);
}

dtStatus dt_pusht_new(dtPusht** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_pusht_new: out is NULL");
  *out = NULL;
  pthread_once(&banner_once, swallow_banner);
  dtPusht* sim = (dtPusht*)dt_calloc(1, sizeof(dtPusht));
  if (!sim) return dt_error(DT_ERR_NOMEM, "dt_pusht_new: out of memory");

  // space: no gravity, zero damping (velocities are wiped every step), default 10 iterations
  sim->space = cpSpaceNew();
  if (!sim->space) goto nomem;
  cpSpaceSetGravity(sim->space, cpvzero);
  cpSpaceSetDamping(sim->space, 0.0);

  // walls: four static segments of radius 2, frictionless and inelastic
  static const cpVect wall_ends[4][2] = {
      {{5, 506}, {5, 5}}, {{5, 5}, {506, 5}}, {{506, 5}, {506, 506}}, {{5, 506}, {506, 506}}};
  cpBody* ground = cpSpaceGetStaticBody(sim->space);
  for (int i = 0; i < 4; i++) {
    sim->walls[i] = cpSegmentShapeNew(ground, wall_ends[i][0], wall_ends[i][1], 2.0);
    if (!sim->walls[i]) goto nomem;
    cpSpaceAddShape(sim->space, sim->walls[i]);
  }

  // agent: a kinematic disk of radius 15
  sim->agent = cpBodyNewKinematic();
  if (!sim->agent) goto nomem;
  cpBodySetPosition(sim->agent, cpv(256, 400));
  sim->agent_shape = cpCircleShapeNew(sim->agent, DT_PUSHT_AGENT_RADIUS, cpvzero);
  if (!sim->agent_shape) goto nomem;
  cpSpaceAddBody(sim->space, sim->agent);
  sim->first_dynamic_id = sim->space->shapeIDCounter;
  cpSpaceAddShape(sim->space, sim->agent_shape);

  // block: mass 1, moment 2 x the crossbar's (upstream's value), cog at the mean shape centroid
  double moment = 2.0 * cpMomentForPoly(1.0, 4, crossbar_verts, cpvzero, 0.0);
  sim->block = cpBodyNew(1.0, moment);
  if (!sim->block) goto nomem;
  sim->block_shapes[0] = cpPolyShapeNew(sim->block, 4, crossbar_verts, cpTransformIdentity, 0.0);
  sim->block_shapes[1] = cpPolyShapeNew(sim->block, 4, stem_verts, cpTransformIdentity, 0.0);
  if (!sim->block_shapes[0] || !sim->block_shapes[1]) goto nomem;
  cpVect c0 = cpShapeGetCenterOfGravity(sim->block_shapes[0]);
  cpVect c1 = cpShapeGetCenterOfGravity(sim->block_shapes[1]);
  cpBodySetCenterOfGravity(sim->block, cpv((c0.x + c1.x) / 2, (c0.y + c1.y) / 2));
  cpBodySetAngle(sim->block, 0.0);
  cpBodySetPosition(sim->block, cpv(256, 300));
  cpSpaceAddBody(sim->space, sim->block);
  cpSpaceAddShape(sim->space, sim->block_shapes[0]);
  cpSpaceAddShape(sim->space, sim->block_shapes[1]);
  sim->target[0] = 256;
  sim->target[1] = 400;
  *out = sim;
  return DT_OK;
nomem:
  dt_pusht_free(sim);
  return dt_error(DT_ERR_NOMEM, "dt_pusht_new: Chipmunk allocation failed");
}

//---------------------------------------------------------------------------------------------
// stepping

// make the solver's hidden state a function of the body states alone: removing the dynamic shapes
// drops every cached contact (warm-start impulses) and empties the broadphase tree; re-adding them
// with the same hash ids in the same order rebuilds it identically. No allocation once warm.
static void canonicalize(dtPusht* sim) {
  cpSpace* space = sim->space;
  cpSpaceRemoveShape(space, sim->block_shapes[1]);
  cpSpaceRemoveShape(space, sim->block_shapes[0]);
  cpSpaceRemoveShape(space, sim->agent_shape);
  space->shapeIDCounter = sim->first_dynamic_id;
  cpSpaceAddShape(space, sim->agent_shape);
  cpSpaceAddShape(space, sim->block_shapes[0]);
  cpSpaceAddShape(space, sim->block_shapes[1]);
}

// one physics substep: PD velocity update of the pusher, then cpSpaceStep (upstream's arithmetic)
static void substep(dtPusht* sim, double tx, double ty) {
  cpVect p = cpBodyGetPosition(sim->agent);
  cpVect v = cpBodyGetVelocity(sim->agent);
  double ax = DT_PUSHT_KP * (tx - p.x) + DT_PUSHT_KV * (0.0 - v.x);
  double ay = DT_PUSHT_KP * (ty - p.y) + DT_PUSHT_KV * (0.0 - v.y);
  cpBodySetVelocity(sim->agent, cpv(v.x + ax * DT_PUSHT_DT, v.y + ay * DT_PUSHT_DT));
  cpSpaceStep(sim->space, DT_PUSHT_DT);
}

// 1 if every body value is finite and inside the limits that keep Chipmunk's asserts quiet
static int bodies_sane(const dtPusht* sim) {
  const cpBody* bs[2] = {sim->agent, sim->block};
  for (int i = 0; i < 2; i++) {
    const cpBody* b = bs[i];
    if (!(fabs(b->p.x) <= PUSHT_POS_LIMIT && fabs(b->p.y) <= PUSHT_POS_LIMIT)) return 0;
    if (!(fabs(b->v.x) <= PUSHT_VEL_LIMIT && fabs(b->v.y) <= PUSHT_VEL_LIMIT)) return 0;
    if (!(fabs(b->a) <= PUSHT_POS_LIMIT && fabs(b->w) <= PUSHT_VEL_LIMIT)) return 0;
  }
  return 1;
}

static double clip_action(double a) {
  return a < 0 ? 0 : (a > PUSHT_ACTION_MAX ? PUSHT_ACTION_MAX : a);
}

dtStatus dt_pusht_step(dtPusht* sim, const double action[2], double* reward, double* coverage,
                       int* success) {
  if (!sim || !action) return dt_error(DT_ERR_ARG, "dt_pusht_step: NULL argument");
  if (!isfinite(action[0]) || !isfinite(action[1]))
    return dt_error(DT_ERR_NONFINITE, "dt_pusht_step: action (%g, %g) is not finite", action[0],
                    action[1]);
  if (!bodies_sane(sim))
    return dt_error(DT_ERR_STATE, "dt_pusht_step: the simulator left its valid range");
  double tx = clip_action(action[0]), ty = clip_action(action[1]);
  if (!sim->upstream_solver) canonicalize(sim);
  for (int i = 0; i < DT_PUSHT_SUBSTEPS; i++) substep(sim, tx, ty);
  sim->target[0] = tx;
  sim->target[1] = ty;
  sim->has_target = 1;
  sim->steps++;
  double cov = dt_pusht_coverage(sim);
  if (coverage) *coverage = cov;
  if (reward) *reward = dt_pusht_reward_of_coverage(cov);
  if (success) *success = cov > DT_PUSHT_SUCCESS_COVERAGE;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// resets

// place the bodies at a start pose (velocities zero) and take upstream's one settling step
static dtStatus place_and_settle(dtPusht* sim, const double pose[5], int legacy) {
  for (int i = 0; i < 5; i++)
    if (!isfinite(pose[i]) || fabs(pose[i]) > PUSHT_POS_LIMIT)
      return dt_error(DT_ERR_ARG, "pusht reset: pose[%d] = %g is not finite or out of range", i,
                      pose[i]);
  cpBodySetVelocity(sim->agent, cpvzero);
  cpBodySetVelocity(sim->block, cpvzero);
  cpBodySetAngularVelocity(sim->block, 0.0);
  sim->block->v_bias = cpvzero;
  sim->block->w_bias = 0.0;
  cpBodySetPosition(sim->agent, cpv(pose[0], pose[1]));
  if (legacy) {
    cpBodySetPosition(sim->block, cpv(pose[2], pose[3]));
    cpBodySetAngle(sim->block, pose[4]);
  } else {
    cpBodySetAngle(sim->block, pose[4]);
    cpBodySetPosition(sim->block, cpv(pose[2], pose[3]));
  }
  canonicalize(sim);
  cpSpaceStep(sim->space, DT_PUSHT_DT);
  cpVect a = cpBodyGetPosition(sim->agent);
  sim->target[0] = a.x;
  sim->target[1] = a.y;
  sim->has_target = 0;
  sim->steps = 0;
  return DT_OK;
}

dtStatus dt_pusht_reset_to(dtPusht* sim, const double pose[5], int legacy) {
  if (!sim || !pose) return dt_error(DT_ERR_ARG, "dt_pusht_reset_to: NULL argument");
  return place_and_settle(sim, pose, legacy);
}

// the start pose drawn from a PCG32 stream (the dtEnv reset)
static dtStatus reset_rng(dtPusht* sim, dtRng* rng) {
  double pose[5];
  pose[0] = 50 + (double)dt_rng_below(rng, 400);
  pose[1] = 50 + (double)dt_rng_below(rng, 400);
  pose[2] = 100 + (double)dt_rng_below(rng, 300);
  pose[3] = 100 + (double)dt_rng_below(rng, 300);
  pose[4] = (double)dt_rng_normal(rng) * 2.0 * M_PI - M_PI;
  return place_and_settle(sim, pose, 0);
}

dtStatus dt_pusht_reset(dtPusht* sim, uint64_t seed) {
  if (!sim) return dt_error(DT_ERR_ARG, "dt_pusht_reset: sim is NULL");
  dtRng rng;
  dt_rng_seed(&rng, seed);
  return reset_rng(sim, &rng);
}

// numpy's legacy RandomState: MT19937 seeded by init_genrand, masked-rejection randint and the
// polar Gaussian; written from the published algorithms to reproduce the upstream start poses
typedef struct pushtMt {
  uint32_t mt[624];
  int pos;
  int has_gauss;
  double gauss;
} pushtMt;

static void mt_seed(pushtMt* m, uint32_t seed) {
  m->mt[0] = seed;
  for (int i = 1; i < 624; i++)
    m->mt[i] = 1812433253u * (m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) + (uint32_t)i;
  m->pos = 624;
  m->has_gauss = 0;
  m->gauss = 0;
}

static uint32_t mt_next(pushtMt* m) {
  if (m->pos >= 624) {
    // regenerate the whole block
    for (int i = 0; i < 624; i++) {
      uint32_t y = (m->mt[i] & 0x80000000u) | (m->mt[(i + 1) % 624] & 0x7fffffffu);
      m->mt[i] = m->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    m->pos = 0;
  }
  uint32_t y = m->mt[m->pos++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

static double mt_double(pushtMt* m) {
  uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
  return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

// randint(low, high): draws masked to the next power of two until inside the range
static int64_t mt_randint(pushtMt* m, int64_t low, int64_t high) {
  uint32_t range = (uint32_t)(high - 1 - low);
  uint32_t mask = range;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  uint32_t v;
  do {
    v = mt_next(m) & mask;
  } while (v > range);
  return low + (int64_t)v;
}

static double mt_gauss(pushtMt* m) {
  if (m->has_gauss) {
    m->has_gauss = 0;
    return m->gauss;
  }
  double x1, x2, r2;
  do {
    x1 = 2.0 * mt_double(m) - 1.0;
    x2 = 2.0 * mt_double(m) - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  double f = sqrt(-2.0 * log(r2) / r2);
  m->gauss = f * x1;
  m->has_gauss = 1;
  return f * x2;
}

dtStatus dt_pusht_reset_numpy(dtPusht* sim, uint32_t seed) {
  if (!sim) return dt_error(DT_ERR_ARG, "dt_pusht_reset_numpy: sim is NULL");
  pushtMt m;
  mt_seed(&m, seed);
  double pose[5];
  pose[0] = (double)mt_randint(&m, 50, 450);
  pose[1] = (double)mt_randint(&m, 50, 450);
  pose[2] = (double)mt_randint(&m, 100, 400);
  pose[3] = (double)mt_randint(&m, 100, 400);
  pose[4] = mt_gauss(&m) * 2 * M_PI - M_PI;
  return place_and_settle(sim, pose, 0);
}

//---------------------------------------------------------------------------------------------
// state

dtStatus dt_pusht_get_state(const dtPusht* sim, double* s) {
  if (!sim || !s) return dt_error(DT_ERR_ARG, "dt_pusht_get_state: NULL argument");
  const cpBody* a = sim->agent;
  const cpBody* b = sim->block;
  s[DT_PUSHT_S_AGENT_X] = a->p.x;
  s[DT_PUSHT_S_AGENT_Y] = a->p.y;
  s[DT_PUSHT_S_AGENT_VX] = a->v.x;
  s[DT_PUSHT_S_AGENT_VY] = a->v.y;
  s[DT_PUSHT_S_COG_X] = b->p.x;
  s[DT_PUSHT_S_COG_Y] = b->p.y;
  s[DT_PUSHT_S_ANGLE] = b->a;
  s[DT_PUSHT_S_VX] = b->v.x;
  s[DT_PUSHT_S_VY] = b->v.y;
  s[DT_PUSHT_S_W] = b->w;
  s[DT_PUSHT_S_BIAS_VX] = b->v_bias.x;
  s[DT_PUSHT_S_BIAS_VY] = b->v_bias.y;
  s[DT_PUSHT_S_BIAS_W] = b->w_bias;
  s[DT_PUSHT_S_TARGET_X] = sim->target[0];
  s[DT_PUSHT_S_TARGET_Y] = sim->target[1];
  s[DT_PUSHT_S_HAS_TARGET] = sim->has_target;
  s[DT_PUSHT_S_STEPS] = (double)sim->steps;
  return DT_OK;
}

// check a state vector before any of it reaches Chipmunk
static dtStatus check_state(const double* s) {
  for (int i = 0; i < DT_PUSHT_STATE_SIZE; i++)
    if (!isfinite(s[i])) return dt_error(DT_ERR_NONFINITE, "pusht state[%d] is not finite", i);
  static const int pos_idx[] = {DT_PUSHT_S_AGENT_X, DT_PUSHT_S_AGENT_Y, DT_PUSHT_S_COG_X,
                                DT_PUSHT_S_COG_Y, DT_PUSHT_S_ANGLE, DT_PUSHT_S_TARGET_X,
                                DT_PUSHT_S_TARGET_Y};
  static const int vel_idx[] = {DT_PUSHT_S_AGENT_VX, DT_PUSHT_S_AGENT_VY, DT_PUSHT_S_VX,
                                DT_PUSHT_S_VY, DT_PUSHT_S_W, DT_PUSHT_S_BIAS_VX,
                                DT_PUSHT_S_BIAS_VY, DT_PUSHT_S_BIAS_W};
  for (size_t i = 0; i < sizeof pos_idx / sizeof pos_idx[0]; i++)
    if (fabs(s[pos_idx[i]]) > PUSHT_POS_LIMIT)
      return dt_error(DT_ERR_ARG, "pusht state[%d] = %g is out of range (|x| <= %g)", pos_idx[i],
                      s[pos_idx[i]], PUSHT_POS_LIMIT);
  for (size_t i = 0; i < sizeof vel_idx / sizeof vel_idx[0]; i++)
    if (fabs(s[vel_idx[i]]) > PUSHT_VEL_LIMIT)
      return dt_error(DT_ERR_ARG, "pusht state[%d] = %g is out of range (|v| <= %g)", vel_idx[i],
                      s[vel_idx[i]], PUSHT_VEL_LIMIT);
  double steps = s[DT_PUSHT_S_STEPS];
  if (steps < 0 || steps > 1e15 || steps != floor(steps))
    return dt_error(DT_ERR_ARG, "pusht state: step count %g is not a count", steps);
  double ht = s[DT_PUSHT_S_HAS_TARGET];
  if (ht != 0 && ht != 1) return dt_error(DT_ERR_ARG, "pusht state: has_target %g is not 0/1", ht);
  return DT_OK;
}

dtStatus dt_pusht_set_state(dtPusht* sim, const double* s) {
  if (!sim || !s) return dt_error(DT_ERR_ARG, "dt_pusht_set_state: NULL argument");
  dtStatus st = check_state(s);
  if (st) return st;
  // agent: its centre of gravity is its origin
  cpBodySetPosition(sim->agent, cpv(s[DT_PUSHT_S_AGENT_X], s[DT_PUSHT_S_AGENT_Y]));
  cpBodySetVelocity(sim->agent, cpv(s[DT_PUSHT_S_AGENT_VX], s[DT_PUSHT_S_AGENT_VY]));
  // block: write the cog position itself, then the angle rebuilds the transform from it exactly
  sim->block->p = cpv(s[DT_PUSHT_S_COG_X], s[DT_PUSHT_S_COG_Y]);
  cpBodySetAngle(sim->block, s[DT_PUSHT_S_ANGLE]);
  cpBodySetVelocity(sim->block, cpv(s[DT_PUSHT_S_VX], s[DT_PUSHT_S_VY]));
  cpBodySetAngularVelocity(sim->block, s[DT_PUSHT_S_W]);
  sim->block->v_bias = cpv(s[DT_PUSHT_S_BIAS_VX], s[DT_PUSHT_S_BIAS_VY]);
  sim->block->w_bias = s[DT_PUSHT_S_BIAS_W];
  sim->target[0] = s[DT_PUSHT_S_TARGET_X];
  sim->target[1] = s[DT_PUSHT_S_TARGET_Y];
  sim->has_target = s[DT_PUSHT_S_HAS_TARGET] != 0;
  sim->steps = (int64_t)s[DT_PUSHT_S_STEPS];
  canonicalize(sim);
  return DT_OK;
}

dtStatus dt_pusht_set_bodies(dtPusht* sim, const double agent[4], const double block[6]) {
  if (!sim || !agent || !block) return dt_error(DT_ERR_ARG, "dt_pusht_set_bodies: NULL argument");
  for (int i = 0; i < 4; i++)
    if (!isfinite(agent[i]) || fabs(agent[i]) > PUSHT_POS_LIMIT)
      return dt_error(DT_ERR_ARG, "dt_pusht_set_bodies: agent[%d] = %g is invalid", i, agent[i]);
  for (int i = 0; i < 6; i++)
    if (!isfinite(block[i]) || fabs(block[i]) > PUSHT_POS_LIMIT)
      return dt_error(DT_ERR_ARG, "dt_pusht_set_bodies: block[%d] = %g is invalid", i, block[i]);
  cpBodySetPosition(sim->agent, cpv(agent[0], agent[1]));
  cpBodySetVelocity(sim->agent, cpv(agent[2], agent[3]));
  cpBodySetAngle(sim->block, block[2]);
  cpBodySetPosition(sim->block, cpv(block[0], block[1]));
  cpBodySetVelocity(sim->block, cpv(block[3], block[4]));
  cpBodySetAngularVelocity(sim->block, block[5]);
  sim->block->v_bias = cpvzero;
  sim->block->w_bias = 0.0;
  canonicalize(sim);
  return DT_OK;
}

// Python's float modulo: the result has the sign of the divisor
static double py_mod(double a, double b) {
  double r = fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

void dt_pusht_state_block_pose(const double* s, double pose[3]) {
  double c = cos(s[DT_PUSHT_S_ANGLE]), sn = sin(s[DT_PUSHT_S_ANGLE]);
  // origin = cog - R * (0, 45)
  pose[0] = s[DT_PUSHT_S_COG_X] - (0.0 * c - DT_PUSHT_COG_Y * sn);
  pose[1] = s[DT_PUSHT_S_COG_Y] - (0.0 * sn + DT_PUSHT_COG_Y * c);
  pose[2] = s[DT_PUSHT_S_ANGLE];
}

dtStatus dt_pusht_state_obs(const double* s, double obs[5]) {
  if (!s || !obs) return dt_error(DT_ERR_ARG, "dt_pusht_state_obs: NULL argument");
  double pose[3];
  dt_pusht_state_block_pose(s, pose);
  obs[0] = s[DT_PUSHT_S_AGENT_X];
  obs[1] = s[DT_PUSHT_S_AGENT_Y];
  obs[2] = pose[0];
  obs[3] = pose[1];
  obs[4] = py_mod(pose[2], 2 * M_PI);
  return DT_OK;
}

void dt_pusht_observe(const dtPusht* sim, double obs[5]) {
  if (!sim || !obs) return;
  cpVect a = cpBodyGetPosition(sim->agent);
  cpVect b = cpBodyGetPosition(sim->block);
  obs[0] = a.x;
  obs[1] = a.y;
  obs[2] = b.x;
  obs[3] = b.y;
  obs[4] = py_mod(cpBodyGetAngle(sim->block), 2 * M_PI);
}

int64_t dt_pusht_steps(const dtPusht* sim) { return sim ? sim->steps : 0; }

void dt_pusht_set_upstream_solver(dtPusht* sim, int on) {
  if (sim) sim->upstream_solver = on != 0;
}

void dt_pusht_action_from_unit(const float unit[2], float pixels[2]) {
  for (int i = 0; i < 2; i++) {
    float u = unit[i];
    float p = 256.0f + 256.0f * u;
    pixels[i] = !(p >= 0.0f) ? 0.0f : (p > 512.0f ? 512.0f : p);
  }
}

//---------------------------------------------------------------------------------------------
// rendering: every pixel averages 4x4 samples of the layered scene (agent over block over walls
// over goal over white), like drawing at high resolution and shrinking

typedef struct pushtScene {
  double block_c, block_s, block_tx, block_ty;  // world -> block frame: R^T (p - t)
  double goal_c, goal_s;
  double ax, ay;                                 // agent centre
  double bb_block[4];                            // world bounding box of the block + outline
} pushtScene;

static const uint8_t col_white[3] = {255, 255, 255};
static const uint8_t col_goal[3] = {144, 238, 144};
static const uint8_t col_wall[3] = {211, 211, 211};
static const uint8_t col_fill[3] = {142, 163, 183};
static const uint8_t col_edge[3] = {119, 136, 153};
static const uint8_t col_agent[3] = {65, 105, 225};
static const uint8_t col_agent_in[3] = {78, 126, 255};

// 1 inside the T (local frame), 0 outside
static int in_t(double x, double y) {
  return (x >= -60 && x <= 60 && y >= 0 && y <= 30) || (x >= -15 && x <= 15 && y >= 30 && y <= 120);
}

// distance from a point to the boundary of the box [x0,x1] x [y0,y1]
static double box_edge_dist(double x, double y, double x0, double x1, double y0, double y1) {
  if (x >= x0 && x <= x1 && y >= y0 && y <= y1) {
    double d = fmin(fmin(x - x0, x1 - x), fmin(y - y0, y1 - y));
    return d;
  }
  double dx = x < x0 ? x0 - x : (x > x1 ? x - x1 : 0);
  double dy = y < y0 ? y0 - y : (y > y1 ? y - y1 : 0);
  return sqrt(dx * dx + dy * dy);
}

// colour of the scene at a world point
static const uint8_t* scene_color(const pushtScene* sc, double x, double y) {
  double dx = x - sc->ax, dy = y - sc->ay;
  double r2 = dx * dx + dy * dy;
  if (r2 <= 11.0 * 11.0) return col_agent_in;
  if (r2 <= 15.0 * 15.0) return col_agent;
  if (x >= sc->bb_block[0] && x <= sc->bb_block[2] && y >= sc->bb_block[1] && y <= sc->bb_block[3]) {
    double px = x - sc->block_tx, py = y - sc->block_ty;
    double lx = sc->block_c * px + sc->block_s * py;
    double ly = -sc->block_s * px + sc->block_c * py;
    // both boxes' outlines (radius 2 fat edges), then the fill
    if (box_edge_dist(lx, ly, -60, 60, 0, 30) <= 2.0 || box_edge_dist(lx, ly, -15, 15, 30, 120) <= 2.0)
      return col_edge;
    if (in_t(lx, ly)) return col_fill;
  }
  // walls: segments at x = 5, x = 506, y = 5, y = 506 with radius 2
  if ((x >= 3 && x <= 7 && y >= 3 && y <= 508) || (x >= 504 && x <= 508 && y >= 3 && y <= 508) ||
      (y >= 3 && y <= 7 && x >= 3 && x <= 508) || (y >= 504 && y <= 508 && x >= 3 && x <= 508))
    return col_wall;
  double gx = x - DT_PUSHT_GOAL_X, gy = y - DT_PUSHT_GOAL_Y;
  double glx = sc->goal_c * gx + sc->goal_s * gy;
  double gly = -sc->goal_s * gx + sc->goal_c * gy;
  if (in_t(glx, gly)) return col_goal;
  return col_white;
}

dtStatus dt_pusht_render(const dtPusht* sim, int width, int height, uint8_t* rgb) {
  if (!sim || !rgb) return dt_error(DT_ERR_ARG, "dt_pusht_render: NULL argument");
  if (width <= 0 || height <= 0 || width > 8192 || height > 8192)
    return dt_error(DT_ERR_ARG, "dt_pusht_render: size %dx%d is not in 1..8192", width, height);
  pushtScene sc;
  cpTransform t = sim->block->transform;
  sc.block_c = t.a;
  sc.block_s = t.b;
  sc.block_tx = t.tx;
  sc.block_ty = t.ty;
  sc.goal_c = cos(DT_PUSHT_GOAL_ANGLE);
  sc.goal_s = sin(DT_PUSHT_GOAL_ANGLE);
  cpVect a = cpBodyGetPosition(sim->agent);
  sc.ax = a.x;
  sc.ay = a.y;
  // block bounding box from the corners of both boxes grown by the outline
  pushtQuad q[2];
  t_quads(t.a, t.b, t.c, t.d, t.tx, t.ty, q);
  sc.bb_block[0] = sc.bb_block[1] = INFINITY;
  sc.bb_block[2] = sc.bb_block[3] = -INFINITY;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < 4; i++) {
      sc.bb_block[0] = fmin(sc.bb_block[0], q[k].x[i] - 3);
      sc.bb_block[1] = fmin(sc.bb_block[1], q[k].y[i] - 3);
      sc.bb_block[2] = fmax(sc.bb_block[2], q[k].x[i] + 3);
      sc.bb_block[3] = fmax(sc.bb_block[3], q[k].y[i] + 3);
    }
  enum { S = 4 };
  double sx = 512.0 / width, sy = 512.0 / height;
  for (int row = 0; row < height; row++) {
    for (int col = 0; col < width; col++) {
      unsigned acc[3] = {0, 0, 0};
      // pixel centres sit at (i + 0.5) * scale - 0.5 world units (upstream's 512 px canvas, resized)
      for (int u = 0; u < S; u++) {
        double y = (row + (u + 0.5) / S) * sy - 0.5;
        for (int v = 0; v < S; v++) {
          double x = (col + (v + 0.5) / S) * sx - 0.5;
          const uint8_t* c = scene_color(&sc, x, y);
          acc[0] += c[0];
          acc[1] += c[1];
          acc[2] += c[2];
        }
      }
      uint8_t* px = rgb + ((size_t)row * (size_t)width + (size_t)col) * 3;
      for (int k = 0; k < 3; k++) px[k] = (uint8_t)((acc[k] + S * S / 2) / (S * S));
    }
  }
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// the dtTaskDef table

static dtStatus task_create(const dtTaskDef* def, const dtEnvOpts* opts, void** impl,
                            dtSpace* obs_space, dtSpace* act_space) {
  (void)def;
  (void)opts;
  if (!impl || !obs_space || !act_space) return dt_error(DT_ERR_ARG, "pusht create: NULL argument");
  dtPusht* sim = NULL;
  dtStatus st = dt_pusht_new(&sim);
  if (st) return st;
  memset(obs_space, 0, sizeof *obs_space);
  obs_space->ndim = 1;
  obs_space->shape[0] = 5;
  obs_space->size = 5;
  obs_space->dtype = DT_F32;
  obs_space->low = 0.0f;
  obs_space->high = 512.0f;
  memset(act_space, 0, sizeof *act_space);
  act_space->ndim = 1;
  act_space->shape[0] = 2;
  act_space->size = 2;
  act_space->dtype = DT_F32;
  act_space->low = 0.0f;
  act_space->high = 512.0f;
  *impl = sim;
  return DT_OK;
}

// the same task with pymunk's contact persistence across control steps
static dtStatus task_create_pymunk(const dtTaskDef* def, const dtEnvOpts* opts, void** impl,
                                   dtSpace* obs_space, dtSpace* act_space) {
  dtStatus st = task_create(def, opts, impl, obs_space, act_space);
  if (!st) dt_pusht_set_upstream_solver((dtPusht*)*impl, 1);
  return st;
}

static void task_destroy(void* impl) { dt_pusht_free((dtPusht*)impl); }

static dtStatus task_reset(void* impl, dtRng* rng) {
  if (!impl || !rng) return dt_error(DT_ERR_ARG, "pusht reset: NULL argument");
  return reset_rng((dtPusht*)impl, rng);
}

static dtStatus task_step(void* impl, const float* action, float* reward, int* terminated,
                          int* success) {
  if (!impl || !action) return dt_error(DT_ERR_ARG, "pusht step: NULL argument");
  double a[2] = {action[0], action[1]};
  double r = 0;
  int ok = 0;
  dtStatus st = dt_pusht_step((dtPusht*)impl, a, &r, NULL, &ok);
  if (st) return st;
  if (reward) *reward = (float)r;
  if (terminated) *terminated = ok;
  if (success) *success = ok;
  return DT_OK;
}

static void task_observe(void* impl, float* obs) {
  double o[5];
  dt_pusht_observe((const dtPusht*)impl, o);
  for (int i = 0; i < 5; i++) obs[i] = (float)o[i];
}

static dtStatus task_render(void* impl, int width, int height, int camera, uint8_t* rgb) {
  if (camera != 0 && camera != -1)
    return dt_error(DT_ERR_ARG, "pusht render: camera %d does not exist (use 0 or -1)", camera);
  return dt_pusht_render((const dtPusht*)impl, width, height, rgb);
}

static int task_state_size(void* impl) {
  (void)impl;
  return DT_PUSHT_STATE_SIZE;
}

static void task_get_state(void* impl, double* state) { dt_pusht_get_state((const dtPusht*)impl, state); }

// an invalid state leaves the simulator unchanged (the error stays in dt_last_error)
static void task_set_state(void* impl, const double* state) {
  (void)dt_pusht_set_state((dtPusht*)impl, state);
}

const dtTaskDef dt_pusht_task = {
    .name = "pusht",
    .default_action_repeat = 1,
    .default_max_steps = 300,
    .create = task_create,
    .destroy = task_destroy,
    .reset = task_reset,
    .step = task_step,
    .observe = task_observe,
    .render = task_render,
    .state_size = task_state_size,
    .get_state = task_get_state,
    .set_state = task_set_state,
};

const dtTaskDef dt_pusht_pymunk_task = {
    .name = "pusht-pymunk",
    .default_action_repeat = 1,
    .default_max_steps = 300,
    .create = task_create_pymunk,
    .destroy = task_destroy,
    .reset = task_reset,
    .step = task_step,
    .observe = task_observe,
    .render = task_render,
    .state_size = task_state_size,
    .get_state = task_get_state,
    .set_state = task_set_state,
};

#else  // no Chipmunk: the plain API reports that this build cannot simulate Push-T

#define PUSHT_NO(name) dt_error(DT_ERR_UNSUPPORTED, "%s: built without Chipmunk (DT_WITH_CHIPMUNK=OFF)", name)

dtStatus dt_pusht_new(dtPusht** out) {
  if (out) *out = NULL;
  return PUSHT_NO("dt_pusht_new");
}
void dt_pusht_free(dtPusht* sim) { (void)sim; }
dtStatus dt_pusht_reset(dtPusht* sim, uint64_t seed) { (void)sim; (void)seed; return PUSHT_NO("dt_pusht_reset"); }
dtStatus dt_pusht_reset_numpy(dtPusht* sim, uint32_t seed) { (void)sim; (void)seed; return PUSHT_NO("dt_pusht_reset_numpy"); }
dtStatus dt_pusht_reset_to(dtPusht* sim, const double pose[5], int legacy) { (void)sim; (void)pose; (void)legacy; return PUSHT_NO("dt_pusht_reset_to"); }
dtStatus dt_pusht_step(dtPusht* sim, const double action[2], double* reward, double* coverage, int* success) {
  (void)sim; (void)action; (void)reward; (void)coverage; (void)success;
  return PUSHT_NO("dt_pusht_step");
}
dtStatus dt_pusht_get_state(const dtPusht* sim, double* state) { (void)sim; (void)state; return PUSHT_NO("dt_pusht_get_state"); }
dtStatus dt_pusht_set_state(dtPusht* sim, const double* state) { (void)sim; (void)state; return PUSHT_NO("dt_pusht_set_state"); }
dtStatus dt_pusht_set_bodies(dtPusht* sim, const double agent[4], const double block[6]) { (void)sim; (void)agent; (void)block; return PUSHT_NO("dt_pusht_set_bodies"); }
void dt_pusht_observe(const dtPusht* sim, double obs[5]) { (void)sim; if (obs) memset(obs, 0, 5 * sizeof(double)); }
dtStatus dt_pusht_state_obs(const double* state, double obs[5]) { (void)state; (void)obs; return PUSHT_NO("dt_pusht_state_obs"); }
double dt_pusht_coverage(const dtPusht* sim) { (void)sim; return 0.0; }
double dt_pusht_coverage_of_pose(double x, double y, double angle) { (void)x; (void)y; (void)angle; return 0.0; }
double dt_pusht_reward_of_coverage(double c) { double r = c / DT_PUSHT_SUCCESS_COVERAGE; return r < 0 ? 0 : (r > 1 ? 1 : r); }
int64_t dt_pusht_steps(const dtPusht* sim) { (void)sim; return 0; }
void dt_pusht_set_upstream_solver(dtPusht* sim, int on) { (void)sim; (void)on; }
dtStatus dt_pusht_render(const dtPusht* sim, int width, int height, uint8_t* rgb) { (void)sim; (void)width; (void)height; (void)rgb; return PUSHT_NO("dt_pusht_render"); }
void dt_pusht_action_from_unit(const float unit[2], float pixels[2]) {
  for (int i = 0; i < 2; i++) pixels[i] = 256.0f + 256.0f * unit[i];
}

#endif
