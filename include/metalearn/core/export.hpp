#pragma once
/// @file
/// METALEARN_API marks what a shared libmetalearn exports: the non-template classes
/// and functions defined in src/ and the class and function templates instantiated
/// there for float and double. The library is compiled with hidden visibility, so
/// everything else stays internal to it. A static library (the default) needs no
/// marks and METALEARN_API is empty; the build defines METALEARN_SHARED for the
/// library and for everything that links a shared one.

#if defined(METALEARN_SHARED)
#if defined(_WIN32)
#if defined(metalearn_EXPORTS)
#define METALEARN_API __declspec(dllexport)
#else
#define METALEARN_API __declspec(dllimport)
#endif
#else
#define METALEARN_API __attribute__((visibility("default")))
#endif
#else
#define METALEARN_API
#endif
