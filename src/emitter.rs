//! A synthetic dummy: produces byte for byte what `lua/coppelia_bridge.lua` sends, so the
//! bridge can be exercised without CoppeliaSim (`coppelia-bridge emit`, tests, benches).
//!
//! Pure: the caller passes simulation and wall times in and does the sending.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::wire::{flags, Bye, Clock, Hello, Message, Stamp, NO_RTT, NO_SEQ};

/// Version number the Lua script sends in HELLO.
pub const SCRIPT_VERSION: u16 = 1;

/// How sends are skipped to emulate loss. The seq still advances, as in the script when a
/// send fails.
#[derive(Debug, Clone)]
pub enum LossModel {
    None,
    /// Exactly the fraction `p` of stamps, evenly spread (error diffusion): reproducible
    /// loss figures over short runs.
    Even {
        p: f64,
        acc: f64,
    },
    /// Each stamp independently with probability `p` (seeded).
    Random {
        p: f64,
        rng: StdRng,
    },
}

impl LossModel {
    pub fn even(p: f64) -> Self {
        if p <= 0.0 {
            LossModel::None
        } else {
            LossModel::Even { p, acc: 0.0 }
        }
    }

    pub fn random(p: f64, seed: u64) -> Self {
        LossModel::Random {
            p,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Whether the next stamp is dropped.
    pub fn drop_next(&mut self) -> bool {
        match self {
            LossModel::None => false,
            LossModel::Even { p, acc } => {
                *acc += *p;
                if *acc >= 1.0 {
                    *acc -= 1.0;
                    true
                } else {
                    false
                }
            }
            LossModel::Random { p, rng } => rng.random_bool(p.clamp(0.0, 1.0)),
        }
    }
}

/// One emulated dummy.
#[derive(Debug, Clone)]
pub struct DummyEmitter {
    pub id: u32,
    pub name: String,
    pub dt_s: f64,
    pub legacy: bool,
    flags: u16,
    next_seq: u32,
    last_rtt_us: u32,
    stamps_sent: u32,
    send_errors: u32,
    echoes_received: u32,
    /// The minimum-delay ECHO exchange read since the last CLOCK, as the script keeps it.
    best_exchange: Option<(Clock, f64)>,
}

impl DummyEmitter {
    pub fn new(id: u32, dt_s: f64, legacy: bool, echo: bool, tcp: bool) -> Self {
        let mut f = flags::THREAD;
        if echo {
            f |= flags::ECHO;
        }
        if tcp {
            f |= flags::TCP;
        }
        Self {
            id,
            name: format!("Dummy{id}"),
            dt_s,
            legacy,
            flags: f,
            next_seq: 0,
            last_rtt_us: NO_RTT,
            stamps_sent: 0,
            send_errors: 0,
            echoes_received: 0,
            best_exchange: None,
        }
    }

    /// First datagram: HELLO, or the ASCII id in legacy mode.
    pub fn hello(&self) -> Vec<u8> {
        if self.legacy {
            return self.id.to_string().into_bytes();
        }
        Message::Hello(Hello {
            dummy_id: self.id,
            dt_s: self.dt_s,
            script_version: SCRIPT_VERSION,
            flags: self.flags,
            name: self.name.clone(),
        })
        .encode()
    }

    /// The datagram for simulation pass `step` (time `step · dt`), stamped `now_unix_s`.
    /// Advances seq whether or not the caller then sends it.
    pub fn stamp(&mut self, step: u32, now_unix_s: f64) -> Vec<u8> {
        let sim_time_s = f64::from(step) * self.dt_s;
        if self.legacy {
            return sim_time_s.to_le_bytes().to_vec();
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        Message::Stamp(Stamp {
            dummy_id: self.id,
            seq,
            step,
            sim_time_s,
            sent_unix_s: now_unix_s,
            rtt_us: self.last_rtt_us,
        })
        .encode()
    }

    /// Records the outcome of a send.
    pub fn sent(&mut self, ok: bool) {
        if ok {
            self.stamps_sent += 1;
        } else {
            self.send_errors += 1;
        }
    }

    /// Handles a datagram from the bridge; an ECHO yields the round trip (µs).
    pub fn on_reply(&mut self, bytes: &[u8], now_unix_s: f64) -> Option<u32> {
        let Ok(Message::Echo(e)) = Message::decode(bytes) else {
            return None;
        };
        if e.dummy_id != self.id {
            return None;
        }
        self.echoes_received += 1;
        let rtt_s = now_unix_s - e.sent_unix_s;
        self.last_rtt_us = (rtt_s * 1e6).clamp(0.0, f64::from(NO_RTT - 1)) as u32;
        let delay_s = rtt_s - (e.bridge_send_unix_s - e.bridge_recv_unix_s);
        if self.best_exchange.is_none_or(|(_, best)| delay_s < best) {
            let clock = Clock {
                dummy_id: self.id,
                seq: e.seq,
                sent_unix_s: e.sent_unix_s,
                bridge_recv_unix_s: e.bridge_recv_unix_s,
                bridge_send_unix_s: e.bridge_send_unix_s,
                echo_read_unix_s: now_unix_s,
            };
            self.best_exchange = Some((clock, delay_s));
        }
        Some(self.last_rtt_us)
    }

    /// The CLOCK message of the minimum-delay ECHO exchange read since the last call (one per
    /// pass, sent before the pass's STAMP, as the script does); `None` if no ECHO was read.
    pub fn take_clock(&mut self) -> Option<Vec<u8>> {
        let (clock, _) = self.best_exchange.take()?;
        Some(Message::Clock(clock).encode())
    }

    /// Last datagram (`sysCall_cleanup`); legacy mode sends none.
    pub fn bye(&self) -> Option<Vec<u8>> {
        if self.legacy {
            return None;
        }
        Some(
            Message::Bye(Bye {
                dummy_id: self.id,
                last_seq: self.next_seq.checked_sub(1).unwrap_or(NO_SEQ),
                stamps_sent: self.stamps_sent,
                send_errors: self.send_errors,
                echoes_received: self.echoes_received,
            })
            .encode(),
        )
    }

    pub fn stamps_sent(&self) -> u32 {
        self.stamps_sent
    }

    pub fn echoes_received(&self) -> u32 {
        self.echoes_received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_carry_seq_step_and_time() {
        let mut d = DummyEmitter::new(3, 0.05, false, false, false);
        assert!(
            matches!(Message::decode(&d.hello()), Ok(Message::Hello(h)) if h.name == "Dummy3" && h.flags == flags::THREAD)
        );
        for k in 0..5 {
            let m = Message::decode(&d.stamp(k, 100.0 + f64::from(k))).unwrap();
            let Message::Stamp(s) = m else { panic!() };
            assert_eq!((s.seq, s.step, s.rtt_us), (k, k, NO_RTT));
            assert!((s.sim_time_s - f64::from(k) * 0.05).abs() < 1e-12);
        }
        let Message::Bye(b) = Message::decode(&d.bye().unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(b.last_seq, 4);
    }

    #[test]
    fn legacy_sends_the_notebook_format() {
        let mut d = DummyEmitter::new(2, 0.05, true, false, false);
        assert_eq!(d.hello(), b"2");
        assert_eq!(d.stamp(3, 0.0), 0.15000000000000002f64.to_le_bytes());
        assert!(d.bye().is_none());
    }

    #[test]
    fn even_loss_drops_exactly_the_fraction() {
        let mut l = LossModel::even(0.05);
        let dropped = (0..1000).filter(|_| l.drop_next()).count();
        assert_eq!(dropped, 50);
    }

    #[test]
    fn echo_yields_round_trip() {
        let mut d = DummyEmitter::new(1, 0.05, false, true, false);
        let echo = Message::Echo(crate::wire::Echo {
            dummy_id: 1,
            seq: 0,
            sent_unix_s: 10.0,
            bridge_recv_unix_s: 10.0001,
            bridge_send_unix_s: 10.0002,
        })
        .encode();
        assert_eq!(d.on_reply(&echo, 10.0005), Some(500));
        let Message::Stamp(s) = Message::decode(&d.stamp(0, 11.0)).unwrap() else {
            panic!()
        };
        assert_eq!(s.rtt_us, 500);
    }
}
