// Thin C shim for uv: the one header Swift imports for this library.
#pragma once
#include <uv.h>
