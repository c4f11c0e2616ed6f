//! A container's output, read back from Docker with timestamps.
//!
//! Offsets are the Unix time in nanoseconds of the last line returned:
//! Docker's `since` filter only takes whole seconds, so each read starts at
//! that second and skips lines up to the offset. Lines from one container
//! never share a nanosecond timestamp in practice, so none is skipped twice
//! or read twice.

use crate::{LogChunk, LogLine, LogStream, RuntimeError};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures::StreamExt;

pub async fn read(
    docker: &Docker,
    name: &str,
    offset: u64,
    max_lines: usize,
) -> Result<LogChunk, RuntimeError> {
    let opts = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        follow: false,
        since: (offset / 1_000_000_000).min(i32::MAX as u64) as i32,
        tail: "all".into(),
        ..Default::default()
    };
    let mut stream = docker.logs(name, Some(opts));
    let mut chunk = LogChunk {
        lines: Vec::new(),
        next_offset: offset,
    };
    // A line Docker split (over 16 KiB) arrives in parts; they are joined.
    let mut partial: Option<(u64, LogStream, String)> = None;
    while let Some(item) = stream.next().await {
        let out = match item {
            Ok(o) => o,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Err(RuntimeError::NotFound),
            Err(e) => return Err(RuntimeError::Io(e.to_string())),
        };
        let (stream_kind, bytes) = match out {
            LogOutput::StdErr { message } => (LogStream::Stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (LogStream::Stdout, message)
            }
            LogOutput::StdIn { .. } => continue,
        };
        let text = String::from_utf8_lossy(&bytes);
        // A TTY container's output may hold several lines in one frame.
        for raw in text.split_inclusive('\n') {
            let Some((ts, rest)) = raw.split_once(' ') else {
                continue;
            };
            let Some(ns) = parse_ns(ts) else { continue };
            let complete = rest.ends_with('\n');
            let body = rest.trim_end_matches('\n').trim_end_matches('\r');
            let (ns, body) = match partial.take() {
                Some((first_ns, _, mut acc)) => {
                    acc.push_str(body);
                    (first_ns, acc)
                }
                None => (ns, body.to_string()),
            };
            if !complete {
                partial = Some((ns, stream_kind, body));
                continue;
            }
            if ns <= offset {
                continue;
            }
            chunk.lines.push(LogLine {
                timestamp_ms: (ns / 1_000_000) as i64,
                stream: stream_kind,
                message: body,
            });
            chunk.next_offset = ns;
            if chunk.lines.len() >= max_lines {
                return Ok(chunk);
            }
        }
    }
    Ok(chunk)
}

fn parse_ns(ts: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_timestamps_keep_nanoseconds() {
        assert_eq!(
            super::parse_ns("1970-01-01T00:00:01.000000002Z"),
            Some(1_000_000_002)
        );
    }
}
