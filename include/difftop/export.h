// SPDX-License-Identifier: MIT
// Symbol visibility for the public API.
#ifndef DIFFTOP_EXPORT_H
#define DIFFTOP_EXPORT_H

#if defined(DT_STATIC)
#define DTAPI
#elif defined(_WIN32)
#if defined(DT_BUILDING)
#define DTAPI __declspec(dllexport)
#else
#define DTAPI __declspec(dllimport)
#endif
#else
#define DTAPI __attribute__((visibility("default")))
#endif

#endif
