//! A buffered tokio TCP connection with the few reads and writes the
//! protocol probes need.
//!
//! The root package's tokio has `net` but not `io-util`, so there is no
//! `AsyncReadExt`; this wraps `readable`/`try_read` and
//! `writable`/`try_write` instead.

use std::io;

use tokio::net::TcpStream;

use crate::invalid;

/// The most a probe reads from one connection: the replies are tiny, so more
/// means something is wrong.
const READ_LIMIT: usize = 4 << 20;

/// A connection and the bytes read from it but not consumed yet.
pub(crate) struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
    eof: bool,
}

impl Conn {
    /// Wraps a connected stream.
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            eof: false,
        }
    }

    /// Writes all of `data`.
    pub(crate) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Exactly `n` bytes.
    pub(crate) async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buffer.len() < n {
            if !self.fill().await? {
                return Err(invalid(format!(
                    "connection closed after {} of {n} expected bytes",
                    self.buffer.len()
                )));
            }
        }
        Ok(self.buffer.drain(..n).collect())
    }

    /// The bytes up to the next CRLF, without it.
    pub(crate) async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let mut line: Vec<u8> = self.buffer.drain(..end + 2).collect();
                line.truncate(end);
                return Ok(line);
            }
            if !self.fill().await? {
                return Err(invalid("connection closed in the middle of a line"));
            }
        }
    }

    /// Everything until the peer closes the connection.
    pub(crate) async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.buffer))
    }

    /// Reads what is available into the buffer; `false` once the peer has
    /// closed its side.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.buffer.len() >= READ_LIMIT {
            return Err(invalid(format!("more than {READ_LIMIT} bytes in a reply")));
        }
        let mut chunk = [0; 8192];
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}
