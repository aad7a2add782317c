// The registry's inspection: a named object's live state, as its own kind describes it.
#include <multiproc/registry.hpp>

#include <multiproc/error.hpp>

#include "registry/scan.hpp"
#include "shm/inspection.hpp"
#include "shm/segment_checks.hpp"

namespace multiproc {

std::vector<StateField> inspect_segment(std::string_view name) {
  detail::validate_name(name);
  const auto view = detail::ReadOnlyView::open(shm_file_name(name));
  if (!view) {
    detail::not_found(name);
  }
  const SegmentInfo info = detail::describe(shm_file_name(name), *view);
  const auto fail = [&](const std::string& why) -> std::vector<StateField> {
    throw LayoutMismatch("multiproc: cannot inspect \"" + std::string(name) + "\": " + why);
  };
  if (!info.problem.empty()) {
    return fail(info.problem);
  }
  const detail::KindInspector* inspector = detail::inspector_of(view->header().kind);
  if (inspector == nullptr) {
    return {};  // anonymous-only kinds (pipes, pool channels): nothing to say
  }
  detail::FieldList fields;
  if (!inspector->inspect(detail::SegmentSnapshot(view->base(), view->bytes(), view->header()), fields)) {
    return fail("its control block does not fit where its header puts it (corrupt)");
  }
  return fields.take();
}

}  // namespace multiproc
