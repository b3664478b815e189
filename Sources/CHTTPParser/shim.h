// Thin C shim for http_parser: the one header Swift imports for this library.
#pragma once
#include <http_parser.h>
