//! Reading the client's bytes: command lines and the DATA of a message,
//! each bounded, with strict CRLF framing.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// A command line, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line, CRLF (or a lone LF) included.
    Complete(Vec<u8>),
    /// Longer than allowed; read up to its end and dropped.
    TooLong,
    /// The client closed the connection.
    Closed,
}

/// Reads one command line of at most `max` bytes.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if line.len() + take > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete(line)
            });
        }
    }
}

/// How a message's DATA ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Data {
    /// The message, dot-unstuffed, every line ending in CRLF.
    Message(Vec<u8>),
    /// Larger than allowed; read to its end and dropped.
    TooBig,
    /// A line longer than allowed; read to the end and dropped.
    LineTooLong,
    /// A bare LF or bare CR: the framing cannot be trusted any more, so the
    /// session ends (SMTP smuggling defence). Nothing was read past it.
    BareNewline,
    /// The client closed the connection before the end of the data.
    Closed,
}

/// Reads DATA up to the `.` line: at most `max_size` bytes of message and
/// `max_line` bytes per line (CRLF included).
pub async fn read_data<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max_size: usize,
    max_line: usize,
) -> std::io::Result<Data> {
    let mut message = Vec::new();
    let mut line = Vec::with_capacity(128);
    let mut too_big = false;
    let mut too_long = false;
    loop {
        // One line (up to its LF) at a time; only `max_line` of it is kept.
        line.clear();
        let mut length = 0usize;
        loop {
            let available = reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Data::Closed);
            }
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            length += take;
            if length <= max_line {
                line.extend_from_slice(&available[..take]);
            } else {
                too_long = true;
                // Still check what is dropped for bare CRs and the ending.
                let chunk = &available[..take];
                if has_bare_cr(&line, None) || has_bare_cr(chunk, line.last().copied()) {
                    return Ok(Data::BareNewline);
                }
                // Keep the line's last two bytes, to see how it ends.
                let mut tail = line[line.len().saturating_sub(2)..].to_vec();
                tail.extend_from_slice(chunk);
                line.clear();
                line.extend_from_slice(&tail[tail.len().saturating_sub(2)..]);
            }
            reader.consume(take);
            if done {
                break;
            }
        }
        // Every line ends in CRLF, and no CR stands alone inside it.
        let Some(body) = line.strip_suffix(b"\r\n") else {
            return Ok(Data::BareNewline);
        };
        if length <= max_line && body.contains(&b'\r') {
            return Ok(Data::BareNewline);
        }
        if length <= max_line && body == b"." {
            return Ok(if too_big {
                Data::TooBig
            } else if too_long {
                Data::LineTooLong
            } else {
                Data::Message(message)
            });
        }
        if too_big || too_long {
            continue;
        }
        let unstuffed = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        if message.len() + unstuffed.len() > max_size {
            too_big = true;
            message = Vec::new();
        } else {
            message.extend_from_slice(unstuffed);
        }
    }
}

/// Whether `chunk` (after a byte `before`) has a CR not followed by LF,
/// not counting a CR at its very end (its LF may come next).
fn has_bare_cr(chunk: &[u8], before: Option<u8>) -> bool {
    let mut previous = before;
    for &b in chunk {
        if previous == Some(b'\r') && b != b'\n' {
            return true;
        }
        previous = Some(b);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn data(input: &[u8]) -> Data {
        let mut reader = tokio::io::BufReader::with_capacity(7, input);
        read_data(&mut reader, 100, 20).await.unwrap()
    }

    #[tokio::test]
    async fn a_message_ends_at_the_dot_line_and_is_unstuffed() {
        assert_eq!(
            data(b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nMAIL").await,
            Data::Message(b"Subject: x\r\n\r\n.dot\r\nbody\r\n".to_vec())
        );
    }

    #[tokio::test]
    async fn bare_newlines_end_the_data() {
        assert_eq!(data(b"a\n.\nMAIL FROM:<x>\r\n.\r\n").await, Data::BareNewline);
        assert_eq!(
            data(b"a\r\n\r.\r\nMAIL FROM:<x>\r\n.\r\n").await,
            Data::BareNewline
        );
        assert_eq!(data(b"a\rb\r\n.\r\n").await, Data::BareNewline);
    }

    #[tokio::test]
    async fn limits_are_read_through_and_reported() {
        assert_eq!(
            data(b"0123456789012345678901234\r\n.\r\n").await,
            Data::LineTooLong
        );
        let big = b"0123456789\r\n".repeat(20);
        let mut input = big.clone();
        input.extend_from_slice(b".\r\n");
        assert_eq!(data(&input).await, Data::TooBig);
        assert_eq!(data(b"abc\r\n").await, Data::Closed);
    }

    #[tokio::test]
    async fn an_over_long_line_split_between_its_cr_and_lf_is_only_too_long() {
        // One read ends with the line's CR, the next starts with its LF.
        let mut input = b"012345678901234567890123\r".to_vec();
        input.extend_from_slice(b"\n.\r\n");
        let mut reader = tokio::io::BufReader::with_capacity(25, &input[..]);
        assert_eq!(read_data(&mut reader, 100, 20).await.unwrap(), Data::LineTooLong);
    }

    #[tokio::test]
    async fn a_bare_cr_inside_an_over_long_line_is_still_seen() {
        assert_eq!(
            data(b"01234567890123456789012\r4\r\n.\r\n").await,
            Data::BareNewline
        );
    }

    #[tokio::test]
    async fn command_lines_are_bounded() {
        let mut reader =
            tokio::io::BufReader::with_capacity(4, &b"NOOP\r\nxxxxxxxxxxxxxxxxxxxxxxxx\r\nQUIT\r\n"[..]);
        assert_eq!(
            read_line(&mut reader, 10).await.unwrap(),
            Line::Complete(b"NOOP\r\n".to_vec())
        );
        assert_eq!(read_line(&mut reader, 10).await.unwrap(), Line::TooLong);
        assert_eq!(
            read_line(&mut reader, 10).await.unwrap(),
            Line::Complete(b"QUIT\r\n".to_vec())
        );
        assert_eq!(read_line(&mut reader, 10).await.unwrap(), Line::Closed);
    }
}
