//! Raw sockets for tests of what a server does to a connection (timeouts, limits, drain).

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits for the server to answer or close.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream
}

/// Reads until the server closes the connection; what it sent before. Fails the test when the
/// server keeps it open past [`WAIT`].
pub fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "the server kept the connection open; it sent {:?}",
                    String::from_utf8_lossy(&raw)
                )
            }
            // A reset after the answer is a close too.
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&raw).into_owned()
}
