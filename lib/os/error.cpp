#include <multiproc/error.hpp>

#include <utility>

namespace multiproc {

// Out-of-line destructors anchor each class's vtable and type_info in libmultiproc.so.
Error::~Error() = default;
ValueError::~ValueError() = default;
KeyError::~KeyError() = default;
IndexError::~IndexError() = default;
Timeout::~Timeout() = default;
Empty::~Empty() = default;
Full::~Full() = default;
Closed::~Closed() = default;
LayoutMismatch::~LayoutMismatch() = default;
NotFound::~NotFound() = default;
AlreadyExists::~AlreadyExists() = default;
InvalidName::~InvalidName() = default;
NotOwner::~NotOwner() = default;
TooManyReleases::~TooManyReleases() = default;
BrokenBarrier::~BrokenBarrier() = default;
DecodeError::~DecodeError() = default;
MessageTooLarge::~MessageTooLarge() = default;
WorkerLost::~WorkerLost() = default;
BrokenPool::~BrokenPool() = default;
Cancelled::~Cancelled() = default;

BufferTooShort::BufferTooShort(const std::string& what, std::vector<std::byte> message)
    : Error(what), message_(std::make_shared<const std::vector<std::byte>>(std::move(message))) {}
BufferTooShort::~BufferTooShort() = default;

RemoteError::RemoteError(std::string type_name, std::string message)
    : Error(type_name + ": " + message), type_name_(std::move(type_name)), message_(std::move(message)) {}
RemoteError::~RemoteError() = default;

}  // namespace multiproc
