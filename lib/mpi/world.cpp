#include <mpi.h>

#include <string>

#include <multiproc/error.hpp>
#include <multiproc/mpi_world.hpp>

namespace multiproc::mpi {

UnsharedFunction::~UnsharedFunction() = default;

World::World(int& argc, char**& argv) { start(&argc, &argv); }

World::World() { start(nullptr, nullptr); }

void World::start(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  int provided = MPI_THREAD_SINGLE;
  if (initialised != 0) {
    MPI_Query_thread(&provided);
  } else {
    // MULTIPLE: the pool's dispatcher thread talks MPI while the program's own threads may too.
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    finalize_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  // The dispatcher is not the main thread: it needs at least SERIALIZED (then only one thread
  // at a time may call MPI, which the pools keep to while they are open).
  if (provided < MPI_THREAD_SERIALIZED) {
    if (finalize_) {
      MPI_Finalize();
    }
    throw Error("multiproc::mpi::World: this MPI gives thread level " + std::to_string(provided) +
                             ", the cluster pools need MPI_THREAD_SERIALIZED or better");
  }
}

World::~World() {
  if (finalize_) {
    MPI_Finalize();
  }
}

}  // namespace multiproc::mpi
