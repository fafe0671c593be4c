// wersa-server end to end: the server started on loopback (--port 0) over a tiny model trained a
// few steps on real text, real HTTP requests with httplib::Client. Greedy and seeded completions
// equal wersa-generate's text; concurrent requests equal the same requests alone; a prompt that
// extends a kept session resumes from it and equals a cold run; streaming sends the same text as
// server-sent events ending in [DONE]; every error status is an OpenAI error object; a client
// that disconnects, streamed or not, frees its slot; SIGTERM finishes the running request and
// exits 0; logprobs are the log-softmax of the model API's logits; sessions saved with
// --sessions-dir continue after a restart as if never saved.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/api.h"
#include "server/session_cache.h"
#include "server_util.h"
#include "testutil.h"
#include "wersa/data/tokenizer.h"
#include "wersa/io/checkpoint.h"
#include "wersa/model/generate.h"

using namespace wersa;
using namespace wersa::test;
using nlohmann::json;

namespace {

// configs/tiny.json (byte tokenizer) trained 30 steps on the first 60 KB of a novel: enough for
// text that is not uniform noise, in a few seconds.
const std::string& checkpoint() {
  static const TempDir dir("server-ckpt");
  static const std::string run = [] {
    std::ofstream(dir / "train.txt") << real_text(60000);
    const ToolRun tr = run_tool("wersa-train --config " + source_dir() +
                                "/configs/tiny.json --set train.steps=30 --set train.warmup_steps=2 "
                                "--set train.eval_every=0 --set data.val= --set data.train=" +
                                (dir / "train.txt") + " --out " + (dir / "run"));
    EXPECT_EQ(tr.status, 0) << tr.err;
    return dir / "run";
  }();
  return run;
}

// A byte-level model of random weights, large enough (init_std 0.3) that every bit of the state
// and every position moves the next token's distribution: a wrong state or position changes
// sampled text, which the barely trained model above may not show.
ModelConfig random_config(const std::string& type) {
  ModelConfig m;
  m.dim = 32;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 64;
  m.init_std = 0.3;
  m.attention.type = attention_kind_from_name(type);
  m.attention.features = 16;
  m.attention.conv_width = 9;
  return m;
}
std::string random_checkpoint(const std::string& type = "wersa") {
  static const TempDir dir("server-random");
  static std::map<std::string, std::string> made;
  if (!made.count(type)) {
    Config cfg;
    cfg.model = random_config(type);
    cfg.train.seq_len = 64;  // a softmax model's context (its KV cache's rows)
    Model m(cfg.model, DType::F32, Device::CPU, false);
    m.init(5);
    io::save_checkpoint(dir / type, 1,
                        {&m, nullptr, nullptr, config_to_json(cfg), io::CheckpointState{1, 0, 0, 0}, ""});
    made[type] = dir / type;
  }
  return made[type];
}

std::string tokens_of(const Reply& r) {
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.status == 200 ? r.body["choices"][0]["tokens"].dump() : std::string();
}

std::string text_of(const Reply& r) {
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.status == 200 ? r.body["choices"][0]["text"].get<std::string>() : std::string();
}

double metric(const Server& s, const std::string& name) {
  auto res = s.client().Get("/metrics");
  EXPECT_TRUE(res && res->status == 200);
  if (!res) return -1;
  const std::string& t = res->body;
  const size_t at = t.find("\n" + name + " ");
  EXPECT_NE(at, std::string::npos) << name;
  return at == std::string::npos ? -1 : std::stod(t.substr(at + name.size() + 2));
}

// An OpenAI error object with the status, the parameter (null when ""), a message.
void expect_error(const Reply& r, int status, const std::string& param = "") {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.contains("error")) << r.raw;
  const json& e = r.body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.raw;
  EXPECT_TRUE(e.contains("type") && e.contains("code")) << r.raw;
  if (param.empty())
    EXPECT_TRUE(e["param"].is_null()) << r.raw;
  else
    EXPECT_EQ(e["param"], param) << r.raw;
}

// wersa-generate's text for a prompt (what it prints after the prompt, without the final newline).
std::string generate(const std::string& prompt, int n, const std::string& sampling) {
  const ToolRun r = run_tool("wersa-generate -m " + checkpoint() + " -p '" + prompt + "' -n " +
                             std::to_string(n) + " --no-display-prompt -t 1 " + sampling);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  return r.out.empty() ? r.out : r.out.substr(0, r.out.size() - 1);
}

// A raw HTTP/1.1 connection to the server with one POST /v1/completions sent: its socket (-1 on
// failure), for a test that closes it.
int send_raw(int port, const json& req) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string body = req.dump();
  const std::string head =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::write(fd, head.data(), head.size()) != ssize_t(head.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A string as a JSON answer carries it: invalid UTF-8 as U+FFFD.
std::string as_sent(const std::string& s) {
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

// The events of a stream: its data lines in order.
std::vector<std::string> stream(const Server& s, const json& req) {
  std::string all;
  auto res = s.client().Post("/v1/completions", req.dump(), "application/json");
  EXPECT_TRUE(res && res->status == 200);
  if (res) {
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    all = res->body;
  }
  std::vector<std::string> data;
  for (size_t at = 0; (at = all.find("data: ", at)) != std::string::npos;) {
    const size_t end = all.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line";
    if (end == std::string::npos) break;
    data.push_back(all.substr(at + 6, end - at - 6));
    at = end + 2;
  }
  return data;
}

}  // namespace

TEST(Server, CompletionsEqualWersaGenerate) {
  Server s({"--parallel", "2"}, checkpoint());
  const std::string prompt = "It was a dark and stormy night";
  const Reply greedy = complete(s, {{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}});
  EXPECT_EQ(text_of(greedy), generate(prompt, 24, "--temp 0"));
  EXPECT_EQ(greedy.body["object"], "text_completion");
  EXPECT_EQ(greedy.body["usage"]["prompt_tokens"], 1 + int(prompt.size()));  // EOS, then one byte each
  // Seeded sampling: the same chain (min-p and the repetition penalty off), the same draws.
  const std::string sampled = text_of(complete(s, {{"prompt", prompt},
                                                   {"max_tokens", 40},
                                                   {"temperature", 0.9},
                                                   {"top_k", 30},
                                                   {"top_p", 0.9},
                                                   {"seed", 7}}));
  EXPECT_EQ(sampled, generate(prompt, 40, "--temp 0.9 --top-k 30 --top-p 0.9 --min-p 0 -s 7"));
  EXPECT_NE(sampled.find_first_not_of(' '), std::string::npos) << "a sample of only spaces proves little";
  // Tokenize, detokenize, models, health.
  const Reply tk = post(s, "/tokenize", json{{"content", "Hi!"}}.dump());
  EXPECT_EQ(tk.body["tokens"], json::array({72, 105, 33}));
  EXPECT_EQ(post(s, "/detokenize", json{{"tokens", {72, 105, 33}}}.dump()).body["content"], "Hi!");
  auto models = s.client().Get("/v1/models");
  ASSERT_TRUE(models && models->status == 200);
  EXPECT_EQ(json::parse(models->body)["data"][0]["object"], "model");
  auto health = s.client().Get("/health");
  ASSERT_TRUE(health && health->status == 200);
}

TEST(Server, ConcurrentRequestsEqualTheSameRequestsAlone) {
  Server s({"--parallel", "4", "--cache-mib", "0"}, random_checkpoint());
  std::vector<json> reqs;
  for (int i = 0; i < 6; ++i)
    reqs.push_back({{"prompt", real_text(2000).substr(size_t(100 * i), size_t(20 + 37 * i))},
                    {"max_tokens", 30 + 5 * i},
                    {"temperature", 1.0},
                    {"seed", i},
                    {"return_tokens", true}});
  std::vector<std::string> alone;
  for (const json& r : reqs) alone.push_back(tokens_of(complete(s, r)));
  const double rows0 = metric(s, "wersa_decode_rows_total"), steps0 = metric(s, "wersa_decode_steps_total");
  std::vector<std::future<std::string>> together;
  for (const json& r : reqs)
    together.push_back(std::async(std::launch::async, [&s, r] { return tokens_of(complete(s, r)); }));
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(together[i].get(), alone[i]) << "request " << i;
  // They did run together: more rows than steps.
  EXPECT_GT(metric(s, "wersa_decode_rows_total") - rows0,
            1.5 * (metric(s, "wersa_decode_steps_total") - steps0));
}

TEST(Server, PromptExtendingAKeptSessionEqualsAColdRun) {
  Server warm({"--parallel", "2"}, random_checkpoint());
  Server cold({"--parallel", "2", "--cache-mib", "0"}, random_checkpoint());
  // Token-id prompts: the random model's bytes are not UTF-8 text, so the ids come back as ids.
  std::vector<int32_t> p1;
  for (unsigned char c : real_text(3000).substr(1000, 300)) p1.push_back(c);
  const json r1 = {
      {"prompt", p1}, {"max_tokens", 20}, {"temperature", 1.0}, {"seed", 3}, {"return_tokens", true}};
  const Reply a = complete(warm, r1);
  ASSERT_EQ(a.status, 200) << a.raw;
  ASSERT_EQ(a.body["choices"][0]["tokens"].size(), 20u) << a.raw;
  std::vector<int32_t> p2 = p1;
  for (const json& t : a.body["choices"][0]["tokens"]) p2.push_back(t.get<int32_t>());
  for (unsigned char c : std::string(" And then")) p2.push_back(c);
  const json r2 = {
      {"prompt", p2}, {"max_tokens", 40}, {"temperature", 1.0}, {"seed", 4}, {"return_tokens", true}};
  const Reply resumed = complete(warm, r2);
  // The kept state held the first prompt and the 20 tokens generated (all fed).
  EXPECT_EQ(resumed.body["usage"]["prompt_tokens_details"]["cached_tokens"], 300 + 20) << resumed.raw;
  EXPECT_EQ(metric(warm, "wersa_prompt_tokens_cached_total"), 320);
  EXPECT_EQ(metric(warm, "wersa_sessions_cached"), 2);
  EXPECT_GT(metric(warm, "wersa_session_cache_bytes"), 0);
  const Reply fresh = complete(cold, r2);
  EXPECT_EQ(fresh.body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(resumed.body["choices"][0]["tokens"], fresh.body["choices"][0]["tokens"]);
  EXPECT_EQ(resumed.body["choices"][0]["text"], fresh.body["choices"][0]["text"]);
  EXPECT_EQ(metric(cold, "wersa_sessions_cached"), 0);
}

// --sessions-dir: the kept sessions are written at shutdown and read at the next start; a request
// that extends a restored session resumes from it and returns what the server that never stopped
// returned: the same tokens, the same log-probabilities to the bit. A file that is not a state
// file is skipped with a warning.
TEST(Server, SessionsSavedAtShutdownContinueAsNeverSaved) {
  const TempDir d("server-sessions");
  const std::string dir = d / "sessions";
  const std::vector<std::string> args = {"--parallel", "2", "--sessions-dir", dir};
  std::vector<int32_t> p1;
  for (unsigned char c : real_text(3000).substr(500, 300)) p1.push_back(c);
  const json r1 = {
      {"prompt", p1}, {"max_tokens", 20}, {"temperature", 1.0}, {"seed", 3}, {"return_tokens", true}};
  Server a(args, random_checkpoint());
  const Reply a1 = complete(a, r1);
  ASSERT_EQ(a1.status, 200) << a1.raw;
  std::vector<int32_t> p2 = p1;
  for (const json& t : a1.body["choices"][0]["tokens"]) p2.push_back(t.get<int32_t>());
  for (unsigned char c : std::string(" And then")) p2.push_back(c);
  const json r2 = {{"prompt", p2}, {"max_tokens", 30}, {"temperature", 1.0},
                   {"seed", 4},    {"logprobs", 2},    {"return_tokens", true}};
  const Reply never_saved = complete(a, r2);
  ASSERT_EQ(never_saved.status, 200) << never_saved.raw;
  EXPECT_EQ(never_saved.body["usage"]["prompt_tokens_details"]["cached_tokens"], 320);
  // A prompt that is exactly a kept session: its first token comes from the kept logits.
  json r3 = r2;
  r3["prompt"] = std::vector<int32_t>(p2.begin(), p2.begin() + 320);
  const Reply never_saved3 = complete(a, r3);
  EXPECT_EQ(never_saved3.body["usage"]["prompt_tokens_details"]["cached_tokens"], 320);
  const ToolRun stopped = a.terminate();
  EXPECT_EQ(stopped.status, 0) << stopped.err;
  EXPECT_NE(stopped.err.find("3 sessions saved"), std::string::npos) << stopped.err;
  std::ofstream(dir + "/session-damaged.state") << "not a state file";

  Server b(args, random_checkpoint());
  EXPECT_NE(read_file(b.dir / "err").find("3 sessions restored"), std::string::npos)
      << read_file(b.dir / "err");
  EXPECT_NE(read_file(b.dir / "err").find("session-damaged.state"), std::string::npos);
  EXPECT_EQ(metric(b, "wersa_sessions_cached"), 3);
  const Reply restored = complete(b, r2);
  ASSERT_EQ(restored.status, 200) << restored.raw;
  EXPECT_EQ(restored.body["usage"]["prompt_tokens_details"]["cached_tokens"], 320);
  EXPECT_EQ(restored.body["choices"][0]["tokens"], never_saved.body["choices"][0]["tokens"]);
  EXPECT_EQ(restored.body["choices"][0]["logprobs"]["token_logprobs"],
            never_saved.body["choices"][0]["logprobs"]["token_logprobs"]);
  const Reply restored3 = complete(b, r3);
  EXPECT_EQ(restored3.body["usage"]["prompt_tokens_details"]["cached_tokens"], 320);
  EXPECT_EQ(restored3.body["choices"][0]["tokens"], never_saved3.body["choices"][0]["tokens"]);
  EXPECT_EQ(restored3.body["choices"][0]["logprobs"]["token_logprobs"],
            never_saved3.body["choices"][0]["logprobs"]["token_logprobs"]);
  // Another model's server skips them all, still serves, and leaves them alone.
  Server other(args, random_checkpoint("softmax"));
  EXPECT_NE(read_file(other.dir / "err").find("0 sessions restored"), std::string::npos);
  EXPECT_EQ(complete(other, {{"prompt", {1, 2, 3}}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(other.terminate().status, 0);
  auto files = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path().extension() == ".state";
    return n;
  };
  EXPECT_EQ(files(), 5);  // 3 of the first model, 1 of the softmax model, the damaged one
  // A server that keeps no sessions (--cache-mib 0) restores none and removes none.
  Server none({"--sessions-dir", dir, "--cache-mib", "0"}, random_checkpoint());
  EXPECT_NE(read_file(none.dir / "err").find("0 sessions restored"), std::string::npos);
  EXPECT_EQ(none.terminate().status, 0);
  EXPECT_EQ(files(), 5);
}

TEST(Server, StreamingSendsTheSameTextAsEvents) {
  Server s({}, checkpoint());
  const json req = {{"prompt", "The house"}, {"max_tokens", 32}, {"temperature", 0.8}, {"seed", 11}};
  const std::string whole = text_of(complete(s, req));
  json sreq = req;
  sreq["stream"] = true;
  const std::vector<std::string> events = stream(s, sreq);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json e = json::parse(events[i]);
    text += e["choices"][0]["text"].get<std::string>();
    if (i + 2 < events.size()) EXPECT_TRUE(e["choices"][0]["finish_reason"].is_null()) << events[i];
  }
  EXPECT_EQ(text, whole);
  const json last = json::parse(events[events.size() - 2]);
  EXPECT_EQ(last["usage"]["completion_tokens"], 32);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  // A stop string: the text ends before it, in both forms.
  const std::string cut = whole.substr(0, 10);
  json stop = req;
  stop["stop"] = whole.substr(10, 3);
  const std::string stopped = text_of(complete(s, stop));
  EXPECT_EQ(stopped, whole.substr(0, whole.find(whole.substr(10, 3))));
  stop["stream"] = true;
  const auto sev = stream(s, stop);
  std::string stext;
  for (size_t i = 0; i + 1 < sev.size(); ++i)
    stext += json::parse(sev[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(stext, stopped);
  EXPECT_EQ(json::parse(sev[sev.size() - 2])["choices"][0]["finish_reason"], "stop");
}

// logprobs: each generated token's log-probability and the top k are the log-softmax of the
// logits that the model API gives for the same tokens (computed here in double), whole and
// streamed; the tokens' texts make up the text, at their text_offset.
namespace {

// The checkpoint's own model and tokenizer, to recompute what the server reports.
struct Reference {
  std::unique_ptr<Model> model;
  std::unique_ptr<data::Tokenizer> tok;
  Reference() {
    const std::string dir = io::find_latest_checkpoint(checkpoint());
    const Config cfg = io::load_checkpoint_config(dir);
    model = io::load_inference_model(dir, cfg, "f32", "cpu");
    tok = data::load_tokenizer(io::checkpoint_tokenizer(dir));
  }
  // A text prompt's ids as the server feeds them: EOS (the document start), then the text's.
  std::vector<int32_t> prompt_ids(const std::string& text) const {
    std::vector<int32_t> ids = {tok->eos_id()};
    for (int32_t t : tok->encode(text)) ids.push_back(t);
    return ids;
  }
};

// The log-softmax of a state's logits, in double.
std::vector<double> log_softmax(const DecodeState& st) {
  const float* x = st.logits().host<float>();
  const int64_t V = st.logits().numel();
  double mx = -1e300, sum = 0;
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(x[v]));
  for (int64_t v = 0; v < V; ++v) sum += std::exp(double(x[v]) - mx);
  std::vector<double> out(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) out[size_t(v)] = double(x[v]) - mx - std::log(sum);
  return out;
}

}  // namespace

TEST(Server, LogprobsAreTheLogSoftmaxOfTheModelsLogits) {
  Server s({}, checkpoint());
  const std::string prompt = "It was a dark and stormy night";
  const json req = {{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0.9},
                    {"seed", 5},        {"logprobs", 3},    {"return_tokens", true}};
  const Reply r = complete(s, req);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& choice = r.body["choices"][0];
  const json& lp = choice["logprobs"];
  const Reference ref;
  const auto& model = ref.model;
  const auto& tok = ref.tok;
  DecodeState st(*model, {0, 128});
  prefill(*model, st, ref.prompt_ids(prompt));
  const json& gen = choice["tokens"];
  ASSERT_EQ(gen.size(), 24u);
  ASSERT_EQ(lp["tokens"].size(), 24u) << lp.dump();  // no EOS, no stop: one entry per token
  std::string text;
  for (size_t i = 0; i < gen.size(); ++i) {
    const int32_t t = gen[i].get<int32_t>();
    const float* x = st.logits().host<float>();
    const int64_t V = st.logits().numel();
    const std::vector<double> ls = log_softmax(st);
    auto logp = [&](int64_t v) { return ls[size_t(v)]; };
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), logp(t), 1e-4) << "token " << i;
    EXPECT_EQ(lp["tokens"][i], as_sent(tok->piece_bytes(t)));
    EXPECT_EQ(lp["text_offset"][i], text.size());
    text += tok->piece_bytes(t);
    std::vector<int64_t> order(size_t(V), 0);
    for (int64_t v = 0; v < V; ++v) order[size_t(v)] = v;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return x[a] > x[b]; });
    // The 3 likeliest by their text as sent (tokens of one text, U+FFFD: the likeliest of them).
    json want = json::object();
    for (int k = 0; k < 3; ++k) {
      const std::string key = as_sent(tok->piece_bytes(int32_t(order[size_t(k)])));
      if (!want.contains(key)) want[key] = logp(order[size_t(k)]);
    }
    const json& top = lp["top_logprobs"][i];
    ASSERT_EQ(top.size(), want.size()) << top.dump() << " vs " << want.dump();
    for (const auto& [key, v] : want.items()) {
      ASSERT_TRUE(top.contains(key)) << "token " << i << ": " << top.dump() << " lacks '" << key << "'";
      EXPECT_NEAR(top[key].get<double>(), v.get<double>(), 1e-4);
    }
    decode_step(*model, st, t);
  }
  EXPECT_EQ(choice["text"], as_sent(text));
  // Streamed: the same entries, spread over the chunks.
  json sreq = req;
  sreq["stream"] = true;
  json all = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()}};
  for (const std::string& e : stream(s, sreq)) {
    if (e == "[DONE]") break;
    const json c = json::parse(e)["choices"][0]["logprobs"];
    if (c.is_null()) continue;
    for (const char* k : {"tokens", "token_logprobs", "top_logprobs"})
      for (const json& v : c[k]) all[k].push_back(v);
  }
  for (const char* k : {"tokens", "token_logprobs", "top_logprobs"}) EXPECT_EQ(all[k], lp[k]) << k;
  // logprobs 0: the tokens' own, no alternatives; without logprobs: null.
  json zero = req;
  zero["logprobs"] = 0;
  const Reply z = complete(s, zero);
  EXPECT_EQ(z.body["choices"][0]["logprobs"]["token_logprobs"], lp["token_logprobs"]);
  EXPECT_EQ(z.body["choices"][0]["logprobs"]["top_logprobs"][0], json::object());
  EXPECT_TRUE(complete(s, {{"prompt", "x"}, {"max_tokens", 2}}).body["choices"][0]["logprobs"].is_null());
}

// echo with logprobs scores the prompt: each prompt token's entry is the log-softmax of the
// logits after the tokens before it (taken here one decode step at a time, while the server
// prefills in chunks of 8: the entries cross chunk boundaries), the generated tokens' entries
// follow at offsets after the echoed prompt, and the request never resumes a kept session.
TEST(Server, EchoWithLogprobsScoresThePrompt) {
  Server s({"--batch-size", "8"}, checkpoint());
  const std::string prompt = "It was a dark and stormy night";
  const json req = {
      {"prompt", prompt}, {"max_tokens", 4}, {"temperature", 0}, {"echo", true}, {"logprobs", 2}};
  const Reply r = complete(s, req);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& choice = r.body["choices"][0];
  const json& lp = choice["logprobs"];
  const Reference ref;
  const auto& model = ref.model;
  const auto& tok = ref.tok;
  const std::vector<int32_t> ids = ref.prompt_ids(prompt);
  const size_t np = ids.size() - 1;  // scored prompt tokens (not the leading EOS)
  ASSERT_EQ(lp["tokens"].size(), np + 4) << lp.dump();
  DecodeState st(*model, {0, 128});
  std::string text;
  for (size_t i = 0; i < np; ++i) {
    decode_step(*model, st, ids[i]);
    const int32_t t = ids[i + 1];
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), log_softmax(st)[size_t(t)], 1e-4) << "token " << i;
    EXPECT_EQ(lp["tokens"][i], as_sent(tok->piece_bytes(t)));
    EXPECT_EQ(lp["text_offset"][i], text.size());
    EXPECT_EQ(lp["top_logprobs"][i].size(), 2u);
    text += tok->piece_bytes(t);
  }
  EXPECT_EQ(text, prompt);
  const std::string out = choice["text"].get<std::string>();
  ASSERT_EQ(out.rfind(prompt, 0), 0u) << out;
  for (size_t i = np; i < np + 4; ++i) EXPECT_GE(lp["text_offset"][i].get<size_t>(), prompt.size());
  // The same again: scored from scratch (the session kept by the first is not used), the same entries.
  const Reply again = complete(s, req);
  EXPECT_EQ(again.body["usage"]["prompt_tokens_details"]["cached_tokens"], 0) << again.raw;
  EXPECT_EQ(again.body["choices"][0]["logprobs"], lp);
  // Streamed, the prompt's scores are refused (400 naming echo).
  json streamed = req;
  streamed["stream"] = true;
  expect_error(complete(s, streamed), 400, "echo");
}

TEST(Server, EveryErrorIsAnOpenAiErrorObject) {
  Server s({"--max-body", "4096", "--max-tokens", "64", "--max-prompt", "100"}, checkpoint());
  expect_error(complete(s, {{"prompt", "x"}, {"max_tokens", 65}}), 400, "max_tokens");
  expect_error(complete(s, {{"prompt", "x"}, {"temperature", "hot"}}), 400, "temperature");
  expect_error(complete(s, {{"prompt", "x"}, {"top_p", 0}}), 400, "top_p");
  expect_error(complete(s, {{"max_tokens", 3}}), 400, "prompt");
  expect_error(complete(s, {{"prompt", {1, 2, 999}}}), 400, "prompt");
  expect_error(complete(s, {{"prompt", std::string(200, 'a')}}), 400, "prompt");
  expect_error(complete(s, {{"prompt", "x"}, {"stop", {"a", ""}}}), 400, "stop");
  expect_error(complete(s, {{"prompt", "x"}, {"logprobs", 21}}), 400, "logprobs");
  expect_error(complete(s, {{"prompt", "x"}, {"logprobs", 2}, {"echo", true}, {"stream", true}}), 400,
               "echo");
  expect_error(post(s, "/v1/completions", "{\"prompt\": "), 400);
  expect_error(post(s, "/v1/completions", "[1, 2]"), 400);
  expect_error(post(s, "/tokenize", "{}"), 400, "content");
  expect_error(post(s, "/detokenize", "{\"tokens\": [-1]}"), 400, "tokens");
  expect_error(post(s, "/v1/nothing", "{}"), 404);
  auto get404 = s.client().Get("/nothing");
  ASSERT_TRUE(get404);
  expect_error(Reply{get404->status, json::parse(get404->body), get404->body}, 404);
  expect_error(post(s, "/v1/completions", json{{"prompt", std::string(10000, 'a')}}.dump()), 413);
  // The server still answers.
  EXPECT_EQ(complete(s, {{"prompt", "x"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(metric(s, "wersa_http_responses_total{status=\"400\"}"), 13);
  EXPECT_EQ(metric(s, "wersa_http_responses_total{status=\"413\"}"), 1);

  Server keyed({"--api-key", "sekret"}, checkpoint());
  expect_error(complete(keyed, {{"prompt", "x"}, {"max_tokens", 2}}), 401);
  expect_error(post(keyed, "/v1/completions", json{{"prompt", "x"}}.dump(), "wrong"), 401);
  EXPECT_EQ(post(keyed, "/v1/completions", json{{"prompt", "x"}, {"max_tokens", 2}}.dump(), "sekret").status,
            200);
  auto health = keyed.client().Get("/health");  // no key needed
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// One slot, a queue of one: a long stream holds the slot, a second request waits, a third is
// refused with 503 at once.
TEST(Server, AFullQueueIs503) {
  Server s({"--parallel", "1", "--queue", "1", "--max-tokens", "1000000"}, checkpoint());
  std::thread holder([&] {
    auto c = s.client();
    httplib::Headers h;
    c.Post("/v1/completions", h,
           json{{"prompt", "a"}, {"max_tokens", 1000000}, {"temperature", 0}, {"stream", true}}.dump(),
           "application/json");
  });
  auto wait_for = [&](const std::string& name, double v) {
    for (int i = 0; i < 500 && metric(s, name) != v; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return metric(s, name) == v;
  };
  ASSERT_TRUE(wait_for("wersa_running", 1));
  std::thread queued([&] {  // no answer: the server is killed below
    s.client().Post("/v1/completions", json{{"prompt", "b"}, {"max_tokens", 2}}.dump(), "application/json");
  });
  ASSERT_TRUE(wait_for("wersa_queue_length", 1));
  expect_error(complete(s, {{"prompt", "c"}, {"max_tokens", 2}}), 503);
  ::kill(s.pid, SIGKILL);  // ends the holder's stream (and the queued request) without waiting for it
  holder.join();
  queued.join();
}

// After a client went away from a request of a million tokens on the only slot: the next request
// is served at once (the slot was freed, the long request cancelled well before its end).
namespace {
void expect_slot_freed(Server& s) {
  const auto t0 = std::chrono::steady_clock::now();
  const Reply next = complete(s, {{"prompt", "b"}, {"max_tokens", 4}, {"temperature", 0}});
  EXPECT_EQ(next.status, 200);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
  EXPECT_LT(metric(s, "wersa_completion_tokens_total"), 500000);
  EXPECT_EQ(metric(s, "wersa_running"), 0);
}
}  // namespace

// A client that goes away mid-stream frees its slot at once: with one slot, the next request is
// served although the first asked for a million tokens.
TEST(Server, AClientThatDisconnectsFreesItsSlot) {
  Server s({"--parallel", "1", "--max-tokens", "1000000"}, checkpoint());
  const int fd =
      send_raw(s.port, json{{"prompt", "a"}, {"max_tokens", 1000000}, {"temperature", 0}, {"stream", true}});
  ASSERT_GE(fd, 0);
  char buf[4096];
  std::string got;
  while (got.find("data: ") == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ASSERT_GT(n, 0);
    got.append(buf, size_t(n));
  }
  ::close(fd);
  expect_slot_freed(s);
}

// The same for a request that is not streamed: nothing is written to the client until the end,
// so the server watches the connection while it waits, and cancels the request when it closes.
TEST(Server, AClientThatDisconnectsFromAWholeRequestFreesItsSlot) {
  Server s({"--parallel", "1", "--max-tokens", "1000000"}, checkpoint());
  const int fd = send_raw(s.port, json{{"prompt", "a"}, {"max_tokens", 1000000}, {"temperature", 0}});
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 500 && metric(s, "wersa_completion_tokens_total") < 20; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(metric(s, "wersa_running"), 1);
  ::close(fd);
  expect_slot_freed(s);
}

// A softmax model serves through the same slots, batch and cache with its KV cache: concurrent
// requests equal the same requests alone, a prompt that leaves no room in its context (64 tokens)
// is a 400, and a generation that fills the context ends with "length".
TEST(Server, SoftmaxModelsServeWithinTheirContext) {
  Server s({"--parallel", "3", "--max-tokens", "1000"}, random_checkpoint("softmax"));
  std::vector<json> reqs;
  for (int i = 0; i < 3; ++i)
    reqs.push_back({{"prompt", real_text(500).substr(size_t(50 * i), size_t(5 + 9 * i))},
                    {"max_tokens", 12 + 3 * i},
                    {"temperature", 1.0},
                    {"seed", 20 + i},
                    {"return_tokens", true}});
  std::vector<std::string> alone;
  for (const json& r : reqs) alone.push_back(tokens_of(complete(s, r)));
  std::vector<std::future<std::string>> together;
  for (const json& r : reqs)
    together.push_back(std::async(std::launch::async, [&s, r] { return tokens_of(complete(s, r)); }));
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(together[i].get(), alone[i]) << "request " << i;
  const Reply full = complete(s, {{"prompt", std::vector<int>(64, 65)}, {"max_tokens", 5}});
  expect_error(full, 400, "prompt");
  EXPECT_EQ(full.body["error"]["code"], "context_length_exceeded");
  const Reply fills =
      complete(s, {{"prompt", std::vector<int>(60, 65)}, {"max_tokens", 1000}, {"temperature", 0}});
  ASSERT_EQ(fills.status, 200) << fills.raw;
  EXPECT_EQ(fills.body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(fills.body["usage"]["completion_tokens"], 4);  // 60 + 4 = the context
}

// --timeout ends a request that runs too long, with what it generated so far.
TEST(Server, ARequestEndsAtItsTimeout) {
  Server s({"--timeout", "1", "--max-tokens", "100000000"}, checkpoint());
  const auto t0 = std::chrono::steady_clock::now();
  const Reply r = complete(s, {{"prompt", "a"}, {"max_tokens", 100000000}, {"temperature", 0}});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "timeout");
  EXPECT_GT(r.body["usage"]["completion_tokens"], 0);
  EXPECT_LT(r.body["usage"]["completion_tokens"], 100000000);
}

TEST(Server, SigtermFinishesTheRunningRequestAndExitsZero) {
  Server s({}, checkpoint());
  auto running = std::async(std::launch::async, [&] {
    return stream(s, {{"prompt", "It was"}, {"max_tokens", 300}, {"temperature", 0}, {"stream", true}});
  });
  for (int i = 0; i < 500 && metric(s, "wersa_running") != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const ToolRun r = s.terminate();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("SIGTERM"), std::string::npos) << r.err;
  const std::vector<std::string> events = running.get();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  // Afterwards nothing listens.
  httplib::Client c("127.0.0.1", s.port);
  EXPECT_FALSE(c.Get("/health"));
}

TEST(Server, BadCommandLinesAreOneLineErrors) {
  expect_one_line_error(run_tool("wersa-server"), "--model", 2);
  expect_one_line_error(run_tool("wersa-server -m " + checkpoint() + " --port 70000"), "--port", 2);
  expect_one_line_error(run_tool("wersa-server -m " + checkpoint() + " --parallel 0"), "--parallel", 2);
  expect_one_line_error(run_tool("wersa-server -m /nonexistent"), "/nonexistent", 2);
  expect_one_line_error(run_tool("wersa-server -m " + checkpoint() + " --host 203.0.113.7 --port 1"),
                        "cannot listen");
  const ToolRun help = run_tool("wersa-server --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--cache-mib"), std::string::npos);
}

// The session cache itself: a restored state is the kept one bit for bit (a KV cache: its used
// rows), continues like a cold prefill within fp32 rounding, the longest kept prefix wins, and
// least recently used sessions go first when the bytes run out. WERSA's kept bytes do not grow
// with the length (only its token list does); softmax's grow with its KV cache.
TEST(SessionCache, RestoresTheKeptStateAndEvictsTheLeastRecentlyUsed) {
  for (const char* type : {"wersa", "softmax"}) {
    Model m(random_config(type), DType::F32, Device::CPU, false);
    m.init(9);
    const DecodeOptions opt{256, 32};
    std::vector<int32_t> toks;
    for (int i = 0; i < 200; ++i) toks.push_back(int32_t(rng_bits(4, 1, uint64_t(i)) % 259));
    auto head = [&](size_t n) { return std::vector<int32_t>(toks.begin(), toks.begin() + long(n)); };
    DecodeState a(m, opt), b(m, opt), cold(m, opt);
    server::SessionCache cache(size_t(1) << 30);
    prefill(m, a, head(30));
    cache.put(a);
    const size_t bytes30 = cache.bytes();
    prefill(m, a, std::vector<int32_t>(toks.begin() + 30, toks.begin() + 120));
    cache.put(a);
    const size_t bytes120 = cache.bytes() - bytes30;
    if (std::string(type) == "wersa")
      EXPECT_EQ(bytes120 - bytes30, 90 * sizeof(int32_t)) << "a WERSA session grows only by its token ids";
    else
      EXPECT_GT(bytes120 - bytes30, 90 * 2 * size_t(m.config().dim) / 2)
          << "a softmax session keeps its KV rows";
    EXPECT_EQ(cache.restore(toks, b), 120);  // the longest kept prefix
    EXPECT_EQ(b.tokens(), head(120));
    for (size_t i = 0; i < a.state_tensors().size(); ++i) {
      Tensor x = a.state_tensors()[i], y = b.state_tensors()[i];
      if (a.per_position(i)) x = x.rows(0, 120), y = y.rows(0, 120);
      EXPECT_EQ(std::memcmp(x.data, y.data, x.bytes()), 0) << type << " " << x.name;
    }
    EXPECT_EQ(std::memcmp(a.logits().data, b.logits().data, a.logits().bytes()), 0);
    prefill(m, b, std::vector<int32_t>(toks.begin() + 120, toks.end()));
    prefill(m, cold, toks);
    double err = 0, scale = 1e-30;
    for (int64_t v = 0; v < 259; ++v) {
      err = std::max(err,
                     std::fabs(double(b.logits().host<float>()[v]) - double(cold.logits().host<float>()[v])));
      scale = std::max(scale, std::fabs(double(cold.logits().host<float>()[v])));
    }
    EXPECT_LT(err / scale, 1e-5) << type;
    std::vector<int32_t> other = head(50);
    other[10] = (other[10] + 1) % 259;
    EXPECT_EQ(cache.restore(other, b), 0);  // no kept sequence is a prefix of it
    EXPECT_EQ(b.pos(), 0);
    // Room for two sessions of 120 tokens: a third evicts the least recently used (the 30-token one
    // was used least recently: the 120-token one was just restored).
    server::SessionCache small(2 * bytes120 + bytes120 / 2);
    DecodeState c(m, opt);
    prefill(m, c, head(120));
    small.put(c);
    std::vector<int32_t> t2 = other;
    t2.resize(120, 7);
    DecodeState d(m, opt);
    prefill(m, d, t2);
    small.put(d);
    EXPECT_EQ(small.restore(toks, b), 120);  // c is now the most recently used
    std::vector<int32_t> t3 = t2;
    t3[0] = (t3[0] + 1) % 259;
    DecodeState e(m, opt);
    prefill(m, e, t3);
    small.put(e);
    EXPECT_EQ(small.evictions(), 1);
    EXPECT_EQ(small.sessions(), 2u);
    EXPECT_LE(small.bytes(), small.max_bytes());
    EXPECT_EQ(small.restore(t2, b), 0) << "the least recently used session was evicted";
    EXPECT_EQ(small.restore(toks, b), 120);
  }
}

// Stop strings over a growing text: the cut at the earliest stop string, even one that began in
// an earlier piece; a tail that may still become a stop string, or half a UTF-8 character, is
// held back from a stream.
TEST(ServerApi, StopStringsAndWhatAStreamMaySend) {
  using server::scan_stops;
  const std::vector<std::string> stops = {"END", "\n\n"};
  EXPECT_EQ(scan_stops("hello", 0, stops).cut, std::string::npos);
  EXPECT_EQ(scan_stops("hello", 0, stops).stable, 5u);
  EXPECT_EQ(scan_stops("hello E", 6, stops).stable, 6u);    // "E" may begin END
  EXPECT_EQ(scan_stops("hello EN", 7, stops).stable, 6u);   // "EN" too
  EXPECT_EQ(scan_stops("hello ENX", 8, stops).stable, 9u);  // not any more
  const auto s = scan_stops("hello END more", 7, stops);    // END began before the new piece
  EXPECT_EQ(s.cut, 6u);
  EXPECT_EQ(s.stable, 6u);
  EXPECT_EQ(scan_stops("a\n\nb END", 1, stops).cut, 1u);  // the earliest wins
  EXPECT_EQ(scan_stops("x\n", 1, stops).stable, 1u);
  EXPECT_EQ(scan_stops("caf\xc3", 3, {}).stable, 3u);  // half of "é"
  EXPECT_EQ(scan_stops("caf\xc3\xa9", 4, {}).stable, 5u);
  EXPECT_EQ(scan_stops("\xe2\x82", 0, {}).stable, 0u);  // two of the three bytes of "€"
}
