// Thin C shim for lmdb: the one header Swift imports for this library.
#pragma once
#include <lmdb.h>
