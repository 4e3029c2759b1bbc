// SPDX-License-Identifier: MIT
// difftop version macros. ABI rule: the same major version keeps the ABI.
#ifndef DIFFTOP_VERSION_H
#define DIFFTOP_VERSION_H

#define DT_VERSION_MAJOR 0
#define DT_VERSION_MINOR 1
#define DT_VERSION_PATCH 0
#define DT_VERSION_IS_RELEASE 0
#define DT_VERSION_SUFFIX "dev"

// Version as one integer, 0xMMmmpp: comparable with <.
#define DT_VERSION_HEX ((DT_VERSION_MAJOR << 16) | (DT_VERSION_MINOR << 8) | DT_VERSION_PATCH)

#define DT_STRINGIFY_(x) #x
#define DT_STRINGIFY(x) DT_STRINGIFY_(x)
// Version as a string, e.g. "0.1.0-dev".
#define DT_VERSION_STRING                                                                  \
  DT_STRINGIFY(DT_VERSION_MAJOR) "." DT_STRINGIFY(DT_VERSION_MINOR) "." DT_STRINGIFY(     \
      DT_VERSION_PATCH) "-" DT_VERSION_SUFFIX

#endif
