//! Any bytes as a `samples.bin` (what `coppelia-bridge convert` and `report` read from
//! disk). Checks, beyond "no panic":
//! - a refused file is refused at its header: nothing after it is read;
//! - an accepted file is read whole: header + records × record size + the partial tail
//!   left out is exactly its length, and the converted CSV has one line per record (plus
//!   the header line when there is one);
//! - every record that decodes encodes back to the bytes it came from, except the bits a
//!   reader ignores (unset optional fields, unknown flag bits, the reserved byte).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run sample_log` (or `scripts/fuzz.sh`).
#![no_main]

use coppelia_bridge::output::samples_bin::{
    decode, encode, parse_header, to_csv, HEADER_LEN, RECORD_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut csv = Vec::new();
    let converted = to_csv(input, &mut csv);
    let header: Option<&[u8; HEADER_LEN]> = input.get(..HEADER_LEN).map(|h| h.try_into().unwrap());
    let record_len = match header.map(parse_header) {
        Some(Ok(len)) => len,
        // Empty input: a run that received nothing.
        None if input.is_empty() => {
            assert_eq!(converted.unwrap().rows, 0);
            assert!(csv.is_empty());
            return;
        }
        _ => {
            assert!(converted.is_err(), "a bad header is refused");
            assert!(csv.is_empty());
            return;
        }
    };
    let body = &input[HEADER_LEN..];
    let complete = body.len() / record_len;
    let mut good = 0;
    for (i, rec) in body.chunks_exact(record_len).enumerate() {
        let rec: &[u8; RECORD_LEN] = rec[..RECORD_LEN].try_into().unwrap();
        let Ok(r) = decode(rec, i as u64) else {
            break;
        };
        good += 1;
        let mut back = [0u8; RECORD_LEN];
        encode(&r, &mut back);
        let flags = rec[52];
        for (at, (a, b)) in rec.iter().zip(back.iter()).enumerate() {
            let ignored = match at {
                8..=11 => flags & 1 == 0,
                12..=15 => flags & 2 == 0,
                24..=31 => flags & 4 == 0,
                48..=51 => flags & 8 == 0,
                52 => true, // compared below, known bits only
                55 => true,
                _ => false,
            };
            assert!(ignored || a == b, "byte {at} of record {i}");
        }
        assert_eq!(back[52], flags & 0x0F);
    }
    match converted {
        Ok(done) => {
            assert_eq!(done.rows as usize, complete);
            assert_eq!(good, complete);
            assert_eq!(
                HEADER_LEN + complete * record_len + done.partial_tail,
                input.len()
            );
            let lines = csv.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(lines, if complete == 0 { 0 } else { complete + 1 });
        }
        Err(_) => assert!(
            good < complete,
            "only a damaged record fails the conversion"
        ),
    }
});
