// Thin C shim for rdkafka: the one header Swift imports for this library.
#pragma once
#include <librdkafka/rdkafka.h>
