// A wersa-server started on loopback (--port 0) for a test, and JSON requests to it over real
// HTTP (httplib::Client): test_server's end-to-end tests and the CUDA tools' test.
#pragma once
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "testutil.h"

namespace wersa::test {

// A running wersa-server; killed at the end unless the test stopped it.
struct Server {
  TempDir dir{"server"};
  pid_t pid = -1;
  int port = 0;
  Server(std::vector<std::string> args, const std::string& model) {
    args.insert(args.begin(), {"-m", model, "--port", "0", "-t", "1"});
    pid = start_tool("wersa-server", args, dir / "out", dir / "err");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < until) {
      const std::string out = read_file(dir / "out");
      const size_t at = out.find("listening on http://127.0.0.1:");
      if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
        port = std::stoi(out.substr(at + 30));
        break;
      }
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GT(port, 0) << "the server did not start: " << read_file(dir / "err");
  }
  ~Server() {
    if (::testing::Test::HasFailure())
      std::fprintf(stderr, "server's stderr:\n%s\n", read_file(dir / "err").c_str());
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  httplib::Client client(const std::string& key = "") const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    if (!key.empty()) c.set_bearer_token_auth(key);
    return c;
  }
  // SIGTERM, then its end.
  ToolRun terminate() {
    ::kill(pid, SIGTERM);
    const ToolRun r = wait_tool(pid, dir / "out", dir / "err");
    pid = -1;
    return r;
  }
};

struct Reply {
  int status = 0;
  nlohmann::json body;
  std::string raw;
};

inline Reply post(const Server& s, const std::string& path, const std::string& body,
                  const std::string& key = "") {
  auto res = s.client(key).Post(path.c_str(), body, "application/json");
  Reply r;
  if (!res) {
    ADD_FAILURE() << "POST " << path << ": no response (" << httplib::to_string(res.error()) << ")";
    return r;
  }
  r.status = res->status;
  r.raw = res->body;
  if (res->get_header_value("Content-Type") == "application/json") r.body = nlohmann::json::parse(res->body);
  return r;
}

inline Reply complete(const Server& s, const nlohmann::json& req) {
  return post(s, "/v1/completions", req.dump());
}

}  // namespace wersa::test
