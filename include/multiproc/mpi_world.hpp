#pragma once
// World: MPI for this process, as the cluster pools (<multiproc/mpi.hpp>) use it; and the error
// they raise for a task whose code the ranks do not share. Part of libmultiproc-mpi.
//
//   int main(int argc, char** argv) {
//     multiproc::mpi::World world{argc, argv};   // MPI_Init_thread ... MPI_Finalize
//     world.rank(); world.size();
//
// No MPI type appears here: programs need MPI only to link (through libmultiproc-mpi).
#include <multiproc/error.hpp>
#include <multiproc/export.hpp>

namespace multiproc::mpi {

// A task whose function lies in a program or library that some serving rank has not loaded, or
// loaded in another build: no rank could be sure to call the same code.
class MULTIPROC_API UnsharedFunction : public Error {
 public:
  using Error::Error;
  ~UnsharedFunction() override;
};

// MPI for this process: initialised by the constructor (with MPI_THREAD_MULTIPLE), finalised by the
// destructor. If MPI is already initialised, World uses it and leaves finalising to its owner.
class MULTIPROC_API World {
 public:
  World(int& argc, char**& argv);
  World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World();

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

 private:
  void start(int* argc, char*** argv);
  bool finalize_ = false;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace multiproc::mpi
