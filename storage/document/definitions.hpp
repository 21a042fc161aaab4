// Stage definitions stored in collection metadata, shared by change streams (`streams`,
// pipeline.hpp) and aggregations (`aggrs`, aggregation.hpp): the key escapes ("_$" for "$",
// "::" for "."), the variables ($var, $ifvar, @user, @now and further named server variables
// such as an aggregation's @skip) and the validation of a list of definitions at declaration.
//
// Thread-safety: functions over their arguments; a variable_resolver only reads what it was
// given and may be used from several threads at once while those outlive it.
#pragma once

#include "storage/document/value.hpp"

#include <optional>
#include <string_view>

namespace rheo {

/// Unescapes a stored definition's keys, recursively (values are left alone): a leading
/// "_$" becomes "$" and every "::" becomes ".". Literal keys pass unchanged.
object unescape_stream_keys(const object& o);

/// Values of the server variables for one client.
struct server_vars {
  /// The authenticated user's document ("@user", "@user.<field>"); null when absent.
  std::optional<object> user;
  /// "@now"; when absent, the clock when the definition is compiled.
  std::optional<date_time> now;
  /// An ACL readFilter over documents (variables already resolved). A stream prepends it
  /// as a $match on `fullDocument`, an aggregation as a $match before its first stage.
  std::optional<object> read_filter;
};

/// Substitutes variables in a (key-unescaped) definition: {"$var": "name"},
/// {"$var": ["name", default]} and {"$ifvar": [name(s), stage, else stage?]} from the
/// client's avars (dotted names read paths into them); the strings "@now", "@user" and
/// "@user.<path>" from `sv`; and any string equal to a field name of `named` (e.g. "@skip")
/// by that field's value. Other strings are left alone.
class variable_resolver {
public:
  /// All references must outlive the resolver; `named` may be nullptr.
  variable_resolver(const object& avars, const server_vars& sv, date_time now,
                    const object* named = nullptr)
      : avars_(avars), sv_(sv), now_(now), named_(named) {}

  /// The value with variables substituted; nullopt when it is an $ifvar whose names are
  /// unbound and that has no else branch (the enclosing array element or field is dropped).
  /// Throws api_error(400) "variable <n> not bound" for an unbound $var without default,
  /// or naming a malformed $var/$ifvar.
  std::optional<value> resolve(const value& v) const;

  /// The definition's `stages`, resolved (stages dropped by $ifvar left out).
  array resolve_stages(const object& definition) const;

private:
  const value* lookup(std::string_view name) const;
  value resolve_var(const value& arg) const;
  std::optional<value> resolve_ifvar(const value& arg) const;
  value resolve_server_variable(const std::string& s, const value& original) const;

  const object& avars_;
  const server_vars& sv_;
  date_time now_;
  const object* named_;
};

/// The `stages` array of a (key-unescaped) definition; throws api_error(400) "stages must
/// be an array".
const array& definition_stages(const object& definition);

/// How the operator names inside a stage's argument are checked when the stage holds
/// client variables (so that it can only be compiled once they are bound).
enum class argument_operators {
  query,        ///< query operators ($match)
  expression,   ///< expression operators ($project, $set, ...)
  accumulators, ///< expression operators and $group accumulators
  none,         ///< no operators ($sort, $limit, ...): only the variables' shapes
};

/// What validate_definitions() checks for one kind of definition.
struct definition_rules {
  /// The metadata field holding the list ("streams") and the word naming one definition
  /// in messages ("stream").
  std::string_view list;
  std::string_view noun;
  /// Compiles one stage free of client variables (server variables resolved to
  /// placeholders), throwing api_error(400) naming what is wrong.
  void (*compile_stage)(const value& stage);
  /// For a stage `{name: argument}` holding client variables: how its argument's operators
  /// are checked. Throws api_error(400) "stage <name> is not allowed" for a stage this kind
  /// of definition does not run.
  argument_operators (*argument_check)(std::string_view name);
  /// Checks a definition's other fields (key-unescaped), or nullptr.
  void (*check_fields)(const object& definition) = nullptr;
  /// Further named server variables bound while validating (placeholder values), or nullptr.
  const object* named_variables = nullptr;
};

/// Checks `metadata[rules.list]` (absent is fine): an array of {uri: non-empty string
/// unique within the array, stages: array of stages}. Keys may be escaped or literal.
/// Variables may stand for any stage or value: a stage free of $var/$ifvar is compiled by
/// rules.compile_stage; one with variables gets its stage name and operator names checked.
/// Throws api_error(400) naming the definition, e.g. "stream 'all': stage $lookup is not
/// allowed", or the list ("streams must be an array", "duplicate stream uri 'a'").
void validate_definitions(const object& metadata, const definition_rules& rules);

/// The definition in `metadata[list]` whose uri is `uri`, or nullptr.
const object* find_definition(const object& metadata, std::string_view list, std::string_view uri);

} // namespace rheo
