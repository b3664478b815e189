// Thin C shim for libyaml (Debian libyaml-dev): the config file parser, without Foundation.
#pragma once
#include <yaml.h>
