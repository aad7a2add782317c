#pragma once
// Umbrella header: everything multiproc offers.
#include <multiproc/array.hpp>
#include <multiproc/barrier.hpp>
#include <multiproc/codec.hpp>
#include <multiproc/condition.hpp>
#include <multiproc/error.hpp>
#include <multiproc/event.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/mpmc_ring.hpp>
#include <multiproc/pipe.hpp>
#include <multiproc/process.hpp>
#include <multiproc/queue.hpp>
#include <multiproc/rlock.hpp>
#include <multiproc/segment.hpp>
#include <multiproc/semaphore.hpp>
#include <multiproc/spsc_ring.hpp>
#include <multiproc/value.hpp>
