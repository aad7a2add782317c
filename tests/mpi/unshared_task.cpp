// A task function in a library of its own, for test_mpi_pool: a rank that has not loaded this
// library cannot run it, and one that has can, wherever the loader put it.
extern "C" [[gnu::visibility("default")]] int cube_from_module(int x) { return x * x * x; }
