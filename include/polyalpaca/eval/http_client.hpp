/// @file eval/http_client.hpp
/// @brief A small libcurl wrapper: one reusable easy handle that POSTs JSON and returns status, headers and body.
///
/// Transport failures (refused connection, timeout, DNS) come back as an HttpResponse with `transport_error` set
/// rather than an exception, so a caller can decide to retry. Messages name the URL, never the request headers
/// (which may carry an API key). A reply body longer than http_max_body_bytes (after decompression) is not read
/// on: the request ends with a transport error that is not retryable.
#pragma once

#include <cctype>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <curl/curl.h>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::eval {

/// The longest reply body read: 16 MiB, far above any chat completion.
inline constexpr std::size_t http_max_body_bytes = std::size_t(16) << 20;

struct HttpResponse {
    long status = 0;                            // 0 when the request never got a response
    std::map<std::string, std::string> headers; // of the final response, names lower-cased
    std::string body;
    std::string transport_error;                // empty when a response arrived
    bool timed_out = false;
    bool retryable_transport = false;           // a network failure worth retrying (not a malformed URL)
    bool body_too_large = false;                // reading stopped at http_max_body_bytes

    bool ok() const { return transport_error.empty() && status >= 200 && status < 300; }
    std::string header(std::string const& lower_name) const {
        auto const it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct HttpTimeouts {
    double connect_s = 10;  // to open the connection
    double total_s = 120;   // the whole request, response included
};

class HttpClient {
public:
    HttpClient() {
        global();
        easy_ = curl_easy_init();
        require(easy_ != nullptr, "libcurl: curl_easy_init failed");
    }
    HttpClient(HttpClient const&) = delete;
    HttpClient& operator=(HttpClient const&) = delete;
    ~HttpClient() { curl_easy_cleanup(easy_); }

    /// POSTs `body` (JSON) to `url` with the extra `headers` ("Name: value"). Keeps the connection for the next call.
    HttpResponse post_json(std::string const& url, std::string const& body, std::vector<std::string> const& headers,
                           HttpTimeouts const& timeouts) {
        curl_easy_reset(easy_);
        std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list(nullptr, &curl_slist_free_all);
        auto append = [&](std::string const& h) {
            curl_slist* next = curl_slist_append(list.get(), h.c_str());
            require(next != nullptr, "libcurl: cannot build the request headers for ", url);
            list.release();
            list.reset(next);
        };
        append("Content-Type: application/json");
        append("Accept: application/json");
        append("Expect:");  // no "100-continue" round trip
        for (auto const& h : headers) append(h);

        HttpResponse response;
        char error_buffer[CURL_ERROR_SIZE] = {0};
        curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
        curl_easy_setopt(easy_, CURLOPT_POST, 1L);
        curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, list.get());
        curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy_, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts.connect_s * 1000));
        curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeouts.total_s * 1000));
        curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer);
        curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &on_body);
        curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &response);
        curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &on_header);
        curl_easy_setopt(easy_, CURLOPT_HEADERDATA, &response);

        CURLcode const code = curl_easy_perform(easy_);
        curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, nullptr);
        if (code != CURLE_OK && response.body_too_large) {
            response.status = 0;
            std::string().swap(response.body);
            response.transport_error = detail::concat("POST ", url, ": the reply exceeded ", http_max_body_bytes,
                                                      " bytes (16 MiB, http_max_body_bytes); reading stopped there");
            return response;
        }
        if (code != CURLE_OK) {
            response.status = 0;
            response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
            response.retryable_transport = code != CURLE_URL_MALFORMAT && code != CURLE_UNSUPPORTED_PROTOCOL &&
                                           code != CURLE_OUT_OF_MEMORY && code != CURLE_BAD_FUNCTION_ARGUMENT;
            response.transport_error = detail::concat("POST ", url, ": ", error_buffer[0] ? error_buffer
                                                                                           : curl_easy_strerror(code),
                                                      " (", curl_easy_strerror(code), ")");
            return response;
        }
        curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &response.status);
        return response;
    }

private:
    struct Global {
        Global() { require(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "libcurl: curl_global_init failed"); }
        ~Global() { curl_global_cleanup(); }
    };
    static void global() { static Global g; }

    /// Appends up to http_max_body_bytes; past that returns 0, which makes libcurl end the transfer.
    static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
        auto& response = *static_cast<HttpResponse*>(user);
        if (size * count > http_max_body_bytes - response.body.size()) {
            response.body_too_large = true;
            return 0;
        }
        response.body.append(data, size * count);
        return size * count;
    }
    static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
        auto& response = *static_cast<HttpResponse*>(user);
        std::string line(data, size * count);
        if (line.starts_with("HTTP/")) {  // a new response (after a redirect or an interim 1xx): forget the old
            response.headers.clear();
            return size * count;
        }
        auto const colon = line.find(':');
        if (colon == std::string::npos) return size * count;
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
            value.pop_back();
        response.headers[name] = value;
        return size * count;
    }

    CURL* easy_ = nullptr;
};

}  // namespace polyalpaca::eval
