//! One sample file of the run directory (`samples.csv` or `samples.bin`): a
//! [`SampleEncoder`] on a buffered file, whose errors name the file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::metrics::{Sample, Transport};

use super::OutputError;

/// A sample format: how one received message is appended.
pub trait SampleEncoder {
    fn write_sample(
        &mut self,
        dummy: u32,
        session: u32,
        transport: Transport,
        s: &Sample,
    ) -> std::io::Result<()>;

    fn flush(&mut self) -> std::io::Result<()>;
}

/// Buffer of a samples file: large writes, a handful per second at 20,000 messages/s.
const FILE_BUFFER: usize = 256 * 1024;

/// Streams every received message into one file, in arrival order.
///
/// One file for all dummies: at 10,000 dummies a file each would hold 10,000 descriptors
/// and buffers open; readers group by the dummy id.
#[derive(Debug)]
pub struct SampleFile<E> {
    path: PathBuf,
    encoder: E,
}

impl<E: SampleEncoder> SampleFile<E> {
    /// Creates (truncates) the file at `path`, written through `encoder_on` its buffer.
    pub fn create_with(
        path: &Path,
        encoder_on: impl FnOnce(BufWriter<File>) -> E,
    ) -> Result<Self, OutputError> {
        let file = File::create(path).map_err(|e| OutputError::io("create", path, e))?;
        Ok(Self {
            path: path.to_owned(),
            encoder: encoder_on(BufWriter::with_capacity(FILE_BUFFER, file)),
        })
    }

    /// Appends one received message.
    pub fn write_sample(
        &mut self,
        dummy: u32,
        session: u32,
        transport: Transport,
        s: &Sample,
    ) -> Result<(), OutputError> {
        self.encoder
            .write_sample(dummy, session, transport, s)
            .map_err(|e| self.failed("write", e))
    }

    /// Pushes buffered messages to the file.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.encoder.flush().map_err(|e| self.failed("flush", e))
    }

    /// The encoder, for what its format alone offers.
    pub(crate) fn encoder_mut(&mut self) -> &mut E {
        &mut self.encoder
    }

    pub(crate) fn failed(&self, op: &'static str, e: std::io::Error) -> OutputError {
        OutputError::io(op, &self.path, e)
    }
}
