//! The blocking protocol-2 client: the `_*wait*_` / `_*repeat*_` loop, callbacks, `_*end*_`,
//! error mapping, and typed calls.

use std::time::{Duration, Instant};

use ciborium::Value;

use super::constants::{
    ProgramVersion, SimState, BOOLPARAM_REALTIME_SIMULATION, INTPARAM_PROGRAM_REVISION,
    INTPARAM_PROGRAM_VERSION,
};
use super::error::RemoteError;
use super::message::{
    self, as_bool, as_f64, as_i64, as_string, Hello, Reply, Request, FUNC_END, FUNC_EXECUTED,
    FUNC_REPEAT, FUNC_WAIT,
};
use super::transport::{Transport, TransportError, ZmqTransport};

/// Longest wait for the answer to `_*end*_` when closing.
const END_TIMEOUT: Duration = Duration::from_secs(1);

/// Client settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Deadline for each reply (`--remote-timeout`, default 3 s).
    pub timeout: Duration,
    /// Seconds the server keeps us when idle (`timeout` in the first message; 600 is the
    /// server's own default).
    pub idle_timeout_s: u64,
    /// Language reported to the server.
    pub lang: String,
    /// Longest a single call may keep answering `_*wait*_` rounds (e.g. `sim.step` while
    /// another stepping client holds the simulation).
    pub max_call_duration: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            idle_timeout_s: 600,
            lang: "rust".to_owned(),
            max_call_duration: Duration::from_secs(60),
        }
    }
}

/// A blocking remote API client over any [`Transport`].
#[derive(Debug)]
pub struct Client<T: Transport> {
    transport: T,
    config: ClientConfig,
    uuid: String,
    /// Set after `_*end*_` was sent (or attempted): no further calls, no second `_*end*_`.
    closed: bool,
}

impl Client<ZmqTransport> {
    /// Creates a client for a ZeroMQ endpoint such as `tcp://127.0.0.1:23000`. Does not
    /// contact the server (ZeroMQ connects in the background); the first call does.
    pub fn connect(endpoint: &str, config: ClientConfig) -> Result<Self, RemoteError> {
        let transport = ZmqTransport::new(endpoint).map_err(|e| match e {
            TransportError::BadEndpoint(reason) => RemoteError::BadEndpoint {
                endpoint: endpoint.to_owned(),
                reason,
            },
            other => transport_error(endpoint, other, config.timeout),
        })?;
        Ok(Self::with_transport(transport, config))
    }
}

impl<T: Transport> Client<T> {
    /// Creates a client over a given transport (tests use a fake).
    pub fn with_transport(transport: T, config: ClientConfig) -> Self {
        Self {
            transport,
            config,
            uuid: uuid::Uuid::new_v4().to_string(),
            closed: false,
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    /// The uuid identifying this client to the server.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The settings in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes the reply deadline for later calls.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.config.timeout = timeout;
    }

    /// Calls a function by name (e.g. `"sim.getObject"`) and returns its return values.
    ///
    /// Handles the server's requests in between: `_*wait*_` is answered with `_*executed*_`,
    /// `_*repeat*_` resends the original request, any other name is a callback, answered
    /// with an empty `_*executed*_` (we register none) and logged.
    pub fn call(&mut self, func: &str, args: Vec<Value>) -> Result<Vec<Value>, RemoteError> {
        if self.closed {
            return Err(RemoteError::Closed {
                endpoint: self.endpoint().to_owned(),
            });
        }
        let started = Instant::now();
        let mut reply = self.exchange(func, &args, func)?;
        loop {
            match reply {
                Reply::Ret(values) => return Ok(values),
                Reply::Empty => return Ok(Vec::new()),
                Reply::Err(message) => return Err(self.server_error(func, message)),
                Reply::Protocol1 { error, .. } => return Err(self.protocol1(error)),
                Reply::Func {
                    name,
                    args: cb_args,
                } => {
                    self.check_budget(func, started)?;
                    reply = self.answer_server_request(func, &args, &name, &cb_args)?;
                }
            }
        }
    }

    /// Answers one `{func, args}` from the server and returns its next reply.
    fn answer_server_request(
        &mut self,
        func: &str,
        args: &[Value],
        name: &str,
        cb_args: &[Value],
    ) -> Result<Reply, RemoteError> {
        match name {
            FUNC_WAIT => self.exchange(FUNC_EXECUTED, &[], func),
            FUNC_REPEAT => self.exchange(func, args, func),
            callback => {
                tracing::warn!(
                    endpoint = self.endpoint(),
                    callback,
                    args = cb_args.len(),
                    "CoppeliaSim called back a client function; none is registered, \
                     answering with no results"
                );
                self.exchange(FUNC_EXECUTED, &[], func)
            }
        }
    }

    fn check_budget(&self, func: &str, started: Instant) -> Result<(), RemoteError> {
        let waited = started.elapsed();
        if waited > self.config.max_call_duration {
            return Err(RemoteError::CallTooLong {
                endpoint: self.endpoint().to_owned(),
                func: func.to_owned(),
                waited,
            });
        }
        Ok(())
    }

    /// One request/reply. `context` names the user's call in errors.
    fn exchange(
        &mut self,
        func: &str,
        args: &[Value],
        context: &str,
    ) -> Result<Reply, RemoteError> {
        let hello = self.transport.is_fresh().then(|| Hello {
            lang: &self.config.lang,
            idle_timeout_s: self.config.idle_timeout_s,
        });
        let bytes = message::encode_request(&Request {
            func,
            args,
            uuid: &self.uuid,
            hello,
        });
        let timeout = self.config.timeout;
        let raw = self
            .transport
            .round_trip(&bytes, timeout)
            .map_err(|e| transport_error(self.transport.endpoint(), e, timeout))?;
        message::decode_reply(&raw).map_err(|reason| RemoteError::MalformedReply {
            endpoint: self.endpoint().to_owned(),
            func: context.to_owned(),
            reason,
        })
    }

    fn server_error(&self, func: &str, message: String) -> RemoteError {
        RemoteError::ServerError {
            endpoint: self.endpoint().to_owned(),
            func: func.to_owned(),
            message,
        }
    }

    fn protocol1(&self, server_message: Option<String>) -> RemoteError {
        RemoteError::Protocol1 {
            endpoint: self.endpoint().to_owned(),
            server_message,
        }
    }

    /// Sends `_*end*_` so the server forgets this client at once (instead of after its idle
    /// timeout), which also releases a simulation held by our stepping. Idempotent.
    pub fn close(&mut self) -> Result<(), RemoteError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        // Never answered anything on this connection: the server has no state for us.
        if self.transport.is_fresh() {
            return Ok(());
        }
        // A live server answers `_*end*_` at once; don't let a dead one hold up shutdown
        // for the full call deadline.
        let full = self.config.timeout;
        self.config.timeout = full.min(END_TIMEOUT);
        let result = self.exchange(FUNC_END, &[], FUNC_END).map(|_| ());
        self.config.timeout = full;
        result
    }

    // --- typed calls -------------------------------------------------------------------

    /// `sim.getSimulationTime` → seconds.
    pub fn get_simulation_time(&mut self) -> Result<f64, RemoteError> {
        let ret = self.call("sim.getSimulationTime", vec![])?;
        self.first(&ret, "sim.getSimulationTime", "a number", as_f64)
    }

    /// `sim.getSimulationTimeStep` → dt in seconds.
    pub fn get_simulation_time_step(&mut self) -> Result<f64, RemoteError> {
        let ret = self.call("sim.getSimulationTimeStep", vec![])?;
        self.first(&ret, "sim.getSimulationTimeStep", "a number", as_f64)
    }

    /// `sim.getSimulationState`.
    pub fn get_simulation_state(&mut self) -> Result<SimState, RemoteError> {
        let ret = self.call("sim.getSimulationState", vec![])?;
        self.first(&ret, "sim.getSimulationState", "an integer", as_i64)
            .map(SimState::from_raw)
    }

    /// `sim.startSimulation`.
    pub fn start_simulation(&mut self) -> Result<(), RemoteError> {
        self.call("sim.startSimulation", vec![]).map(drop)
    }

    /// `sim.stopSimulation` (it also resets every client's stepping, notes §5).
    pub fn stop_simulation(&mut self) -> Result<(), RemoteError> {
        self.call("sim.stopSimulation", vec![]).map(drop)
    }

    /// `sim.pauseSimulation`.
    pub fn pause_simulation(&mut self) -> Result<(), RemoteError> {
        self.call("sim.pauseSimulation", vec![]).map(drop)
    }

    /// `sim.setStepping(enabled)` → the previous stepping level (0 the first time). The
    /// server counts levels: each `true` adds one, each `false` removes one.
    pub fn set_stepping(&mut self, enabled: bool) -> Result<i64, RemoteError> {
        let ret = self.call("sim.setStepping", vec![Value::Bool(enabled)])?;
        // Older servers return nothing; treat as level 0.
        if ret.is_empty() {
            return Ok(0);
        }
        self.first(&ret, "sim.setStepping", "an integer", as_i64)
    }

    /// `sim.step`: returns once the simulation has advanced one pass (after the server's
    /// `_*wait*_` rounds).
    pub fn step(&mut self) -> Result<(), RemoteError> {
        self.call("sim.step", vec![]).map(drop)
    }

    /// `sim.loadScene(path)` (path as CoppeliaSim sees it, on its machine).
    pub fn load_scene(&mut self, path: &str) -> Result<(), RemoteError> {
        self.call("sim.loadScene", vec![Value::Text(path.to_owned())])
            .map(drop)
    }

    /// `sim.getInt32Param(param)`.
    pub fn get_int32_param(&mut self, param: i64) -> Result<i64, RemoteError> {
        let ret = self.call("sim.getInt32Param", vec![Value::Integer(param.into())])?;
        self.first(&ret, "sim.getInt32Param", "an integer", as_i64)
    }

    /// `sim.getBoolParam(param)`.
    pub fn get_bool_param(&mut self, param: i64) -> Result<bool, RemoteError> {
        let ret = self.call("sim.getBoolParam", vec![Value::Integer(param.into())])?;
        self.first(&ret, "sim.getBoolParam", "a boolean", as_bool)
    }

    /// Program version and revision (`intparam_program_version`, `_revision`).
    pub fn program_version(&mut self) -> Result<ProgramVersion, RemoteError> {
        let raw = self.get_int32_param(INTPARAM_PROGRAM_VERSION)?;
        let revision = self.get_int32_param(INTPARAM_PROGRAM_REVISION)?;
        Ok(ProgramVersion { raw, revision })
    }

    /// Real-time mode (`boolparam_realtime_simulation`).
    pub fn real_time_mode(&mut self) -> Result<bool, RemoteError> {
        self.get_bool_param(BOOLPARAM_REALTIME_SIMULATION)
    }

    /// `sim.getObject(path)` → handle.
    pub fn get_object(&mut self, path: &str) -> Result<i64, RemoteError> {
        let ret = self.call("sim.getObject", vec![Value::Text(path.to_owned())])?;
        self.first(&ret, "sim.getObject", "an integer handle", as_i64)
    }

    /// `sim.getObjectAlias(handle, options)` (options -1 = alias only).
    pub fn get_object_alias(&mut self, handle: i64, options: i64) -> Result<String, RemoteError> {
        let args = vec![
            Value::Integer(handle.into()),
            Value::Integer(options.into()),
        ];
        let ret = self.call("sim.getObjectAlias", args)?;
        self.first(&ret, "sim.getObjectAlias", "a string", as_string)
    }

    /// The first return value converted by `convert`, or `UnexpectedReturn`.
    fn first<V>(
        &self,
        ret: &[Value],
        func: &'static str,
        expected: &'static str,
        convert: impl Fn(&Value) -> Option<V>,
    ) -> Result<V, RemoteError> {
        ret.first()
            .and_then(convert)
            .ok_or_else(|| RemoteError::UnexpectedReturn {
                endpoint: self.endpoint().to_owned(),
                func,
                expected,
                got: describe_ret(ret),
            })
    }
}

impl<T: Transport> Drop for Client<T> {
    /// Says goodbye (`_*end*_`) so a stepping client that goes away never blocks the
    /// simulation until its idle timeout (notes §5).
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::debug!("could not send _*end*_ while closing the remote API client: {e}");
        }
    }
}

fn describe_ret(ret: &[Value]) -> String {
    match ret.first() {
        None => "nothing".to_owned(),
        Some(v) if ret.len() == 1 => message::kind(v).to_owned(),
        Some(v) => format!("{} values, the first {}", ret.len(), message::kind(v)),
    }
}

fn transport_error(endpoint: &str, e: TransportError, timeout: Duration) -> RemoteError {
    match e {
        TransportError::Timeout => RemoteError::Unreachable {
            endpoint: endpoint.to_owned(),
            timeout,
        },
        TransportError::BadEndpoint(reason) => RemoteError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            reason,
        },
        TransportError::Zmq { operation, reason } => RemoteError::Transport {
            endpoint: endpoint.to_owned(),
            operation,
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_api::message::{decode_request, encode_err, encode_func, encode_ret};
    use std::collections::VecDeque;

    /// Scripted transport: pops one reply per round trip and records requests.
    #[derive(Debug, Default)]
    struct FakeTransport {
        replies: VecDeque<Result<Vec<u8>, TransportError>>,
        sent: Vec<message::ParsedRequest>,
        fresh: bool,
    }

    impl FakeTransport {
        fn new(replies: Vec<Result<Vec<u8>, TransportError>>) -> Self {
            Self {
                replies: replies.into(),
                sent: Vec::new(),
                fresh: true,
            }
        }
    }

    impl Transport for FakeTransport {
        fn round_trip(&mut self, req: &[u8], _: Duration) -> Result<Vec<u8>, TransportError> {
            self.sent.push(decode_request(req).unwrap());
            let reply = self
                .replies
                .pop_front()
                .unwrap_or(Err(TransportError::Timeout));
            self.fresh = reply.is_err();
            reply
        }
        fn is_fresh(&self) -> bool {
            self.fresh
        }
        fn endpoint(&self) -> &str {
            "fake://"
        }
    }

    fn client(replies: Vec<Result<Vec<u8>, TransportError>>) -> Client<FakeTransport> {
        Client::with_transport(FakeTransport::new(replies), ClientConfig::default())
    }

    fn funcs(c: &Client<FakeTransport>) -> Vec<String> {
        c.transport.sent.iter().map(|r| r.func.clone()).collect()
    }

    #[test]
    fn hello_only_on_the_first_message_and_uuid_on_every_message() {
        let mut c = client(vec![
            Ok(encode_ret(vec![Value::Float(0.5)])),
            Ok(encode_ret(vec![])),
        ]);
        assert_eq!(c.get_simulation_time().unwrap(), 0.5);
        c.start_simulation().unwrap();
        let sent = &c.transport.sent;
        assert_eq!(sent[0].ver, Some(2));
        assert_eq!(sent[0].lang.as_deref(), Some("rust"));
        assert_eq!(sent[0].idle_timeout_s, Some(600));
        assert_eq!(sent[1].ver, None);
        let uuid = c.uuid().to_owned();
        assert!(uuid::Uuid::parse_str(&uuid).is_ok());
        assert!(sent
            .iter()
            .all(|r| r.uuid.as_deref() == Some(uuid.as_str())));
    }

    #[test]
    fn wait_rounds_are_answered_with_executed_until_ret() {
        let wait = || Ok(encode_func(FUNC_WAIT, vec![]));
        let mut c = client(vec![wait(), wait(), wait(), Ok(encode_ret(vec![]))]);
        c.step().unwrap();
        assert_eq!(
            funcs(&c),
            ["sim.step", FUNC_EXECUTED, FUNC_EXECUTED, FUNC_EXECUTED]
        );
        assert!(c.transport.sent[1].args.is_empty());
    }

    #[test]
    fn repeat_resends_the_original_request() {
        let mut c = client(vec![
            Ok(encode_func(FUNC_REPEAT, vec![])),
            Ok(encode_ret(vec![Value::Integer(7.into())])),
        ]);
        assert_eq!(c.get_object("/Dummy").unwrap(), 7);
        let sent = &c.transport.sent;
        assert_eq!(funcs(&c), ["sim.getObject", "sim.getObject"]);
        assert_eq!(sent[0].args, sent[1].args);
    }

    #[test]
    fn callbacks_get_an_empty_executed() {
        let mut c = client(vec![
            Ok(encode_func("myCallback", vec![Value::Integer(1.into())])),
            Ok(encode_ret(vec![Value::Integer(3.into())])),
        ]);
        assert_eq!(
            c.call("sim.foo", vec![]).unwrap(),
            vec![Value::Integer(3.into())]
        );
        assert_eq!(funcs(&c), ["sim.foo", FUNC_EXECUTED]);
        assert!(c.transport.sent[1].args.is_empty());
    }

    #[test]
    fn server_error_text_is_decoded_and_kept_verbatim() {
        let mut c = client(vec![Ok(encode_err(
            "Object does not exist.\n\tin sim.getObject",
        ))]);
        let err = c.get_object("/nope").unwrap_err();
        let RemoteError::ServerError { func, message, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(func, "sim.getObject");
        assert_eq!(message, "Object does not exist.\n\tin sim.getObject");
    }

    #[test]
    fn timeout_maps_to_unreachable_and_hello_is_resent_after() {
        let mut c = client(vec![
            Ok(encode_ret(vec![Value::Float(1.0)])),
            Err(TransportError::Timeout),
            Ok(encode_ret(vec![Value::Float(2.0)])),
        ]);
        c.get_simulation_time().unwrap();
        assert!(c.get_simulation_time().unwrap_err().is_unreachable());
        assert_eq!(c.get_simulation_time().unwrap(), 2.0);
        let vers: Vec<_> = c.transport.sent.iter().map(|r| r.ver).collect();
        assert_eq!(vers, [Some(2), None, Some(2)]);
    }

    #[test]
    fn unexpected_return_shape_is_an_error_not_a_panic() {
        let mut c = client(vec![
            Ok(encode_ret(vec![Value::Text("x".into())])),
            Ok(encode_ret(vec![])),
        ]);
        assert!(matches!(
            c.get_simulation_time(),
            Err(RemoteError::UnexpectedReturn {
                expected: "a number",
                ..
            })
        ));
        assert!(matches!(
            c.get_simulation_state(),
            Err(RemoteError::UnexpectedReturn { .. })
        ));
    }

    #[test]
    fn close_sends_end_once_and_later_calls_fail() {
        let mut c = client(vec![
            Ok(encode_ret(vec![Value::Float(0.0)])),
            Ok(message::encode_value(&Value::Map(vec![]))),
        ]);
        c.get_simulation_time().unwrap();
        c.close().unwrap();
        c.close().unwrap();
        assert_eq!(funcs(&c), ["sim.getSimulationTime", FUNC_END]);
        assert!(matches!(
            c.get_simulation_time(),
            Err(RemoteError::Closed { .. })
        ));
    }

    #[test]
    fn close_without_any_answered_call_sends_nothing() {
        let mut c = client(vec![]);
        c.close().unwrap();
        assert!(c.transport.sent.is_empty());
    }

    #[test]
    fn endless_wait_is_cut_by_the_call_budget() {
        let replies = (0..10_000)
            .map(|_| Ok(encode_func(FUNC_WAIT, vec![])))
            .collect();
        let mut c = Client::with_transport(
            FakeTransport::new(replies),
            ClientConfig {
                max_call_duration: Duration::ZERO,
                ..ClientConfig::default()
            },
        );
        assert!(matches!(c.step(), Err(RemoteError::CallTooLong { .. })));
    }

    #[test]
    fn version_is_read_from_two_int_params() {
        let mut c = client(vec![
            Ok(encode_ret(vec![Value::Integer(40600.into())])),
            Ok(encode_ret(vec![Value::Integer(18.into())])),
        ]);
        let v = c.program_version().unwrap();
        assert_eq!((v.to_string(), v.revision), ("4.6.0".to_owned(), 18));
        let args: Vec<_> = c.transport.sent.iter().map(|r| r.args.clone()).collect();
        assert_eq!(
            args,
            [
                vec![Value::Integer(1.into())],
                vec![Value::Integer(30.into())]
            ]
        );
    }
}
