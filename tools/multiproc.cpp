// multiproc: see, inspect and clean up the named shared objects of this machine.
//
//   multiproc ls [--json]                 every named object: kind, type, size, creator, age
//   multiproc inspect NAME [--json]       its live state (queue depth, lock holder, value...)
//   multiproc rm NAME...                  remove names (mappings already made stay valid)
//   multiproc gc [PREFIX] [--force]       leaked objects (held by no process on the machine);
//                                         lists them, removes them only with --force
//
// Exit status: 0 done (entries that cannot be read are listed as unreadable: any local user can
// put files in /dev/shm, and one must never stop a listing); 1 an object named on the command line
// was missing or could not be read or removed; bad usage gets CLI11's message and its own status.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <multiproc/error.hpp>
#include <multiproc/registry.hpp>

namespace {

using multiproc::SegmentInfo;
using nlohmann::json;

std::string_view health_text(SegmentInfo::Health health) {
  switch (health) {
    case SegmentInfo::Health::ok: return "ok";
    case SegmentInfo::Health::being_built: return "being built";
    case SegmentInfo::Health::abandoned: return "abandoned";
    case SegmentInfo::Health::corrupt: return "corrupt";
    case SegmentInfo::Health::unreadable: return "unreadable";
  }
  return "?";
}

double age_seconds(const SegmentInfo& info) {
  return std::chrono::duration<double>(std::chrono::system_clock::now() - info.created).count();
}

json to_json(const SegmentInfo& info) {
  json out = {{"name", info.name},           {"file", info.file},
              {"bytes", info.file_bytes},    {"health", health_text(info.health)},
              {"in_use", info.in_use},       {"mapped_by", info.mapped_by}};
  if (!info.problem.empty()) {
    out["problem"] = info.problem;
  }
  if (info.creator_pid != 0) {
    out["creator_pid"] = info.creator_pid;
    out["creator_alive"] = info.creator_alive;
    out["age_seconds"] = age_seconds(info);
  }
  if (info.health == SegmentInfo::Health::ok) {
    out["kind"] = multiproc::kind_name(info.kind);
    out["type"] = info.type;
    out["element_size"] = info.element_size;
    out["element_count"] = info.element_count;
  }
  return out;
}

std::string human_age(const SegmentInfo& info) {
  if (info.creator_pid == 0) {
    return "-";
  }
  const double seconds = age_seconds(info);
  char text[32];
  if (seconds < 120) {
    std::snprintf(text, sizeof text, "%.0fs", seconds);
  } else if (seconds < 7200) {
    std::snprintf(text, sizeof text, "%.0fm", seconds / 60);
  } else {
    std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  }
  return text;
}

// A temporary file of a creation has no name: show its file.
std::string display_name(const SegmentInfo& info) { return info.name.empty() ? info.file : info.name; }

void print_table(const std::vector<SegmentInfo>& segments) {
  std::printf("%-32s %-16s %-16s %9s %-13s %6s %-6s %s\n", "NAME", "KIND", "TYPE", "BYTES", "CREATOR", "AGE", "IN USE",
              "MAPPED BY");
  for (const auto& info : segments) {
    std::string kind(info.health == SegmentInfo::Health::ok ? multiproc::kind_name(info.kind) : "(");
    if (info.health != SegmentInfo::Health::ok) {
      kind.append(health_text(info.health)).append(")");
    }
    std::string creator = info.creator_pid == 0 ? "-" : std::to_string(info.creator_pid);
    if (info.creator_pid != 0) {
      creator.append(info.creator_alive ? " alive" : " dead");
    }
    std::string mapped;
    for (const pid_t pid : info.mapped_by) {
      mapped.append(mapped.empty() ? "" : ",").append(std::to_string(pid));
    }
    const char* in_use = info.health == SegmentInfo::Health::unreadable ? "?" : info.in_use ? "yes" : "no";
    std::printf("%-32s %-16s %-16s %9llu %-13s %6s %-6s %s\n", display_name(info).c_str(), kind.c_str(),
                info.type.empty() ? "-" : info.type.c_str(), static_cast<unsigned long long>(info.file_bytes),
                creator.c_str(), human_age(info).c_str(), in_use, mapped.empty() ? "-" : mapped.c_str());
    if (!info.problem.empty() && info.health != SegmentInfo::Health::ok) {
      std::printf("  %s\n", info.problem.c_str());
    }
  }
}

json field_value(const multiproc::StateField& field) {
  return std::visit([](const auto& v) { return json(v); }, field.value);
}

std::string field_text(const multiproc::StateField& field) {
  const json value = field_value(field);
  return value.is_string() ? value.get<std::string>() : value.dump();
}

int list(bool as_json) {
  const auto segments = multiproc::list_segments();
  if (as_json) {
    json out = json::array();
    for (const auto& info : segments) {
      out.push_back(to_json(info));
    }
    std::cout << out.dump(2) << '\n';
  } else {
    print_table(segments);
  }
  return 0;
}

int inspect(const std::string& name, bool as_json) {
  const SegmentInfo info = multiproc::describe_segment(name);
  const auto state = multiproc::inspect_segment(name);
  if (as_json) {
    json out = to_json(info);
    json& fields = out["state"] = json::object();
    for (const auto& field : state) {
      fields[field.key] = field_value(field);
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  print_table({info});
  for (const auto& field : state) {
    std::printf("  %-24s %s\n", field.key.c_str(), field_text(field).c_str());
  }
  return 0;
}

int remove(const std::vector<std::string>& names) {
  int status = 0;
  for (const auto& name : names) {
    if (!multiproc::unlink(name)) {
      std::fprintf(stderr, "multiproc rm: no shared object named \"%s\"\n", name.c_str());
      status = 1;
    }
  }
  return status;
}

int collect(const std::string& prefix, bool force, bool as_json) {
  const auto leaked = multiproc::find_leaked_segments(prefix);
  json removed = json::array();
  for (const auto& info : leaked) {
    const bool gone = force && multiproc::remove_if_unused(info);
    if (as_json) {
      json entry = to_json(info);
      entry["removed"] = gone;
      removed.push_back(entry);
    } else {
      const char* verdict = gone ? "removed" : force ? "kept (in use again, or gone)" : "would remove";
      std::printf("%s %s (%s)\n", verdict, display_name(info).c_str(),
                  info.health == SegmentInfo::Health::ok ? "held by no process"
                                                         : std::string(health_text(info.health)).c_str());
    }
  }
  if (as_json) {
    std::cout << removed.dump(2) << '\n';
  } else if (!force && !leaked.empty()) {
    std::printf("dry run: %zu leaked object(s); run with --force to remove them\n", leaked.size());
  } else if (leaked.empty()) {
    std::printf("nothing to collect\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"See, inspect and clean up multiproc's named shared objects (/dev/shm/multiproc.*)", "multiproc"};
  app.require_subcommand(1);
  bool as_json = false;
  std::string name;
  std::vector<std::string> names;
  std::string prefix;
  bool force = false;

  auto* ls = app.add_subcommand("ls", "List every named object");
  ls->add_flag("--json", as_json, "Machine-readable output");
  auto* inspect_cmd = app.add_subcommand("inspect", "Show one object's live state");
  inspect_cmd->add_option("NAME", name, "Object name (without the multiproc. prefix)")->required();
  inspect_cmd->add_flag("--json", as_json, "Machine-readable output");
  auto* rm = app.add_subcommand("rm", "Remove named objects (processes that mapped them keep them)");
  rm->add_option("NAME", names, "Object names")->required();
  auto* gc = app.add_subcommand("gc", "Find leaked objects: held by no process (dry run unless --force)");
  gc->add_option("PREFIX", prefix, "Only names starting with this");
  gc->add_flag("--force", force, "Remove them");
  gc->add_flag("--json", as_json, "Machine-readable output");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*ls) return list(as_json);
    if (*inspect_cmd) return inspect(name, as_json);
    if (*rm) return remove(names);
    return collect(prefix, force, as_json);
  } catch (const multiproc::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "multiproc: %s\n", e.what());
    return 1;
  }
}
