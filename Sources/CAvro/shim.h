// Thin C shim for avro: the one header Swift imports for this library.
#pragma once
#include <avro.h>
