package connector

import (
	"encoding/json"
	"strings"
)

// Request is one HTTP request. URL is absolute (http:// or https://); the
// host checks its host:port against the pipeline's `grants.http` before
// connecting, does TLS, never follows redirects, and bounds the request by
// the connector's `http_limits`.
type Request struct {
	Method  string
	URL     string
	Headers [][2]string
	Body    []byte
}

// Response is a response, whatever its status (a 4xx or 5xx is a response,
// not an error).
type Response struct {
	Status  int
	Headers [][2]string
	Body    []byte
}

// Text is the body as text (invalid UTF-8 replaced).
func (r *Response) Text() string { return strings.ToValidUTF8(string(r.Body), "\uFFFD") }

// Header returns the first header called name (case-insensitive).
func (r *Response) Header(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

// JSON decodes the body into v (numbers into json.Number when v is *any,
// so 64-bit integers stay exact).
func (r *Response) JSON(v any) error {
	d := json.NewDecoder(strings.NewReader(string(r.Body)))
	d.UseNumber()
	return d.Decode(v)
}

// The kinds of HTTPError, as the contract's `http-error` names them.
const (
	// KindDenied: the grant does not cover the host (the message names the
	// host and the grant). Escaping a call, it stops the pipeline.
	KindDenied = "denied"
	// KindTimeout: connecting, the first byte or the body took longer than
	// `http_limits`. Escaping a call, it is a retry.
	KindTimeout = "timeout"
	// KindTooLarge: the response is larger than `http_limits.max_response_kb`.
	KindTooLarge = "too-large"
	// KindFailed: a malformed request, or a DNS, connection or TLS failure.
	KindFailed = "failed"
)

// HTTPError is why no response came back.
type HTTPError struct {
	Kind    string
	Message string
}

func (e *HTTPError) Error() string { return e.Kind + ": " + e.Message }

// Send sends req and waits for the response (or an *HTTPError).
func Send(req Request) (*Response, error) {
	if req.Method == "" {
		req.Method = "GET"
	}
	return send(req)
}

// Get is a GET of url.
func Get(url string, headers ...[2]string) (*Response, error) {
	return Send(Request{Method: "GET", URL: url, Headers: headers})
}

// Post is a POST of body to url.
func Post(url string, body []byte, headers ...[2]string) (*Response, error) {
	return Send(Request{Method: "POST", URL: url, Headers: headers, Body: body})
}
