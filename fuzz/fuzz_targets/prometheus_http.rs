//! What a client sends the Prometheus endpoint, cut into reads of a fuzzer-chosen size:
//! the request-head reader (`RequestHead`, as `read_head` feeds it) and the response
//! (`respond`). Checks, beyond "no panic":
//! - reading stops at the first blank line (`\r\n\r\n`, RFC 9112 §2.1) or at `MAX_HEAD`
//!   bytes, whatever the read size, and never holds more than `MAX_HEAD` bytes;
//! - the response is one of three fixed answers: nothing from the request is reflected
//!   (no header injection), `Content-Length` is the body's length in bytes;
//! - the metrics are served exactly for `GET /metrics` (query ignored), 405 for another
//!   method on `/metrics`, 404 otherwise.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run prometheus_http` (or `scripts/fuzz.sh`).
#![no_main]

use coppelia_bridge::output::prometheus::{respond, RequestHead, MAX_HEAD};
use libfuzzer_sys::fuzz_target;

/// A body that cannot be confused with the fixed 404/405 texts.
const METRICS: &str = "coppelia_bridge_dummies{sim=\"fuzz\"} 3\n";

fuzz_target!(|input: &[u8]| {
    let Some((&read_size, stream)) = input.split_first() else {
        return;
    };
    // Reads of 1..=64 bytes, and a few huge ones (a whole request in one read).
    let read_size = if read_size >= 192 {
        usize::MAX
    } else {
        usize::from(read_size % 64) + 1
    };
    let mut head = RequestHead::default();
    // Bytes handed over before the last read, and with it.
    let (mut before, mut fed) = (0, 0);
    for chunk in stream.chunks(read_size) {
        (before, fed) = (fed, fed + chunk.len());
        if head.push(chunk) {
            break;
        }
        assert!(head.len() < MAX_HEAD);
    }
    assert_eq!(
        head.len(),
        fed.min(MAX_HEAD),
        "held bytes are what was read, capped"
    );
    let held = &stream[..head.len()];
    match find(stream, b"\r\n\r\n") {
        // A head that fits: reading stopped with the read that completed it.
        Some(end) if end + 4 <= MAX_HEAD => assert!(before < end + 4 && end + 4 <= fed),
        // No head within the cap: read until the cap or the end of the stream.
        _ => assert_eq!(fed.min(MAX_HEAD), stream.len().min(MAX_HEAD)),
    }
    assert_eq!(head.text(), String::from_utf8_lossy(held));

    let text = head.text();
    let response = respond(&text, METRICS);
    check_response(&text, &response);
});

fn check_response(request: &str, response: &str) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("response has a blank line");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    let expected = [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 404 Not Found",
        "HTTP/1.1 405 Method Not Allowed",
    ];
    assert!(expected.contains(&status), "status {status:?}");
    let headers: Vec<&str> = lines.collect();
    assert_eq!(headers.len(), 3, "{headers:?}");
    assert!(headers[0].starts_with("Content-Type: text/plain; "));
    assert_eq!(headers[1], format!("Content-Length: {}", body.len()));
    assert_eq!(headers[2], "Connection: close");

    // Same rule as the endpoint's doc: method and target from the first line.
    let mut first = request.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("");
    let path = first.next().unwrap_or("").split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            assert_eq!(status, expected[0]);
            assert_eq!(body, METRICS);
        }
        (_, "/metrics") => assert_eq!(status, expected[2]),
        _ => assert_eq!(status, expected[1]),
    }
    if status != expected[0] {
        // Fixed texts only: nothing the client sent comes back.
        assert!(["only GET\n", "not found: try /metrics\n"].contains(&body));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
