//! A connection to a receiving server, clear or upgraded by STARTTLS, as one
//! stream type so that sessions of both kinds can be cached together.

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// Clear (`Left`) or TLS (`Right`, boxed: the TLS state is large).
pub type Connection = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A clear connection.
pub fn plain(stream: TcpStream) -> Connection {
    Either::Left(stream)
}

/// A connection encrypted by STARTTLS.
pub fn tls(stream: TlsStream<TcpStream>) -> Connection {
    Either::Right(Box::new(stream))
}

pub fn is_tls(connection: &Connection) -> bool {
    matches!(connection, Either::Right(_))
}
