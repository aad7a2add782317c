#pragma once
// RLock: a re-entrant Lock. The thread holding it may acquire it again; it is free once released
// as many times as acquired. Releasing it from a thread that does not hold it throws NotOwner.
// Like Lock, it survives its holder's death: the next acquirer gets it with recovered() == true.
#include <multiproc/lock.hpp>

namespace multiproc {

class MULTIPROC_API RLock : public detail::RobustMutex {
 public:
  RLock() : RobustMutex(Where(), ObjectKind::rlock) {}
  RLock(create_t how, std::string_view name) : RobustMutex(Where(how, name), ObjectKind::rlock) {}
  RLock(open_t how, std::string_view name) : RobustMutex(Where(how, name), ObjectKind::rlock) {}
  RLock(open_or_create_t how, std::string_view name) : RobustMutex(Where(how, name), ObjectKind::rlock) {}
};

}  // namespace multiproc
