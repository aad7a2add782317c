#pragma once
// Umbrella header: everything multiproc offers.
#include <multiproc/array.hpp>
#include <multiproc/error.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/process.hpp>
#include <multiproc/segment.hpp>
#include <multiproc/value.hpp>
