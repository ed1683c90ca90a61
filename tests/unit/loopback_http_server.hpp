// An HTTP/1.1 server on 127.0.0.1 for tests of HTTP clients: the kernel picks the port, one thread accepts, one
// thread per connection reads the request line, headers and Content-Length body, records the request, asks a
// scripted handler for the reply (status, headers, body, an optional delay) and closes the connection.
#pragma once

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace loopback {

using Clock = std::chrono::steady_clock;

struct Request {
    std::string method, target;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
    Clock::time_point arrived;
    nlohmann::json json() const { return nlohmann::json::parse(body); }
};

struct Reply {
    int status = 200;
    std::string body;
    std::vector<std::string> headers;  // "Name: value"
    double delay_s = 0;
};

/// The server. Proxy variables are cleared so that libcurl talks to it directly.
class LoopbackServer {
public:
    using Handler = std::function<Reply(Request const&, std::size_t index)>;

    explicit LoopbackServer(Handler handler) : handler_(std::move(handler)) {
        for (char const* v : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) ::unsetenv(v);
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listen_fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listen_fd_, 16) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~LoopbackServer() {
        stop_ = true;
        acceptor_.join();
        for (auto& t : connections_) t.join();
        ::close(listen_fd_);
    }

    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
    std::vector<Request> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return requests_.size();
    }
    void set_handler(Handler h) {
        std::lock_guard lock(mutex_);
        handler_ = std::move(h);
    }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            int const fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            connections_.emplace_back([this, fd] { serve(fd); });
        }
    }

    void serve(int fd) {
        std::string data;
        char buf[4096];
        std::size_t header_end = std::string::npos;
        auto read_more = [&] {
            pollfd p{fd, POLLIN, 0};
            while (!stop_) {
                if (::poll(&p, 1, 20) <= 0) continue;
                ssize_t const n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) return false;
                data.append(buf, std::size_t(n));
                return true;
            }
            return false;
        };
        while ((header_end = data.find("\r\n\r\n")) == std::string::npos)
            if (!read_more()) return close_quietly(fd);
        Request req;
        req.arrived = Clock::now();
        std::size_t line_end = data.find("\r\n");
        std::string const request_line = data.substr(0, line_end);
        auto const sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
        req.method = request_line.substr(0, sp1);
        req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
        for (std::size_t pos = line_end + 2; pos < header_end;) {
            std::size_t const end = data.find("\r\n", pos);
            std::string const line = data.substr(pos, end - pos);
            pos = end + 2;
            auto const colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
            req.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        std::size_t const length = req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
        while (data.size() < header_end + 4 + length)
            if (!read_more()) return close_quietly(fd);
        req.body = data.substr(header_end + 4, length);

        Handler handler;
        std::size_t index = 0;
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(req);
            handler = handler_;
            index = requests_.size() - 1;
        }
        Reply const reply = handler(req, index);
        for (auto const until = Clock::now() + std::chrono::duration<double>(reply.delay_s);
             !stop_ && Clock::now() < until;)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " Scripted\r\n";
        out += "Content-Type: application/json\r\nConnection: close\r\n";
        out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
        for (auto const& h : reply.headers) out += h + "\r\n";
        out += "\r\n" + reply.body;
        ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        close_quietly(fd);
    }
    static void close_quietly(int fd) {
        ::shutdown(fd, SHUT_RDWR);
        ::close(fd);
    }

    Handler handler_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread acceptor_;
    std::vector<std::thread> connections_;
    mutable std::mutex mutex_;
    std::vector<Request> requests_;
};

}  // namespace loopback
