#include <boost/test/unit_test.hpp>

#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/document/pipeline.hpp"
#include "test/storage/document/document_test_helpers.hpp"

#include <string>
#include <string_view>

using namespace rheo;
using namespace rheo::doc_test;

BOOST_AUTO_TEST_SUITE(pipeline_test)

namespace {

/// A pipeline from the JSON text of its stages.
pipeline make(std::string_view stages, std::string_view avars = "{}", const server_vars& sv = {}) {
  return pipeline::compile(obj(R"({"uri":"s","stages":)" + std::string(stages) + "}"), obj(avars),
                           sv);
}

std::string compile_error(std::string_view stages, std::string_view avars = "{}") {
  return bad_request([&] { make(stages, avars); });
}

std::string validation_error(std::string_view metadata) {
  return bad_request([&] { validate_streams(obj(metadata)); });
}

/// Compares structurally (1 == 1.0) and shows the JSON on failure.
void check(const std::optional<object>& got, std::string_view expected) {
  BOOST_REQUIRE(got.has_value());
  BOOST_TEST_INFO("got " << to_json(value(*got)));
  BOOST_TEST((value(*got) == parse_json(expected, "expected")));
}

object message() {
  return obj(R"({"_id":"m1","from":"ann","to":"bob","text":"hi","n":3,"tags":["a","b"],
                 "meta":{"lang":"en","words":[{"w":"hi","len":2},{"w":"there"}]}})");
}

object insert_event() {
  change_event e;
  e.token = token_from_seq(1);
  e.operation = operation_type::insert;
  e.document_key = value("m1");
  e.full_document = message();
  return e.to_object();
}

object update_event() {
  change_event e;
  e.token = token_from_seq(2);
  e.operation = operation_type::update;
  e.document_key = value("m1");
  e.full_document = message();
  e.update = update_description{obj(R"({"text":"hi"})"), {"draft"}};
  return e.to_object();
}

object delete_event() {
  change_event e;
  e.token = token_from_seq(3);
  e.operation = operation_type::delete_;
  e.document_key = value("m1");
  return e.to_object();
}

/// Evaluates one expression against `doc` through {$replaceWith: {r: <expr>}}; the
/// result, or nullopt when the expression evaluated to missing.
std::optional<value> eval(std::string_view expression, const object& doc = message()) {
  auto out = make(R"([{"$replaceWith":{"r":)" + std::string(expression) + "}}]").run(doc);
  BOOST_REQUIRE(out.has_value());
  auto* r = find_field(*out, "r");
  return r ? std::optional<value>(*r) : std::nullopt;
}

bool eval_throws(std::string_view expression, const object& doc = message()) {
  auto p = make(R"([{"$replaceWith":{"r":)" + std::string(expression) + "}}]");
  try {
    p.run(doc);
  } catch (const pipeline_error&) {
    return true;
  }
  return false;
}

} // namespace

// ---- stored definitions ----

BOOST_AUTO_TEST_CASE(stored_keys_are_unescaped_recursively_and_values_are_left_alone) {
  auto stored = obj(R"({"uri":"all","stages":[
      {"_$match":{"_$or":[{"fullDocument::from":"_$x::y"},{"a::b::c":{"_$in":[{"k::1":1}]}}]}}]})");
  auto got = unescape_stream_keys(stored);
  BOOST_TEST(to_json(value(got)) == to_json(json(R"({"uri":"all","stages":[
      {"$match":{"$or":[{"fullDocument.from":"_$x::y"},{"a.b.c":{"$in":[{"k.1":1}]}}]}}]})")));
}

BOOST_AUTO_TEST_CASE(literal_keys_pass_unescaping_unchanged) {
  auto literal = obj(R"({"stages":[{"$match":{"fullDocument.from":"x"}}],"x_$y":1})");
  BOOST_TEST(to_json(value(unescape_stream_keys(literal))) == to_json(value(literal)));
}

BOOST_AUTO_TEST_CASE(escaped_and_literal_definitions_compile_to_the_same_pipeline) {
  auto escaped = pipeline::compile(
      obj(R"({"uri":"a","stages":[{"_$match":{"fullDocument::from":"ann"}}]})"), {}, {});
  auto literal = pipeline::compile(
      obj(R"({"uri":"a","stages":[{"$match":{"fullDocument.from":"ann"}}]})"), {}, {});
  BOOST_TEST(escaped.key() == literal.key());
  BOOST_TEST(escaped.run(insert_event()).has_value());
}

// ---- validation ----

BOOST_AUTO_TEST_CASE(validation_accepts_well_formed_streams) {
  BOOST_TEST(validation_error(R"({"streams":[
      {"uri":"all","stages":[]},
      {"uri":"mine","stages":[{"_$match":{"_$or":[{"fullDocument::to":"@user._id"},
                                                  {"operationType":{"_$in":["delete"]}}]}},
                              {"_$project":{"fullDocument::text":1}}]},
      {"uri":"calc","stages":[{"$addFields":{"x":{"$add":["$fullDocument.n",1]}}},
                              {"$set":{"y":{"$cond":{"if":true,"then":1,"else":2}}}},
                              {"$unset":["x"]},
                              {"$replaceWith":{"$ifNull":["$fullDocument","$documentKey"]}},
                              {"$replaceRoot":{"newRoot":"$$ROOT"}}]}]})") == "");
  BOOST_TEST(validation_error(R"({"other":1})") == "");
}

BOOST_AUTO_TEST_CASE(validation_rejects_stages_that_are_not_allowed) {
  for (std::string stage : {"$lookup", "$group", "$out", "$merge", "$sort"}) {
    BOOST_TEST_CONTEXT(stage) {
      auto escaped = "_" + stage;
      BOOST_TEST(
          validation_error(R"({"streams":[{"uri":"all","stages":[{")" + escaped + R"(":{}}]}]})") ==
          "stream 'all': stage " + stage + " is not allowed");
      BOOST_TEST(
          validation_error(R"({"streams":[{"uri":"all","stages":[{")" + stage + R"(":{}}]}]})") ==
          "stream 'all': stage " + stage + " is not allowed");
    }
  }
}

BOOST_AUTO_TEST_CASE(validation_rejects_unknown_operators_naming_them) {
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"_$match":{"x":{"_$near":1}}}]}]})") == "stream 'a': unknown operator $near");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$addFields":{"x":{"$sqrt":4}}}]}]})") == "stream 'a': unknown expression operator $sqrt");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$project":{"x":{"$toUpper":"$a"}}}]}]})") ==
             "stream 'a': unknown expression operator $toUpper");
}

BOOST_AUTO_TEST_CASE(validation_rejects_code_operators_and_expr) {
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"_$match":{"_$where":"sleep"}}]}]})") == "stream 'a': operator $where is not allowed");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$set":{"x":{"$function":{"body":"f","args":[],"lang":"js"}}}}]}]})") ==
             "stream 'a': operator $function is not allowed");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$set":{"x":{"$accumulator":{}}}}]}]})") ==
             "stream 'a': operator $accumulator is not allowed");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$match":{"$expr":{"$eq":["$a",1]}}}]}]})") == "stream 'a': $match: $expr is not supported");
}

BOOST_AUTO_TEST_CASE(validation_rejects_malformed_stream_lists) {
  BOOST_TEST(validation_error(R"({"streams":{}})") == "streams must be an array");
  BOOST_TEST(validation_error(R"({"streams":[1]})") == "streams[0] must be an object");
  BOOST_TEST(validation_error(R"({"streams":[{"stages":[]}]})") ==
             "streams[0]: uri must be a non-empty string");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"","stages":[]}]})") ==
             "streams[0]: uri must be a non-empty string");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":{"$match":{}}}]})") ==
             "stream 'a': stages must be an array");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a"}]})") ==
             "stream 'a': stages must be an array");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[]},{"uri":"a","stages":[]}]})") ==
             "duplicate stream uri 'a'");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[{"$match":{},"$set":{}}]}]})") ==
             "stream 'a': a stage must be an object with exactly one field, the stage name");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":["$match"]}]})") ==
             "stream 'a': a stage must be an object with exactly one field, the stage name");
}

BOOST_AUTO_TEST_CASE(validation_checks_stage_arguments_when_free_of_variables) {
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[{"$unset":5}]}]})") ==
             "stream 'a': $unset needs a field path or an array of field paths");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[{"$match":[]}]}]})") ==
             "stream 'a': $match needs an object");
  BOOST_TEST(
      validation_error(R"({"streams":[{"uri":"a","stages":[{"$project":{"a":1,"b":0}}]}]})") ==
      "stream 'a': $project: cannot mix exclusion with inclusion or computed fields");
  BOOST_TEST(
      validation_error(R"({"streams":[{"uri":"a","stages":[{"$set":{"x":{"$eq":[1]}}}]}]})") ==
      "stream 'a': $eq takes exactly 2 arguments, got 1");
}

BOOST_AUTO_TEST_CASE(validation_accepts_variables_anywhere_and_checks_their_names) {
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"_$match":{"fullDocument::to":{"_$var":"to"}}},
      {"_$match":{"_$var":"filter"}},
      {"_$var":["stage",{"$match":{}}]},
      {"$unset":{"$var":"hidden"}},
      {"$set":{"x":{"$add":[{"$var":["n",1]},2]}}},
      {"_$ifvar":[["a","b"],{"$match":{"x":{"$var":"a"}}},{"$match":{}}]}]}]})") == "");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$match":{"x":{"$var":"x"},"y":{"$regexp":"z"}}}]}]})") ==
             "stream 'a': unknown operator $regexp");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$ifvar":["x",{"$match":{}},{"$lookup":{}}]}]}]})") ==
             "stream 'a': stage $lookup is not allowed");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$group":{"_id":{"$var":"x"}}}]}]})") == "stream 'a': stage $group is not allowed");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$set":{"x":{"$var":{"name":"x"}}}}]}]})") ==
             R"(stream 'a': $var needs "name" or ["name", default])");
  BOOST_TEST(validation_error(R"({"streams":[{"uri":"a","stages":[
      {"$ifvar":["x"]}]}]})") ==
             R"(stream 'a': $ifvar needs ["name" or ["names"], stage, optional else stage])");
}

// ---- variables ----

BOOST_AUTO_TEST_CASE(var_substitutes_a_bound_variable) {
  auto p = make(R"([{"$match":{"fullDocument.from":{"$var":"who"}}}])", R"({"who":"ann"})");
  BOOST_TEST(p.run(insert_event()).has_value());
  auto q = make(R"([{"$match":{"fullDocument.from":{"$var":"who"}}}])", R"({"who":"bob"})");
  BOOST_TEST(!q.run(insert_event()).has_value());
  BOOST_TEST(p.key() == R"([{"$match":{"fullDocument.from":"ann"}}])");
}

BOOST_AUTO_TEST_CASE(var_with_a_dotted_name_reads_a_path_into_avars) {
  auto p = make(R"([{"$match":{"fullDocument.from":{"$var":"filter.from"}}}])",
                R"({"filter":{"from":"ann"}})");
  BOOST_TEST(p.key() == R"([{"$match":{"fullDocument.from":"ann"}}])");
  BOOST_TEST(compile_error(R"([{"$match":{"x":{"$var":"filter.to"}}}])",
                           R"({"filter":{"from":"ann"}})") == "variable filter.to not bound");
}

BOOST_AUTO_TEST_CASE(var_uses_its_default_when_unbound) {
  auto p = make(R"([{"$set":{"limit":{"$var":["limit",10]}}}])");
  check(p.run(obj(R"({"a":1})")), R"({"a":1,"limit":10})");
  auto q = make(R"([{"$set":{"limit":{"$var":["limit",10]}}}])", R"({"limit":3})");
  check(q.run(obj(R"({"a":1})")), R"({"a":1,"limit":3})");
}

BOOST_AUTO_TEST_CASE(an_unbound_var_without_default_is_a_400_naming_it) {
  BOOST_TEST(compile_error(R"([{"$match":{"x":{"$var":"n"}}}])") == "variable n not bound");
  BOOST_TEST(compile_error(R"([{"_$match":{"x":{"_$var":"room"}}}])", R"({"n":1})") ==
             "variable room not bound");
}

BOOST_AUTO_TEST_CASE(a_bound_value_is_substituted_as_is_not_reinterpreted) {
  // "@user" in a client's avars stays a string: server variables come only from the definition.
  auto p = make(R"([{"$set":{"x":{"$var":"v"}}}])", R"({"v":"@user"})",
                server_vars{obj(R"({"_id":"ann"})"), {}, {}});
  BOOST_TEST(p.key() == R"([{"$set":{"x":"@user"}}])");
}

BOOST_AUTO_TEST_CASE(ifvar_keeps_a_stage_when_its_variable_is_bound_and_drops_it_otherwise) {
  std::string stages = R"([{"$ifvar":["from",{"$match":{"fullDocument.from":{"$var":"from"}}}]}])";
  auto bound = make(stages, R"({"from":"bob"})");
  BOOST_TEST(!bound.run(insert_event()).has_value());
  auto unbound = make(stages);
  BOOST_TEST(unbound.passes_everything());
  BOOST_TEST(unbound.key() == "[]");
}

BOOST_AUTO_TEST_CASE(ifvar_with_several_names_needs_all_of_them) {
  std::string stages = R"([{"_$ifvar":[["a","b"],{"$set":{"both":true}}]}])";
  BOOST_TEST(make(stages, R"({"a":1,"b":2})").key() == R"([{"$set":{"both":true}}])");
  BOOST_TEST(make(stages, R"({"a":1})").key() == "[]");
}

BOOST_AUTO_TEST_CASE(ifvar_uses_its_else_stage_when_unbound) {
  std::string stages =
      R"([{"$ifvar":["to",{"$match":{"fullDocument.to":{"$var":"to"}}},{"$match":{"operationType":"delete"}}]}])";
  BOOST_TEST(make(stages, R"({"to":"bob"})").run(insert_event()).has_value());
  auto otherwise = make(stages);
  BOOST_TEST(!otherwise.run(insert_event()).has_value());
  BOOST_TEST(otherwise.run(delete_event()).has_value());
}

BOOST_AUTO_TEST_CASE(ifvar_inside_a_stage_drops_the_array_element) {
  std::string stages =
      R"([{"$match":{"$and":[{"operationType":"insert"},{"$ifvar":["to",{"fullDocument.to":{"$var":"to"}}]}]}}])";
  BOOST_TEST(make(stages).key() == R"([{"$match":{"$and":[{"operationType":"insert"}]}}])");
  BOOST_TEST(!make(stages, R"({"to":"cy"})").run(insert_event()).has_value());
}

BOOST_AUTO_TEST_CASE(user_resolves_to_the_user_document_or_one_of_its_fields) {
  server_vars sv{obj(R"({"_id":"bob","roles":["admin"],"profile":{"room":"r1"}})"), {}, {}};
  auto p = make(R"([{"$match":{"fullDocument.to":"@user._id"}},
                    {"$set":{"roles":"@user.roles","room":"@user.profile.room","me":"@user",
                             "nothing":"@user.missing","other":"@users"}}])",
                "{}", sv);
  auto out = p.run(insert_event());
  BOOST_REQUIRE(out.has_value());
  BOOST_TEST(to_json(*find_field(*out, "roles")) == R"(["admin"])");
  BOOST_TEST(find_field(*out, "room")->as_string() == "r1");
  BOOST_TEST(to_json(*find_field(*out, "me")) == to_json(value(*sv.user)));
  BOOST_TEST(find_field(*out, "nothing")->is_null());
  BOOST_TEST(find_field(*out, "other")->as_string() == "@users");
  auto ann = make(R"([{"$match":{"fullDocument.to":"@user._id"}}])", "{}",
                  server_vars{obj(R"({"_id":"ann"})"), {}, {}});
  BOOST_TEST(!ann.run(insert_event()).has_value());
}

BOOST_AUTO_TEST_CASE(user_is_null_without_a_user) {
  auto p = make(R"([{"$set":{"u":"@user","id":"@user._id"}}])");
  BOOST_TEST(p.key() == R"([{"$set":{"u":null,"id":null}}])");
}

BOOST_AUTO_TEST_CASE(now_resolves_once_at_compile_time) {
  auto p = make(R"([{"$set":{"at":"@now"}}])", "{}", server_vars{{}, date_time{1700000000000}, {}});
  BOOST_TEST(p.key() == R"([{"$set":{"at":{"$date":1700000000000}}}])");
  auto a = p.run(insert_event());
  auto b = p.run(update_event());
  BOOST_TEST(find_field(*a, "at")->get<date_time>().millis == 1700000000000);
  BOOST_TEST(find_field(*b, "at")->get<date_time>().millis == 1700000000000);
  auto clock = make(R"([{"$set":{"at":"@now"}}])");
  auto at = find_field(*clock.run(insert_event()), "at")->get<date_time>().millis;
  BOOST_TEST(at > 1700000000000);
}

// ---- $match ----

BOOST_AUTO_TEST_CASE(match_filters_change_events_with_query_semantics) {
  auto inserts = make(R"([{"$match":{"operationType":{"$in":["insert","update"]}}}])");
  BOOST_TEST(inserts.run(insert_event()).has_value());
  BOOST_TEST(inserts.run(update_event()).has_value());
  BOOST_TEST(!inserts.run(delete_event()).has_value());
  auto tagged = make(R"([{"$match":{"fullDocument.tags":"b","fullDocument.n":{"$gte":3}}}])");
  BOOST_TEST(tagged.run(insert_event()).has_value());
  BOOST_TEST(!tagged.run(delete_event()).has_value());
  auto removed = make(R"([{"$match":{"updateDescription.removedFields":"draft"}}])");
  BOOST_TEST(removed.run(update_event()).has_value());
  BOOST_TEST(!removed.run(insert_event()).has_value());
  auto key = make(R"([{"_$match":{"documentKey::_id":"m1"}}])");
  BOOST_TEST(key.run(delete_event()).has_value());
}

BOOST_AUTO_TEST_CASE(match_only_pipelines_do_not_copy_the_event) {
  auto p = make(R"([{"$match":{"operationType":"insert"}},{"$match":{"fullDocument.to":"bob"}}])");
  auto event = insert_event();
  object scratch;
  BOOST_TEST(p.run(event, scratch) == &event);
  BOOST_TEST(scratch.empty());
  auto other = delete_event();
  BOOST_TEST(p.run(other, scratch) == nullptr);
  BOOST_TEST(!p.passes_everything());
}

BOOST_AUTO_TEST_CASE(match_rejects_expr_and_code_at_compile_time) {
  BOOST_TEST(compile_error(R"([{"$match":{"$expr":{"$eq":[1,1]}}}])") ==
             "$match: $expr is not supported");
  BOOST_TEST(compile_error(R"([{"$match":{"$or":[{"$expr":true}]}}])") ==
             "$match: $expr is not supported");
  BOOST_TEST(compile_error(R"([{"$match":{"$where":"1"}}])") == "operator $where is not allowed");
}

BOOST_AUTO_TEST_CASE(empty_pipelines_and_empty_matches_pass_everything) {
  BOOST_TEST(pipeline().passes_everything());
  BOOST_TEST(pipeline().key() == "[]");
  BOOST_TEST(make("[]").passes_everything());
  BOOST_TEST(make(R"([{"$match":{}}])").passes_everything());
  BOOST_TEST(!make(R"([{"$set":{"a":1}}])").passes_everything());
  auto event = insert_event();
  object scratch;
  BOOST_TEST(make("[]").run(event, scratch) == &event);
  check(make("[]").run(event), to_json(value(event)));
}

// ---- reshaping stages ----

BOOST_AUTO_TEST_CASE(project_includes_paths_and_keeps_id_unless_excluded) {
  check(make(R"([{"$project":{"operationType":1,"fullDocument.text":1}}])").run(insert_event()),
        R"({"_id":{"_data":"0000000000000001"},"operationType":"insert",
            "fullDocument":{"text":"hi"}})");
  check(make(R"([{"$project":{"_id":0,"fullDocument":{"from":1,"to":true}}}])").run(insert_event()),
        R"({"fullDocument":{"from":"ann","to":"bob"}})");
  check(make(R"([{"$project":{"_id":1}}])").run(delete_event()),
        R"({"_id":{"_data":"0000000000000003"}})");
}

BOOST_AUTO_TEST_CASE(project_excludes_paths) {
  check(make(R"([{"$project":{"fullDocument":0,"_id":0,"updateDescription.removedFields":0}}])")
            .run(update_event()),
        R"({"operationType":"update","documentKey":{"_id":"m1"},
            "updateDescription":{"updatedFields":{"text":"hi"}}})");
  check(make(R"([{"$project":{"_id":0}}])").run(delete_event()),
        R"({"operationType":"delete","documentKey":{"_id":"m1"}})");
}

BOOST_AUTO_TEST_CASE(project_computes_fields_with_expressions) {
  check(make(R"([{"$project":{"_id":0,"op":"$operationType","who":"$fullDocument.from",
                              "msg.text":{"$concat":["$fullDocument.from",": ","$fullDocument.text"]},
                              "kind":{"$literal":1},"gone":"$fullDocument.nope"}}])")
            .run(insert_event()),
        R"({"op":"insert","who":"ann","msg":{"text":"ann: hi"},"kind":1})");
  check(make(R"([{"$project":{"_id":"$documentKey._id","operationType":1}}])").run(delete_event()),
        R"({"_id":"m1","operationType":"delete"})");
  check(make(R"([{"$project":{"operationType":1,"n":"$fullDocument.n"}}])").run(insert_event()),
        R"({"_id":{"_data":"0000000000000001"},"operationType":"insert","n":3})");
}

BOOST_AUTO_TEST_CASE(project_rejects_bad_specifications) {
  BOOST_TEST(compile_error(R"([{"$project":{}}])") ==
             "$project needs an object with at least one field");
  BOOST_TEST(compile_error(R"([{"$project":{"a":0,"b":"$x"}}])") ==
             "$project: cannot mix exclusion with inclusion or computed fields");
  BOOST_TEST(compile_error(R"([{"$project":{"a":1,"a.b":1}}])") ==
             "$project: path collision at 'a.b'");
  BOOST_TEST(compile_error(R"([{"$project":{"$a":1}}])") == "$project: invalid field name '$a'");
}

BOOST_AUTO_TEST_CASE(add_fields_and_set_compute_fields_and_create_nested_paths) {
  for (std::string name : {"$addFields", "$set"}) {
    BOOST_TEST_CONTEXT(name) {
      auto p =
          make(R"([{")" + name + R"(":{"fullDocument.shout":{"$concat":["$fullDocument.text","!"]},
                                        "meta.seen":true,"meta.by":{"x":"$operationType"},
                                        "fullDocument.text":"$operationType"}}])");
      auto out = p.run(update_event());
      BOOST_REQUIRE(out.has_value());
      auto* full = find_field(*out, "fullDocument");
      BOOST_TEST(find_field(full->as_object(), "shout")->as_string() == "hi!");
      // Expressions see the input document, not fields set by the same stage.
      BOOST_TEST(find_field(full->as_object(), "text")->as_string() == "update");
      BOOST_TEST(to_json(*find_field(*out, "meta")) == R"({"seen":true,"by":{"x":"update"}})");
      BOOST_TEST(find_field(*out, "updateDescription") != nullptr);
    }
  }
}

BOOST_AUTO_TEST_CASE(set_merges_embedded_objects_into_existing_ones) {
  check(make(R"([{"$set":{"a":{"c":2},"d":{}}}])").run(obj(R"({"a":{"b":1},"d":{"e":1}})")),
        R"({"a":{"b":1,"c":2},"d":{}})");
  check(make(R"([{"$set":{"a.b":5}}])").run(obj(R"({"a":[1,{"x":1}],"s":2})")),
        R"({"a":[{"b":5},{"x":1,"b":5}],"s":2})");
  check(make(R"([{"$set":{"s.t":5}}])").run(obj(R"({"s":2})")), R"({"s":{"t":5}})");
}

BOOST_AUTO_TEST_CASE(set_to_a_missing_value_removes_the_field) {
  check(make(R"([{"$set":{"a":"$nope","b.c":"$nope"}}])").run(obj(R"({"a":1,"b":{"c":1,"d":2}})")),
        R"({"b":{"d":2}})");
}

BOOST_AUTO_TEST_CASE(unset_removes_one_or_several_paths) {
  check(
      make(R"([{"$unset":"fullDocument"}])").run(delete_event()),
      R"({"_id":{"_data":"0000000000000003"},"operationType":"delete","documentKey":{"_id":"m1"}})");
  check(make(R"([{"$unset":["_id","fullDocument.meta","updateDescription"]}])").run(update_event()),
        R"({"operationType":"update","fullDocument":{"_id":"m1","from":"ann","to":"bob","text":"hi",
            "n":3,"tags":["a","b"]},"documentKey":{"_id":"m1"}})");
  BOOST_TEST(compile_error(R"([{"$unset":[]}])") == "$unset needs at least one field path");
  BOOST_TEST(compile_error(R"([{"$unset":["a",1]}])") ==
             "$unset needs a field path or an array of field paths");
}

BOOST_AUTO_TEST_CASE(replace_root_and_replace_with_make_an_expression_the_document) {
  check(make(R"([{"$replaceRoot":{"newRoot":"$fullDocument"}}])").run(insert_event()),
        to_json(value(message())));
  check(make(R"([{"$replaceWith":{"op":"$operationType","id":"$documentKey._id"}}])")
            .run(delete_event()),
        R"({"op":"delete","id":"m1"})");
  check(make(R"([{"$replaceWith":{"$ifNull":["$fullDocument","$documentKey"]}}])")
            .run(delete_event()),
        R"({"_id":"m1"})");
  BOOST_TEST(compile_error(R"([{"$replaceRoot":{"root":"$a"}}])") ==
             "$replaceRoot needs {newRoot: <expression>}");
}

BOOST_AUTO_TEST_CASE(replace_root_with_a_non_object_is_a_pipeline_error) {
  auto p = make(R"([{"$replaceRoot":{"newRoot":"$fullDocument"}}])");
  BOOST_CHECK_THROW(p.run(delete_event()), pipeline_error); // missing
  BOOST_CHECK_THROW(make(R"([{"$replaceWith":"$operationType"}])").run(insert_event()),
                    pipeline_error);
  try {
    make(R"([{"$replaceWith":"$fullDocument.n"}])").run(insert_event());
  } catch (const pipeline_error& e) {
    BOOST_TEST(std::string(e.what()) ==
               "$replaceWith needs an expression that evaluates to an object, got int");
  }
}

BOOST_AUTO_TEST_CASE(stages_compose_in_order) {
  auto p = make(R"([{"$match":{"operationType":"insert"}},
                    {"$replaceWith":"$fullDocument"},
                    {"$set":{"len":{"$size":"$tags"}}},
                    {"$match":{"len":{"$gt":1}}},
                    {"$project":{"_id":0,"from":1,"len":1}}])");
  check(p.run(insert_event()), R"({"from":"ann","len":2})");
  BOOST_TEST(!p.run(delete_event()).has_value());
  auto none = make(R"([{"$set":{"len":1}},{"$match":{"len":2}}])");
  object scratch;
  auto event = insert_event();
  BOOST_TEST(none.run(event, scratch) == nullptr);
}

BOOST_AUTO_TEST_CASE(a_failing_event_does_not_affect_the_next) {
  auto p = make(R"([{"$set":{"half":{"$divide":["$fullDocument.n",2]}}}])");
  auto bad = insert_event();
  set_field(find_field(bad, "fullDocument")->as_object(), "n", value("three"));
  BOOST_CHECK_THROW(p.run(bad), pipeline_error);
  auto out = p.run(insert_event());
  BOOST_TEST(find_field(*out, "half")->as_double() == 1.5);
}

// ---- expressions ----

BOOST_AUTO_TEST_CASE(field_paths_read_nested_fields_and_map_over_arrays) {
  BOOST_TEST(*eval(R"("$meta.lang")") == json(R"("en")"));
  BOOST_TEST(*eval(R"("$meta.words.w")") == json(R"(["hi","there"])"));
  BOOST_TEST(*eval(R"("$meta.words.len")") == json("[2]"));
  BOOST_TEST(!eval(R"("$meta.nope")").has_value());
  BOOST_TEST(!eval(R"("$text.length")").has_value());
  BOOST_TEST(*eval(R"("$$ROOT.from")") == json(R"("ann")"));
  BOOST_TEST(*eval(R"({"$size":{"$literal":[1,2,3]}})") == json("3"));
  BOOST_TEST(compile_error(R"([{"$set":{"x":"$$NOW"}}])") == "unknown variable $$NOW");
  BOOST_TEST(compile_error(R"([{"$set":{"x":"$a..b"}}])") == "invalid field path in '$a..b'");
}

BOOST_AUTO_TEST_CASE(literals_objects_and_arrays_evaluate_to_themselves) {
  BOOST_TEST(*eval(R"({"$literal":"$from"})") == json(R"("$from")"));
  BOOST_TEST(*eval(R"({"$literal":{"$add":[1]}})") == json(R"({"$add":[1]})"));
  BOOST_TEST(*eval(R"({"a":"$from","b":["$to","$nope",1]})") ==
             json(R"({"a":"ann","b":["bob",null,1]})"));
  BOOST_TEST(*eval("true") == json("true"));
}

BOOST_AUTO_TEST_CASE(comparisons_follow_bson_order_and_missing_sorts_first) {
  BOOST_TEST(*eval(R"({"$eq":["$from","ann"]})") == json("true"));
  BOOST_TEST(*eval(R"({"$eq":["$n",3.0]})") == json("true"));
  BOOST_TEST(*eval(R"({"$ne":["$from","bob"]})") == json("true"));
  BOOST_TEST(*eval(R"({"$gt":["$n",2]})") == json("true"));
  BOOST_TEST(*eval(R"({"$gte":["$n",3]})") == json("true"));
  BOOST_TEST(*eval(R"({"$lt":["$n",3]})") == json("false"));
  BOOST_TEST(*eval(R"({"$lte":["$n",3]})") == json("true"));
  BOOST_TEST(*eval(R"({"$gt":["$from",5]})") == json("true")); // strings sort after numbers
  BOOST_TEST(*eval(R"({"$eq":["$nope",null]})") == json("false"));
  BOOST_TEST(*eval(R"({"$lt":["$nope",null]})") == json("true"));
  BOOST_TEST(*eval(R"({"$eq":["$nope","$alsoNope"]})") == json("true"));
  BOOST_TEST(*eval(R"({"$cmp":["$n",4]})") == json("-1"));
  BOOST_TEST(*eval(R"({"$cmp":["b","a"]})") == json("1"));
  BOOST_TEST(*eval(R"({"$cmp":["$tags",["a","b"]]})") == json("0"));
}

BOOST_AUTO_TEST_CASE(logical_operators_use_aggregation_truthiness) {
  BOOST_TEST(*eval(R"({"$and":[true,1,"x"]})") == json("true"));
  BOOST_TEST(*eval(R"({"$and":[true,0]})") == json("false"));
  BOOST_TEST(*eval(R"({"$and":[]})") == json("true"));
  BOOST_TEST(*eval(R"({"$or":[null,"$nope",false]})") == json("false"));
  BOOST_TEST(*eval(R"({"$or":[null,{"$eq":["$from","ann"]}]})") == json("true"));
  BOOST_TEST(*eval(R"({"$not":["$nope"]})") == json("true"));
  BOOST_TEST(*eval(R"({"$not":"$n"})") == json("false"));
  BOOST_TEST(*eval(R"({"$cond":[{"$gt":["$n",2]},"big","small"]})") == json(R"("big")"));
  BOOST_TEST(*eval(R"({"$cond":{"if":"$nope","then":"yes","else":"no"}})") == json(R"("no")"));
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$cond":{"if":1,"then":2}}}}])") ==
             "$cond needs 'else'");
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$cond":[1,2]}}}])") ==
             "$cond takes exactly 3 arguments, got 2");
}

BOOST_AUTO_TEST_CASE(if_null_returns_the_first_non_null_value) {
  BOOST_TEST(*eval(R"({"$ifNull":["$nope",null,"$from","x"]})") == json(R"("ann")"));
  BOOST_TEST(*eval(R"({"$ifNull":["$nope","default"]})") == json(R"("default")"));
  BOOST_TEST(*eval(R"({"$ifNull":["$n","default"]})") == json("3"));
  BOOST_TEST(!eval(R"({"$ifNull":[null,"$nope"]})").has_value());
}

BOOST_AUTO_TEST_CASE(concat_joins_strings_and_fails_on_other_types) {
  BOOST_TEST(*eval(R"({"$concat":["$from"," -> ","$to"]})") == json(R"("ann -> bob")"));
  BOOST_TEST(*eval(R"({"$concat":[]})") == json(R"("")"));
  BOOST_TEST(*eval(R"({"$concat":["a",null]})") == json("null"));
  BOOST_TEST(*eval(R"({"$concat":["a","$nope"]})") == json("null"));
  BOOST_TEST(eval_throws(R"({"$concat":["a","$n"]})"));
  BOOST_TEST(eval_throws(R"({"$concat":["$tags"]})"));
}

BOOST_AUTO_TEST_CASE(to_string_converts_scalars) {
  auto doc = obj(R"({"i":42,"l":{"$numberLong":"9000000000"},"d":2.5,"w":1.0,"b":false,
                     "id":{"$oid":"0123456789abcdef01234567"},"t":{"$date":1700000000123},
                     "s":"x","o":{},"nan":{"$numberDouble":"NaN"}})");
  BOOST_TEST(*eval(R"({"$toString":"$i"})", doc) == json(R"("42")"));
  BOOST_TEST(*eval(R"({"$toString":"$l"})", doc) == json(R"("9000000000")"));
  BOOST_TEST(*eval(R"({"$toString":"$d"})", doc) == json(R"("2.5")"));
  BOOST_TEST(*eval(R"({"$toString":"$w"})", doc) == json(R"("1")"));
  BOOST_TEST(*eval(R"({"$toString":"$b"})", doc) == json(R"("false")"));
  BOOST_TEST(*eval(R"({"$toString":"$id"})", doc) == json(R"("0123456789abcdef01234567")"));
  BOOST_TEST(*eval(R"({"$toString":"$t"})", doc) == json(R"("2023-11-14T22:13:20.123Z")"));
  BOOST_TEST(*eval(R"({"$toString":"$s"})", doc) == json(R"("x")"));
  BOOST_TEST(*eval(R"({"$toString":"$nan"})", doc) == json(R"("NaN")"));
  BOOST_TEST(*eval(R"({"$toString":"$nope"})", doc) == json("null"));
  BOOST_TEST(eval_throws(R"({"$toString":"$o"})", doc));
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$toString":[1,2]}}}])") ==
             "$toString takes exactly 1 argument, got 2");
}

BOOST_AUTO_TEST_CASE(add_and_multiply_promote_numeric_types) {
  auto i = *eval(R"({"$add":["$n",4]})");
  BOOST_TEST(i.is<std::int32_t>());
  BOOST_TEST(i.as_int64() == 7);
  auto widened = *eval(R"({"$add":[2147483647,1]})");
  BOOST_TEST(widened.is<std::int64_t>());
  BOOST_TEST(widened.as_int64() == 2147483648LL);
  auto overflow = *eval(R"({"$multiply":[{"$numberLong":"9223372036854775807"},2]})");
  BOOST_TEST(overflow.is<double>());
  BOOST_TEST(*eval(R"({"$add":["$n",0.5]})") == json("3.5"));
  BOOST_TEST(*eval(R"({"$add":[]})") == json("0"));
  BOOST_TEST(*eval(R"({"$multiply":["$n",2,1.5]})") == json("9"));
  BOOST_TEST(*eval(R"({"$add":["$n",null]})") == json("null"));
  BOOST_TEST(*eval(R"({"$multiply":["$nope",2]})") == json("null"));
  BOOST_TEST(eval_throws(R"({"$add":["$n","$from"]})"));
  BOOST_TEST(eval_throws(R"({"$multiply":[2,true]})"));
}

BOOST_AUTO_TEST_CASE(add_and_subtract_work_on_dates) {
  auto doc = obj(R"({"t":{"$date":1000},"u":{"$date":250}})");
  BOOST_TEST(*eval(R"({"$add":["$t",500]})", doc) == value(date_time{1500}));
  BOOST_TEST(*eval(R"({"$add":[1,"$t",1.6]})", doc) == value(date_time{1003}));
  BOOST_TEST(eval_throws(R"({"$add":["$t","$u"]})", doc));
  BOOST_TEST(*eval(R"({"$subtract":["$t","$u"]})", doc) == json("750"));
  BOOST_TEST(*eval(R"({"$subtract":["$t",100]})", doc) == value(date_time{900}));
  BOOST_TEST(*eval(R"({"$subtract":[10,2.5]})", doc) == json("7.5"));
  BOOST_TEST(*eval(R"({"$subtract":[10,null]})", doc) == json("null"));
  BOOST_TEST(eval_throws(R"({"$subtract":[100,"$t"]})", doc));
  BOOST_TEST(eval_throws(R"({"$subtract":["a",1]})", doc));
}

BOOST_AUTO_TEST_CASE(divide_returns_a_double_and_fails_on_zero_or_strings) {
  auto r = *eval(R"({"$divide":["$n",2]})");
  BOOST_TEST(r.is<double>());
  BOOST_TEST(r.as_double() == 1.5);
  BOOST_TEST(*eval(R"({"$divide":["$nope",2]})") == json("null"));
  BOOST_TEST(eval_throws(R"({"$divide":["$n",0]})"));
  BOOST_TEST(eval_throws(R"({"$divide":["$n","$from"]})"));
  BOOST_TEST(eval_throws(R"({"$divide":["$from",1]})"));
}

BOOST_AUTO_TEST_CASE(in_tests_membership_and_needs_an_array) {
  BOOST_TEST(*eval(R"({"$in":["b","$tags"]})") == json("true"));
  BOOST_TEST(*eval(R"({"$in":["$from",["bob","cy"]]})") == json("false"));
  BOOST_TEST(*eval(R"({"$in":[3.0,[1,2,3]]})") == json("true"));
  BOOST_TEST(*eval(R"({"$in":["$nope",[null]]})") == json("false"));
  BOOST_TEST(eval_throws(R"({"$in":["a","$from"]})"));
  BOOST_TEST(eval_throws(R"({"$in":["a","$nope"]})"));
}

BOOST_AUTO_TEST_CASE(size_counts_array_elements_and_fails_on_anything_else) {
  BOOST_TEST(*eval(R"({"$size":"$tags"})") == json("2"));
  BOOST_TEST(*eval(R"({"$size":["$meta.words"]})") == json("2"));
  BOOST_TEST(eval_throws(R"({"$size":"$from"})"));
  BOOST_TEST(eval_throws(R"({"$size":"$nope"})"));
}

BOOST_AUTO_TEST_CASE(unknown_or_malformed_expressions_are_400_at_compile_time) {
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$regexMatch":{}}}}])") ==
             "unknown expression operator $regexMatch");
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$function":{}}}}])") ==
             "operator $function is not allowed");
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$add":[1],"y":2}}}])") ==
             "an expression object must have exactly one operator, found $add among other fields");
  BOOST_TEST(compile_error(R"([{"$set":{"x":[{"a":1,"$b":2}]}}])") ==
             "field name $b in an expression object cannot start with $");
  BOOST_TEST(compile_error(R"([{"$set":{"x":{"$ifNull":[1]}}}])") ==
             "$ifNull takes at least 2 arguments, got 1");
  BOOST_TEST(compile_error(R"([{"$lookup":{}}])") == "stage $lookup is not allowed");
  BOOST_TEST(compile_error(R"({"$match":{}})") == "stages must be an array");
}

// ---- sharing ----

BOOST_AUTO_TEST_CASE(equal_resolved_pipelines_have_equal_keys) {
  std::string stages =
      R"([{"$match":{"fullDocument.to":{"$var":"to"}}},{"$unset":"fullDocument.meta"}])";
  auto a = make(stages, R"({"to":"bob"})");
  auto b = make(stages, R"({"to":"bob","unused":1})");
  auto literal = make(R"([{"$match":{"fullDocument.to":"bob"}},{"$unset":"fullDocument.meta"}])");
  BOOST_TEST(a.key() == b.key());
  BOOST_TEST(a.key() == literal.key());
  auto c = make(stages, R"({"to":"cy"})");
  BOOST_TEST(a.key() != c.key());
  auto ann = make(R"([{"$match":{"fullDocument.to":"@user._id"}}])", "{}",
                  server_vars{obj(R"({"_id":"ann"})"), {}, {}});
  auto bob = make(R"([{"$match":{"fullDocument.to":"@user._id"}}])", "{}",
                  server_vars{obj(R"({"_id":"bob"})"), {}, {}});
  BOOST_TEST(ann.key() != bob.key());
  BOOST_TEST(make(R"([{"$match":{"fullDocument.to":"@user._id"}}])", "{}",
                  server_vars{obj(R"({"_id":"bob","roles":[]})"), {}, {}})
                 .key() == bob.key());
}

BOOST_AUTO_TEST_CASE(copies_of_a_pipeline_share_its_compiled_stages) {
  auto p = make(R"([{"$set":{"x":1}}])");
  pipeline copy = p;
  BOOST_TEST(&copy.key() == &p.key());
  check(copy.run(obj("{}")), R"({"x":1})");
}

BOOST_AUTO_TEST_CASE(stages_that_nest_the_event_deeper_than_200_levels_fail_on_it) {
  // Each stage puts the whole input 90 levels down: the third output is over 200 levels.
  std::string wrap = "\"$$ROOT\"";
  for (int i = 0; i < 90; ++i)
    wrap = "{\"a\":" + wrap + "}";
  const std::string stage = "{\"$replaceWith\":" + wrap + "}";
  BOOST_TEST(make("[" + stage + "," + stage + "]").run(insert_event()).has_value());
  BOOST_CHECK_THROW(make("[" + stage + "," + stage + "," + stage + "]").run(insert_event()),
                    pipeline_error);
}

BOOST_AUTO_TEST_SUITE_END()
