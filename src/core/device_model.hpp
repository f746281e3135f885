// OCPP 2.0.1 device model: components, variables, their Actual attribute,
// mutability and characteristics. Writable values persist in SQLite.
// REQ: CHG-1 (get/set variables, base report)
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/storage.hpp"

namespace cg::core {

enum class Mutability { ReadOnly, ReadWrite, WriteOnly };
enum class DataType { Integer, Decimal, Boolean, String, OptionList, MemberList, SequenceList, DateTime };

std::string_view to_string(Mutability m);
std::string_view to_string(DataType t);

struct Variable {
  std::string component;
  std::string component_instance;  // empty = none
  int evse = 0;                    // 0 = not EVSE-bound
  int connector = 0;               // 0 = not connector-bound
  std::string name;
  std::string instance;            // variable instance, empty = none
  Mutability mutability = Mutability::ReadOnly;
  DataType type = DataType::String;
  std::string value;               // current Actual value (empty for WriteOnly)
  std::optional<double> min, max;  // characteristics (minLimit/maxLimit); for strings: length
  std::string values_list;         // for OptionList / MemberList: comma separated
  std::string unit;
  bool persistent = true;
  bool constant = false;
  bool security_relevant = false;  // a change is a ReconfigurationOfSecurityParameters
  bool reboot_required = false;
  std::function<std::string()> dynamic;  // read-only live values (DateTime, AvailabilityState…)

  std::string key() const;  // "Comp[inst]@evse:conn.Var[inst]" – storage key and lookup key
};

enum class GetStatus { Accepted, Rejected, UnknownComponent, UnknownVariable, NotSupportedAttributeType };
enum class SetStatus { Accepted, Rejected, UnknownComponent, UnknownVariable, NotSupportedAttributeType, RebootRequired };
std::string_view to_string(GetStatus s);
std::string_view to_string(SetStatus s);

struct VarRef {
  std::string component, component_instance;
  int evse = 0, connector = 0;
  std::string name, instance;
};

class DeviceModel {
 public:
  DeviceModel(storage::Db& db, const config::Config& cfg);

  // Lookup by the short key "Component.Variable" or "Component.Variable[instance]".
  const Variable* find(std::string_view short_key) const;
  const Variable* find(const VarRef& ref) const;
  bool component_exists(const VarRef& ref) const;

  std::string text(std::string_view short_key) const;
  long long integer(std::string_view short_key, long long fallback = 0) const;
  bool boolean(std::string_view short_key) const;

  struct GetResult {
    GetStatus status;
    std::string value;
  };
  GetResult get(const VarRef& ref, std::string_view attribute_type) const;

  struct SetResult {
    SetStatus status;
    std::string reason;  // reasonCode for statusInfo when not Accepted
  };
  // Validates type, limits and mutability; persists; notifies listeners.
  SetResult set(const VarRef& ref, std::string_view attribute_type, std::string_view value);
  // Internal update of a read-only value (e.g. SecurityProfile, counters).
  void set_internal(std::string_view short_key, std::string value);

  void set_dynamic(std::string_view short_key, std::function<std::string()> fn);
  void on_change(std::function<void(const Variable&)> fn) { listeners_.push_back(std::move(fn)); }

  const std::vector<Variable>& all() const { return vars_; }
  std::string current_value(const Variable& v) const;

 private:
  void add(Variable v);
  Variable* find_mut(std::string_view short_key);
  std::optional<std::string> check_value(const Variable& v, std::string_view value) const;

  storage::Db& db_;
  std::vector<Variable> vars_;
  std::map<std::string, std::size_t, std::less<>> index_;  // key() -> position
  std::vector<std::function<void(const Variable&)>> listeners_;
};

}  // namespace cg::core
