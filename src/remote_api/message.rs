//! Protocol-2 messages as CBOR maps: built and parsed by pure functions (bytes in, values
//! out), so they can be fuzzed and never panic on what a server sends.
//!
//! Shapes from `../shared/coppeliasim-notes.md` §5 and the public ZMQ remote API add-on
//! (`CoppeliaRobotics/zmqRemoteApi`, "ZMQ remote API server.lua").

use ciborium::Value;
use thiserror::Error;

/// Protocol version sent in `ver` (CoppeliaSim 4.6+).
pub const PROTOCOL_VERSION: i64 = 2;
/// The server asks the client to wait and answer [`FUNC_EXECUTED`] (stepping, notes §5).
pub const FUNC_WAIT: &str = "_*wait*_";
/// The server asks the client to resend its original request.
pub const FUNC_REPEAT: &str = "_*repeat*_";
/// The client's answer to a wait or callback request.
pub const FUNC_EXECUTED: &str = "_*executed*_";
/// Sent when the client leaves, so the server forgets it (C++/Java clients do this).
pub const FUNC_END: &str = "_*end*_";

/// Fields carried only by the first message on a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello<'a> {
    /// Client language, reported in CoppeliaSim's status bar.
    pub lang: &'a str,
    /// Seconds the server keeps an idle client before forgetting it (default 600).
    pub idle_timeout_s: u64,
}

/// One request as the client sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    pub func: &'a str,
    pub args: &'a [Value],
    pub uuid: &'a str,
    pub hello: Option<Hello<'a>>,
}

/// Encodes a request map: `func`, `args`, `uuid`, `argsL` and, with `hello`, `ver`, `lang`,
/// `timeout`. `argsL` lets the server keep trailing nils (it unpacks `args` up to `argsL`).
pub fn encode_request(req: &Request<'_>) -> Vec<u8> {
    let mut map = vec![
        (text("func"), text(req.func)),
        (text("args"), Value::Array(req.args.to_vec())),
        (text("uuid"), text(req.uuid)),
        (
            text("argsL"),
            Value::Integer((req.args.len() as u64).into()),
        ),
    ];
    if let Some(hello) = &req.hello {
        map.push((text("ver"), Value::Integer(PROTOCOL_VERSION.into())));
        map.push((text("lang"), text(hello.lang)));
        map.push((text("timeout"), Value::Integer(hello.idle_timeout_s.into())));
    }
    encode_value(&Value::Map(map))
}

/// Encodes any CBOR value. Writing into a `Vec` cannot fail for the value types we build.
pub fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(err) = ciborium::into_writer(value, &mut out) {
        // Only reachable with a writer error, which Vec never produces.
        tracing::error!("CBOR encoding into memory failed: {err}");
    }
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// What a server answered, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `{ret: [...]}`: success with return values.
    Ret(Vec<Value>),
    /// `{err: "..."}`: the call failed; text already decoded (see [`decode_err_text`]).
    Err(String),
    /// `{func, args}`: the server asks the client to act (`_*wait*_`, `_*repeat*_`, callback).
    Func { name: String, args: Vec<Value> },
    /// `{success, error}`: the shape of protocol 1 (CoppeliaSim ≤ 4.5.1), or a protocol-2
    /// server refusing a protocol-1 request.
    Protocol1 {
        success: bool,
        error: Option<String>,
    },
    /// `{}`: the answer to `_*end*_`.
    Empty,
}

/// Why a reply could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MalformedReply {
    #[error("not valid CBOR ({0})")]
    NotCbor(String),
    #[error("CBOR {0} instead of a map")]
    NotAMap(&'static str),
    #[error("a map without any of the keys ret, err, func, success (keys: {0})")]
    UnknownKeys(String),
    #[error("`{key}` is {found}, expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

/// Parses a reply. Never panics: every byte string yields `Ok` or `Err`.
pub fn decode_reply(bytes: &[u8]) -> Result<Reply, MalformedReply> {
    let value: Value =
        ciborium::from_reader(bytes).map_err(|e| MalformedReply::NotCbor(e.to_string()))?;
    classify_reply(&value)
}

/// Classifies a decoded reply map. After the protocol-1 check, the order follows the
/// official clients: a `func` key means "act", checked before `err` and `ret`.
pub fn classify_reply(value: &Value) -> Result<Reply, MalformedReply> {
    let Value::Map(entries) = value else {
        return Err(MalformedReply::NotAMap(kind(value)));
    };
    if entries.is_empty() {
        return Ok(Reply::Empty);
    }
    // Only protocol 1 has `success`: a ≤ 4.5.1 server answers `{success: true, ret}` or
    // `{success: false, error}` (zmqRemoteApi PROTOCOL.md, protocol-1 era). Checked first
    // so an old server that happens to execute our call is still reported, not trusted.
    if let Some(success) = get(entries, "success") {
        return Ok(parse_protocol1(success, get(entries, "error")));
    }
    if let Some(func) = get(entries, "func") {
        return parse_func(func, get(entries, "args"));
    }
    if let Some(err) = get(entries, "err") {
        return Ok(Reply::Err(decode_err_text(&value_to_text(err))));
    }
    if let Some(ret) = get(entries, "ret") {
        return parse_ret(ret).map(Reply::Ret);
    }
    Err(MalformedReply::UnknownKeys(key_list(entries)))
}

fn parse_func(func: &Value, args: Option<&Value>) -> Result<Reply, MalformedReply> {
    let Value::Text(name) = func else {
        return Err(MalformedReply::WrongType {
            key: "func",
            expected: "a text string",
            found: kind(func),
        });
    };
    let args = match args {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    Ok(Reply::Func {
        name: name.clone(),
        args,
    })
}

/// `ret` is an array; an empty Lua table may be encoded as an empty map, accepted as `[]`.
fn parse_ret(ret: &Value) -> Result<Vec<Value>, MalformedReply> {
    match ret {
        Value::Array(items) => Ok(items.clone()),
        Value::Map(m) if m.is_empty() => Ok(Vec::new()),
        other => Err(MalformedReply::WrongType {
            key: "ret",
            expected: "an array",
            found: kind(other),
        }),
    }
}

fn parse_protocol1(success: &Value, error: Option<&Value>) -> Reply {
    Reply::Protocol1 {
        success: matches!(success, Value::Bool(true)),
        error: error.map(value_to_text),
    }
}

/// Looks up a text key in a CBOR map.
pub fn get<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

fn key_list(entries: &[(Value, Value)]) -> String {
    let keys: Vec<String> = entries
        .iter()
        .take(8)
        .map(|(k, _)| match k {
            // Shown in an error message: no control character of the server's reaches the log.
            Value::Text(t) => {
                crate::event::displayable(&t.chars().take(32).collect::<String>()).into_owned()
            }
            other => format!("<{}>", kind(other)),
        })
        .collect();
    keys.join(", ")
}

/// Error texts survive the trip with newlines as `_=NL=_` and tabs as `_=TB=_`
/// (the add-on's `errHandler` encodes them); undo that so users see the original text.
pub fn decode_err_text(s: &str) -> String {
    s.replace("_=NL=_", "\n").replace("_=TB=_", "\t")
}

/// A text for any value: strings as they are, other values in debug form.
fn value_to_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// Name of a CBOR value's kind, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "a byte string",
        Value::Float(_) => "a float",
        Value::Text(_) => "a text string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(..) => "a tagged value",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "an unknown CBOR value",
    }
}

/// A request as a server sees it (used by the fake server and available to the stand-in).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub func: String,
    pub args: Vec<Value>,
    /// Absent in protocol-1 requests.
    pub uuid: Option<String>,
    pub args_len: Option<i64>,
    pub ver: Option<i64>,
    pub lang: Option<String>,
    pub idle_timeout_s: Option<i64>,
}

/// Parses a request map (server side). Never panics.
pub fn decode_request(bytes: &[u8]) -> Result<ParsedRequest, MalformedReply> {
    let value: Value =
        ciborium::from_reader(bytes).map_err(|e| MalformedReply::NotCbor(e.to_string()))?;
    let Value::Map(entries) = &value else {
        return Err(MalformedReply::NotAMap(kind(&value)));
    };
    let text_of = |k| match get(entries, k) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let int_of = |k| get(entries, k).and_then(as_i64);
    Ok(ParsedRequest {
        func: text_of("func").unwrap_or_default(),
        args: match get(entries, "args") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        },
        uuid: text_of("uuid"),
        args_len: int_of("argsL"),
        ver: int_of("ver"),
        lang: text_of("lang"),
        idle_timeout_s: int_of("timeout"),
    })
}

/// Encodes a server reply `{ret: values}`.
pub fn encode_ret(values: Vec<Value>) -> Vec<u8> {
    encode_value(&Value::Map(vec![(text("ret"), Value::Array(values))]))
}

/// Encodes a server reply `{err: message}` with newlines and tabs encoded as the add-on does.
pub fn encode_err(message: &str) -> Vec<u8> {
    let encoded = message.replace('\n', "_=NL=_").replace('\t', "_=TB=_");
    encode_value(&Value::Map(vec![(text("err"), text(&encoded))]))
}

/// Encodes a server request to the client `{func, args}` (`_*wait*_`, `_*repeat*_`, callbacks).
pub fn encode_func(name: &str, args: Vec<Value>) -> Vec<u8> {
    encode_value(&Value::Map(vec![
        (text("func"), text(name)),
        (text("args"), Value::Array(args)),
    ]))
}

/// An integer from a CBOR value (integers, and floats with an integral value: Lua 5.3
/// numbers may arrive as either).
pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i64::try_from(*i).ok(),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

/// A float from a CBOR value (floats or integers).
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => i64::try_from(*i).ok().map(|i| i as f64),
        _ => None,
    }
}

/// A boolean from a CBOR value (booleans, or 0/1 as older C API wrappers return).
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => as_i64(other).and_then(|i| match i {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }),
    }
}

/// A string from a CBOR value (text, or UTF-8 bytes: the add-on may send a Lua string as
/// either, depending on whether it knows the return type).
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::Text(t) => Some(t.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(entries: Vec<(&str, Value)>) -> Vec<u8> {
        let m = entries.into_iter().map(|(k, v)| (text(k), v)).collect();
        encode_value(&Value::Map(m))
    }

    #[test]
    fn first_request_carries_version_language_and_idle_timeout() {
        let args = [Value::Text("/Floor".into())];
        let bytes = encode_request(&Request {
            func: "sim.getObject",
            args: &args,
            uuid: "u-1",
            hello: Some(Hello {
                lang: "rust",
                idle_timeout_s: 600,
            }),
        });
        let req = decode_request(&bytes).unwrap();
        assert_eq!(req.func, "sim.getObject");
        assert_eq!(req.args, args.to_vec());
        assert_eq!(req.uuid.as_deref(), Some("u-1"));
        assert_eq!(req.args_len, Some(1));
        assert_eq!(req.ver, Some(2));
        assert_eq!(req.lang.as_deref(), Some("rust"));
        assert_eq!(req.idle_timeout_s, Some(600));
    }

    #[test]
    fn later_requests_carry_uuid_and_args_len_but_no_hello() {
        let bytes = encode_request(&Request {
            func: "sim.getSimulationTime",
            args: &[],
            uuid: "u-2",
            hello: None,
        });
        let req = decode_request(&bytes).unwrap();
        assert_eq!(req.uuid.as_deref(), Some("u-2"));
        assert_eq!(req.args_len, Some(0));
        assert_eq!((req.ver, req.lang, req.idle_timeout_s), (None, None, None));
    }

    #[test]
    fn request_bytes_are_a_cbor_map_with_text_keys() {
        // 0xa4: map of 4 pairs; 0x64 "func": text of length 4.
        let bytes = encode_request(&Request {
            func: "f",
            args: &[],
            uuid: "u",
            hello: None,
        });
        assert_eq!(&bytes[..6], &[0xa4, 0x64, b'f', b'u', b'n', b'c']);
    }

    #[test]
    fn ret_reply_gives_the_values() {
        let reply = decode_reply(&encode_ret(vec![Value::Float(1.25)])).unwrap();
        assert_eq!(reply, Reply::Ret(vec![Value::Float(1.25)]));
    }

    #[test]
    fn ret_as_empty_map_is_an_empty_list() {
        let reply = decode_reply(&map(vec![("ret", Value::Map(vec![]))])).unwrap();
        assert_eq!(reply, Reply::Ret(vec![]));
    }

    #[test]
    fn err_reply_decodes_newlines_and_tabs() {
        let raw = map(vec![("err", text("line 1_=NL=__=TB=_line 2"))]);
        assert_eq!(
            decode_reply(&raw).unwrap(),
            Reply::Err("line 1\n\tline 2".into())
        );
        let round = decode_reply(&encode_err("a\nb\tc")).unwrap();
        assert_eq!(round, Reply::Err("a\nb\tc".into()));
    }

    #[test]
    fn func_reply_is_recognised_before_err_and_ret() {
        let raw = map(vec![
            ("ret", Value::Array(vec![])),
            ("func", text(FUNC_WAIT)),
            ("args", Value::Array(vec![])),
        ]);
        assert_eq!(
            decode_reply(&raw).unwrap(),
            Reply::Func {
                name: FUNC_WAIT.into(),
                args: vec![]
            }
        );
    }

    #[test]
    fn func_reply_without_args_has_empty_args() {
        let raw = map(vec![("func", text("myCallback"))]);
        assert_eq!(
            decode_reply(&raw).unwrap(),
            Reply::Func {
                name: "myCallback".into(),
                args: vec![]
            }
        );
    }

    #[test]
    fn protocol1_reply_is_recognised() {
        let raw = map(vec![
            ("success", Value::Bool(false)),
            (
                "error",
                text("The client ZeroMQ remote API version does not match"),
            ),
        ]);
        let Reply::Protocol1 { success, error } = decode_reply(&raw).unwrap() else {
            panic!("not protocol 1");
        };
        assert!(!success);
        assert!(error.unwrap().contains("does not match"));
    }

    #[test]
    fn protocol1_success_reply_is_not_mistaken_for_protocol2() {
        let raw = map(vec![
            ("success", Value::Bool(true)),
            ("ret", Value::Array(vec![Value::Float(1.0)])),
        ]);
        assert_eq!(
            decode_reply(&raw).unwrap(),
            Reply::Protocol1 {
                success: true,
                error: None
            }
        );
    }

    #[test]
    fn empty_map_is_the_end_acknowledgement() {
        assert_eq!(decode_reply(&map(vec![])).unwrap(), Reply::Empty);
    }

    #[test]
    fn garbage_is_reported_not_panicked_on() {
        assert!(matches!(
            decode_reply(b"\xff\xfe garbage"),
            Err(MalformedReply::NotCbor(_))
        ));
        assert!(matches!(decode_reply(b""), Err(MalformedReply::NotCbor(_))));
        assert_eq!(
            decode_reply(&encode_value(&Value::Integer(3.into()))),
            Err(MalformedReply::NotAMap("an integer"))
        );
        assert!(matches!(
            decode_reply(&map(vec![("hello", Value::Null)])),
            Err(MalformedReply::UnknownKeys(k)) if k == "hello"
        ));
        assert!(matches!(
            decode_reply(&map(vec![("ret", Value::Integer(1.into()))])),
            Err(MalformedReply::WrongType { key: "ret", .. })
        ));
    }

    #[test]
    fn deeply_nested_input_is_rejected_without_overflowing_the_stack() {
        let bytes = vec![0x81u8; 100_000]; // [[[[...]]]] far beyond the recursion limit
        assert!(decode_reply(&bytes).is_err());
    }

    #[test]
    fn scalar_helpers_accept_the_shapes_lua_produces() {
        assert_eq!(as_f64(&Value::Integer(2.into())), Some(2.0));
        assert_eq!(as_i64(&Value::Float(40600.0)), Some(40600));
        assert_eq!(as_i64(&Value::Float(0.5)), None);
        assert_eq!(as_bool(&Value::Integer(1.into())), Some(true));
        assert_eq!(as_bool(&Value::Integer(7.into())), None);
        assert_eq!(
            as_string(&Value::Bytes(b"Dummy".to_vec())),
            Some("Dummy".into())
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|i| Value::Integer(i.into())),
            any::<f64>().prop_map(Value::Float),
            ".{0,12}".prop_map(Value::Text),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("ret"),
                            Just("err"),
                            Just("func"),
                            Just("args"),
                            Just("success"),
                            Just("x")
                        ]
                        .prop_map(text),
                        inner
                    ),
                    0..4
                )
                .prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn decode_reply_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_reply(&bytes);
            let _ = decode_request(&bytes);
        }

        #[test]
        fn decode_reply_never_panics_on_cbor_values(v in arb_value()) {
            let _ = decode_reply(&encode_value(&v));
        }

        #[test]
        fn ret_round_trips(values in proptest::collection::vec(arb_value(), 0..4)) {
            // NaN != NaN, so compare encodings rather than values.
            let reply = decode_reply(&encode_ret(values.clone())).unwrap();
            let Reply::Ret(back) = reply else { panic!("not ret") };
            prop_assert_eq!(encode_value(&Value::Array(back)), encode_value(&Value::Array(values)));
        }

        #[test]
        fn err_text_round_trips(s in "[a-zA-Z0-9 .:=\n\t]{0,40}") {
            // No `_` in the alphabet: a text containing the escape markers themselves cannot
            // round-trip (the add-on has the same ambiguity).
            prop_assert_eq!(decode_reply(&encode_err(&s)).unwrap(), Reply::Err(s));
        }
    }
}
