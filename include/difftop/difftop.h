// SPDX-License-Identifier: MIT
// difftop: differentiable trajectory optimization for reinforcement and imitation learning.
#ifndef DIFFTOP_DIFFTOP_H
#define DIFFTOP_DIFFTOP_H

#include "version.h"
#include "base.h"
#include "tensor.h"
#include "nn.h"
#include "trajopt.h"
#include "env.h"
#include "pusht.h"
#include "rl.h"
#include "rltrain.h"
#include "io.h"
#include "il.h"

#endif
