// SPDX-License-Identifier: MIT
// difftop: differentiable trajectory optimization for reinforcement and imitation learning.
#ifndef DIFFTOP_DIFFTOP_H
#define DIFFTOP_DIFFTOP_H

#include "version.h"
#include "base.h"
#include "tensor.h"
#include "io.h"

#endif
